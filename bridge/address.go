package bridge

import (
	"fmt"
	"strings"
)

// Address schemes (SPEC section 4).
const (
	SchemeUnix = "unix"
	SchemeFIFO = "fifo"
	SchemeShm  = "shm"
	SchemeTCP  = "tcp"
)

const maxUnixPath = 107 // sizeof(sun_path) - 1

// ParseAddress splits an address into its scheme and the rest. A bare path
// ("/run/x.sock", "./x.sock") is a unix address, as in multiprocessing.
func ParseAddress(addr string) (scheme, rest string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("%w %q: %s", ErrBadAddress, addr, why)
	}
	if strings.IndexByte(addr, 0) >= 0 {
		return bad("contains NUL")
	}
	scheme, rest, ok := strings.Cut(addr, ":")
	if !ok || strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, ".") {
		scheme, rest = SchemeUnix, addr
	}
	switch scheme {
	case SchemeUnix:
		switch {
		case rest == "":
			return bad("empty path")
		case strings.HasPrefix(rest, "@"):
			return bad("abstract sockets are not supported")
		case len(rest) > maxUnixPath:
			return bad(fmt.Sprintf("path longer than %d bytes", maxUnixPath))
		}
	case SchemeFIFO, SchemeShm, SchemeTCP:
		if rest == "" {
			return bad("empty " + scheme + " address")
		}
	default:
		return bad("unknown scheme (want unix:, fifo:, shm: or tcp:)")
	}
	return scheme, rest, nil
}
