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


@pytest.mark.parametrize("scheme", ["", "unix:", "fifo:"])
def test_listen_in_a_missing_directory_names_the_address_asked_for(tmp_path, scheme):
    # The unix listener binds in a private directory next to the path and the
    # error used to name that directory (.gobridge-xxxx), not the caller's path.
    path = str(tmp_path / "missing" / "x.sock")
    with pytest.raises(FileNotFoundError) as e:
        gobridge.Listener(scheme + path)
    assert e.value.filename == path
    assert ".gobridge-" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_listen_in_a_read_only_directory_names_the_address_asked_for(tmp_path):
    import os
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    if os.access(str(ro), os.W_OK):  # root writes anywhere: nothing to refuse
        pytest.skip("running as a user the permission bits do not bind")
    path = str(ro / "x.sock")
    with pytest.raises(PermissionError) as e:
        gobridge.Listener(path)
    assert e.value.filename == path
