"""Run a ported queue seed (seed003_queue.py, seed003_joinable.py,
seed004_queue.py, and the Event, Barrier and Condition seeds) with a scaled
sleep, its object names replaced and the role (and the role's arguments).

usage: run_mp_seed.py SCRIPT INTERVAL NAME=TAG [NAME=TAG...] ROLE [ARG...]
"""
import sys

from seedrun import one_write_per_line, scale_sleep


def main() -> None:
    script, interval, *rest = sys.argv[1:]
    with open(script) as f:
        src = f.read()
    while "=" in rest[0]:
        old, new = rest.pop(0).split("=", 1)
        src = src.replace(f"name='{old}'", f"name='{new}'")
    scale_sleep(float(interval))
    sys.argv = [script, *rest]
    one_write_per_line()
    exec(compile(src, script, "exec"), {"__name__": "__main__", "__file__": script})


if __name__ == "__main__":
    main()
