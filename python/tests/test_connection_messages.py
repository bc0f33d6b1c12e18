"""What the frame limit errors say (SPEC 2.1): CPython's "bad message length"
first, then how to raise the limit."""
import pytest

import gobridge
from gobridge import FrameTooLargeError


def test_send_over_the_limit_says_how_to_raise_it():
    a, b = gobridge.Pipe(max_frame_size=16)
    with a, b:
        with pytest.raises(FrameTooLargeError) as e:
            a.send_bytes(b"x" * 17)
        message = str(e.value)
        assert message.startswith("bad message length: 17 bytes is more than max_frame_size 16")
        assert "max_frame_size=" in message and "Client/Listener/Pipe" in message and "both ends" in message


def test_receive_over_the_limit_says_how_to_raise_it(conn_raw):
    conn, raw = conn_raw(max_frame_size=16)
    raw.write(b"\x00\x00\x00\x11")
    with pytest.raises(FrameTooLargeError) as e:
        conn.recv()
    message = str(e.value)
    assert message.startswith("bad message length: header claims 17 bytes, the limit is 16")
    assert "max_frame_size=" in message and "Client/Listener/Pipe" in message


def test_recv_bytes_maxlength_names_maxlength(conn_raw):
    conn, raw = conn_raw(max_frame_size=1000)
    raw.write(b"\x00\x00\x00\x11" + b"x" * 17)
    with pytest.raises(FrameTooLargeError) as e:
        conn.recv_bytes(maxlength=16)
    assert str(e.value) == "bad message length: header claims 17 bytes, more than maxlength 16"


def test_decode_max_size_says_how_to_raise_it():
    with pytest.raises(gobridge.DecodeError, match="pass a larger max_size= to decode"):
        gobridge.decode(b"\xa1x", max_size=1)
