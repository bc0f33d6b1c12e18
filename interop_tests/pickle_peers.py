"""Targets of test_pickle_interop.py's spawn and forkserver children."""


def ask(conn, value, report):
    """Send value on conn (to a Go peer), receive one reply, pass it on to report."""
    conn.send(value)
    report.send(conn.recv())
    conn.close()
    report.close()


def relay(conn, report):
    """Receive from conn (a Go sender) until end of stream; report the list."""
    got = []
    try:
        while True:
            got.append(conn.recv())
    except EOFError:
        pass
    report.send(got)
    conn.close()
    report.close()
