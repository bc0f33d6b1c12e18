package bridge

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
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
	case SchemeFIFO, SchemeShm:
		if rest == "" {
			return bad("empty " + scheme + " address")
		}
	case SchemeTCP:
		if why := checkHostPort(rest); why != "" {
			return bad(why)
		}
	default:
		return bad("unknown scheme (want unix:, fifo:, shm: or tcp:)")
	}
	return scheme, rest, nil
}

// checkHostPort checks a tcp: address's HOST:PORT (SPEC section 4): HOST a
// name or IPv4 address of letters, digits, '.', '-' and '_' (at most 253
// bytes), or an IPv6 address in brackets; PORT decimal, 0 to 65535. It
// returns what is wrong, or "".
func checkHostPort(rest string) string {
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return "want tcp:HOST:PORT (an IPv6 address in brackets)"
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port == "" || n > 65535 {
		return "bad tcp port " + strconv.Quote(port) + " (want 0 to 65535)"
	}
	if strings.HasPrefix(rest, "[") {
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return "bad IPv6 address in brackets"
		}
		return ""
	}
	if host == "" || len(host) > 253 {
		return "bad tcp host (empty or too long)"
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return "bad tcp host " + strconv.Quote(host)
		}
	}
	return ""
}
