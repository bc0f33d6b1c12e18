package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"syscall"
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
	out, _, _ := runCLI(t, "", "shm", "ls", "--prefix", testenv.Prefix())
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

// shm gc says what it did: "would remove" with --dry-run, "removed" without.
func TestCLIShmGCSaysWhatItDid(t *testing.T) {
	tag := testenv.Tag(t)
	cmd := testenv.PythonCmd(t, "-c", "import sys, time\nfrom gobridge import mmap\n"+
		"m = mmap.mmap(-1, 4096, tagname=sys.argv[1]); print('ready', flush=True)\ntime.sleep(60)\n", tag)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("holder: %q %v", line, err)
	}
	cmd.Process.Signal(syscall.SIGKILL) // no cleanup: the segment stays, unheld
	cmd.Wait()
	// Another prefix (another application's names, another test run's) is not touched.
	if out, _, code := runCLI(t, "", "shm", "gc", "--prefix", tag+"-not"); code != 0 || strings.Contains(out, tag) {
		t.Fatalf("gc --prefix %s-not: exit %d, removed %q", tag, code, out)
	}
	if out, _, _ := runCLI(t, "", "shm", "ls", "--prefix", tag+"-not"); strings.Contains(out, tag) {
		t.Fatalf("ls --prefix %s-not lists it:\n%s", tag, out)
	}
	out, errOut, code := runCLI(t, "", "shm", "gc", "--dry-run", "--prefix", testenv.Prefix())
	if code != 0 || !strings.Contains(out, "would remove "+tag+"\n") {
		t.Fatalf("gc --dry-run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat("/dev/shm/" + tag); err != nil {
		t.Fatalf("--dry-run removed it: %v", err)
	}
	out, errOut, code = runCLI(t, "", "shm", "gc", "--prefix", testenv.Prefix())
	if code != 0 || !strings.Contains(out, "removed "+tag+"\n") {
		t.Fatalf("gc: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat("/dev/shm/" + tag); err == nil {
		t.Fatal("gc left it")
	}
}

// TestShmLsGCSockets: unix sockets in /dev/shm (shm: listeners) are listed
// with kind socket; gc removes a stale one (its listener died without
// removing it) and leaves a live one alone.
func TestShmLsGCSockets(t *testing.T) {
	stale, live := testenv.Name("gcs"), testenv.Name("gcl")
	t.Cleanup(func() { os.Remove("/dev/shm/" + stale); os.Remove("/dev/shm/" + live) })
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "/dev/shm/" + stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close() // the file stays, nobody listens: stale
	ll, err := net.ListenUnix("unix", &net.UnixAddr{Name: "/dev/shm/" + live, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	go func() { // accept (and drop) the probes
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	out, _, code := runCLI(t, "", "shm", "ls", "--json", "--prefix", testenv.Prefix())
	var entries []shmEntry
	if err := json.Unmarshal([]byte(out), &entries); code != 0 || err != nil {
		t.Fatalf("ls --json: %d %v\n%s", code, err, out)
	}
	seen := map[string]shmEntry{}
	for _, e := range entries {
		seen[e.Tag] = e
	}
	if e := seen[stale]; e.Kind != "socket" || e.Handles != 0 {
		t.Fatalf("stale socket listed as %+v", e)
	}
	if e := seen[live]; e.Kind != "socket" || e.Handles != 1 {
		t.Fatalf("live socket listed as %+v", e)
	}
	if out, _, _ := runCLI(t, "", "shm", "gc", "--dry-run", "--prefix", testenv.Prefix()); !strings.Contains(out, stale) || strings.Contains(out, live) {
		t.Fatalf("gc --dry-run:\n%s", out)
	}
	if _, err := os.Lstat("/dev/shm/" + stale); err != nil {
		t.Fatal("--dry-run removed the stale socket")
	}
	if out, _, _ := runCLI(t, "", "shm", "gc", "--prefix", testenv.Prefix()); !strings.Contains(out, stale) || strings.Contains(out, live) {
		t.Fatalf("gc:\n%s", out)
	}
	if _, err := os.Lstat("/dev/shm/" + stale); !os.IsNotExist(err) {
		t.Fatalf("stale socket still there: %v", err)
	}
	if _, err := os.Lstat("/dev/shm/" + live); err != nil {
		t.Fatalf("gc removed the live socket: %v", err)
	}
}
