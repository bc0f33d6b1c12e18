"""The authkey handshake of multiprocessing.connection, on 3.10 to 3.13 alike.

``deliver_challenge`` and ``answer_challenge`` are byte-compatible with
CPython's functions of the same names: they challenge in CPython 3.12's form
(``#CHALLENGE#{sha256}`` + 40 random bytes, reply ``{sha256}`` + HMAC over the
whole message) whichever interpreter runs them, and accept what 3.12 accepts,
including the raw 16-byte HMAC-MD5 that a 3.10 or 3.11 peer sends, and answer
a legacy 20-byte challenge with raw HMAC-MD5. Messages are received with a
limit of 256 bytes, MACs compared with :func:`hmac.compare_digest`.

They need only ``send_bytes(data)`` and ``recv_bytes(maxlength)`` of the
connection (and ``poll(timeout)`` when a ``timeout`` is given), so a stdlib
Connection and a gobridge one both work. A wrong key or a malformed message
raises :class:`multiprocessing.AuthenticationError`; a message over the limit
raises what the connection's ``recv_bytes`` raises (``OSError``, as in the
stdlib). ``timeout`` bounds the whole handshake against a peer that stays
silent (checked with ``poll`` before each message; a peer that sends part of a
frame and stalls is for the connection's own deadline to stop). This module
imports only the standard library; wire/SPEC.md section 14 describes the
exchange.
"""

from __future__ import annotations

import hmac
import os
import time
from multiprocessing import AuthenticationError
from typing import Optional, Protocol, Tuple

__all__ = [
    "deliver_challenge",
    "answer_challenge",
    "accept_handshake",
    "client_handshake",
    "AuthenticationError",
    "MESSAGE_LENGTH",
    "MAX_MESSAGE_SIZE",
]

MESSAGE_LENGTH = 40  # random bytes in a challenge we send (3.12's MESSAGE_LENGTH)
MAX_MESSAGE_SIZE = 256  # limit on every handshake message received

_CHALLENGE = b"#CHALLENGE#"
_WELCOME = b"#WELCOME#"
_FAILURE = b"#FAILURE#"
_ALLOWED_DIGESTS = frozenset({b"md5", b"sha256", b"sha384", b"sha3_256", b"sha3_384"})
_MAX_DIGEST_LEN = max(len(d) for d in _ALLOWED_DIGESTS)
_MD5ONLY_MESSAGE_LENGTH = 20  # what 3.10/3.11 send as a challenge
_MD5_DIGEST_LEN = 16  # a raw HMAC-MD5 reply
_LEGACY_LENGTHS = (_MD5ONLY_MESSAGE_LENGTH, _MD5_DIGEST_LEN)


class _FrameConnection(Protocol):
    def send_bytes(self, buf: bytes) -> None: ...

    def recv_bytes(self, maxlength: Optional[int] = None) -> bytes: ...

    def poll(self, timeout: Optional[float] = 0.0) -> bool: ...


class _Deadline:
    def __init__(self, timeout: Optional[float]) -> None:
        self.end = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout

    def recv(self, connection: _FrameConnection) -> bytes:
        if self.end is not None and not connection.poll(max(0.0, self.end - time.monotonic())):
            raise AuthenticationError(f"handshake timed out after {self.timeout}s: the peer sent nothing")
        return connection.recv_bytes(MAX_MESSAGE_SIZE)


def _check_key(authkey: object) -> bytes:
    if not isinstance(authkey, bytes):
        raise ValueError(f"Authkey must be bytes, not {type(authkey)!s}")
    return authkey


def _get_digest_name_and_payload(message: bytes) -> Tuple[str, bytes]:
    """("", message) for a legacy 16- or 20-byte message, else the name of the
    "{digest}" prefix and what follows it."""
    if len(message) in _LEGACY_LENGTHS:
        return "", message
    if message.startswith(b"{"):
        curly = message.find(b"}", 1, _MAX_DIGEST_LEN + 2)
        if curly > 0:
            digest = message[1:curly]
            if digest in _ALLOWED_DIGESTS:
                return digest.decode("ascii"), message[curly + 1 :]
    raise AuthenticationError(
        f"unsupported message length, missing digest prefix, or unsupported digest: {message[:24]!r}"
    )


