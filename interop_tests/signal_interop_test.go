package interop_tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/testenv"
)

// Seed 002's handlers in Python, driven by Go: SIGUSR1 runs my_usr1, SIGTERM
// runs my_term (and the process goes on, as the seed's does), SIGUSR2 has no
// handler and kills it: bridge.Process reports -12.
func TestSeed002SignalsFromGo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := testenv.PythonCmd(t, seedScript("run_seed.py"), seedScript("seed002_signals.py"), "--interval", "0.05")
	cmd.Stdout = w
	p, err := bridge.StartProcess(cmd)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer p.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("output ended before %q", want)
				}
				if strings.HasPrefix(l, want) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %q", want)
			}
		}
	}
	expect("我是进程id是")
	for _, tc := range []struct {
		sig  syscall.Signal
		want string
	}{{syscall.SIGUSR1, "收到SIGUSR1信号"}, {syscall.SIGTERM, "收到sigterm信号"}, {syscall.SIGUSR1, "收到SIGUSR1信号"}} {
		p.Signal(tc.sig)
		expect(tc.want)
	}
	expect("我是进程id是") // still running after SIGTERM, as in the seed
	p.Signal(syscall.SIGUSR2)
	p.Join(ctx)
	if code, exited := p.ExitCode(); !exited || code != -12 {
		t.Fatalf("after SIGUSR2: %d %v", code, exited)
	}
}

// Python os.kills a Go process that handles SIGUSR1/SIGUSR2 through
// bridge.Signals; its SIGTERM or SIGINT closes the Go listeners and the
// tagged segment, removing their socket file, FIFO and /dev/shm object, and
// it dies of the signal (-15, -2).
func TestPythonKillsGo(t *testing.T) {
	peer := buildProcPeer(t)
	type report struct {
		Got, Before, After []string
		Exitcode           int
	}
	for _, tc := range []struct {
		sig  string
		code int
	}{{"TERM", -15}, {"INT", -2}} {
		t.Run(tc.sig, func(t *testing.T) {
			dir := testenv.ShortDir(t)
			tag := testenv.Tag(t)
			out := runPython(t, procPeerScript(), "kill-go", peer, dir, tag, tc.sig)
			var rep report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%v: %q", err, out)
			}
			want := report{[]string{"usr1", "usr2"}, []string{"f", "s.sock", tag}, []string{}, tc.code}
			if !reflect.DeepEqual(rep, want) {
				t.Fatalf("got %+v, want %+v", rep, want)
			}
		})
	}
}

// SIGTERM or SIGINT to a Python process holding a unix listener, a fifo:
// listener and a tagged segment (gobridge.signals installed): the socket
// file, the FIFO and the /dev/shm object are gone afterwards, and the
// process died of the signal.
func TestSignalPythonHolderLeavesNothing(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		dir := testenv.ShortDir(t)
		tag := testenv.Tag(t)
		cmd := testenv.PythonCmd(t, procPeerScript(), "hold", dir, tag)
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("holder said %q", line)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 2 {
			t.Fatalf("holder made %d files", len(ents))
		}
		if _, err := os.Lstat("/dev/shm/" + tag); err != nil {
			t.Fatalf("holder's segment: %v", err)
		}
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee interface{ Sys() any }
			if !errors.As(err, &ee) {
				t.Fatalf("%v: exit %v", sig, err)
			}
			if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != sig {
				t.Fatalf("%v: status %v", sig, ws)
			}
		case <-ctx.Done():
			cmd.Process.Kill()
			t.Fatalf("%v: holder did not exit", sig)
		}
		var left []string
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			left = append(left, e.Name())
		}
		if _, err := os.Lstat("/dev/shm/" + tag); err == nil {
			left = append(left, "/dev/shm/"+tag)
		}
		if len(left) != 0 {
			t.Fatalf("after %v left: %v", sig, left)
		}
	}
}

// The natural accept loop across the language line, both ways: a Go parent
// SIGTERMs a Python child running `while True: conn = listener.accept()` with
// a Go client connected, and a Python parent SIGTERMs a Go child whose loop
// returns from main when Accept fails, with a Python client connected. Every
// run dies of SIGTERM and leaves no socket file, FIFO or shm: name.
func TestSignalNaturalLoopAcrossLanguages(t *testing.T) {
	const runs = 8
	t.Run("GoKillsPython", func(t *testing.T) {
		for i := range runs {
			dir := testenv.ShortDir(t)
			name := testenv.Name("sigloop")
			for _, addr := range []string{"unix:" + dir + "/u", "fifo:" + dir + "/f", "shm:" + name} {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				cmd := testenv.PythonCmd(t, procPeerScript(), "serve-loop", addr)
				stdout, _ := cmd.StdoutPipe()
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("%s: child said %q", addr, line)
				}
				c, err := bridge.Dial(ctx, addr)
				if err != nil {
					t.Fatalf("%s: %v", addr, err)
				}
				var v any
				if err := c.Send([]any{"ping", int64(i)}); err != nil || c.RecvContext(ctx, &v) != nil {
					t.Fatalf("%s: echo: %v %v", addr, v, err)
				}
				cmd.Process.Signal(syscall.SIGTERM)
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case err := <-done:
					var ee *exec.ExitError
					if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
						t.Errorf("run %d %s: %v", i, addr, err)
					}
				case <-ctx.Done():
					cmd.Process.Kill()
					<-done
					t.Fatalf("run %d %s: still running after SIGTERM", i, addr)
				}
				if err := c.RecvContext(ctx, &v); err == nil {
					t.Errorf("run %d %s: Recv after the listener died: %v", i, addr, v)
				}
				c.Close()
				cancel()
			}
			var left []string
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				left = append(left, e.Name())
			}
			ents, _ = os.ReadDir("/dev/shm")
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), name) {
					left = append(left, e.Name())
					os.Remove("/dev/shm/" + e.Name())
				}
			}
			if len(left) != 0 {
				t.Errorf("run %d: left behind: %v", i, left)
			}
		}
	})
	t.Run("PythonKillsGo", func(t *testing.T) {
		peer := buildProcPeer(t)
		dir := testenv.ShortDir(t)
		name := testenv.Name("sigloop")
		out := runPython(t, procPeerScript(), "kill-go-loop", peer, dir, name, strconv.Itoa(runs))
		var got [][]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		if len(got) != 3*runs {
			t.Fatalf("%d results: %q", len(got), out)
		}
		for _, r := range got {
			if r[1] != float64(-15) || len(r[2].([]any)) != 0 {
				t.Errorf("%v: exitcode %v, left behind %v", r[0], r[1], r[2])
			}
		}
		ents, _ := os.ReadDir("/dev/shm")
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), name) {
				os.Remove("/dev/shm/" + e.Name())
			}
		}
	})
}
