# The classic Condition example (the threading docs' producer/consumer:
# "Consume one item" waits for an item under the condition, "Produce one
# item" makes one available and notifies), ported in the smallest way:
# processes instead of threads, the items are a shared Value, the condition
# and the Value have names so that a Go process can open them, and argv picks
# which half runs here — `producer` (a Go consumer) or `consumer` (a Go
# producer). Three items go through.
import sys

from gobridge import Condition, Value  # was: import threading; threading.Condition()
from multiprocessing import Process
import time


def consumer(cv, items):
    for _ in range(3):
        # Consume one item
        with cv:
            cv.wait_for(lambda: items.value > 0)  # an_item_is_available
            items.value -= 1  # get_an_available_item()
            print('consumed one item,', items.value, 'left')


def producer(cv, items):
    for _ in range(3):
        time.sleep(1)
        # Produce one item
        with cv:
            items.value += 1  # make_an_item_available()
            print('produced one item,', items.value, 'available')
            cv.notify()


if __name__ == '__main__':
    cv = Condition(name='seedcond')  # was: threading.Condition()
    items = Value('i', 0, name='seedcondv')

    target = producer if sys.argv[1] == 'producer' else consumer
    p = Process(target=target, args=(cv, items))
    p.start()
    p.join()
