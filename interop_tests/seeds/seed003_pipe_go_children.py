# Seed 003's Pipe example with the reverse roles: the Python parent of the
# seed creates the Pipe and starts the two processes, which are Go programs
# (interop_tests/internal/procpeer fun1 / fun2) instead of the seed's Python
# functions. Only the lines that start the children changed.
# usage: seed003_pipe_go_children.py PROCPEER [duplex|one-way]
import sys
import time

import gobridge  # was: from multiprocessing import Process, Pipe

GO = sys.argv[1]

if __name__ == '__main__':
    # 创建管道
    # Pipe()参数默认为True，双向管道均可读写
    # False表示是单向管道，fd1只读，fd2只写
    fd1, fd2 = gobridge.Pipe(sys.argv[2:] != ["one-way"])  # was: Pipe()

    p1 = gobridge.Process([GO, "fun1"], conn=fd2)  # was: Process(target=fun1)
    p1.start()
    p1.join()

    p2 = gobridge.Process([GO, "fun2"], conn=fd1)  # was: Process(target=fun2)
    p2.start()
    p2.join()
    sys.exit(p1.exitcode or p2.exitcode)
