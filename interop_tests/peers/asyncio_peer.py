"""Python asyncio peer for the Go interop tests of gobridge.asyncio (interop_tests/asyncio_test.go).

    python asyncio_peer.py echo ADDR N   listen on ADDR with gobridge.asyncio, print "listening ADDRESS"
                                         (the address it listens on: tcp:HOST:0 picks a port),
                                         serve N clients at once (each: reply [seq, msg] to every
                                         message, seq counting that client's messages, until end of
                                         stream), then exit 0
    python asyncio_peer.py pipe          the same for the one connection a Go parent handed down
                                         (gobridge.parent(), wrapped)
"""
import asyncio
import sys

import gobridge
import gobridge.asyncio as ga


async def serve(c: ga.Connection) -> int:
    seq = 0
    async with c:
        while True:
            try:
                msg = await c.recv()
            except EOFError:
                return seq
            await c.send([seq, msg])
            seq += 1


async def echo(addr: str, n: int) -> None:
    async with ga.Listener(addr, backlog=128) as listener:
        print("listening", listener.address, flush=True)
        conns = [await listener.accept() for _ in range(n)]
        await asyncio.gather(*(serve(c) for c in conns))


def main() -> None:
    if sys.argv[1] == "echo":
        asyncio.run(echo(sys.argv[2], int(sys.argv[3])))
    elif sys.argv[1] == "pipe":
        asyncio.run(serve(ga.wrap(gobridge.parent())))
    else:
        sys.exit(f"unknown role {sys.argv[1]}")


if __name__ == "__main__":
    main()
