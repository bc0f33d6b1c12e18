// Package shmtest speaks the shm: handshake of wire/SPEC.md section 11.3 by
// hand, for tests that play a broken or hostile peer: a dialer whose request
// or memory is wrong in a chosen way, or that changes the memory after the
// listener checked it; a listener that accepts a real dialer and then
// writes garbage into the memory it was given. The rings are driven with
// internal/ring, so a well-formed Peer is also a second, independent Go
// implementation of the connection (tests of the 2^64 index wrap use it
// against Python).
//
// The layout constants are repeated here on purpose: this package checks
// the transport against the SPEC, not against itself.
package shmtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/gobridge/gobridge/internal/ring"
	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/unixsock"
	"github.com/gobridge/gobridge/wire"
	"golang.org/x/sys/unix"
)

// Layout (SPEC 11.2).
const (
	HdrSize   = 4096
	OffCap    = 16  // u64 C in the header
	Ring0     = 64  // control block of ring 0, dialer -> listener
	Ring1     = 256 // control block of ring 1, listener -> dialer
	CtlHead   = 0   // u64, in a control block
	CtlWClose = 8   // u32
	CtlTail   = 64  // u64
	CtlRClose = 72  // u32
	Version   = 2
)

// The handshake's bytes.
var (
	Magic   = []byte("GBSHMCN2")
	Request = []byte("GBSHMRQ2")
	Accept  = []byte("GBSHMOK2")
)

// AllSeals are the seals a well-formed dialer adds.
const AllSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

// A Dialer says how to build and send one request. The zero value is a
// well-formed request with 1 MiB rings.
type Dialer struct {
	Capacity uint64 // C written in the header (0: 1 MiB)
	RingCap  uint64 // C the rings are built with (0: Capacity), to lie in the header
	Size     int64  // the memfd's size (0: 4096 + 2*Capacity)
	Magic    []byte // nil: GBSHMCN2
	Version  uint32 // 0: 2
	HdrSize  uint32 // 0: 4096
	Start    uint64 // both rings' head and tail
	Seals    int    // seals to add; 0: AllSeals; -1: none
	Message  []byte // nil: GBSHMRQ2
	NoFD     bool   // send no descriptor
	FDs      []int  // send these instead of the memfd (the memfd is still made)
	ExtraFDs int    // also send this many descriptors of /dev/null
	// Prepare changes the memory before the request is sent.
	Prepare func(mem []byte)
	// Sent runs right after the request went out, before the reply is read.
	Sent func(p *Peer)
	// Raw: connect and send nothing at all (the socket is returned).
	Raw bool
}

// A Peer is one end of a connection made by hand.
type Peer struct {
	Mem     []byte
	Sock    *net.UnixConn
	Memfd   int    // kept open, so that a test can try to truncate it; -1 when none
	Reply   []byte // the listener's reply (empty: end of stream)
	In, Out *ring.Ring
	fr      *wire.Reader
	w       ring.Waiter
	dl      atomic.Int64
}

// Accepted reports whether the listener replied GBSHMOK2.
func (p *Peer) Accepted() bool { return string(p.Reply) == string(Accept) }

// Dial connects to shm:name and sends the request d describes.
func (d Dialer) Dial(ctx context.Context, name string) (*Peer, error) {
	c, err := unixsock.Dial(ctx, shmseg.Path(name))
	if err != nil {
		return nil, err
	}
	p := &Peer{Sock: c, Memfd: -1}
	if d.Raw {
		return p, nil
	}
	fail := func(err error) (*Peer, error) {
		p.Close()
		return nil, err
	}
	capacity := d.Capacity
	if capacity == 0 {
		capacity = 1 << 20
	}
	size := d.Size
	if size == 0 {
		size = HdrSize + 2*int64(capacity)
	}
	fd, err := unix.MemfdCreate("gobridge-shmtest", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fail(err)
	}
	p.Memfd = fd
	if err := unix.Ftruncate(fd, size); err != nil {
		return fail(err)
	}
	seals := d.Seals
	if seals == 0 {
		seals = AllSeals
	}
	if p.Mem, err = unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return fail(err)
	}
	ringCap := d.RingCap
	if ringCap == 0 {
		ringCap = capacity
	}
	if size >= HdrSize { // else a memory too small for a header: sent as it is
		ring.Init(p.Mem[Ring0:Ring0+ring.CtlSize], d.Start)
		ring.Init(p.Mem[Ring1:Ring1+ring.CtlSize], d.Start)
		put32(p.Mem, 8, or32(d.Version, Version))
		put32(p.Mem, 12, or32(d.HdrSize, HdrSize))
		binary.LittleEndian.PutUint64(p.Mem[OffCap:], capacity)
		put32(p.Mem, 24, uint32(os.Getpid()))
		magic := d.Magic
		if magic == nil {
			magic = Magic
		}
		copy(p.Mem, magic)
	}
	if d.Prepare != nil {
		d.Prepare(p.Mem)
	}
	if seals > 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
			return fail(err)
		}
	}
	msg := d.Message
	if msg == nil {
		msg = Request
	}
	fds := []int{fd}
	if d.FDs != nil {
		fds = d.FDs
	}
	if d.NoFD {
		fds = nil
	}
	for i := 0; i < d.ExtraFDs; i++ {
		nul, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		defer unix.Close(nul)
		fds = append(fds, nul)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.WriteMsgUnix(msg, oob, nil); err != nil {
		return fail(err)
	}
	if d.Sent != nil {
		d.Sent(p)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(dl)
	}
	reply := make([]byte, len(Accept))
	n, err := io.ReadFull(c, reply)
	c.SetReadDeadline(time.Time{})
	p.Reply = reply[:n]
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fail(err)
	}
	if p.Accepted() {
		if err := p.rings(ringCap, true); err != nil {
			return fail(err)
		}
	}
	return p, nil
}

