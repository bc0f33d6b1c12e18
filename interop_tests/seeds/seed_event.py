# The classic Event example (PyMOTW's multiprocessing Event: one process
# blocks in wait() until the main process sets the event), ported in the
# smallest way: the event has a name so that a Go process can open it, and
# argv picks which half runs here — `waiter` (wait_for_event; a Go main sets
# the event) or `main` (sleeps, then sets; a Go process waits).
import sys

from gobridge import Event  # was: import multiprocessing; multiprocessing.Event()
from multiprocessing import Process
import time


def wait_for_event(e):
    """Wait for the event to be set before doing anything"""
    print('wait_for_event: starting')
    e.wait()
    print('wait_for_event: e.is_set()->', e.is_set())


if __name__ == '__main__':
    e = Event(name='seedevent')  # was: Event()

    if sys.argv[1] == 'waiter':
        w1 = Process(name='block', target=wait_for_event, args=(e,))
        w1.start()
        w1.join()
    else:
        print('main: waiting before calling Event.set()')
        time.sleep(3)
        e.set()
        print('main: event is set')
