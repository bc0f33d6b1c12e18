package bridge

import (
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/ring"
	"github.com/gobridge/gobridge/internal/vectors"
)

// TestShmConnLayoutMatchesContract: the shm: connection header (SPEC 11.2,
// 11.3) as this package writes and checks it is the one in
// interop_tests/vectors/layouts.json, which Python's constants are checked
// against too. Sizes are the widths the code reads and writes (PutUint32:
// 4, PutUint64: 8).
func TestShmConnLayoutMatchesContract(t *testing.T) {
	l := vectors.LoadLayouts(t)
	const sec = "shm_conn"
	for _, c := range []struct {
		key  string
		file string
		code string
	}{
		{"magic", l.Str(sec, "magic"), string(connMagic[:])},
		{"request", l.Str(sec, "request"), string(shmRequest[:])},
		{"accept", l.Str(sec, "accept"), string(shmAccept[:])},
	} {
		if c.file != c.code {
			t.Errorf("%s.%s: layouts.json %q, the code %q", sec, c.key, c.file, c.code)
		}
	}
	for _, c := range []struct {
		key  string
		code int64
	}{
		{"version", shmVersion},
		{"header_size", shmHdrSize},
		{"default_ring", shmDefaultRing},
		{"min_ring", shmMinRing},
		{"max_ring", shmMaxRing},
		{"handshake_seconds", int64(shmHandshake / time.Second)},
	} {
		if got := l.Int(sec, c.key); got != c.code {
			t.Errorf("%s.%s: layouts.json %d, the code %d", sec, c.key, got, c.code)
		}
	}
	l.CheckFields(sec, map[string]vectors.Field{
		"magic":        {Off: cMagic, Size: len(connMagic)},
		"version":      {Off: cVersion, Size: 4},
		"header_size":  {Off: cHdrSize, Size: 4},
		"capacity":     {Off: cCap, Size: 8},
		"dialer_pid":   {Off: cDialerPID, Size: 4},
		"listener_pid": {Off: cListenerPID, Size: 4},
		"ring0":        {Off: cRing0, Size: ring.CtlSize},
		"ring1":        {Off: cRing1, Size: ring.CtlSize},
	})
}
