# Seed 002's signal handlers, ported to Python 3 in the smallest way (print
# statements became print() calls, `import os` added: the seed uses os.getpid
# without importing it). A Go test sends the signals (signal_interop_test.go).
import os
import signal
from time import sleep
def my_term(a,b):
    print("收到sigterm信号")
signal.signal(signal.SIGTERM,my_term)
def my_usr1(a,b):
    print("收到SIGUSR1信号")
signal.signal(signal.SIGUSR1,my_usr1)
while 1:
    print("我是进程id是",os.getpid())
    sleep(1)
