"""What run_seed.py and run_mp_seed.py share: the seed's sleep scaled, and
its output written one line per write(2)."""
import sys
import time


def scale_sleep(interval: float) -> None:
    """Make the seeds' time.sleep(s) sleep s * interval."""
    real_sleep = time.sleep
    time.sleep = lambda s: real_sleep(s * interval)  # type: ignore[assignment]


def one_write_per_line() -> None:
    """Flush stdout at every newline, one write(2) per printed line.

    Several seed processes print into one pipe; a line written whole is atomic
    there (at most PIPE_BUF bytes), so their lines never interleave. With
    PYTHONUNBUFFERED=1 in the environment stdout is write-through, and
    print(s) then writes s and the newline separately: write_through=False is
    what keeps the line in one piece.
    """
    sys.stdout.reconfigure(line_buffering=True, write_through=False)  # type: ignore[attr-defined]
