"""Run a ported queue seed (seed003_queue.py, seed003_joinable.py,
seed004_queue.py) with a scaled sleep, its queue name replaced and the role.

usage: run_mp_seed.py SCRIPT INTERVAL NAME=TAG ROLE
"""
import sys

from seedrun import one_write_per_line, scale_sleep


def main() -> None:
    script, interval, subst, role = sys.argv[1:5]
    old, new = subst.split("=", 1)
    with open(script) as f:
        src = f.read().replace(f"name='{old}'", f"name='{new}'")
    scale_sleep(float(interval))
    sys.argv = [script, role]
    one_write_per_line()
    exec(compile(src, script, "exec"), {"__name__": "__main__", "__file__": script})


if __name__ == "__main__":
    main()
