# Seed 004's Queue writer/reader, ported in the smallest way: the queue has a
# name so that a Go process can open it, and argv picks which process runs
# here: `write` (pw; a Go reader) or `read` (pr; a Go writer).
import sys

from multiprocessing import Process
from gobridge import Queue  # was: from multiprocessing import Process, Queue
import os, time, random


# 写数据进程执行的代码:
def write(q):
    print('Process to write: %s' % os.getpid())
    for value in ['A', 'B', 'C']:
        print('Put %s to queue...' % value)
        q.put(value)
        time.sleep(random.random())


# 读数据进程执行的代码:
def read(q):
    print('Process to read: %s' % os.getpid())
    while True:
        value = q.get(True)
        print('Get %s from queue.' % value)


if __name__ == '__main__':
    # 父进程创建 Queue，并传给各个子进程：
    q = Queue(name='seed004')  # was: Queue()
    if sys.argv[1] == 'write':
        pw = Process(target=write, args=(q,))
        # 启动子进程 pw，写入:
        pw.start()
        # 等待 pw 结束:
        pw.join()
    else:
        pr = Process(target=read, args=(q,))
        # 启动子进程 pr，读取:
        pr.start()
        # was: pw.join() -- the writer is a Go process; the test closes stdin when it is done
        sys.stdin.read()
        # pr进程里是死循环，无法等待其结束，只能强行终止:
        pr.terminate()
        pr.join()
