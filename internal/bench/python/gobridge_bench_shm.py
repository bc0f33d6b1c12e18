"""The Python side of `gobridge bench shm` (run as python -m gobridge_bench_shm TAG SIZE).

Maps tag TAG (SIZE bytes, created by the Go side) and answers commands on
stdin, one per line, each with one line on stdout (nanoseconds):

  r      copy SIZE bytes out of the segment into a private buffer
  w      copy SIZE bytes from a private buffer into the segment
  m      copy SIZE bytes between two private buffers (memcpy baseline)
  q      quit
"""
from __future__ import annotations

import sys
import time

from gobridge import mmap


def main(argv: "list[str]") -> int:
    tag, size = argv[0], int(argv[1])
    src = bytearray(b"\xab" * size)
    dst = bytearray(size)
    with mmap.mmap(-1, size, tagname=tag, access=mmap.ACCESS_WRITE) as m:
        seg = memoryview(m)
        try:
            s, d = memoryview(src), memoryview(dst)
            clock = time.perf_counter_ns
            for line in sys.stdin:
                cmd = line.strip()
                t0 = clock()
                if cmd == "r":
                    d[:] = seg[:size]
                elif cmd == "w":
                    seg[:size] = s
                elif cmd == "m":
                    d[:] = s
                elif cmd == "q":
                    break
                else:
                    print(f"unknown command {cmd!r}", file=sys.stderr)
                    return 2
                t1 = clock()
                sys.stdout.write(f"{t1 - t0}\n")
                sys.stdout.flush()
            s.release()
            d.release()
        finally:
            seg.release()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
