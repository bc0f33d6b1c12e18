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
	"strings"
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

// run runs one command line and returns the exit status: 0, 1 when the
// command failed, 2 for a usage error (printed once, to stderr), 130 when
// interrupted. Help (`gobridge help`, `CMD --help`) goes to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		usage(stderr, cmds)
		return 2
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 && args[0] == "help" { // gobridge help CMD
			if _, ok := cmds[args[1]]; ok {
				return run(ctx, []string{args[1], "--help"}, stdout, stderr)
			}
			fmt.Fprintf(stderr, "gobridge help: unknown command %q\nRun 'gobridge help' for the commands.\n", args[1])
			return 2
		}
		usage(stdout, cmds)
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gobridge: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	cs := &cmdStderr{Writer: stderr, name: args[0]}
	err := c.run(ctx, args[1:], stdout, cs)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		if cs.help != nil {
			cs.help(stdout)
		}
		return 0
	case errors.Is(err, errUsage) || cs.isFlagError(err):
		fmt.Fprintf(stderr, "gobridge %s: %v\nRun 'gobridge %s --help' for usage.\n", cs.name, err, cs.name)
		return 2
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return 130
	default:
		fmt.Fprintf(stderr, "gobridge %s: %v\n", cs.name, err)
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
	fmt.Fprintln(w, "\nRun 'gobridge COMMAND --help' (or 'gobridge help COMMAND') for a command's flags.")
}

// cmdStderr is the stderr run hands a command. Writes go to stderr; the
// FlagSets newFlags makes leave their help and their messages here instead
// of printing them, so that run prints the help to stdout, and a flag error
// once (the flag package would print it, then the command would return it).
type cmdStderr struct {
	io.Writer
	name    string          // "send", "shm gc": the last FlagSet's command
	help    func(io.Writer) // prints that FlagSet's help
	flagMsg strings.Builder // what the flag package reported
}

// isFlagError reports whether err is an error the flag package returned
// (it writes each message to the FlagSet's output before returning it).
func (cs *cmdStderr) isFlagError(err error) bool {
	return cs.flagMsg.Len() > 0 && strings.Contains(cs.flagMsg.String(), err.Error()+"\n")
}

// newFlags returns a FlagSet for a subcommand. With the stderr that run
// hands out, its --help text goes to stdout and its errors are printed once,
// by run, as usage errors.
func newFlags(name, args, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gobridge "+name, flag.ContinueOnError)
	help := func(w io.Writer) {
		fmt.Fprintf(w, "usage: %s\n\n%s\n", strings.TrimSpace("gobridge "+name+" "+args), summary)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nflags:")
			out := fs.Output()
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(out)
		}
	}
	if cs, ok := stderr.(*cmdStderr); ok {
		cs.name, cs.help = name, help
		fs.SetOutput(&cs.flagMsg)
		fs.Usage = func() {}
	} else {
		fs.SetOutput(stderr)
		fs.Usage = func() { help(stderr) }
	}
	return fs
}

// parseArgs parses fs's flags wherever they stand among args (`send ADDR
// --reply JSON`), up to a "--" after which everything is an argument (`send
// ADDR -- --reply`), and returns the other arguments in order. "-" and
// negative numbers ("-1", "-2.5e3": JSON values) are arguments, not flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
scan:
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			break scan
		case len(a) < 2 || a[0] != '-' || a[1] == '.' || (a[1] >= '0' && a[1] <= '9'):
			pos = append(pos, a)
		default:
			flags = append(flags, a)
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if f := fs.Lookup(name); f != nil && !hasValue && !isBool(f) && i+1 < len(args) {
				flags = append(flags, args[i+1]) // the flag's value, whatever it looks like
				i++
			}
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return pos, nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
