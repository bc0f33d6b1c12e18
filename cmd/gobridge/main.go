// Command gobridge talks to gobridge endpoints from the shell: it echoes,
// sends and receives msgpack messages as JSON lines, inspects shared memory
// and measures every transport next to Python's own multiprocessing.
//
// Run `gobridge help` for the commands and `gobridge CMD --help` for one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. run gets the arguments after the command name.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is the table of subcommands. Each lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"version": {"print the gobridge version and wire version", runVersion},
		"echo":    {"listen on ADDR and send every message back", runEcho},
		"send":    {"send JSON values to ADDR as messages", runSend},
		"recv":    {"listen on ADDR and print each message as a JSON line", runRecv},
		"bench":   {"measure transports next to Python's multiprocessing", runBench},
		"shm":     {"inspect and manage shared-memory segments", runShm},
		"queue":   {"put to, get from and inspect named queues", runQueue},
		"mkfifo":  {"create named pipes (mode 0600) for fifo: addresses", runMkfifo},
	}
}

// errUsage marks an error the user fixes by changing the command line (exit 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gobridge: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "gobridge %s: %v\n", args[0], err)
		return 2
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return 130
	default:
		fmt.Fprintf(stderr, "gobridge %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: gobridge COMMAND [flags] [args]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'gobridge COMMAND --help' for a command's flags.")
}

// newFlags returns a FlagSet for a subcommand whose --help prints usage text.
func newFlags(name, args, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gobridge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gobridge %s %s\n\n%s\n\nflags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs
}
