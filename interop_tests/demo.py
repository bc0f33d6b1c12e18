"""`make demo`: a Go process and a Python process talk both ways and print what they got.

    python interop_tests/demo.py path/to/gobridge
"""
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import gobridge


def main() -> int:
    exe = sys.argv[1] if len(sys.argv) > 1 else "bin/gobridge"
    d = tempfile.mkdtemp(prefix="gobridge-demo")
    try:
        # 1. Python -> Go: the Go side listens and prints each message as a JSON line.
        addr = "unix:" + os.path.join(d, "to-go.sock")
        values = [
            {"hello": "from Python", "n": 42},
            [1, 2.5, None, True, b"\x00\x01 raw bytes"],
            {1: "int keys survive", "when": datetime.datetime(2026, 11, 22, 8, 0, tzinfo=datetime.timezone.utc)},
        ]
        go = subprocess.Popen([exe, "recv", "--count", str(len(values)), addr],
                              stdout=subprocess.PIPE, text=True)
        while not os.path.exists(addr[5:]):
            if go.poll() is not None:
                raise SystemExit("gobridge recv did not start")
            time.sleep(0.01)
        with gobridge.Client(addr) as c:
            for v in values:
                print(f"Python sent: {v!r}")
                c.send(v)
        out, _ = go.communicate(timeout=20)
        for line in out.splitlines():
            print(f"Go got:      {line}")

        # 2. Go -> Python: Python listens, Go sends JSON values and prints the replies.
        addr = "unix:" + os.path.join(d, "to-py.sock")
        with gobridge.Listener(addr) as listener:
            def serve() -> None:
                with listener.accept() as conn:
                    while True:
                        try:
                            msg = conn.recv()
                        except EOFError:
                            return
                        print(f"Python got:  {msg!r}", flush=True)
                        conn.send(f"copy! {time.ctime()}")
            t = threading.Thread(target=serve)
            t.start()
            sent = ['{"op": "predict", "features": [0.5, 1.5]}', '{"$bin": "AAEC"}', '18446744073709551615']
            r = subprocess.run([exe, "send", "--reply", addr, *sent], capture_output=True, text=True, timeout=20)
            t.join(20)
            if r.returncode != 0:
                raise SystemExit(r.stderr)
            for s, reply in zip(sent, r.stdout.splitlines()):
                print(f"Go sent {s} and got back {reply}")
        return 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
