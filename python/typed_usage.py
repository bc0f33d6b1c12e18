"""Uses gobridge's public API with type hints; checked by `mypy --strict` (make typecheck)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, Dict, List, Tuple

import gobridge


def echo_once(conn: gobridge.Connection) -> Any:
    if not conn.poll(1.0):
        raise TimeoutError("nothing arrived")
    value: Any = conn.recv()
    conn.send(value)
    return value


def roundtrip(values: List[object]) -> List[Any]:
    a: gobridge.Connection
    b: gobridge.Connection
    a, b = gobridge.Pipe(duplex=True, max_frame_size=1 << 20)
    out: List[Any] = []
    with a, b:
        for v in values:
            a.send(v)
            out.append(echo_once(b))
            out.append(a.recv())
        a.send_bytes(b"raw", 0, 3)
        buf = bytearray(8)
        n: int = b.recv_bytes_into(buf, 1)
        out.append(bytes(buf[1:1 + n]))
        b.send_bytes(memoryview(b"xyz"))
        raw: bytes = a.recv_bytes(maxlength=16)
        out.append(raw)
        a.set_write_buffer(1 << 16)  # batched: written by flush() or the next receive
        a.send("batched")
        a.flush()
        out.append(b.recv())
    return out


def one_way() -> bytes:
    r, w = gobridge.Pipe(False)
    with r, w:
        w.send_bytes(b"one way")
        return r.recv_bytes()


def serve(address: str) -> Tuple["gobridge.connection.PeerAddress", bool]:
    with gobridge.Listener(address, backlog=4) as listener:
        with gobridge.Client(listener.address, timeout=5.0) as client, listener.accept() as server:
            client.send({"k": 1})
            got: Any = server.recv()
            return listener.address, got == {"k": 1}


def child(conn: gobridge.Connection) -> int:
    env: Dict[str, str] = gobridge.child_environ(conn)
    code = "import gobridge; c = gobridge.parent(); c.send(c.recv())"
    proc = subprocess.run([sys.executable, "-c", code], env=env, pass_fds=[conn.fileno()], timeout=30)
    return proc.returncode


def codec() -> None:
    data: bytes = gobridge.encode([1, "two", b"three", None, {4: 5.0}])
    value: Any = gobridge.decode(data, max_size=len(data))
    assert value == [1, "two", b"three", None, {4: 5.0}]
    scheme, rest = gobridge.parse_address("unix:/tmp/x.sock")
    assert (scheme, rest) == ("unix", "/tmp/x.sock")
    try:
        gobridge.encode(2**64)
    except gobridge.IntegerRangeError as e:
        err: gobridge.EncodeError = e
        print(err)
    try:
        gobridge.decode(b"\xc1")
    except gobridge.DecodeError as e:
        base: gobridge.BridgeError = e
        print(base)
    limit: int = gobridge.DEFAULT_MAX_FRAME_SIZE + gobridge.MAX_DEPTH
    print(limit)


class Point:
    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y


def to_builtin(obj: Any) -> Any:
    if isinstance(obj, Point):
        return {"x": obj.x, "y": obj.y}
    raise TypeError(type(obj).__name__)


def default_hooks() -> Any:
    """The default= hook of encode and Connection.set_default (SPEC 3.1)."""
    data: bytes = gobridge.encode([Point(1, 2)], default=to_builtin)
    a, b = gobridge.Pipe()
    with a, b:
        a.set_default(to_builtin)
        a.send(Point(3, 4))
        a.set_default(None)
        return gobridge.decode(data), b.recv()


def shared_objects(name: str) -> int:
    """Named shared objects, typed as multiprocessing's (SPEC section 10)."""
    import queue as stdlib_queue

    q = gobridge.Queue(2, name=name + "-q")
    q.put({"job": 1}, block=True, timeout=1.0)
    try:
        got: Any = q.get(timeout=1.0)
    except stdlib_queue.Empty:
        got = None
    q.close()
    counter = gobridge.Value("i", 0, name=name + "-v")
    with counter.get_lock():
        counter.value += 1
    arr = gobridge.Array("d", [1.0, 2.0], name=name + "-a")
    total: float = sum(arr[:])
    sem = gobridge.Semaphore(3, name=name + "-s")
    if sem.acquire(timeout=0.1):
        sem.release()
    bsem = gobridge.BoundedSemaphore(1, name=name + "-b")
    try:
        bsem.release()
    except ValueError:  # released too many times
        pass
    ev = gobridge.Event(name=name + "-e")
    ev.set()
    was_set: bool = ev.wait(0.1) and ev.is_set()
    cond = gobridge.Condition(name=name + "-c")
    with cond:
        woken: bool = cond.wait(0.01)
        ready: int = cond.wait_for(lambda: 1, 0.01)
        cond.notify_all()
    bar = gobridge.Barrier(1, action=lambda: None, name=name + "-w")
    try:
        index: int = bar.wait(1.0)
    except gobridge.BrokenBarrierError:
        index = -1
    n: int = int(counter.value) + len(arr) + (1 if got is not None else 0) + int(total)
    n += int(was_set) + int(woken) + ready + index + bar.parties + bar.n_waiting + int(bar.broken)
    for obj in (counter, arr, sem, bsem, ev, cond, bar):
        obj.close()
    try:
        q.put(1)
    except gobridge.ClosedError as e:  # a ValueError and an OSError
        closed: OSError = e
        n += 0 if closed.errno else 0
    try:
        gobridge.Queue(name=name + "-q", keep=False).close()
    except gobridge.SegmentTruncatedError:
        pass
    except gobridge.LayoutError:  # not a gobridge object, another kind...
        pass
    return n


