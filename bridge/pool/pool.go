package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gobridge/gobridge/bridge"
)

// Errors; match them with errors.Is.
var (
	// ErrClosed: a task given to a Pool after Close or Terminate, or one
	// still queued when Terminate ran.
	ErrClosed = errors.New("pool: closed")
	// ErrWorkerDied: the worker running the task died before answering.
	ErrWorkerDied = errors.New("pool: worker died")
	// ErrWorkerStart: a worker did not start: the interpreter is missing,
	// cannot import gobridge, or sent no hello (SPEC section 12) within
	// the start timeout. New returns it, and so does a task whose worker
	// had to be replaced; the message carries the interpreter, its exit
	// code and the last line it wrote to standard error (for a missing
	// package: "No module named 'gobridge'").
	ErrWorkerStart = errors.New("pool: worker did not start")
)

// PythonError is a Python exception raised by the task's function.
type PythonError struct {
	Func      string // "module:function"
	Type      string // the exception's class name, e.g. "ValueError"
	Message   string // str(exception)
	Traceback string // the formatted Python traceback
	// Index is the failing call's position: the item's index in Map's
	// items, 0 for Apply and ApplyAsync, -1 when the function could not be
	// found or its result could not be encoded.
	Index int
}

func (e *PythonError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("pool: %s: %s: %s", e.Func, e.Type, e.Message)
	}
	return fmt.Sprintf("pool: %s raised %s: %s (call %d)", e.Func, e.Type, e.Message, e.Index)
}

// An Option configures New.
type Option func(*config)

type config struct {
	python       string
	env          []string
	stderr       io.Writer
	startTimeout time.Duration
}

// DefaultStartTimeout is how long a worker has to say hello, by default.
const DefaultStartTimeout = 30 * time.Second

// WithPython sets the interpreter that has gobridge installed (default
// "python3").
func WithPython(path string) Option { return func(c *config) { c.python = path } }

// WithEnv sets the workers' environment (default: the parent's), for
// example to add PYTHONPATH.
func WithEnv(env []string) Option { return func(c *config) { c.env = env } }

// WithStderr sends the workers' standard error (tracebacks of crashes) to w
// instead of the parent's. The pool serializes its writes to w: it need not
// be safe for concurrent use.
func WithStderr(w io.Writer) Option { return func(c *config) { c.stderr = w } }

// WithStartTimeout bounds how long a starting worker has to send its hello
// (DefaultStartTimeout unless set; d <= 0 keeps the default).
func WithStartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// Pool is a pool of Python worker processes. Its methods are safe for
// concurrent use.
type Pool struct {
	cfg   config
	wg    sync.WaitGroup
	errMu sync.Mutex // serializes the workers' writes to their stderr

	mu         sync.Mutex
	queue      []*task
	wake       chan struct{} // closed and replaced whenever queue or state changes
	closed     bool
	terminated bool
	procs      map[*bridge.Process]bool
	nextID     int64
}

type task struct {
	fn    string
	calls [][]any // fn(calls[i]...) for each i; or
	items []any   // fn(items[i]) for each i (Map's chunks)
	first int     // index of the first call among the items of a Map
	res   *AsyncResult
}

// AsyncResult is the result of ApplyAsync (or of one chunk of Map).
type AsyncResult struct {
	done chan struct{}
	vals []any
	err  error
}

func newResult() *AsyncResult { return &AsyncResult{done: make(chan struct{})} }

func (r *AsyncResult) finish(vals []any, err error) {
	r.vals, r.err = vals, err
	close(r.done)
}

// Ready reports whether the task has finished.
func (r *AsyncResult) Ready() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Wait waits for the task's result, or for ctx to end (the task keeps
// running).
func (r *AsyncResult) Wait(ctx context.Context) (any, error) {
	vals, err := r.wait(ctx)
	if err != nil {
		return nil, err
	}
	return vals[0], nil
}

