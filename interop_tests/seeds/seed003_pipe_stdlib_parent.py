# Seed 003's Pipe example with an unmodified stdlib parent: it creates
# multiprocessing.Pipe() and hands one end to a Go child (interop_tests/
# internal/procpeer pickle-fun2), which reads and answers in pickles through
# bridge.Parent(bridge.WithCodec(pickle.Codec{})). Only the lines that start
# the child changed: the stdlib's Process cannot run a Go program, so it is
# subprocess.Popen with the descriptor passed and GOBRIDGE_FD naming it.
# usage: seed003_pipe_stdlib_parent.py PROCPEER
import os
import subprocess
import sys
from multiprocessing import Pipe

GO = sys.argv[1]

if __name__ == '__main__':
    # 创建管道
    # Pipe()参数默认为True，双向管道均可读写
    fd1, fd2 = Pipe()

    # was: p2 = Process(target=fun2, args=(fd1,))
    p2 = subprocess.Popen([GO, "pickle-fun2"], pass_fds=[fd2.fileno()],
                          env={**os.environ, "GOBRIDGE_FD": str(fd2.fileno())})
    fd2.close()

    fd1.send({"msg": ("a", 1), "tags": {"x"}, "blob": b"\x00\xff", "big": 2**70})
    reply = fd1.recv()
    p2.wait()
    print(sorted(reply.items()))
    sys.exit(p2.returncode)
