package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gobridge/gobridge/bridge/mp"
	"github.com/gobridge/gobridge/wire"
)

const queueUsage = `Put to, get from and inspect named queues (gobridge.Queue, Go mp.OpenQueue;
wire/SPEC.md section 10). Messages are gobridge JSON (SPEC section 7), one per
argument or output line.

  gobridge queue put NAME JSON... [--timeout S] [--keep [--maxsize N] [--capacity BYTES]]
        put each value; NAME must be open in some process, unless --keep, which
        creates it when missing and keeps it after this command (remove it with
        'gobridge shm rm NAME')
  gobridge queue get NAME [--timeout S] [--count N]
        take N messages (default 1) and print them; --timeout gives up after S
        seconds without a message (exit 1); without it, waits
  gobridge queue stat NAME [--timeout S]
        the queue's counters as JSON; --timeout gives up after S seconds when
        its locks stay held (a stopped process); without it, waits

A queue lives while a process has it open (or it is kept): a queue nobody holds
is gone, with its messages.`

func runQueue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: gobridge queue put|get|stat ...\n\n"+queueUsage)
		return fmt.Errorf("%w: missing subcommand", errUsage)
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, queueUsage)
		return nil
	case "put":
		return queuePut(ctx, args[1:], stderr)
	case "get":
		return queueGet(ctx, args[1:], stdout, stderr)
	case "stat":
		return queueStat(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: unknown subcommand %q (put, get, stat)", errUsage, args[0])
}

// parseInterleaved parses flags that may come after positional arguments
// ("get NAME --timeout 1"); "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func openQueueCLI(name string, keep bool, opts ...mp.OpenOption) (*mp.Queue, error) {
	if keep {
		opts = append(opts, mp.WithKeep())
	} else {
		opts = append(opts, mp.WithAttachOnly())
	}
	q, err := mp.OpenQueue(name, opts...)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no queue %q: open it in a process first (or put with --keep)", name)
	}
	return q, err
}

func withTimeout(ctx context.Context, secs float64) (context.Context, context.CancelFunc) {
	if secs < 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Duration(secs*float64(time.Second)))
}

func queuePut(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("queue put", "NAME JSON...", "Put each JSON value on queue NAME.", stderr)
	timeout := fs.Float64("timeout", -1, "seconds to wait while the queue is full (default: wait)")
	keep := fs.Bool("keep", false, "create the queue when missing and keep it")
	maxsize := fs.Int("maxsize", 0, "with --keep: maxsize of a new queue (0: no limit)")
	capacity := fs.Int("capacity", mp.DefaultCapacity, "with --keep: ring bytes of a new queue")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return fmt.Errorf("%w: need NAME and at least one JSON value", errUsage)
	}
	vals := make([]any, 0, len(pos)-1)
	for _, s := range pos[1:] {
		v, err := wire.FromJSON([]byte(s))
		if err != nil {
			return fmt.Errorf("%w: %q: %v", errUsage, s, err)
		}
		vals = append(vals, v)
	}
	q, err := openQueueCLI(pos[0], *keep, mp.WithMaxSize(*maxsize), mp.WithCapacity(*capacity))
	if err != nil {
		return err
	}
	defer q.Close()
	for _, v := range vals {
		pctx, cancel := withTimeout(ctx, *timeout)
		err := q.Put(pctx, v)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("queue %s is full", pos[0])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func queueGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("queue get", "NAME [--timeout S] [--count N]", "Take messages from queue NAME and print them as JSON lines.", stderr)
	timeout := fs.Float64("timeout", -1, "seconds to wait for each message (default: wait)")
	count := fs.Int("count", 1, "messages to take")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: need exactly one NAME", errUsage)
	}
	q, err := openQueueCLI(pos[0], false)
	if err != nil {
		return err
	}
	defer q.Close()
	for i := 0; i < *count; i++ {
		gctx, cancel := withTimeout(ctx, *timeout)
		v, err := q.Get(gctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("queue %s is empty (%d of %d taken)", pos[0], i, *count)
		}
		if err != nil {
			return err
		}
		b, err := wire.ToJSON(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(stdout, "%s\n", b); err != nil {
			return err
		}
	}
	return nil
}

func queueStat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("queue stat", "NAME [--timeout S]", "Print queue NAME's counters as JSON.", stderr)
	timeout := fs.Float64("timeout", -1, "seconds to wait for the queue's locks (default: wait)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: need exactly one NAME", errUsage)
	}
	q, err := openQueueCLI(pos[0], false)
	if err != nil {
		return err
	}
	defer q.Close()
	sctx, cancel := withTimeout(ctx, *timeout)
	defer cancel()
	st, err := q.Stat(sctx)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("queue %s: its locks stayed held for %gs (a stopped process?)", pos[0], *timeout)
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	return enc.Encode(st)
}