// Get is Wait with a timeout, as AsyncResult.get(timeout) in Python; a
// negative timeout waits indefinitely.
func (r *AsyncResult) Get(timeout time.Duration) (any, error) {
	ctx := context.Background()
	if timeout >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return r.Wait(ctx)
}

func (r *AsyncResult) wait(ctx context.Context) ([]any, error) {
	select {
	case <-r.done:
		return r.vals, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("pool: %w", ctx.Err())
	}
}

// New starts n workers (n <= 0: one per CPU) and waits until each has
// said hello. If one cannot start, New stops the others and returns an
// error matching ErrWorkerStart.
func New(n int, opts ...Option) (*Pool, error) {
	cfg := config{python: "python3"}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.startTimeout <= 0 {
		cfg.startTimeout = DefaultStartTimeout
	}
	if n <= 0 {
		n = max(1, numCPU())
	}
	p := &Pool{cfg: cfg, wake: make(chan struct{}), procs: map[*bridge.Process]bool{}}
	workers := make([]*bridge.Process, n)
	errs := make([]error, n)
	var started sync.WaitGroup
	for i := range workers {
		started.Add(1)
		go func() { // in parallel: each waits for its interpreter to start
			defer started.Done()
			workers[i], errs[i] = p.start()
		}()
	}
	started.Wait()
	for _, err := range errs {
		if err != nil {
			for _, w := range workers {
				if w != nil {
					w.Kill()
					p.forget(w)
				}
			}
			return nil, err
		}
	}
	for _, w := range workers {
		p.wg.Add(1)
		go p.run(w)
	}
	return p, nil
}

// helloName is the value of the "hello" key of a worker's first message.
const helloName = "gobridge._worker"

// start starts one worker, waits for its hello and registers it.
func (p *Pool) start() (*bridge.Process, error) {
	cmd := exec.Command(p.cfg.python, "-m", "gobridge._worker")
	// A copy: StartProcess appends to cmd.Env, and workers start in parallel.
	cmd.Env = slices.Clip(p.cfg.env)
	errOut := p.cfg.stderr
	if errOut == nil {
		errOut = os.Stderr
	}
	tail := &tailWriter{w: errOut, wmu: &p.errMu}
	cmd.Stderr = tail
	cmd.Stdout = os.Stderr // a worker's prints must not mix with the parent's output
	// Standard error is a pipe now: should the worker leave a child holding
	// it, Wait must not wait for that child.
	cmd.WaitDelay = time.Second
	w, err := bridge.StartProcess(cmd, bridge.WithDaemon())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrWorkerStart, p.cfg.python, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.startTimeout)
	defer cancel()
	var hello map[string]any
	err = w.Conn().RecvContext(ctx, &hello)
	if err == nil && hello["hello"] == helloName {
		p.mu.Lock()
		p.procs[w] = true
		p.mu.Unlock()
		return w, nil
	}
	var why string
	switch {
	case ctx.Err() != nil:
		why = fmt.Sprintf("no hello within %v", p.cfg.startTimeout)
		w.Kill()
	case err == nil:
		why = fmt.Sprintf("its first message is not a hello: %.200v", hello)
		w.Kill()
	}
	w.Close()
	jctx, jcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer jcancel()
	if w.Join(jctx) != nil && w.IsAlive() {
		w.Kill()
		w.Join(context.Background())
	}
	if why == "" {
		code, _ := w.ExitCode()
		why = fmt.Sprintf("exit code %d", code)
	}
	msg := fmt.Sprintf("%s -m gobridge._worker (pid %d): %s", p.cfg.python, w.Pid(), why)
	if last := tail.lastLine(); last != "" {
		msg += ": " + last
	}
	return nil, fmt.Errorf("%w: %s", ErrWorkerStart, msg)
}

// tailWriter passes a worker's standard error on to w and keeps its last
// bytes, for the error of a worker that did not start.
type tailWriter struct {
	w    io.Writer
	wmu  *sync.Mutex // shared by the pool's workers, which write to one w
	mu   sync.Mutex
	tail []byte
}

