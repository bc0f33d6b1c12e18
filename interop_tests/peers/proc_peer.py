"""Python side of the process, FIFO and signal interop tests.

  misuse                    send on the handed-down (receive-only) end; print the error
  go-misuse PROCPEER        hand a Go child the receive end of Pipe(False); print what it says
  go-crash PROCPEER         start Go children that die during the exchange (mid-frame
                            with status 3; SIGKILLed while the parent waits); print
                            what the parent saw as JSON
  kill-go PROCPEER DIR TAG SIG
                            start the Go peer's `signals` mode, os.kill it with SIGUSR1,
                            SIGUSR2, then SIG (TERM or INT); print a JSON report
  hold DIR TAG              listen on DIR/s.sock and fifo DIR/f and map the tagged
                            segment TAG, gobridge.signals installed; print "ready",
                            wait for a signal
  serve-loop ADDR           listen on ADDR (close_on_shutdown, signals installed), print
                            "ready", then the natural loop: accept, echo one message, again
  kill-go-loop PROCPEER DIR NAME RUNS
                            RUNS times per transport (unix: and fifo: in DIR, shm:NAME-<i>):
                            start the Go peer's serve-loop, echo once through it, SIGTERM it;
                            print a JSON list of [address, exitcode, leftovers]
  fifo-write PATH N SIZE TAG   write N frames of SIZE bytes, each filled with byte TAG+i
  fifo-read PATH            read frames until EOF; print a JSON report
  fifo-broken PATH          open PATH for writing, wait for the reader to go, then send
  fifo-echo ADDR            Client(ADDR): send back every message until EOF
  fifo-serve ADDR           Listener(ADDR): accept one connection, send back every message
"""
import json
import os
import signal
import sys
import threading
import time

import gobridge
from gobridge import mmap, signals


def main(role, *args):
    if role == "misuse":
        c = gobridge.parent()
        try:
            c.send("x")
        except OSError as e:
            print(f"{type(e).__name__}: {e}")
    elif role == "go-misuse":
        r, w = gobridge.Pipe(False)
        p = gobridge.Process([args[0], "misuse"], conn=r, stdout=None)
        p.start()
        p.join(20)
        w.close()
    elif role == "go-crash":
        report = {}
        p = gobridge.Process([args[0], "crash"])
        p.start()
        first = p.conn.recv()
        try:
            p.conn.recv()
            second = "no error"
        except OSError as e:  # a truncated frame, not a hang
            second = "OSError: " + str(e)
        p.join(20)
        report["crash"] = [first, second, p.exitcode]
        p = gobridge.Process([args[0], "hang"], daemon=True)
        p.start()
        first = p.conn.recv()
        threading.Timer(0.2, p.kill).start()
        try:
            p.conn.recv()
            second = "no error"
        except EOFError:
            second = "EOFError"
        p.join(20)
        report["killed"] = [first, second, p.exitcode]
        print(json.dumps(report))
    elif role == "kill-go":
        p = gobridge.Process([args[0], "signals", args[1], args[2]])
        p.start()
        c = p.conn
        assert c.poll(20) and c.recv() == "ready"
        got = []
        for sig in (signal.SIGUSR1, signal.SIGUSR2):
            os.kill(p.pid, sig)
            if c.poll(20):
                got.append(c.recv())
        def files():
            return sorted(os.listdir(args[1])) + [t for t in os.listdir("/dev/shm") if t == args[2]]

        before = files()
        os.kill(p.pid, getattr(signal, "SIG" + args[3]))
        p.join(20)
        print(json.dumps({"got": got, "before": before, "after": files(), "exitcode": p.exitcode}))
    elif role == "hold":
        signals.install()
        for a in ("unix:" + os.path.join(args[0], "s.sock"), "fifo:" + os.path.join(args[0], "f")):
            signals.close_on_shutdown(gobridge.Listener(a))
        signals.close_on_shutdown(mmap.mmap(-1, 4096, tagname=args[1]))
        print("ready", flush=True)
        while True:
            time.sleep(1)
    elif role == "serve-loop":
        signals.install()
        listener = gobridge.Listener(args[0])
        signals.close_on_shutdown(listener)
        print("ready", flush=True)
        while True:
            conn = listener.accept()
            conn.send(conn.recv())
    elif role == "kill-go-loop":
        peer, d, name, runs = args[0], args[1], args[2], int(args[3])
        out = []
        for i in range(runs):
            for addr in (f"unix:{d}/u{i}", f"fifo:{d}/f{i}", f"shm:{name}-{i}"):
                p = gobridge.Process([peer, "serve-loop", addr])
                p.start()
                assert p.conn.poll(20) and p.conn.recv() == "ready"
                with gobridge.Client(addr) as c:
                    c.send(["ping", i])
                    assert c.recv() == ["ping", i]
                    p.terminate()
                    p.join(20)
                left = os.listdir(d) + [n for n in os.listdir("/dev/shm") if n.startswith(f"{name}-{i}")]
                out.append([addr, p.exitcode, left])
                p.close()
        print(json.dumps(out))
    elif role == "fifo-write":
        n, size, tag = int(args[1]), int(args[2]), int(args[3])
        with gobridge.open_fifo(args[0], "w", timeout=30) as w:
            for i in range(n):
                w.send_bytes(bytes([(tag + i) % 256]) * size)
    elif role == "fifo-read":
        frames, bad = {}, 0
        with gobridge.open_fifo(args[0], "r", timeout=30) as r:
            print("open", flush=True)
            while True:
                try:
                    b = r.recv_bytes()
                except EOFError:
                    break
                if b != b[:1] * len(b):
                    bad += 1
                frames[b[0]] = frames.get(b[0], 0) + 1
        print(json.dumps({"distinct": len(frames), "total": sum(frames.values()), "bad": bad}))
    elif role == "fifo-broken":
        with gobridge.open_fifo(args[0], "w", timeout=30) as w:
            print("open", flush=True)
            sys.stdin.readline()  # the reader has closed
            try:
                for _ in range(100):
                    w.send(b"x" * 1000)
                print("no error")
            except BrokenPipeError as e:
                print("BrokenPipeError", e.errno)
    elif role == "fifo-echo":
        with gobridge.Client(args[0], timeout=30) as c:
            try:
                while True:
                    c.send(c.recv())
            except EOFError:
                pass
    elif role == "fifo-serve":
        with gobridge.Listener(args[0]) as l:
            print("listening", flush=True)
            with l.accept() as c:
                try:
                    while True:
                        c.send(c.recv())
                except EOFError:
                    pass
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
