package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcessHelper is not a test: the process and signal tests re-run the
// test binary as a child with GOBRIDGE_PROC_HELPER set (go-plugin's pattern).
func TestProcessHelper(t *testing.T) {
	mode := os.Getenv("GOBRIDGE_PROC_HELPER")
	if mode == "" {
		return
	}
	os.Exit(processHelper(mode))
}

func processHelper(mode string) int {
	c, err := Parent()
	if err != nil {
		return 3
	}
	switch mode {
	case "echo": // echo until end of stream
		for {
			var v any
			if err := c.Recv(&v); err != nil {
				return 0
			}
			c.Send(v)
		}
	case "send-exit-7": // one message, then exit 7 mid-conversation
		c.Send("bye")
		return 7
	case "half-frame-exit": // half a frame, then exit 9
		c.s.Write([]byte{0, 0, 0, 100, 0x91})
		return 9
	case "sleep":
		c.Send("ready")
		time.Sleep(time.Minute)
	case "daemon-parent": // start a daemon grandchild, report its pid, exit
		cmd := exec.Command(os.Args[0], "-test.run=^TestProcessHelper$")
		cmd.Env = append(os.Environ(), "GOBRIDGE_PROC_HELPER=sleep")
		p, err := StartProcess(cmd, WithDaemon())
		if err != nil {
			return 4
		}
		var s string
		p.Conn().Recv(&s)
		c.Send(p.Pid())
		var v any
		c.Recv(&v) // exit when told
		return 0
	case "signals":
		return signalHelper(c)
	case "natural-loop":
		return naturalLoopHelper(c)
	}
	return 5
}

func startHelper(t *testing.T, mode string, opts ...ProcessOption) *Process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestProcessHelper$")
	cmd.Env = append(os.Environ(), "GOBRIDGE_PROC_HELPER="+mode)
	p, err := StartProcess(cmd, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		p.Join(context.Background())
		p.Close()
	})
	return p
}

func joinCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestProcessEcho(t *testing.T) {
	p := startHelper(t, "echo")
	if !p.IsAlive() || p.Pid() <= 0 {
		t.Fatal("not alive")
	}
	if _, exited := p.ExitCode(); exited {
		t.Fatal("exit code before exit")
	}
	c := p.Conn()
	if err := c.Send([]any{"x", int64(1)}); err != nil {
		t.Fatal(err)
	}
	var got []any
	if err := c.RecvContext(joinCtx(t), &got); err != nil || fmt.Sprint(got) != "[x 1]" {
		t.Fatalf("%v %v", got, err)
	}
	c.Close()
	if err := p.Join(joinCtx(t)); err != nil {
		t.Fatal(err)
	}
	if code, exited := p.ExitCode(); !exited || code != 0 || p.IsAlive() {
		t.Fatalf("code %d exited %v", code, exited)
	}
}

// A child that exits mid-conversation: Recv gets its last message, then
// io.EOF; Join reports the status.
func TestProcessExitsDuringExchange(t *testing.T) {
	p := startHelper(t, "send-exit-7")
	ctx := joinCtx(t)
	var s string
	if err := p.Conn().RecvContext(ctx, &s); err != nil || s != "bye" {
		t.Fatalf("%q %v", s, err)
	}
	if err := p.Conn().RecvContext(ctx, &s); !errors.Is(err, io.EOF) {
		t.Fatalf("after exit: %v", err)
	}
	var pe *ProcessExitError
	if err := p.Join(ctx); !errors.As(err, &pe) || pe.Code != 7 {
		t.Fatalf("join: %v", err)
	}
	p2 := startHelper(t, "half-frame-exit")
	if err := p2.Conn().RecvContext(ctx, &s); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("half frame: %v", err)
	}
	if err := p2.Join(ctx); !errors.As(err, &pe) || pe.Code != 9 {
		t.Fatalf("join: %v", err)
	}
}

func TestProcessTerminateKill(t *testing.T) {
	for _, tc := range []struct {
		stop func(*Process) error
		code int
	}{{(*Process).Terminate, -15}, {(*Process).Kill, -9}} {
		p := startHelper(t, "sleep", WithOneWay())
		ctx := joinCtx(t)
		var s string
		if err := p.Conn().RecvContext(ctx, &s); err != nil {
			t.Fatal(err)
		}
		if err := p.Conn().Send("x"); !errors.Is(err, ErrNotWritable) {
			t.Fatalf("one-way parent end sends: %v", err)
		}
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		if err := p.Join(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("join of a sleeper: %v", err)
		}
		cancel()
		tc.stop(p)
		var pe *ProcessExitError
		if err := p.Join(ctx); !errors.As(err, &pe) || pe.Code != tc.code {
			t.Fatalf("join: %v", err)
		}
		if code, _ := p.ExitCode(); code != tc.code {
			t.Fatalf("exit code %d, want %d", code, tc.code)
		}
		if err := p.Kill(); err != nil {
			t.Fatalf("kill after exit: %v", err)
		}
	}
}

// A daemon child dies with its parent.
func TestProcessDaemon(t *testing.T) {
	var out strings.Builder
	cmd := exec.Command(os.Args[0], "-test.run=^TestProcessHelper$")
	cmd.Env = append(os.Environ(), "GOBRIDGE_PROC_HELPER=daemon-parent")
	cmd.Stdout = &out
	p, err := StartProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := joinCtx(t)
	var pid int
	if err := p.Conn().RecvContext(ctx, &pid); err != nil {
		t.Fatal(err)
	}
	p.Conn().Send("exit")
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	for syscall.Kill(pid, 0) == nil { // a zombie until init reaps it: check its state
		st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
			break
		}
		if ctx.Err() != nil {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("the daemon child outlived its parent")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