func or32(v, def uint32) uint32 {
	if v == 0 {
		return def
	}
	return v
}

func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

// rings builds the Peer's two rings (a dialer reads ring 1, writes ring 0).
func (p *Peer) rings(capacity uint64, dialer bool) error {
	c := int(capacity)
	r0, err := ring.New(p.Mem[Ring0:Ring0+ring.CtlSize], p.Mem[HdrSize:HdrSize+c])
	if err != nil {
		return err
	}
	r1, err := ring.New(p.Mem[Ring1:Ring1+ring.CtlSize], p.Mem[HdrSize+c:HdrSize+2*c])
	if err != nil {
		return err
	}
	p.In, p.Out = r1, r0
	if !dialer {
		p.In, p.Out = r0, r1
	}
	p.w = ring.Waiter{Spin: 20 * time.Microsecond, Slice: 20 * time.Millisecond,
		Deadline: func() time.Time {
			if n := p.dl.Load(); n != 0 {
				return time.Unix(0, n)
			}
			return time.Time{}
		},
		Check:  func() error { return nil },
		Closed: func() bool { return false }}
	p.fr = wire.NewReader(peerReader{p}, 0)
	return nil
}

type peerReader struct{ p *Peer }

func (r peerReader) Read(b []byte) (int, error) { return r.p.In.Read(b, &r.p.w) }

// SetDeadline bounds the Peer's Send and Recv (zero: none).
func (p *Peer) SetDeadline(t time.Time) {
	if t.IsZero() {
		p.dl.Store(0)
	} else {
		p.dl.Store(t.UnixNano())
	}
}

// Send writes one frame.
func (p *Peer) Send(payload []byte) error {
	buf := wire.AppendHeader(nil, int64(len(payload)))
	buf = append(buf, payload...)
	_, err := p.Out.Write(buf, &p.w)
	return err
}

// Recv reads one frame.
func (p *Peer) Recv() ([]byte, error) { return p.fr.ReadFrame(nil) }

// SockClosed reports whether the other side closed (or shut down) its end
// of the control socket.
func (p *Peer) SockClosed() bool {
	rc, err := p.Sock.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_DONTWAIT|unix.MSG_PEEK)
		gone = err != unix.EAGAIN && (err != nil || n == 0)
	})
	return gone
}

// Close marks this end's rings closed (when there are rings), unmaps and
// closes everything.
func (p *Peer) Close() {
	if p.Out != nil {
		p.Out.CloseWrite()
		p.In.CloseRead()
		p.Out, p.In = nil, nil
	}
	if p.Mem != nil {
		unix.Munmap(p.Mem)
		p.Mem = nil
	}
	if p.Memfd >= 0 {
		unix.Close(p.Memfd)
		p.Memfd = -1
	}
	p.Sock.Close()
}

// A Listener is a listener that takes a real dialer's memory without
// checking it and hands it to the test.
type Listener struct {
	l    *net.UnixListener
	path string
}

// Listen binds a plain unix socket at /dev/shm/name.
func Listen(name string) (*Listener, error) {
	path := shmseg.Path(name)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false)
	return &Listener{l: l, path: path}, nil
}

// Accept takes one dialer's request and maps its memory; with reply it
// answers GBSHMOK2 (otherwise the test decides what to send).
func (l *Listener) Accept(ctx context.Context, reply bool) (*Peer, error) {
	if dl, ok := ctx.Deadline(); ok {
		l.l.SetDeadline(dl)
	}
	var (
		p       *Peer
		msg     = make([]byte, 16)
		oob     = make([]byte, unix.CmsgSpace(4*8))
		n, oobn int
		c       *net.UnixConn
		err     error
	)
	for {
		if c, err = l.l.AcceptUnix(); err != nil {
			return nil, err
		}
		p = &Peer{Sock: c, Memfd: -1}
		n, oobn, _, _, err = c.ReadMsgUnix(msg, oob)
		if n == 0 && oobn == 0 && (err == nil || errors.Is(err, io.EOF)) {
			// A liveness probe (`gobridge shm ls` or `gc` of another run on
			// this machine connects to every socket in /dev/shm and hangs
			// up): not a dialer; a real listener ignores it too.
			p.Close()
			continue
		}
		if err != nil {
			p.Close()
			return nil, err
		}
		break
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		p.Close()
		return nil, fmt.Errorf("shmtest: control data: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 || string(msg[:n]) != string(Request) {
		p.Close()
		return nil, fmt.Errorf("shmtest: request %q with %d descriptors: %v", msg[:n], len(fds), err)
	}
	p.Memfd = fds[0]
	var st unix.Stat_t
	if err := unix.Fstat(p.Memfd, &st); err != nil {
		p.Close()
		return nil, err
	}
	if p.Mem, err = unix.Mmap(p.Memfd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.rings(binary.LittleEndian.Uint64(p.Mem[OffCap:]), false); err != nil {
		p.Close()
		return nil, err
	}
	if reply {
		if _, err := c.Write(Accept); err != nil {
			p.Close()
			return nil, err
		}
		p.Reply = Accept
	}
	return p, nil
}

// Close stops listening and removes the socket file.
func (l *Listener) Close() error {
	err := l.l.Close()
	os.Remove(l.path)
	return err
}
