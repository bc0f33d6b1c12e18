package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/wire"
)

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "", "Print the gobridge version and the wire format version.", stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: version takes no arguments", errUsage)
	}
	fmt.Fprintf(stdout, "gobridge %s (wire %d)\n", bridge.Version, wire.Version)
	return nil
}

// serve listens on addr and runs handle for every connection until ctx ends
// or handle asks to stop; the listener (and its socket file) is closed on
// return, also on SIGINT/SIGTERM, which cancel ctx.
func serve(ctx context.Context, addr string, stderr io.Writer, raw bool, opts []bridge.ConnOption, handle func(ctx context.Context, c *bridge.Conn, rc net.Conn) error) error {
	l, err := bridge.Listen(addr, opts...)
	if errors.Is(err, bridge.ErrInsecureTCP) {
		return fmt.Errorf("%w: give --authkey-file FILE, or --insecure-tcp", err)
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer l.Close()
	fmt.Fprintf(stderr, "gobridge: listening on %s\n", l.Addr())
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var c *bridge.Conn
		var rc net.Conn
		if raw {
			rc, err = l.AcceptRaw(ctx)
		} else {
			c, err = l.Accept(ctx)
		}
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				if errors.Is(cause, errDone) {
					return nil
				}
				return cause
			}
			if errors.Is(err, bridge.ErrAuthentication) {
				// That client failed the handshake (a wrong key, none, too
				// slow) and is gone; serve the next one.
				fmt.Fprintf(stderr, "gobridge: refused a client: %v\n", err)
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c != nil {
				defer c.Close()
			} else {
				defer rc.Close()
			}
			stopConn := context.AfterFunc(ctx, func() {
				if c != nil {
					c.Close()
				} else {
					rc.Close()
				}
			})
			defer stopConn()
			if err := handle(ctx, c, rc); err != nil {
				cancel(err)
			}
		}()
	}
}

// errDone ends serve without an error (--count reached).
var errDone = errors.New("done")

func runEcho(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("echo", "[--raw] [--authkey-file FILE] [--codec msgpack|pickle] [--insecure-tcp] ADDR",
		"Listen on ADDR (unix:, fifo:, shm: or tcp:HOST:PORT); decode every message and\n"+
			"send it back re-encoded (so the reply shows how gobridge maps each type). With\n"+
			"--raw, echo bytes unframed.", stderr)
	raw := fs.Bool("raw", false, "echo the byte stream as it is, without frames")
	cf := addConnFlags(fs, true)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want one ADDR", errUsage)
	}
	opts, codec, err := cf.options(stderr)
	if err != nil {
		return err
	}
	if *raw && *cf.authkeyFile != "" {
		return fmt.Errorf("%w: --raw has no frames to run the authkey handshake in", errUsage)
	}
	return serve(ctx, pos[0], stderr, *raw, opts, func(ctx context.Context, c *bridge.Conn, rc net.Conn) error {
		if rc != nil {
			io.Copy(rc, rc)
			return nil
		}
		for {
			var v any
			err := c.RecvContext(ctx, &v)
			switch {
			case err == io.EOF || ctx.Err() != nil:
				return nil
			case err != nil && isDecodeError(codec, err):
				fmt.Fprintf(stderr, "gobridge echo: dropped a message: %v\n", err)
				continue
			case err != nil:
				fmt.Fprintf(stderr, "gobridge echo: connection: %v\n", err)
				return nil
			}
			if err := c.SendContext(ctx, v); err != nil {
				fmt.Fprintf(stderr, "gobridge echo: connection: %v\n", err)
				return nil
			}
		}
	})
}

