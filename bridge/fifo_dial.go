package bridge

// The dialing side of the fifo: transport (SPEC 6.6): a private FIFO pair,
// the request that names it, and the wait for the listener to open it.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dial connects to the listener of the rendezvous FIFO at path. A FIFO with
// no listener yet is waited for until ctx ends, as opening a FIFO does.
func (fifoTransport) dial(ctx context.Context, _, path string) (transportConn, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, fmt.Errorf("bridge: dial fifo:%s: no listener: %w", path, err)
	}
	if err := checkFIFO(path, &st); err != nil {
		return nil, err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := filepath.Base(path) + "." + strconv.Itoa(os.Getpid()) + "." + hex.EncodeToString(rnd[:])
	base := filepath.Join(filepath.Dir(path), name)
	var fds []int
	cleanup := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
		os.Remove(base + fifoUp)
		os.Remove(base + fifoDown)
	}
	fail := func(err error) (transportConn, error) {
		cleanup()
		return nil, fmt.Errorf("bridge: dial fifo:%s: %w", path, err)
	}
	for _, suffix := range []string{fifoUp, fifoDown} {
		if err := unix.Mkfifo(base+suffix, 0o600); err != nil {
			return fail(err)
		}
	}
	down, err := openFIFO(base+fifoDown, unix.O_RDONLY)
	if err != nil {
		return fail(err)
	}
	fds = append(fds, down)
	if err := sendFIFORequest(ctx, path, name); err != nil {
		return fail(err)
	}
	// The listener has the request once it is read. The blocking open of .up
	// returns as soon as the listener opens it (no polling delay); a
	// listener that dies before that leaves the rendezvous FIFO without a
	// reader, one that gives up on the handshake removes the pair.
	up, err := openFIFOWait(ctx, base+fifoUp, unix.O_WRONLY, func() error {
		if !fifoHasReader(path) {
			return ErrPeerGone
		}
		var st unix.Stat_t
		if unix.Lstat(base+fifoUp, &st) == unix.ENOENT {
			return errFIFOHandshakeDropped
		}
		return nil
	})
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist) || errors.Is(err, errFIFOHandshakeDropped):
			err = errFIFOHandshakeDropped
		case errors.Is(err, ErrPeerGone):
			err = ErrPeerGone
		case ctx.Err() != nil:
			err = fmt.Errorf("the listener did not answer: %w", ctx.Err())
		}
		return fail(err)
	}
	fds = append(fds, up)
	os.Remove(base + fifoUp)
	os.Remove(base + fifoDown)
	s, err := newFIFOPairStream(down, base+fifoDown, up, base+fifoUp, path)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// errFIFOHandshakeDropped: the listener took the request but removed the
// pair before the dialer opened it (its handshake deadline passed, or it
// closed).
var errFIFOHandshakeDropped = fmt.Errorf("the listener dropped the handshake: %w", syscall.ECONNREFUSED)

// sendFIFORequest writes one frame holding name (a msgpack str) to the
// rendezvous FIFO, in one write of at most PIPE_BUF bytes: atomic, however
// many dialers write at once.
func sendFIFORequest(ctx context.Context, path, name string) error {
	frame, err := fifoRequestFrame(name)
	if err != nil {
		return err
	}
	fd, err := openFIFOWriter(ctx, path, nil)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no listener: %w", ctx.Err())
		}
		return err
	}
	defer unix.Close(fd)
	delay := 50 * time.Microsecond
	for {
		_, err := unix.Write(fd, frame)
		if err == nil {
			return nil
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return err
		}
		if err := sleepCtx(ctx, delay); err != nil { // the listener's FIFO is full
			return fmt.Errorf("the listener is not taking requests: %w", err)
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
}
