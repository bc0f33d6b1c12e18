# The classic Barrier example (PyMOTW's threading Barrier: workers report
# how many others are waiting, then pass together and print their index),
# ported in the smallest way: processes instead of threads, the barrier has a
# name so that Go processes can be parties too, and argv picks which workers
# run here — `workers 0 1` runs worker-0 and worker-1, the others are Go
# processes (mppeer seed-barrier-worker) — and each worker passes the barrier
# twice, as the barrier is reused.
import sys

from gobridge import Barrier  # was: import threading; threading.Barrier
from multiprocessing import Process, current_process

NUM_PARTIES = 4  # was: NUM_THREADS = 3


def worker(barrier):
    for _ in range(2):  # added: two rounds through the same barrier
        print(current_process().name,
              'waiting for barrier with {} others'.format(barrier.n_waiting))
        worker_id = barrier.wait()
        print(current_process().name, 'after barrier', worker_id)


if __name__ == '__main__':
    barrier = Barrier(NUM_PARTIES, name='seedbarrier')

    workers = [
        Process(name='worker-%s' % i, target=worker, args=(barrier,))
        for i in sys.argv[2:]  # was: range(NUM_THREADS)
    ]

    for t in workers:
        print(t.name, 'starting')
        t.start()


    for t in workers:
        t.join()
