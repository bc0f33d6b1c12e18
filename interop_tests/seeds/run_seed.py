"""Run a ported seed script with a scaled sleep and literal substitutions.

usage: run_seed.py SCRIPT [--interval SECONDS] [--subst OLD=NEW]... [--define NAME=INT]...
"""
import argparse

from seedrun import one_write_per_line, scale_sleep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("script")
    ap.add_argument("--interval", type=float, default=1.0, help="what the seed's sleep(1) becomes")
    ap.add_argument("--subst", action="append", default=[], help="OLD=NEW, a quoted literal in the script")
    ap.add_argument("--define", action="append", default=[], help="NAME=INT, a global the seed leaves undefined")
    a = ap.parse_args()
    with open(a.script) as f:
        src = f.read()
    for s in a.subst:
        old, new = s.split("=", 1)
        for q in ("'", '"'):
            src = src.replace(q + old + q, q + new + q)
    scale_sleep(a.interval)
    g = {"__name__": "__main__", "__file__": a.script}
    for d in a.define:
        k, v = d.split("=", 1)
        g[k] = int(v)
    one_write_per_line()
    exec(compile(src, a.script, "exec"), g)


if __name__ == "__main__":
    main()
