"""The seed runners print one line per write(2), so that the lines of several
seed processes sharing one pipe never interleave (PYTHONUNBUFFERED=1 made
print() write the text and the newline separately)."""
import os
import socket
import subprocess
import sys

from shm_support import SEEDS

LINES = ["p1的A已被添加至队列中", "x y"]
PRINTS = "print('p1的A已被添加至队列中'); print('x', 'y')"


def writes_of(setup: str) -> list:
    """The write(2) calls a child makes to stdout, one per SOCK_SEQPACKET packet."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=SEEDS)
        proc = subprocess.run([sys.executable, "-c", setup + "; " + PRINTS], stdout=theirs,
                              env=env, timeout=30)
        assert proc.returncode == 0
        theirs.close()
        packets = []
        while True:
            p = ours.recv(65536)
            if not p:
                return packets
            packets.append(p.decode())


def test_plain_line_buffering_splits_lines_under_pythonunbuffered():
    # The control: the harness sees the split that caused the interleaving.
    packets = writes_of("import sys; sys.stdout.reconfigure(line_buffering=True)")
    assert len(packets) > len(LINES)


def test_seed_runner_writes_each_line_whole():
    packets = writes_of("import seedrun; seedrun.one_write_per_line()")
    assert packets == [line + "\n" for line in LINES]
