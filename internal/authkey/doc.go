// Package authkey implements the authkey handshake of CPython's
// multiprocessing.connection (deliver_challenge and answer_challenge), byte
// for byte, over any FrameRW: something that sends one frame and receives one
// frame of at most a given size. bridge.Conn will satisfy FrameRW; Stream
// puts it on a net.Conn with gobridge's framing (wire/SPEC.md section 2) for
// the moment before a connection exists.
//
// Two forms exist. CPython 3.12 and later challenge with
// b"#CHALLENGE#{sha256}" + 40 random bytes and expect b"{sha256}" + the
// HMAC-SHA256, keyed by the authkey, of the whole message after
// "#CHALLENGE#" (the "{sha256}" prefix included, so that a man in the middle
// cannot rewrite it into a weaker digest). CPython 3.10 and 3.11 challenge with
// b"#CHALLENGE#" + 20 random bytes and expect the raw 16-byte HMAC-MD5. The
// challenger answers b"#WELCOME#" or b"#FAILURE#".
//
// DeliverChallenge always sends the 3.12 form, as CPython 3.12 does. A 3.10 or
// 3.11 client still answers it: it strips "#CHALLENGE#" and returns the raw
// HMAC-MD5 of the rest, "{sha256}" included, and DeliverChallenge accepts an
// unprefixed 16-byte reply as HMAC-MD5 over that same message, exactly as
// CPython 3.12's _verify_challenge does. It accepts a prefixed reply in any
// digest CPython allows (md5, sha256, sha384, sha3_256, sha3_384), again as
// CPython does; the MAC always covers the message as sent.
//
// AnswerChallenge answers both forms: a 20-byte challenge is legacy (raw
// HMAC-MD5 reply), anything else must carry a "{digest}" prefix naming an
// allowed digest, and challenges shorter than 20 bytes are refused.
//
// Every handshake message is received with a limit of MaxMessageSize (256)
// bytes, MACs are compared with crypto/subtle.ConstantTimeCompare, the
// challenge comes from crypto/rand, and the whole exchange is bounded by the
// context given (Stream turns its deadline and cancellation into socket
// deadlines), so a silent peer cannot hold an accept loop.
//
// Every failure matches ErrAuthentication with errors.Is, whatever its cause:
// the connection is not authenticated and should be closed. The cause stays
// matchable too (io.EOF, os.ErrDeadlineExceeded, context.DeadlineExceeded,
// wire.ErrFrameTooLarge, ...).
//
// A multiprocessing Listener runs DeliverChallenge then AnswerChallenge on each
// accepted connection, and a Client runs them in the other order; Accept and
// Connect do the same.
package authkey
