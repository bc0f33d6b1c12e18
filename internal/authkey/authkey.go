package authkey

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
)

// ErrAuthentication matches every error of a failed handshake: a wrong key, a
// malformed or oversized message, a peer that went away or stayed silent.
var ErrAuthentication = errors.New("authkey: authentication failed")

// A FrameRW sends and receives whole frames. RecvBytesMax must refuse a frame
// longer than max without reading its payload into memory.
type FrameRW interface {
	SendBytesContext(ctx context.Context, p []byte) error
	RecvBytesMax(ctx context.Context, max int64) ([]byte, error)
}

const (
	// MaxMessageSize is the limit on every message received during the
	// handshake (CPython's recv_bytes(256)).
	MaxMessageSize = 256
	// ChallengeSize is the number of random bytes in a challenge that
	// DeliverChallenge sends (CPython 3.12's MESSAGE_LENGTH).
	ChallengeSize = 40
	// LegacyChallengeSize is the size of a CPython 3.10/3.11 challenge, and of
	// the only unprefixed challenge AnswerChallenge accepts.
	LegacyChallengeSize = 20
	// LegacyDigestSize is the size of a raw HMAC-MD5 reply.
	LegacyDigestSize = 16
	// DefaultDigest is the digest DeliverChallenge asks for.
	DefaultDigest = "sha256"
)

var (
	challengeTag = []byte("#CHALLENGE#")
	welcome      = []byte("#WELCOME#")
	failure      = []byte("#FAILURE#")
)

// digests are CPython 3.12's _ALLOWED_DIGESTS.
var digests = map[string]func() hash.Hash{
	"md5":      md5.New,
	"sha256":   sha256.New,
	"sha384":   sha512.New384,
	"sha3_256": func() hash.Hash { return sha3.New256() },
	"sha3_384": func() hash.Hash { return sha3.New384() },
}

// maxDigestName is the length of the longest name in digests.
const maxDigestName = len("sha3_256")

func fail(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrAuthentication}, args...)...)
}

// ioFail wraps a transport error so that it matches ErrAuthentication too.
func ioFail(step string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrAuthentication, step, err)
}

// splitDigest is CPython's _get_digest_name_and_payload: a 16- or 20-byte
// message is legacy (name ""), anything else must start with an allowed
// "{digest}".
func splitDigest(msg []byte) (name string, payload []byte, err error) {
	if len(msg) == LegacyChallengeSize || len(msg) == LegacyDigestSize {
		return "", msg, nil
	}
	if len(msg) > 0 && msg[0] == '{' {
		end := bytes.IndexByte(msg[1:min(len(msg), maxDigestName+2)], '}')
		if end > 0 {
			name := string(msg[1 : 1+end])
			if _, ok := digests[name]; ok {
				return name, msg[end+2:], nil
			}
		}
	}
	return "", nil, fail("unsupported message length, missing digest prefix, or unsupported digest (%d bytes: %q)",
		len(msg), msg[:min(len(msg), 24)])
}

func mac(name string, key, msg []byte) []byte {
	h := hmac.New(digests[name], key)
	h.Write(msg)
	return h.Sum(nil)
}

// response is CPython's _create_response.
func response(key, msg []byte) ([]byte, error) {
	name, _, err := splitDigest(msg)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return mac("md5", key, msg), nil
	}
	return append([]byte("{"+name+"}"), mac(name, key, msg)...), nil
}

// verify is CPython's _verify_challenge.
func verify(key, msg, reply []byte) error {
	name, got, err := splitDigest(reply)
	if err != nil {
		return err
	}
	if name == "" {
		name = "md5"
	}
	want := mac(name, key, msg)
	if len(want) != len(got) {
		return fail("expected %q of length %d, got %d", name, len(want), len(got))
	}
	if subtle.ConstantTimeCompare(want, got) != 1 {
		return fail("digest received was wrong")
	}
	return nil
}

// DeliverChallenge challenges the peer to prove it holds key, in CPython 3.12's
// form, and tells it the verdict (#WELCOME# or #FAILURE#).
func DeliverChallenge(ctx context.Context, rw FrameRW, key []byte) error {
	return deliver(ctx, rw, key, DefaultDigest)
}

// deliver sends a challenge asking for digest, or a legacy 20-byte challenge
// when digest is "" (what CPython 3.10 and 3.11 send; kept for the tests).
func deliver(ctx context.Context, rw FrameRW, key []byte, digest string) error {
	var msg []byte
	if digest == "" {
		msg = make([]byte, LegacyChallengeSize)
	} else {
		msg = append([]byte("{"+digest+"}"), make([]byte, ChallengeSize)...)
	}
	rand.Read(msg[len(msg)-min(len(msg), ChallengeSize):]) // never fails (crypto/rand: Read panics instead)
	if err := rw.SendBytesContext(ctx, append(bytes.Clone(challengeTag), msg...)); err != nil {
		return ioFail("sending the challenge", err)
	}
	reply, err := rw.RecvBytesMax(ctx, MaxMessageSize)
	if err != nil {
		return ioFail("receiving the reply", err)
	}
	if err := verify(key, msg, reply); err != nil {
		if serr := rw.SendBytesContext(ctx, failure); serr != nil {
			return errors.Join(err, serr)
		}
		return err
	}
	if err := rw.SendBytesContext(ctx, welcome); err != nil {
		return ioFail("sending the welcome", err)
	}
	return nil
}

// AnswerChallenge answers the peer's challenge, in either form, and returns an
// error unless the peer welcomes the reply.
func AnswerChallenge(ctx context.Context, rw FrameRW, key []byte) error {
	msg, err := rw.RecvBytesMax(ctx, MaxMessageSize)
	if err != nil {
		return ioFail("receiving the challenge", err)
	}
	if !bytes.HasPrefix(msg, challengeTag) {
		return fail("protocol error, expected a challenge, got %q", msg[:min(len(msg), 24)])
	}
	msg = msg[len(challengeTag):]
	if len(msg) < LegacyChallengeSize {
		return fail("challenge too short: %d bytes", len(msg))
	}
	reply, err := response(key, msg)
	if err != nil {
		return err
	}
	if err := rw.SendBytesContext(ctx, reply); err != nil {
		return ioFail("sending the reply", err)
	}
	verdict, err := rw.RecvBytesMax(ctx, MaxMessageSize)
	if err != nil {
		return ioFail("receiving the verdict", err)
	}
	if !bytes.Equal(verdict, welcome) {
		return fail("digest sent was rejected")
	}
	return nil
}

// Accept runs the listener's side of the mutual handshake, in the stdlib's
// order: DeliverChallenge, then AnswerChallenge.
func Accept(ctx context.Context, rw FrameRW, key []byte) error {
	if err := DeliverChallenge(ctx, rw, key); err != nil {
		return err
	}
	return AnswerChallenge(ctx, rw, key)
}

// Connect runs the client's side of the mutual handshake: AnswerChallenge,
// then DeliverChallenge.
func Connect(ctx context.Context, rw FrameRW, key []byte) error {
	if err := AnswerChallenge(ctx, rw, key); err != nil {
		return err
	}
	return DeliverChallenge(ctx, rw, key)
}