const tailSize = 4096

func (t *tailWriter) Write(b []byte) (int, error) {
	t.mu.Lock()
	t.tail = append(t.tail, b[max(0, len(b)-tailSize):]...)
	if len(t.tail) > tailSize {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-tailSize:]...)
	}
	t.mu.Unlock()
	t.wmu.Lock()
	t.w.Write(b) // a failing destination must not stop the worker
	t.wmu.Unlock()
	return len(b), nil
}

// lastLine returns the last non-empty line written, at most 500 bytes.
func (t *tailWriter) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.tail)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if len(last) > 500 {
		last = last[len(last)-500:]
	}
	return strings.ToValidUTF8(last, "?")
}

func (p *Pool) forget(w *bridge.Process) {
	p.mu.Lock()
	delete(p.procs, w)
	p.mu.Unlock()
	w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if w.Join(ctx) != nil && w.IsAlive() {
		w.Kill()
		w.Join(context.Background())
	}
}

// next takes the next task; false when the pool is closed and drained, or
// terminated.
func (p *Pool) next() (*task, bool) {
	for {
		p.mu.Lock()
		if !p.terminated && len(p.queue) > 0 {
			t := p.queue[0]
			p.queue[0] = nil
			p.queue = p.queue[1:]
			p.mu.Unlock()
			return t, true
		}
		if p.closed || p.terminated {
			p.mu.Unlock()
			return nil, false
		}
		wake := p.wake
		p.mu.Unlock()
		<-wake
	}
}

func (p *Pool) signalLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// run serves tasks on one worker slot, replacing the worker when it dies.
func (p *Pool) run(w *bridge.Process) {
	defer p.wg.Done()
	defer func() {
		if w != nil {
			p.forget(w)
		}
	}()
	for {
		t, ok := p.next()
		if !ok {
			return
		}
		if w != nil && !w.IsAlive() { // died while idle: replace it first
			p.forget(w)
			w = nil
		}
		if w == nil {
			var err error
			if w, err = p.start(); err != nil {
				t.res.finish(nil, err)
				continue
			}
		}
		vals, err := p.do(w, t)
		if errors.Is(err, ErrWorkerDied) {
			p.forget(w)
			code, _ := w.ExitCode()
			err = fmt.Errorf("%w: pid %d (exit code %d) while running %s", ErrWorkerDied, w.Pid(), code, t.fn)
			w = nil
		}
		t.res.finish(vals, err)
	}
}

// request is the message of SPEC section 12 a worker receives.
type request struct {
	ID    int64   `msgpack:"id"`
	Fn    string  `msgpack:"fn"`
	Calls [][]any `msgpack:"calls,omitempty"`
	Items []any   `msgpack:"items,omitempty"`
}

// reply is decoded generically (map[string]any), so that results are the
// generic decoder's types (int64, string, []any, ...) whatever their shape.
type replyError struct {
	Type, Message, Traceback string
	Index                    int64
}

func parseReply(m map[string]any) (id int64, results []any, rerr *replyError, ok bool) {
	id, ok = m["id"].(int64)
	if e, isMap := m["error"].(map[string]any); isMap {
		rerr = &replyError{}
		rerr.Type, _ = e["type"].(string)
		rerr.Message, _ = e["message"].(string)
		rerr.Traceback, _ = e["traceback"].(string)
		rerr.Index, _ = e["index"].(int64)
		return id, nil, rerr, ok
	}
	results, isList := m["results"].([]any)
	return id, results, nil, ok && isList
}

