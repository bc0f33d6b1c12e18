# Seed 003's JoinableQueue example, ported in the smallest way: the queue has
# a name so that a Go process can open it, and argv picks which half runs
# here — `producers` (p1, p2; a Go consumer) or `consumer` (c1; Go producers).
# Everything else is as the seed has it.
import sys

from gobridge import JoinableQueue  # was: from multiprocessing import JoinableQueue, Process
from multiprocessing import Process
import time


def producer(name, queue):
    for value in ['A', 'B', 'C']:
        time.sleep(1)
        product = name + '的' + value
        queue.put(product)
        print('%s已被添加至队列中' % product)
    # 阻塞到queue中所有任务完成
    queue.join()


def consumer(queue):
    while True:
        product = queue.get()
        time.sleep(1.2)
        print(product + '已被取出')
        # 标识当前任务完成，通知给消费者
        queue.task_done()


if __name__ == '__main__':
    que = JoinableQueue(2, name='seed003j')  # was: JoinableQueue(2)

    if sys.argv[1] == 'producers':
        p1 = Process(target=producer, args=('p1', que))
        p2 = Process(target=producer, args=('p2', que,))
        p1.start()
        p2.start()
        # 主线程阻塞到生产者进程完成
        p1.join()
        p2.join()
    else:
        c1 = Process(target=consumer, args=(que,))
        # 设置守护进程，主线程完成时消费者进程终止
        c1.daemon = True
        c1.start()
        print('ready')
        # was: p1.join(); p2.join() -- the producers are Go processes; the
        # test closes stdin when they have returned from join()
        sys.stdin.read()
        c1.terminate()  # what exiting does to a daemon, done before the queue handle closes
        c1.join()
