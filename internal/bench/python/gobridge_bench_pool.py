"""Python side of ``gobridge bench pool`` (not a public API).

  mp-pool-map N WORKERS   multiprocessing.Pool(WORKERS).map(square, range(N))
                          -> {"tasks_per_s": x}, timed after a warm-up map

``square`` is also the function Go's pool.Map runs in the same benchmark
(``gobridge_bench_pool:square``), so both measure the same work.
"""
from __future__ import annotations

import json
import multiprocessing
import sys
import time
from typing import List


def square(x: int) -> int:
    return x * x


def _mp_pool_map(n: int, workers: int) -> float:
    with multiprocessing.Pool(workers) as pool:
        pool.map(square, range(workers * 10))  # warm-up: every worker started
        t = time.perf_counter()
        out = pool.map(square, range(n))
        dt = time.perf_counter() - t
    if out[-1] != (n - 1) * (n - 1):
        raise SystemExit("wrong result")
    return n / dt


def main(argv: List[str]) -> int:
    if argv[:1] == ["mp-pool-map"] and len(argv) == 3:
        print(json.dumps({"tasks_per_s": _mp_pool_map(int(argv[1]), int(argv[2]))}))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