def _create_response(authkey: bytes, message: bytes) -> bytes:
    digest_name = _get_digest_name_and_payload(message)[0]
    if not digest_name:
        return hmac.new(authkey, message, "md5").digest()
    mac = hmac.new(authkey, message, digest_name).digest()
    return b"{%s}%s" % (digest_name.encode("ascii"), mac)


def _verify_challenge(authkey: bytes, message: bytes, response: bytes) -> None:
    digest_name, mac = _get_digest_name_and_payload(response)
    digest_name = digest_name or "md5"
    try:
        expected = hmac.new(authkey, message, digest_name).digest()
    except ValueError:  # a digest this OpenSSL lacks (FIPS mode and md5)
        raise AuthenticationError(f"digest {digest_name!r} unsupported") from None
    if len(expected) != len(mac):
        raise AuthenticationError(f"expected {digest_name!r} of length {len(expected)} got {len(mac)}")
    if not hmac.compare_digest(expected, mac):
        raise AuthenticationError("digest received was wrong")


def deliver_challenge(
    connection: _FrameConnection, authkey: bytes, digest_name: str = "sha256", *, timeout: Optional[float] = None
) -> None:
    """Challenge the peer to prove it holds ``authkey``; tell it the verdict."""
    _deliver(connection, authkey, digest_name, _Deadline(timeout))


def _deliver(connection: _FrameConnection, authkey: bytes, digest_name: str, deadline: _Deadline) -> None:
    _check_key(authkey)
    if digest_name.encode("ascii") not in _ALLOWED_DIGESTS:
        raise ValueError(f"unsupported digest {digest_name!r}")
    message = b"{%s}%s" % (digest_name.encode("ascii"), os.urandom(MESSAGE_LENGTH))
    connection.send_bytes(_CHALLENGE + message)
    response = deadline.recv(connection)
    try:
        _verify_challenge(authkey, message, response)
    except AuthenticationError:
        connection.send_bytes(_FAILURE)
        raise
    connection.send_bytes(_WELCOME)


def answer_challenge(connection: _FrameConnection, authkey: bytes, *, timeout: Optional[float] = None) -> None:
    """Answer the peer's challenge (either form); raise unless it welcomes us."""
    _answer(connection, authkey, _Deadline(timeout))


def _answer(connection: _FrameConnection, authkey: bytes, deadline: _Deadline) -> None:
    _check_key(authkey)
    message = deadline.recv(connection)
    if not message.startswith(_CHALLENGE):
        raise AuthenticationError(f"Protocol error, expected challenge: {message[:24]!r}")
    message = message[len(_CHALLENGE) :]
    if len(message) < _MD5ONLY_MESSAGE_LENGTH:
        raise AuthenticationError(f"challenge too short: {len(message)} bytes")
    connection.send_bytes(_create_response(authkey, message))
    if deadline.recv(connection) != _WELCOME:
        raise AuthenticationError("digest sent was rejected")


def accept_handshake(connection: _FrameConnection, authkey: bytes, *, timeout: Optional[float] = None) -> None:
    """The listener's side, in Listener.accept's order: challenge, then answer,
    all within ``timeout``."""
    deadline = _Deadline(timeout)
    _deliver(connection, authkey, "sha256", deadline)
    _answer(connection, authkey, deadline)


def client_handshake(connection: _FrameConnection, authkey: bytes, *, timeout: Optional[float] = None) -> None:
    """The client's side, in Client's order: answer, then challenge, all within
    ``timeout``."""
    deadline = _Deadline(timeout)
    _answer(connection, authkey, deadline)
    _deliver(connection, authkey, "sha256", deadline)
