"""Targets of test_pickling.py's spawn and forkserver children (importable by name)."""


def echo_once(conn):
    """Receive one message on conn and send back [it, "child"]."""
    m = conn.recv()
    conn.send([m, "child"])
    conn.close()


def recv_then_report(r, report):
    """Receive on the read-only r; send its bytes on the write-only report."""
    report.send_bytes(r.recv_bytes())
    r.close()
    report.close()


def send_on(w, value):
    """Send value on the write-only w."""
    w.send(value)
    w.close()
