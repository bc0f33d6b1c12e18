# client (seed 003, AF_UNIX), unchanged: it is Python 3 already.
from socket import *

file = './msg.sock'
clientfd = socket(AF_UNIX, SOCK_STREAM)
clientfd.connect(file)

while True:
    msg = input('>>>')
    if not msg:
        break
    clientfd.send(msg.encode())

    data = clientfd.recv(1024)
    print(data.decode())

clientfd.close()
