// Command procpeer is the Go child of the process, FIFO and signal interop
// tests: Python parents start it with gobridge.Process.
//
//	procpeer fun1 [SECONDS]   seed 003's fun1: sleep, then send "msg" on the parent's connection
//	procpeer fun2             seed 003's fun2: receive one message and print it
//	procpeer misuse           send on the handed-down end; print the error
//	procpeer signals DIR TAG  report SIGUSR1/SIGUSR2 on the connection; listen on
//	                          DIR/s.sock and fifo DIR/f and map the tagged segment
//	                          TAG, all closed (and removed) on SIGTERM/SIGINT
//	procpeer serve-loop ADDR  listen on ADDR (registered with CloseOnShutdown), say
//	                          "ready", then the natural loop: return (exit 0) when
//	                          Accept fails, echo each connection in a goroutine
//	procpeer crash            send "hello", then half a frame, then exit 3
//	procpeer hang             send "hello", then sleep (to be killed)
//	procpeer pickle-fun2      seed 003's fun2 for a stdlib parent: receive one pickled
//	                          message, print it, send back {"got": it, "from": "go"}
//	procpeer fifo-write PATH N SIZE TAG
//	                          write N frames of SIZE bytes, each filled with byte TAG+i
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/bridge/shm"
	"github.com/gobridge/gobridge/wire"
	"github.com/gobridge/gobridge/wire/pickle"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "procpeer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: procpeer MODE ARGS")
	}
	if args[0] == "fifo-write" {
		n, _ := strconv.Atoi(args[2])
		size, _ := strconv.Atoi(args[3])
		tag, _ := strconv.Atoi(args[4])
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		w, err := bridge.OpenFIFOWriter(ctx, args[1])
		if err != nil {
			return err
		}
		defer w.Close()
		for i := range n {
			if err := w.SendBytesContext(ctx, bytes.Repeat([]byte{byte(tag + i)}, size)); err != nil {
				return err
			}
		}
		return nil
	}
	if args[0] == "crash" { // the raw descriptor, to die inside a frame
		fd, err := strconv.Atoi(os.Getenv("GOBRIDGE_FD"))
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), "parent")
		hello, _ := wire.Marshal("hello")
		wire.WriteFrame(f, hello, 0)
		f.Write([]byte{0, 0, 0, 100, 0x91}) // a 100-byte frame, 1 byte of it
		os.Exit(3)
	}
	if args[0] == "pickle-fun2" { // the end of a stdlib multiprocessing.Pipe(): pickles
		c, err := bridge.Parent(bridge.WithCodec(pickle.Codec{}))
		if err != nil {
			return err
		}
		defer c.Close()
		var v any
		if err := c.Recv(&v); err != nil {
			return err
		}
		fmt.Println(v)
		return c.Send(map[string]any{"got": v, "from": "go"})
	}
	c, err := bridge.Parent()
	if err != nil {
		return err
	}
	defer c.Close()
	switch args[0] {
	case "hang":
		c.Send("hello")
		time.Sleep(time.Hour)
		return nil
	case "fun1":
		d := 2.0
		if len(args) > 1 {
			d, _ = strconv.ParseFloat(args[1], 64)
		}
		time.Sleep(time.Duration(d * float64(time.Second)))
		return c.Send("msg")
	case "fun2":
		var v any
		if err := c.Recv(&v); err != nil {
			return err
		}
		fmt.Println(v)
		return nil
	case "misuse":
		fmt.Println(c.Send("x"))
		return nil
	case "serve-loop":
		s := bridge.NewSignals()
		l, err := bridge.Listen(args[1])
		if err != nil {
			return err
		}
		s.CloseOnShutdown(l)
		c.Send("ready")
		for {
			conn, err := l.Accept(context.Background())
			if err != nil {
				return nil // what a program does; SIGTERM must still be how it ends
			}
			go func() {
				var v any
				for conn.Recv(&v) == nil {
					conn.Send(v)
				}
			}()
		}
	case "signals":
		s := bridge.NewSignals()
		s.Handle(syscall.SIGUSR1, func(os.Signal) { c.Send("usr1") })
		s.Handle(syscall.SIGUSR2, func(os.Signal) { c.Send("usr2") })
		for _, a := range []string{"unix:" + filepath.Join(args[1], "s.sock"), "fifo:" + filepath.Join(args[1], "f")} {
			l, err := bridge.Listen(a)
			if err != nil {
				return err
			}
			s.CloseOnShutdown(l)
		}
		m, err := shm.Open(args[2], 4096, shm.AccessWrite)
		if err != nil {
			return err
		}
		s.CloseOnShutdown(m)
		c.Send("ready")
		time.Sleep(time.Hour) // until a signal; not select{}, which the runtime calls a deadlock
	}
	return fmt.Errorf("unknown mode %q", args[0])
}
