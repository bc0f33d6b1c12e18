"""Functions the pool tests run in Python workers."""
import os
import signal
import time


def square(x):
    return x * x


def add(a, b):
    return a + b


def boom(x):
    raise ValueError(f"bad value {x}")


def fail_at(x):
    if x == "stop":
        raise KeyError(x)
    return x


def die_on(x, bad):
    if x == bad:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def slow_pid(seconds):
    time.sleep(seconds)
    return os.getpid()