def multiprocessing_modules(name: str) -> int:
    """The same objects through the modules named as multiprocessing's."""
    from gobridge import connection, queues, sharedctypes, synchronize

    a: connection.Connection
    a, b = connection.Pipe()
    with a, b:
        a.send(1)
        n: int = b.recv()
    with connection.Listener("unix:/tmp/typed-mp.sock") as listener:
        try:
            listener.accept(timeout=0.01)
        except TimeoutError:
            n += 1
    q: queues.JoinableQueue = queues.JoinableQueue(name=name + "-jq")
    q.close()
    v: sharedctypes.Synchronized = sharedctypes.Value("q", 1, name=name + "-mv")
    lock: synchronize.RLock = v.get_lock()
    with lock:
        n += int(v.value)
    v.close()
    return n


def raw_objects_and_simple_queues(name: str) -> bytes:
    """RawValue, RawArray, typecode 'c', lock=, create=False and SimpleQueue
    (issue 14 items 4 and 5), as multiprocessing has them."""
    import ctypes

    from gobridge import queues, sharedctypes

    raw: sharedctypes.RawValue = gobridge.RawValue("c", b"x", name=name + "-rv")
    items: sharedctypes.RawArray = gobridge.RawArray(ctypes.c_int, [1, 2], name=name + "-ra")
    unlocked: sharedctypes.RawValue = gobridge.Value("i", 1, lock=False, name=name + "-uv")
    guard = gobridge.Lock(name=name + "-l")
    text: sharedctypes.SynchronizedArray = gobridge.Array("c", b"hello", lock=guard, name=name + "-t")
    assert isinstance(text, sharedctypes.SynchronizedString)
    again = gobridge.RawValue("c", name=name + "-rv", create=False)
    try:
        gobridge.Queue(name=name + "-typo", create=False)
    except FileNotFoundError as e:
        missing: str = e.filename
        assert missing == name + "-typo"
    sq: queues.SimpleQueue = gobridge.SimpleQueue(name=name + "-sq")
    sq.put(raw.value)
    got: bytes = sq.get() + text.value + again.value
    empty: bool = sq.empty()
    unlocked.value += items[0] + int(empty)
    for obj in (raw, items, unlocked, text, again, sq, guard):
        obj.close()
    return got


def named_pipes(path: str) -> Any:
    """Plain named pipes and fifo: connections (SPEC 6.6)."""
    created: bool = gobridge.mkfifo(path)
    with gobridge.open_fifo(path, "w", timeout=1.0) as w:
        w.send("job")
    r: gobridge.Connection = gobridge.open_fifo(path, "r", timeout=1.0)
    r.close()
    with gobridge.Listener("fifo:" + path + ".l") as listener:
        c = gobridge.Client(listener.address, timeout=1.0)
        c.close()
    return created


def process(program: str) -> Tuple[Any, int]:
    """A child program with a Pipe end handed down (SPEC 6.7), and signals (6.8)."""
    from gobridge import signals

    signals.install()
    unregister = signals.close_on_shutdown(gobridge.Listener("unix:/tmp/typed.sock"))
    p = gobridge.Process([program], duplex=True, daemon=True, stdout=subprocess.PIPE)
    p.start()
    got: Any = p.conn.recv()
    p.terminate()
    p.join(5.0)
    code: int = p.exitcode if p.exitcode is not None else 0
    pid: int = p.pid or 0
    alive: bool = p.is_alive()
    p.close()
    unregister()
    signals.shutdown()
    return got, code + pid + int(alive)


def peer_gone(e: gobridge.PeerGoneError) -> ConnectionResetError:
    return e


def errors_are_builtins() -> List[type]:
    kinds: List[type] = [
        gobridge.ProtocolError, gobridge.FrameTooLargeError, gobridge.BufferTooShort,
    ]
    return kinds


async def async_echo(address: str) -> Tuple[Any, int]:
    """gobridge.asyncio: a listener, a client, a wrapped Pipe() end."""
    import asyncio

    import gobridge.asyncio as ga

    async with ga.Listener(address, backlog=4, max_frame_size=1 << 20) as listener:
        client_task: "asyncio.Task[ga.Connection]" = asyncio.create_task(ga.Client(address, timeout=5.0))
        server: ga.Connection = await listener.accept()
        client = await client_task
        async with client, server:
            await client.send({"q": 1})
            value: Any = await server.recv()
            await server.send_bytes(b"abc", 1, 2)
            raw: bytes = await client.recv_bytes(maxlength=10)
            buf = bytearray(8)
            await client.send_bytes(raw)
            n: int = await server.recv_bytes_into(buf, 1)
            ready: bool = server.poll()
            await client.drain()
    a, b = gobridge.Pipe()
    end: ga.Connection = ga.wrap(a)
    end.close()
    b.close()
    return value, n + int(ready)


if __name__ == "__main__":
    print(roundtrip([1, "a", [1, 2], {"x": None}]))
    print(one_way())
    codec()
    print(default_hooks())


def serve_tcp() -> Tuple[str, int]:
    with gobridge.Listener(("127.0.0.1", 0), authkey=b"k", handshake_timeout=2.0) as listener:
        host, port = listener.address if isinstance(listener.address, tuple) else ("", 0)
        return host, port
