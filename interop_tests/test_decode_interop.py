"""Decode errors across the language line, driven from Python through the Go
CLI's echo server (interop_tests/decode_interop_test.go drives the same from
Go): the receiver reports the documented error, then gets the next message
on the same connection."""
import gobridge
import pytest


def test_timestamp_only_go_holds(serve):
    """Go decodes the instant (year 10000) and sends it back; Python's recv
    raises DecodeError and the connection goes on."""
    proc, addr = serve("echo")
    with gobridge.Client(addr) as c:
        c.send_bytes(bytes.fromhex("c70cff000000000000003afff44180"))
        assert c.recv_bytes().hex() == "c70cff000000000000003afff44180"  # Go re-encoded it exactly
        c.send_bytes(bytes.fromhex("c70cff000000000000003afff44180"))
        with pytest.raises(gobridge.DecodeError, match="timestamp out of range: 253402300800 s"):
            c.recv()
        c.send("after")
        assert c.poll(20) and c.recv() == "after"


def test_payload_over_the_container_budget(serve):
    """Go refuses a payload over the budget (and drops it); Python refuses
    the same payload; both connections go on."""
    proc, addr = serve("echo")
    over = b"\xdd" + (196608).to_bytes(4, "big") + b"\x90" * 196608
    with gobridge.Client(addr) as c:
        c.send_bytes(over)
        c.send("after")
        assert c.poll(20) and c.recv() == "after"
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "too many arrays and maps" in err
    a, b = gobridge.Pipe()
    with a, b:
        a.send_bytes(over)
        a.send("after")
        with pytest.raises(gobridge.DecodeError, match="too many arrays and maps"):
            b.recv()
        assert b.recv() == "after"
