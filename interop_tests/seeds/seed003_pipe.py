# Seed 003's Pipe example, ported in the smallest way: the parent that creates
# the Pipe and starts the two processes is Go (interop_tests/conn_test.go);
# this child runs fun1 or fun2 on the end the Go parent handed down.
import sys
import time

import gobridge  # was: from multiprocessing import Process, Pipe


def fun1():
    time.sleep(2)
    # 向管道写入内容
    fd2.send("msg")


def fun2():
    # 阻塞形式接收
    print(fd1.recv())


if __name__ == '__main__':
    # was: fd1, fd2 = Pipe(); the Go parent made the Pipe and handed one end down
    fd1 = fd2 = gobridge.parent()
    {"fun1": fun1, "fun2": fun2}[sys.argv[1]]()