func (p *Pool) do(w *bridge.Process, t *task) ([]any, error) {
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	p.mu.Unlock()
	c := w.Conn()
	if err := c.Send(request{ID: id, Fn: t.fn, Calls: t.calls, Items: t.items}); err != nil {
		if errors.Is(err, bridge.ErrBrokenPipe) || errors.Is(err, bridge.ErrClosed) {
			return nil, fmt.Errorf("%w: %v", ErrWorkerDied, err)
		}
		return nil, fmt.Errorf("pool: %s: %w", t.fn, err) // arguments not encodable
	}
	var m map[string]any
	if err := c.Recv(&m); err != nil {
		// ECONNRESET: it died with the request still unread.
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, bridge.ErrClosed) ||
			errors.Is(err, bridge.ErrBrokenPipe) || errors.Is(err, syscall.ECONNRESET) {
			w.Join(context.Background()) // it closed its end: it is exiting
			return nil, fmt.Errorf("%w: %v", ErrWorkerDied, err)
		}
		return nil, fmt.Errorf("pool: %s: reply: %w", t.fn, err)
	}
	rid, results, rerr, ok := parseReply(m)
	switch {
	case !ok:
		return nil, fmt.Errorf("pool: %s: malformed reply %v", t.fn, m)
	case rid != id:
		return nil, fmt.Errorf("pool: %s: reply to request %d, want %d", t.fn, rid, id)
	case rerr != nil:
		index := -1
		if rerr.Index >= 0 {
			index = t.first + int(rerr.Index)
		}
		return nil, &PythonError{Func: t.fn, Type: rerr.Type, Message: rerr.Message, Traceback: rerr.Traceback, Index: index}
	case len(results) != len(t.calls)+len(t.items):
		return nil, fmt.Errorf("pool: %s: %d results for %d calls", t.fn, len(results), len(t.calls)+len(t.items))
	}
	return results, nil
}

func (p *Pool) submit(t *task) *AsyncResult {
	res := newResult()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.terminated {
		res.finish(nil, ErrClosed)
		return res
	}
	t.res = res
	p.queue = append(p.queue, t)
	p.signalLocked()
	return res
}

// ApplyAsync queues fn(args...) and returns at once, as apply_async.
func (p *Pool) ApplyAsync(fn string, args ...any) *AsyncResult {
	if args == nil {
		args = []any{}
	}
	return p.submit(&task{fn: fn, calls: [][]any{args}})
}

// Apply runs fn(args...) and waits for its result, as apply.
func (p *Pool) Apply(ctx context.Context, fn string, args ...any) (any, error) {
	return p.ApplyAsync(fn, args...).Wait(ctx)
}

// Map calls fn(item) for every item and returns the results in the order of
// items, as Pool.map. Items go to the workers in chunks (as Python's
// chunksize: len(items)/(4*workers), rounded up). The first failing item's
// error is returned: a *PythonError's Index is that item's index.
func (p *Pool) Map(ctx context.Context, fn string, items []any) ([]any, error) {
	p.mu.Lock()
	workers := max(1, len(p.procs))
	p.mu.Unlock()
	chunk := max(1, (len(items)+4*workers-1)/(4*workers))
	var parts []*AsyncResult
	for i := 0; i < len(items); i += chunk {
		parts = append(parts, p.submit(&task{fn: fn, items: items[i:min(i+chunk, len(items))], first: i}))
	}
	out := make([]any, 0, len(items))
	for _, r := range parts {
		vals, err := r.wait(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, vals...)
	}
	return out, nil
}

// Close stops the pool accepting tasks; queued tasks still run, and then
// the workers exit. Call Join to wait for them.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.signalLocked()
	p.mu.Unlock()
}

// Join waits, after Close or Terminate, for the workers to exit.
func (p *Pool) Join(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pool: join: %w", ctx.Err())
	}
}

// Terminate kills the workers now, as Pool.terminate: tasks still queued
// fail with ErrClosed, running ones with ErrWorkerDied.
func (p *Pool) Terminate() {
	p.mu.Lock()
	p.terminated = true
	queued := p.queue
	p.queue = nil
	for w := range p.procs {
		w.Kill()
	}
	p.signalLocked()
	p.mu.Unlock()
	for _, t := range queued {
		t.res.finish(nil, ErrClosed)
	}
}
