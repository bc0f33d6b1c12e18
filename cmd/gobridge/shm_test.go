package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/gobridge/gobridge/internal/testenv"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	if stdin != "" || (len(args) > 1 && args[1] == "write") {
		// shm write reads os.Stdin; feed it through a pipe.
		r, w, _ := os.Pipe()
		w.WriteString(stdin)
		w.Close()
		old := os.Stdin
		os.Stdin = r
		defer func() { os.Stdin = old; r.Close() }()
	}
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestShmCLI(t *testing.T) {
	tag := testenv.Name("cli")
	t.Cleanup(func() { os.Remove("/dev/shm/" + tag) })
	if _, e, c := runCLI(t, "hello world", "shm", "write", tag); c != 0 {
		t.Fatalf("write: %d %s", c, e)
	}
	out, _, _ := runCLI(t, "", "shm", "ls")
	if !strings.Contains(out, tag) || !strings.Contains(out, "keep") || !strings.Contains(out, "0600") {
		t.Fatalf("ls:\n%s", out)
	}
	if out, _, _ := runCLI(t, "", "shm", "cat", tag, "--offset", "6", "--length", "3"); out != "wor" {
		t.Fatalf("cat: %q", out)
	}
	if _, _, c := runCLI(t, "HELLO", "shm", "write", tag); c != 0 {
		t.Fatal("overwrite failed")
	}
	if out, _, _ := runCLI(t, "", "shm", "cat", tag); out != "HELLO world" {
		t.Fatalf("cat after write: %q", out)
	}
	if _, e, c := runCLI(t, "this is far too long", "shm", "write", tag); c != 1 || !strings.Contains(e, "does not fit") {
		t.Fatalf("long write: %d %s", c, e)
	}
	if _, _, c := runCLI(t, "", "shm", "rm", tag); c != 0 {
		t.Fatal("rm failed")
	}
	if _, e, c := runCLI(t, "", "shm", "cat", tag); c != 1 || !strings.Contains(e, "does not exist") {
		t.Fatalf("cat removed: %d %s", c, e)
	}
	if _, _, c := runCLI(t, "", "shm", "cat", "a/b"); c != 1 {
		t.Fatal("bad name accepted")
	}
	if _, _, c := runCLI(t, "", "shm", "nope"); c != 2 {
		t.Fatal("unknown subcommand not a usage error")
	}
}
