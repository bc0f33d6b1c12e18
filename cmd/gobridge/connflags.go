package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/wire"
	"github.com/gobridge/gobridge/wire/pickle"
)

// connFlags are the flags of the commands that listen or dial (echo, recv,
// send): the authkey handshake, the codec and, for listeners, the tcp:
// opt-out.
type connFlags struct {
	authkeyFile *string
	codec       *string
	insecureTCP *bool // nil for send
}

// maxAuthkeyFile bounds what --authkey-file reads.
const maxAuthkeyFile = 64 << 10

func addConnFlags(fs *flag.FlagSet, listens bool) *connFlags {
	f := &connFlags{
		authkeyFile: fs.String("authkey-file", "", "run multiprocessing's authkey handshake with the key in `FILE` (its bytes,\nwithout one trailing newline); the peer passes authkey= with the same bytes"),
		codec:       fs.String("codec", "msgpack", "payload encoding: msgpack (gobridge's), or pickle for an unmodified\nmultiprocessing peer (its values shown as their natural gobridge JSON)"),
	}
	if listens {
		f.insecureTCP = fs.Bool("insecure-tcp", false, "let a tcp: listener on a non-loopback address run without --authkey-file:\nanyone who can reach the port may then connect")
	}
	return f
}

// options returns the ConnOptions the flags ask for, and the codec.
func (f *connFlags) options(stderr io.Writer) ([]bridge.ConnOption, wire.Codec, error) {
	var opts []bridge.ConnOption
	var codec wire.Codec
	switch *f.codec {
	case "msgpack":
		codec = wire.Msgpack
	case "pickle":
		codec = pickle.Codec{}
	default:
		return nil, nil, fmt.Errorf("%w: --codec %q (want msgpack or pickle)", errUsage, *f.codec)
	}
	opts = append(opts, bridge.WithCodec(codec))
	if *f.authkeyFile != "" {
		key, err := readAuthkey(*f.authkeyFile, stderr)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, bridge.WithAuthkey(key))
	}
	if f.insecureTCP != nil && *f.insecureTCP {
		opts = append(opts, bridge.WithInsecureTCP())
	}
	return opts, codec, nil
}

// readAuthkey reads a key file: its bytes without one trailing "\n" (or
// "\r\n"), as `echo secret > FILE` writes it. An empty key or a file over
// 64 KiB is refused; a file others can read is used with a warning.
func readAuthkey(path string, stderr io.Writer) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--authkey-file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--authkey-file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: --authkey-file %s is not a regular file", errUsage, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, maxAuthkeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("--authkey-file: %w", err)
	}
	if len(key) > maxAuthkeyFile {
		return nil, fmt.Errorf("%w: --authkey-file %s is larger than %d bytes", errUsage, path, maxAuthkeyFile)
	}
	switch {
	case len(key) >= 2 && string(key[len(key)-2:]) == "\r\n":
		key = key[:len(key)-2]
	case len(key) >= 1 && key[len(key)-1] == '\n':
		key = key[:len(key)-1]
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: --authkey-file %s holds an empty key", errUsage, path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "warning: --authkey-file %s can be read by other users (mode %04o); chmod 600 it\n", path, st.Mode().Perm())
	}
	return key, nil
}

// toJSON is a received value as gobridge JSON: pickled ones first mapped to
// their msgpack shape (tuples and sets as arrays, bytearray as bytes).
func toJSON(codec wire.Codec, v any) ([]byte, error) {
	if _, ok := codec.(pickle.Codec); ok {
		var err error
		if v, err = pickle.Plain(v); err != nil {
			return nil, err
		}
	}
	return wire.ToJSON(v)
}

// isDecodeError reports whether a receive failed on the payload alone, so
// that the Conn goes on: the msgpack errors isPayloadError lists, and every
// pickle decode error (they all match wire.ErrDecode).
func isDecodeError(codec wire.Codec, err error) bool {
	if isPayloadError(err) {
		return true
	}
	_, isPickle := codec.(pickle.Codec)
	return isPickle && errors.Is(err, wire.ErrDecode)
}