func runRecv(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("recv", "[--count N] [--authkey-file FILE] [--codec msgpack|pickle] [--insecure-tcp] ADDR | --pipe PATH",
		"Listen on ADDR (unix:, fifo:, shm: or tcp:HOST:PORT) and print every message\n"+
			"as one gobridge JSON line (wire/SPEC.md section 7). Clients are served\n"+
			"concurrently. With --pipe, read the plain named pipe PATH (gobridge mkfifo;\n"+
			"writers: gobridge send --pipe, open_fifo(PATH, 'w')) until its last writer\n"+
			"closes.", stderr)
	count := fs.Int("count", 0, "exit after N messages (0: run until interrupted, or end of the pipe)")
	pipe := fs.Bool("pipe", false, "PATH is a plain named pipe to read, not an address to listen on")
	cf := addConnFlags(fs, true)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: want one ADDR", errUsage)
	}
	opts, codec, err := cf.options(stderr)
	if err != nil {
		return err
	}
	if *pipe && *cf.authkeyFile != "" {
		return fmt.Errorf("%w: a plain named pipe has no handshake: --authkey-file cannot go with --pipe", errUsage)
	}
	if *count < 0 {
		return fmt.Errorf("%w: --count %d is negative", errUsage, *count)
	}
	var mu sync.Mutex
	seen := 0
	out := bufio.NewWriter(stdout)
	// printAll prints c's messages until end of stream (nil) or --count
	// (errDone); a payload that does not decode is reported and skipped, any
	// other error (a cut or out-of-step stream) ends c and is returned.
	printAll := func(ctx context.Context, c *bridge.Conn) error {
		for {
			var v any
			err := c.RecvContext(ctx, &v)
			if err == io.EOF || ctx.Err() != nil {
				return nil
			}
			if err != nil && !isDecodeError(codec, err) {
				return err
			}
			var line []byte
			if err == nil {
				line, err = toJSON(codec, v)
			}
			if err != nil {
				fmt.Fprintf(stderr, "gobridge recv: %v\n", err)
				continue
			}
			mu.Lock()
			out.Write(line)
			out.WriteByte('\n')
			out.Flush()
			seen++
			done := *count > 0 && seen >= *count
			mu.Unlock()
			if done {
				return errDone
			}
		}
	}
	if *pipe {
		r, err := bridge.OpenFIFOReader(ctx, pos[0], bridge.WithCodec(codec))
		if err != nil {
			return err
		}
		defer r.Close()
		if err := printAll(ctx, r); err != nil && !errors.Is(err, errDone) {
			return err
		}
		return context.Cause(ctx) // nil at the end of the pipe
	}
	return serve(ctx, pos[0], stderr, false, opts, func(ctx context.Context, c *bridge.Conn, _ net.Conn) error {
		err := printAll(ctx, c)
		if err == nil || errors.Is(err, errDone) {
			return err
		}
		fmt.Fprintf(stderr, "gobridge recv: %v\n", err)
		return nil // one client's broken stream ends that client, not the server
	})
}

// isPayloadError reports whether a receive failed on the payload alone
// (it does not decode), which leaves the Conn readable for the next message.
func isPayloadError(err error) bool {
	for _, e := range []error{bridge.ErrMalformed, bridge.ErrTooDeep, bridge.ErrInvalidUTF8, bridge.ErrUnknownExtension, bridge.ErrUnsupportedKey} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("send", "[--reply] [--authkey-file FILE] [--codec msgpack|pickle] ADDR [JSON...] | --pipe PATH [JSON...]",
		"Connect to ADDR (unix:, fifo:, shm: or tcp:HOST:PORT) and send each JSON value\n"+
			"(gobridge JSON, wire/SPEC.md section 7) as one message: the arguments, or one\n"+
			"value per line of standard input. With --pipe, write them to the plain named\n"+
			"pipe PATH (waiting for its reader). Flags may come anywhere before \"--\"; after\n"+
			"it every argument is a value (send ADDR -- '\"--reply\"' sends that string).", stderr)
	reply := fs.Bool("reply", false, "after each message, wait for one reply and print it as a JSON line")
	pipe := fs.Bool("pipe", false, "PATH is a plain named pipe to write, not an address to connect to")
	cf := addConnFlags(fs, false)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	opts, codec, err := cf.options(stderr)
	if err != nil {
		return err
	}
	if *pipe && *cf.authkeyFile != "" {
		return fmt.Errorf("%w: a plain named pipe has no handshake: --authkey-file cannot go with --pipe", errUsage)
	}
	if len(pos) < 1 {
		return fmt.Errorf("%w: want ADDR", errUsage)
	}
	if *pipe && *reply {
		return fmt.Errorf("%w: a named pipe is one-way: --reply cannot go with --pipe", errUsage)
	}
	// Values given as arguments are checked before anything is sent.
	vals := make([]any, 0, len(pos)-1)
	for _, a := range pos[1:] {
		v, err := wire.FromJSON([]byte(a))
		if err != nil {
			return fmt.Errorf("%w: %q is not a gobridge JSON value (%v); a string is written with its quotes", errUsage, a, err)
		}
		vals = append(vals, v)
	}
	var c *bridge.Conn
	if *pipe {
		c, err = bridge.OpenFIFOWriter(ctx, pos[0], bridge.WithCodec(codec))
	} else {
		c, err = bridge.Dial(ctx, pos[0], opts...)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	sendOne := func(v any) error {
		if err := c.SendContext(ctx, v); err != nil {
			return err
		}
		if !*reply {
			return nil
		}
		var r any
		if err := c.RecvContext(ctx, &r); err != nil {
			return fmt.Errorf("waiting for a reply: %w", err)
		}
		line, err := toJSON(codec, r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", line)
		return err
	}
	if len(vals) > 0 {
		for _, v := range vals {
			if err := sendOne(v); err != nil {
				return err
			}
		}
		return nil
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), int(wire.DefaultMaxFrameSize))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		v, err := wire.FromJSON(sc.Bytes())
		if err != nil {
			return err
		}
		if err := sendOne(v); err != nil {
			return err
		}
	}
	return sc.Err()
}
