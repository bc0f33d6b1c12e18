package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/testenv"
)

// every command and subcommand, as typed before --help
var allCommands = [][]string{
	{"version"}, {"echo"}, {"send"}, {"recv"}, {"bench"}, {"mkfifo"},
	{"shm"}, {"shm", "ls"}, {"shm", "cat"}, {"shm", "write"}, {"shm", "rm"}, {"shm", "gc"},
	{"queue"}, {"queue", "put"}, {"queue", "get"}, {"queue", "stat"},
}

// --help: the help on stdout, nothing on stderr, status 0, and no empty
// "flags:" section.
func TestCLIHelp(t *testing.T) {
	for _, cmd := range append(allCommands, []string{"help"}, []string{"help", "send"}, []string{"--help"}) {
		args := cmd
		if cmd[0] != "help" && cmd[0] != "--help" {
			args = append(append([]string{}, cmd...), "--help")
		}
		out, errOut, code := runCLI(t, "", args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "usage:") && !strings.Contains(out, "gobridge "+cmd[0]) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
		if i := strings.Index(out, "flags:\n"); i >= 0 && !strings.HasPrefix(out[i+len("flags:\n"):], "  -") {
			t.Errorf("%v: an empty flags section:\n%s", args, out)
		}
		if strings.Contains(out, "usage: gobridge "+strings.Join(cmd, " ")+" \n") {
			t.Errorf("%v: trailing space in the usage line", args)
		}
	}
}

// An unknown flag and a missing argument are usage errors: status 2, the
// message once on stderr, nothing on stdout.
func TestCLIUsageErrors(t *testing.T) {
	for _, cmd := range allCommands {
		if len(cmd) == 1 && (cmd[0] == "shm" || cmd[0] == "queue") {
			continue // dispatchers: their flags are their subcommands'
		}
		args := append(append([]string{}, cmd...), "--no-such-flag")
		out, errOut, code := runCLI(t, "", args...)
		if code != 2 || out != "" || strings.Count(errOut, "flag provided but not defined: -no-such-flag") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{
		{}, {"nope"}, {"help", "nope"}, {"echo"}, {"recv"}, {"send"}, {"mkfifo"}, {"version", "extra"},
		{"shm"}, {"shm", "nope"}, {"shm", "cat"}, {"shm", "write"}, {"shm", "rm"}, {"shm", "ls", "x"}, {"shm", "gc", "x"},
		{"queue"}, {"queue", "put", "q"}, {"queue", "get"}, {"queue", "stat"},
		{"bench", "nosuchgroup"},
		{"recv", "--count", "-1", "unix:/nonexistent/x"},
		{"send", "unix:/nonexistent/x", "not json"},
		{"send", "--reply", "--pipe", "/nonexistent/x"},
	} {
		out, errOut, code := runCLI(t, "", args...)
		if code != 2 || out != "" || errOut == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
		withUsage := len(args) == 0 || args[0] == "nope" || len(args) == 1 && (args[0] == "shm" || args[0] == "queue")
		if lines := strings.Split(strings.TrimSpace(errOut), "\n"); !withUsage && len(lines) != 2 {
			t.Errorf("%v: the error should be one line and a hint:\n%s", args, errOut)
		}
	}
}

// echoServer serves a gobridge echo on a unix socket for the test.
func echoServer(t *testing.T) string {
	t.Helper()
	addr := "unix:" + filepath.Join(testenv.ShortDir(t), "e.sock")
	l, err := bridge.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var v any
				for c.Recv(&v) == nil {
					c.Send(v)
				}
			}()
		}
	}()
	return addr
}

// Flags may follow ADDR; after "--" everything is a value; a negative
// number is a value, not a flag.
func TestCLISendFlagsAnywhere(t *testing.T) {
	addr := echoServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"send", addr, "--reply", `{"a":1}`}, "{\"a\":1}\n"},
		{[]string{"send", "--reply", addr, `[1,2]`}, "[1,2]\n"},
		{[]string{"send", addr, `1`, "--reply", `2`}, "1\n2\n"},
		{[]string{"send", addr, "--reply", "-1", "-2.5"}, "-1\n-2.5\n"},
		{[]string{"send", addr, "--reply", "--", `"--reply"`, `"--pipe"`}, "\"--reply\"\n\"--pipe\"\n"},
	} {
		out, errOut, code := runCLI(t, "", tc.args...)
		if code != 0 || out != tc.want {
			t.Errorf("%v: exit %d, stdout %q (want %q), stderr %q", tc.args, code, out, tc.want, errOut)
		}
	}
	// "--reply" after "--" is a value: not valid JSON, refused before anything is sent.
	if out, errOut, code := runCLI(t, "", "send", addr, "--", "--reply"); code != 2 || out != "" || !strings.Contains(errOut, `"--reply" is not a gobridge JSON value`) {
		t.Errorf("send -- --reply: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
