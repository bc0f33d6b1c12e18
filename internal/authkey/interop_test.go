package authkey

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// interpreters returns the CPythons to test against: $GOBRIDGE_PYTHONS
// (space-separated) or pyenv's 3.10 to 3.13. 3.10 and 3.11 speak the legacy
// form, 3.12 and 3.13 the modern one.
func interpreters(t *testing.T) []string {
	t.Helper()
	var found []string
	if env := os.Getenv("GOBRIDGE_PYTHONS"); env != "" {
		found = strings.Fields(env)
	} else {
		for _, v := range []string{"3.10", "3.11", "3.12", "3.13"} {
			m, _ := filepath.Glob("/root/.pyenv/versions/" + v + ".*/bin/python" + v)
			found = append(found, m...)
		}
	}
	if len(found) == 0 {
		t.Skip("no CPython 3.10-3.13 found (set GOBRIDGE_PYTHONS)")
	}
	return found
}

// stdlibPeer runs the stdlib's handshake function role ("deliver", "answer",
// "accept": deliver then answer as Listener.accept does, "connect": answer then
// deliver as Client does) in python on the far end of a socketpair, then has it
// send one frame, to show the stream is still in step.
const stdlibPeer = `
import sys
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge, AuthenticationError
role, key = sys.argv[1], sys.argv[2].encode()
c = Connection(3)
steps = {"deliver": [deliver_challenge], "answer": [answer_challenge],
         "accept": [deliver_challenge, answer_challenge], "connect": [answer_challenge, deliver_challenge]}[role]
try:
    for step in steps:
        step(c, key)
except AuthenticationError as e:
    print("AuthenticationError:", e)
    sys.exit(0)
c.send_bytes(b"after " + sys.version.split()[0].encode())
print("ok")
`

func runPeer(t *testing.T, python, role string, pykey []byte, goSide func(context.Context, FrameRW) error) (goErr error, pyOut string) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "go"), os.NewFile(uintptr(fds[1]), "py")
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := exec.Command(python, "-c", stdlibPeer, role, string(pykey))
	cmd.ExtraFiles = []*os.File{theirs}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rw := NewStream(c)
	goErr = goSide(ctx, rw)
	if goErr == nil {
		p, err := rw.RecvBytesMax(ctx, 64)
		if err != nil || !bytes.HasPrefix(p, []byte("after ")) {
			t.Errorf("frame after the handshake: %q, %v", p, err)
		}
	}
	c.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", python, err, stderr.String())
	}
	return goErr, strings.TrimSpace(out.String())
}

func TestStdlibInterop(t *testing.T) {
	for _, py := range interpreters(t) {
		ver := filepath.Base(py)
		for _, tc := range []struct {
			role   string
			goSide func(context.Context, FrameRW, []byte) error
		}{
			{"answer", DeliverChallenge},
			{"deliver", AnswerChallenge},
			{"connect", Accept},
			{"accept", Connect},
		} {
			for _, good := range []bool{true, false} {
				name := fmt.Sprintf("%s/stdlib %s", ver, tc.role)
				pykey := key
				if !good {
					name += "/wrong key"
					pykey = []byte("not the key")
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					goErr, out := runPeer(t, py, tc.role, pykey, with(tc.goSide, key))
					if good {
						if goErr != nil || out != "ok" {
							t.Fatalf("go: %v; python: %q", goErr, out)
						}
						return
					}
					if !errors.Is(goErr, ErrAuthentication) || !strings.HasPrefix(out, "AuthenticationError") {
						t.Fatalf("go: %v; python: %q; want an authentication error on both ends", goErr, out)
					}
				})
			}
		}
	}
}
