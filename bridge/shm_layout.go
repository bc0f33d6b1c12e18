package bridge

// The shm: transport (wire/SPEC.md section 11): a listener is a unix socket
// at /dev/shm/NAME; a dialer connects, creates the connection's memory as a
// sealed memfd (two single-producer single-consumer byte rings, internal/ring)
// and passes it over the socket, which then stays open as the connection's
// control channel: its end of stream tells each side that the other is gone.
// The rings form a byte stream, so Conn's framing, deadlines, contexts and
// Poll run on it unchanged.
//
// This file is the connection memory's layout (SPEC 11.2): its constants,
// its creation by the dialer and its validation by the listener;
// shm_stream.go is the byte stream over the rings, shm_listen.go and
// shm_dial.go the two sides of the handshake (11.3).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/gobridge/gobridge/internal/ring"
	"github.com/gobridge/gobridge/internal/shmseg"
	"golang.org/x/sys/unix"
)

// Layout (SPEC 11.2) and handshake (11.3). All integers little-endian
// (native on amd64 and arm64); futex words and indices naturally aligned.
const (
	shmHdrSize     = 4096
	shmVersion     = 2
	shmDefaultRing = 1 << 20 // bytes per direction
	shmMinRing     = 4096
	shmMaxRing     = 1 << 30

	// connection header
	cMagic       = 0  // [8]byte "GBSHMCN2"
	cVersion     = 8  // u32
	cHdrSize     = 12 // u32, offset of the first data area
	cCap         = 16 // u64, bytes per ring (power of two)
	cDialerPID   = 24 // u32 (informational)
	cListenerPID = 28 // u32 (informational)
	cRing0       = 64 // control block, dialer -> listener
	cRing1       = 256

	maxShmTag = shmseg.MaxNameLen - 21 // the v1 limit, kept
)

var (
	connMagic  = [8]byte{'G', 'B', 'S', 'H', 'M', 'C', 'N', '2'}
	shmRequest = [8]byte{'G', 'B', 'S', 'H', 'M', 'R', 'Q', '2'} // dialer -> listener, with the memfd
	shmAccept  = [8]byte{'G', 'B', 'S', 'H', 'M', 'O', 'K', '2'} // listener -> dialer
)

// openRings builds the two rings over a connection's memory of capacity
// bytes per ring (validated by the caller).
func openRings(mem []byte, capacity int) (r0, r1 *ring.Ring, err error) {
	r0, err = ring.New(mem[cRing0:cRing0+ring.CtlSize], mem[shmHdrSize:shmHdrSize+capacity])
	if err != nil {
		return nil, nil, err
	}
	r1, err = ring.New(mem[cRing1:cRing1+ring.CtlSize], mem[shmHdrSize+capacity:shmHdrSize+2*capacity])
	if err != nil {
		return nil, nil, err
	}
	return r0, r1, nil
}

func checkShmName(name string) error {
	if err := shmseg.ValidateName(name); err != nil {
		return fmt.Errorf("%w %q: %w", ErrBadAddress, SchemeShm+":"+name, err)
	}
	if len(name) > maxShmTag {
		return fmt.Errorf("%w %q: an shm: name has at most %d bytes", ErrBadAddress, SchemeShm+":"+name, maxShmTag)
	}
	return nil
}

// mapConnMemory validates a dialer's memfd and maps it (SPEC 11.3): a
// regular file on tmpfs (shmem; not hugetlbfs, whose exhausted pool would
// fault), owned by us, sealed against shrinking and growing, whose size and
// header agree. The seals are checked before the size, so that the size
// cannot change after it is read; every header field is read once.
func mapConnMemory(fd int) ([]byte, int, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, refuse("fstat: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, 0, refuse("not a regular file (mode %#o)", st.Mode)
	}
	if st.Uid != uint32(os.Geteuid()) {
		return nil, 0, refuse("owned by uid %d, not %d", st.Uid, os.Geteuid())
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		return nil, 0, refuse("not a memfd on tmpfs (file system %#x, %v)", fs.Type, err)
	}
	const need = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil || seals&need != need {
		return nil, 0, refuse("not sealed against shrinking and growing (seals %#x, %v)", seals, err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, refuse("fstat: %v", err)
	}
	size := st.Size
	if size < shmHdrSize+2*shmMinRing || size > shmHdrSize+2*shmMaxRing {
		return nil, 0, refuse("size %d out of range", size)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, 0, refuse("mmap: %v", err)
	}
	magic := [8]byte(mem[cMagic : cMagic+8])
	version := binary.LittleEndian.Uint32(mem[cVersion:])
	hdr := binary.LittleEndian.Uint32(mem[cHdrSize:])
	capacity := binary.LittleEndian.Uint64(mem[cCap:])
	var bad error
	switch {
	case magic != connMagic:
		bad = refuse("magic %q, want %q", magic[:], connMagic[:])
	case version != shmVersion:
		bad = refuse("layout version %d, want %d", version, shmVersion)
	case hdr != shmHdrSize:
		bad = refuse("header size %d, want %d", hdr, shmHdrSize)
	case capacity < shmMinRing || capacity > shmMaxRing || capacity&(capacity-1) != 0:
		bad = refuse("ring size %d is not a power of two in [%d, %d]", capacity, shmMinRing, shmMaxRing)
	case uint64(size) != shmHdrSize+2*capacity:
		bad = refuse("size %d, want %d for rings of %d bytes", size, shmHdrSize+2*capacity, capacity)
	}
	if bad != nil {
		unix.Munmap(mem)
		return nil, 0, bad
	}
	return mem, int(capacity), nil
}

// createConnMemory makes a connection's memory (SPEC 11.3): a memfd of
// 4096 + 2*capacity bytes, mode 0600, sealed so that neither side can
// change its size, mapped, pre-faulted and initialized (magic last).
func createConnMemory(name string, capacity, start uint64) (int, []byte, error) {
	const flags = unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	label := "gobridge-shm:" + name
	fd, err := unix.MemfdCreate(label, flags|unix.MFD_NOEXEC_SEAL)
	if errors.Is(err, unix.EINVAL) { // before Linux 6.3
		fd, err = unix.MemfdCreate(label, flags)
	}
	if err != nil {
		return -1, nil, os.NewSyscallError("memfd_create", err)
	}
	size := shmHdrSize + 2*int(capacity)
	fail := func(op string, err error) (int, []byte, error) {
		unix.Close(fd)
		return -1, nil, os.NewSyscallError(op, err)
	}
	if err := unix.Fchmod(fd, 0o600); err != nil {
		return fail("fchmod", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return fail("ftruncate", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return fail("fcntl F_ADD_SEALS", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	shmseg.Populate(mem, true) // best effort: it only saves page faults
	ring.Init(mem[cRing0:cRing0+ring.CtlSize], start)
	ring.Init(mem[cRing1:cRing1+ring.CtlSize], start)
	binary.LittleEndian.PutUint32(mem[cVersion:], shmVersion)
	binary.LittleEndian.PutUint32(mem[cHdrSize:], shmHdrSize)
	binary.LittleEndian.PutUint64(mem[cCap:], capacity)
	binary.LittleEndian.PutUint32(mem[cDialerPID:], uint32(os.Getpid()))
	copy(mem[cMagic:], connMagic[:])
	return fd, mem, nil
}
