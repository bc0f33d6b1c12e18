# Seed 003's Queue example, ported in the smallest way: the queue has a name
# so that a Go process can open it, and argv picks which half runs here —
# `producers` (p1, p2 and the end marker; a Go consumer) or `consumer` (c1; Go
# producers and end marker). Everything else is as the seed has it.
import sys

from gobridge import Queue  # was: from multiprocessing import Queue, Process
from multiprocessing import Process
import time


def producer(name, queue):
    for value in ['A', 'B', 'C']:
        time.sleep(1)
        product = name + '的' + value
        queue.put(product)
        print('%s已被添加至队列中' % product)


def consumer(queue):
    while True:
        product = queue.get()
        # 检测到结束标志后跳出死循环
        # 这种方法在某些情况下不是很可靠
        if not product:
            break
        time.sleep(1.2)
        print(product + '已被取出')


if __name__ == '__main__':
    que = Queue(2, name='seed003')  # was: Queue(2)

    if sys.argv[1] == 'producers':
        p1 = Process(target=producer, args=('p1', que))
        p2 = Process(target=producer, args=('p2', que,))
        p1.start()
        p2.start()
        p1.join()
        p2.join()

        # 放入消费者结束标志
        que.put(None)
    else:
        c1 = Process(target=consumer, args=(que,))
        c1.start()
        print('ready')
        c1.join()
