"""Python side of the shared-object interop tests: the same roles as the Go
peer interop_tests/internal/mppeer (see its package comment).

usage: mp_peer.py ROLE ARGS...
"""
import json
import signal
import sys
import time
import zlib

import gobridge


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    role, a = sys.argv[1], sys.argv[2:]
    if role == "counter":
        v = gobridge.Value("q", 0, name=a[0])
        for _ in range(int(a[1])):
            with v.get_lock():
                v.value += 1
        v.close()
    elif role in ("array-fill", "array-sum"):
        arr = gobridge.Array("q", int(a[1]), name=a[0])
        with arr.get_lock():
            if role == "array-fill":
                arr[:] = [i * i for i in range(len(arr))]
            else:
                print(sum(arr))
        arr.close()
    elif role == "sem":
        s = gobridge.Semaphore(3, name=a[0])
        st = gobridge.Array("q", 2, name=a[1])
        hold = float(a[3])
        for _ in range(int(a[2])):
            s.acquire()
            with st.get_lock():
                st[0] += 1
                st[1] = max(st[1], st[0])
            time.sleep(hold)
            with st.get_lock():
                st[0] -= 1
            s.release()
        st.close()
        s.close()
    elif role == "bsem-make":
        bs = gobridge.BoundedSemaphore(int(a[1]), name=a[0])
        print("ready", flush=True)
        sys.stdin.read()
        print(f"value={bs.get_value()}")
        bs.close()
    elif role == "bsem-check":
        bs = gobridge.BoundedSemaphore(0, name=a[0], create=False)
        try:
            bs.release()
            sys.exit("release at the bound succeeded")
        except ValueError as e:
            assert "released too many times" in str(e), e
        bs.acquire()
        bs.release()
        print(f"max={bs._max} value={bs.get_value()}")
        bs.close()
    elif role == "event-wait":
        ev = gobridge.Event(name=a[0], create=False)
        print("waiting", flush=True)
        print("set" if ev.wait(float(a[1]) if len(a) > 1 else None) else "timeout", flush=True)
        ev.close()
    elif role == "event-set":
        ev = gobridge.Event(name=a[0], create=False)
        ev.set()
        ev.close()
    elif role in ("cond-wait", "cond-notify", "cond-hold"):
        cv = gobridge.Condition(name=a[0], create=False)
        with cv:
            if role == "cond-wait":
                assert cv.wait()
                print("notified", flush=True)
            elif role == "cond-notify":
                cv.notify(int(a[1]))
            else:
                print("held", flush=True)
                time.sleep(3600)
        cv.close()
    elif role == "bar-wait":
        bar = gobridge.Barrier(1, name=a[0], create=False)
        try:
            print(f"index={bar.wait()}", flush=True)
        except gobridge.BrokenBarrierError:
            print("broken", flush=True)
        bar.close()
    elif role == "produce":
        q = gobridge.Queue(name=a[0])
        pid, n, size = int(a[1]), int(a[2]), int(a[3])
        for i in range(n):
            payload = bytes((pid * 31 + i + j) & 0xFF for j in range(size))
            q.put([pid, i, zlib.crc32(payload), payload])
        q.close()
    elif role == "consume":
        q = gobridge.Queue(name=a[0])
        out: dict = {}
        while True:
            m = q.get()
            if m is None:
                break
            c = out.setdefault(str(m[0]), {"count": 0, "sum": 0, "sum2": 0.0, "bad": 0})
            c["count"] += 1
            c["sum"] += m[1]
            c["sum2"] += float(m[1]) * m[1]
            if zlib.crc32(m[3]) != m[2]:
                c["bad"] += 1
        print(json.dumps(out))
        q.close()
    elif role == "hold-lock":
        lk = gobridge.Lock(name=a[0])
        lk.acquire()
        print("held", flush=True)
        time.sleep(3600)
    elif role == "spin-put":
        q = gobridge.Queue(name=a[0])
        payload = b"x" * int(a[1])
        i = 0
        while True:
            q.put([i, payload])
            if i == 0:
                print("started", flush=True)
            i += 1
    elif role == "spin-get":
        q = gobridge.Queue(name=a[0])
        print("started", flush=True)
        while True:
            q.get()
    elif role == "put":
        q = gobridge.Queue(name=a[0])
        q.put(json.loads(a[1]))
        q.close()
    else:
        sys.exit(f"unknown role {role}")


if __name__ == "__main__":
    main()
