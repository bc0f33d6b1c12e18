package bridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// A ProcessOption configures StartProcess.
type ProcessOption func(*processConfig)

type processConfig struct {
	oneWay   bool
	daemon   bool
	connOpts []ConnOption
}

// WithOneWay hands the child the send end of a one-way pipe, as
// Pipe(false): the parent's Conn only receives, the child's only sends.
func WithOneWay() ProcessOption { return func(c *processConfig) { c.oneWay = true } }

// WithDaemon makes the child a daemon, as multiprocessing's daemon=True: it
// is killed (SIGKILL, by Linux's parent-death signal) when the parent dies,
// however the parent dies, and gets no chance to clean up.
//
// Linux sends the signal when the OS thread that started the child exits,
// not the process. Go's threads live as long as the process unless a
// goroutine locked with runtime.LockOSThread exits without unlocking: do
// not start daemon children from such a goroutine.
func WithDaemon() ProcessOption { return func(c *processConfig) { c.daemon = true } }

// WithProcessConnOptions configures the parent's Conn (and, through the
// SPEC 6.3 environment, the frame limit of the child's).
func WithProcessConnOptions(opts ...ConnOption) ProcessOption {
	return func(c *processConfig) { c.connOpts = append(c.connOpts, opts...) }
}

// A Process is a child process started with a connection to it: Go's
// multiprocessing.Process for any program, Python (gobridge.parent()) or Go
// (Parent). Create one with StartProcess; call Join (or Kill and Join) and
// Close when done.
type Process struct {
	cmd  *exec.Cmd
	conn *Conn
	done chan struct{} // closed when the child has been waited for

	mu      sync.Mutex
	code    int
	waitErr error
}

// StartProcess starts cmd with one end of a new Pipe handed down (SPEC 6.3)
// and returns the Process, whose Conn is the other end. Standard output and
// error left nil in cmd are the parent's (passed through, as children of
// multiprocessing share them); set cmd.Stdout or cmd.Stderr to an
// io.Writer to capture them.
func StartProcess(cmd *exec.Cmd, opts ...ProcessOption) (*Process, error) {
	var cfg processConfig
	for _, o := range opts {
		o(&cfg)
	}
	mine, theirs, err := Pipe(!cfg.oneWay, cfg.connOpts...)
	if err != nil {
		return nil, err
	}
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if cfg.daemon {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := StartWithConn(cmd, theirs); err != nil {
		mine.Close()
		return nil, err
	}
	p := &Process{cmd: cmd, conn: mine, done: make(chan struct{})}
	go p.wait()
	return p, nil
}

func (p *Process) wait() {
	err := p.cmd.Wait()
	code := p.cmd.ProcessState.ExitCode()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = -int(ws.Signal())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = nil // the status is reported by ExitCode and Join
	}
	p.mu.Lock()
	p.code, p.waitErr = code, err
	p.mu.Unlock()
	close(p.done)
}

// Conn returns the parent's end of the connection to the child. When the
// child exits, Recv returns io.EOF (between messages) or an error matching
// io.ErrUnexpectedEOF (inside one), and Send fails with ErrBrokenPipe.
func (p *Process) Conn() *Conn { return p.conn }

// Pid returns the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Join waits for the child to exit, or for ctx to end (the child keeps
// running). It returns nil when the child exited with status 0, a
// *ProcessExitError carrying the exit code otherwise.
func (p *Process) Join(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("bridge: join pid %d: %w", p.Pid(), ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waitErr != nil {
		return fmt.Errorf("bridge: join pid %d: %w", p.Pid(), p.waitErr)
	}
	if p.code != 0 {
		return &ProcessExitError{Pid: p.Pid(), Code: p.code}
	}
	return nil
}

// Done is closed when the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode returns the child's exit status once it has exited (exited
// true): the status it passed to exit, or minus the signal number that
// killed it, as Python's Process.exitcode.
func (p *Process) ExitCode() (code int, exited bool) {
	select {
	case <-p.done:
	default:
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code, true
}

// IsAlive reports whether the child is still running (not yet reaped).
func (p *Process) IsAlive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the child; a child that has exited is not an error.
func (p *Process) Signal(sig os.Signal) error {
	if !p.IsAlive() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("bridge: signal pid %d: %w", p.Pid(), err)
	}
	return nil
}

// Terminate sends SIGTERM, as Process.terminate().
func (p *Process) Terminate() error { return p.Signal(syscall.SIGTERM) }

// Kill sends SIGKILL, as Process.kill().
func (p *Process) Kill() error { return p.Signal(syscall.SIGKILL) }

// Close closes the parent's Conn. It does not wait for or signal the child.
func (p *Process) Close() error { return p.conn.Close() }

// ProcessExitError is Join's error for a child that exited with a status
// other than 0 or was killed by a signal.
type ProcessExitError struct {
	Pid  int
	Code int // exit status, or minus the signal number
}

func (e *ProcessExitError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("bridge: process %d killed by signal %d (%v)", e.Pid, -e.Code, syscall.Signal(-e.Code))
	}
	return fmt.Sprintf("bridge: process %d exited with status %d", e.Pid, e.Code)
}
