# server (seed 003, AF_UNIX), unchanged: it is Python 3 already.
from socket import *
from time import ctime
import os

file = './msg.sock'
# 做个判断，如果文件存在则删除
if os.path.exists(file):
    os.remove(file)

socketfd = socket(AF_UNIX, SOCK_STREAM)
socketfd.bind(file)
socketfd.listen(5)

while True:
    connfd, addr = socketfd.accept()
    while True:
        data = connfd.recv(1024)
        if not data:
            break
        print(data.decode())
        connfd.send('copy! {}'.format(ctime()).encode())

    connfd.close()
