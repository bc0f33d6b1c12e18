"""Python peer for the Go interop tests of connections (interop_tests/conn_test.go).

    python conn_peer.py ROLE ADDR|-     ('-' means: the connection a Go parent handed down)

Roles:
  vectors        receive every valid vector twice (as raw payload, then as a value the Go
                 encoder made), reply [same_as_expected, type_name, value] for each;
                 then send every vector value to Go; then wait for EOF
  copy-server    framed version of seed 003's server: reply 'copy! <ctime>' to each message
  copy-client    send each remaining argument, print each reply
  stdlib-client  a stdlib multiprocessing.connection.Client with send_bytes(msgpack.packb(..))
  half-frame     write a frame header and half its payload, then sleep until killed
  batched-send N send N messages [seq, bytes] of batch_size(seq) bytes with
                 set_write_buffer(4096), with no flush: the wait for the reply
                 flushes; print the reply
  batched-recv N receive and check N such messages, reply "ok N"
  decode-errors  receive every vector Python cannot decode, each followed by a good message,
                 and reply [exception type, message, the good message]; then send each of them
                 with send_bytes, each followed by "after NAME"; then wait for EOF
"""
import json
import os
import sys
import time
from multiprocessing.connection import Client as StdlibClient

import msgpack

import gobridge

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gbjson  # noqa: E402

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors", "vectors.json")


def connect(addr):
    return gobridge.parent() if addr == "-" else gobridge.Client(addr)


def expected_values():
    with open(VECTORS) as f:
        vectors = json.load(f)
    out = []
    for v in vectors:
        if v.get("error") or v.get("py_error"):
            continue
        if v.get("gen") == "deep_array":
            x = [None]
            for _ in range(v["n"] - 1):
                x = [x]
            out.append((v, x))
        elif v.get("gen") == "bin":
            out.append((v, bytes([v["byte"]]) * v["n"]))
        elif v.get("gen") == "array_of":
            out.append((v, [gbjson.from_obj(v["unit_value"]) for _ in range(v["n"])]))
        else:
            out.append((v, gbjson.from_obj(v["value"])))
    return out


def load_vectors():
    with open(VECTORS) as f:
        return json.load(f)


def payload(v):
    """A vector's bytes, generator entries expanded (SPEC 8)."""
    n = v.get("n")
    if v.get("gen") == "deep_array":
        return b"\x91" * n + b"\xc0"
    if v.get("gen") == "bin":
        head = (b"\xc4" + n.to_bytes(1, "big") if n < 256 else
                b"\xc5" + n.to_bytes(2, "big") if n < 65536 else b"\xc6" + n.to_bytes(4, "big"))
        return head + bytes([v["byte"]]) * n
    if v.get("gen") == "array_of":
        head = (bytes([0x90 | n]) if n < 16 else
                b"\xdc" + n.to_bytes(2, "big") if n < 65536 else b"\xdd" + n.to_bytes(4, "big"))
        return head + bytes.fromhex(v["unit"]) * n
    return bytes.fromhex(v["hex"])


def batch_size(seq):
    """Mixed sizes: most fit a 4096-byte batch many times, some exceed it."""
    return 6000 if seq % 50 == 7 else 8 + seq % 90


def main():
    role, addr = sys.argv[1], sys.argv[2]
    if role == "vectors":
        with connect(addr) as c:
            values = expected_values()
            for _round in range(2):
                for v, want in values:
                    got = c.recv()
                    ok = gbjson.same(got, want)
                    # the value goes back too, except the generated ones: wrapped in the
                    # reply they would pass the limits they sit at (1024 deep, the
                    # container budget)
                    c.send([ok, type(got).__name__, None if v.get("gen") in ("deep_array", "array_of") else got])
            for v, want in values:
                c.send(want)
            try:
                c.recv()
            except EOFError:
                pass
    elif role == "copy-server":
        with gobridge.Listener(addr) as l:
            print("listening", flush=True)
            with l.accept() as c:
                while True:
                    try:
                        data = c.recv()
                    except EOFError:
                        break
                    print(data, flush=True)
                    c.send("copy! {}".format(time.ctime()))
    elif role == "copy-client":
        with connect(addr) as c:
            for msg in sys.argv[3:]:
                c.send(msg)
                print(c.recv(), flush=True)
    elif role == "stdlib-client":
        c = StdlibClient(addr, family="AF_UNIX")
        sent = [{"op": "add", "args": [1, 2]}, {1: "int key", -2: b"\x00bin"}, [1.5, None, True]]
        got = []
        for x in sent:
            c.send_bytes(msgpack.packb(x, use_bin_type=True))
            got.append(msgpack.unpackb(c.recv_bytes(), raw=False, strict_map_key=False))
        c.close()
        print(gbjson.dumps(got))
    elif role == "batched-send":
        with connect(addr) as c:
            c.set_write_buffer(4096)
            for seq in range(int(sys.argv[3])):
                c.send([seq, bytes([seq & 0xFF]) * batch_size(seq)])
            print(c.recv(), flush=True)
    elif role == "batched-recv":
        n = int(sys.argv[3])
        with connect(addr) as c:
            for seq in range(n):
                got = c.recv()
                if got != [seq, bytes([seq & 0xFF]) * batch_size(seq)]:
                    raise SystemExit(f"message {seq}: got {got[0] if isinstance(got, list) else got!r}")
            c.send(f"ok {n}")
    elif role == "decode-errors":
        bad = [v for v in load_vectors() if v.get("error") or v.get("py_error")]
        with connect(addr) as c:
            for v in bad:
                try:
                    got = c.recv()
                    kind, message = "none", repr(got)[:100]
                except gobridge.DecodeError as e:
                    kind, message = type(e).__name__, str(e)
                c.send([kind, message, c.recv()])
            for v in bad:
                c.send_bytes(payload(v))
                c.send("after " + v["name"])
            try:
                c.recv()
            except EOFError:
                pass
    elif role == "half-frame":
        c = connect(addr)
        os.write(c.fileno(), b"\x00\x00\x00\x64\x91")
        time.sleep(60)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
