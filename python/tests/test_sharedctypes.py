"""RawValue, RawArray, typecode 'c' and lock= (issue 14 item 4), checked
against what multiprocessing.sharedctypes itself does in the same run."""
import ctypes
import errno
import multiprocessing
import os
import pickle
import time

import pytest

import gobridge
from gobridge import sharedctypes as S
from gobridge._internal import shmseg as _shm

from gbtest_support import in_thread, unique_name


@pytest.fixture
def name():
    n = unique_name("sct")
    yield n
    for suffix in ("", "-2", "-l"):
        p = _shm.path(n + suffix)
        if os.path.lexists(p):
            os.unlink(p)
            pytest.fail(f"{n + suffix} left behind")


def outcome(f):
    """What f() gives: ("ok", value) or (exception type, message)."""
    try:
        return ("ok", f())
    except Exception as e:  # noqa: BLE001 - compared with the stdlib's
        return (type(e), str(e))


# -- RawValue, RawArray ----------------------------------------------------------

def test_raw_objects_have_no_lock_and_share_by_name(name: str) -> None:
    assert gobridge.RawValue is S.RawValue and gobridge.RawArray is S.RawArray
    v = gobridge.RawValue("i", 7, name=name)
    a = gobridge.RawArray("d", [1.5, 2.5], name=name + "-2")
    try:
        assert not hasattr(v, "get_lock") and not hasattr(a, "get_lock")
        assert not hasattr(multiprocessing.RawValue("i", 7), "get_lock")
        w = gobridge.RawValue("i", 99, name=name)  # attaching keeps the value
        b = gobridge.RawArray("d", 2, name=name + "-2")
        try:
            assert w.value == 7 and b[:] == [1.5, 2.5]
            w.value += 1
            b[1] = -1
            assert v.value == 8 and a[:] == [1.5, -1.0] and list(a) == [1.5, -1.0] and len(a) == 2
        finally:
            w.close()
            b.close()
    finally:
        v.close()
        a.close()


@pytest.mark.parametrize("typecode", ["i", "d", "c", "Q"])
def test_raw_value_defaults_and_arguments_as_the_stdlib(name: str, typecode: str) -> None:
    assert gobridge.RawValue(typecode, name=name).value == multiprocessing.RawValue(typecode).value
    got = outcome(lambda: gobridge.RawValue(typecode, 1, 2, name=name))
    assert got == outcome(lambda: multiprocessing.RawValue(typecode, 1, 2))
    assert got[0] is TypeError


def test_ctypes_types_stand_for_their_typecodes(name: str) -> None:
    v = gobridge.RawValue(ctypes.c_short, 3, name=name)
    a = gobridge.Array(ctypes.c_double, [0.5], name=name + "-2")
    try:
        assert v.typecode == "h" and v.value == 3 and a.typecode == "d" and a[0] == 0.5
    finally:
        v.close()
        a.close()
    with pytest.raises(TypeError):
        gobridge.RawValue(ctypes.c_bool, name=name)
    with pytest.raises(TypeError):
        gobridge.RawValue("x", name=name)


def test_raw_array_pickles_and_keeps_its_items(name: str) -> None:
    a = gobridge.RawArray("q", [1, 2, 3], name=name)
    try:
        b = pickle.loads(pickle.dumps(a))
        try:
            assert type(b) is S.RawArray and b[:] == [1, 2, 3] and b.name == name
        finally:
            b.close()
    finally:
        a.close()


# -- typecode 'c' ------------------------------------------------------------------

CHAR_VALUES = [b"x", 65, 0, 255, True, bytearray(b"q"), b"xy", b"", "x", 256, -1, 1.5, memoryview(b"y")]


@pytest.mark.parametrize("raw", [True, False])
def test_c_value_is_a_ctypes_char(name: str, raw: bool) -> None:
    mk = gobridge.RawValue if raw else gobridge.Value
    std = multiprocessing.RawValue if raw else multiprocessing.Value
    assert mk("c", name=name).value == std("c").value == b"\x00"
    mine = mk("c", b"a", name=name + "-2")
    theirs = std("c", b"a")
    try:
        for x in CHAR_VALUES:
            def mine_set(x=x):
                mine.value = x
                return mine.value

            def theirs_set(x=x):
                theirs.value = x
                return theirs.value
            assert outcome(mine_set) == outcome(theirs_set), x
        for x in CHAR_VALUES:
            assert outcome(lambda x=x: mk("c", x, name=name).value) == outcome(lambda x=x: std("c", x).value), x
    finally:
        mine.close()


@pytest.mark.parametrize("raw", [True, False])
def test_c_array_is_a_ctypes_char_array(name: str, raw: bool) -> None:
    mk = (lambda *a, **k: gobridge.RawArray(*a, **k)) if raw else gobridge.Array
    std = multiprocessing.RawArray if raw else multiprocessing.Array
    mine = mk("c", b"ab\x00cd", name=name)
    theirs = std("c", b"ab\x00cd")
    try:
        if not raw:
            assert type(mine) is S.SynchronizedString
            assert type(mine.get_lock()) is gobridge.RLock
        reads = [lambda o: o.value, lambda o: o.raw, lambda o: o[0], lambda o: o[-1], lambda o: o[1:4],
                 lambda o: o[::-1], lambda o: list(o), lambda o: len(o), lambda o: o[9]]
        writes = [("value", b"hi"), ("value", b"hello"), ("value", b"toolong"), ("value", "str"),
                  ("value", bytearray(b"x")), ("value", b""), ("raw", b"XY"), ("raw", b"ABCDE"),
                  ("raw", b"toolong"), ("raw", bytearray(b"q")), ("raw", "str"), (0, b"Z"), (1, 66),
                  (2, b"ZZ"), (3, "Z"), (slice(0, 2), b"QQ"), (slice(0, 2), [b"a", 98]), (slice(0, 2), b"QQQ")]
        for what, x in writes:
            def setter(o, what=what, x=x):
                if isinstance(what, str):
                    setattr(o, what, x)
                else:
                    o[what] = x
                return o.raw
            got, want = outcome(lambda: setter(mine)), outcome(lambda: setter(theirs))
            assert got[0] == want[0] and (got[0] is not ValueError or got == want), (what, x, got, want)
            if got[0] == "ok":
                assert got == want
            for r in reads:
                g, w = outcome(lambda: r(mine)), outcome(lambda: r(theirs))
                assert g[0] == w[0] and (g[0] != "ok" or g == w), (what, x, g, w)
        for init in ([b"a", 66], "abc", b"", 3):
            g = outcome(lambda init=init: mk("c", init, name=name + "-2").raw)
            w = outcome(lambda init=init: std("c", init).raw)
            assert g[0] == w[0] and (g[0] != "ok" or g == w), (init, g, w)
    finally:
        mine.close()


def test_c_array_attributes_only_for_c(name: str) -> None:
    a = gobridge.RawArray("B", 2, name=name)
    try:
        with pytest.raises(AttributeError):
            a.value
        with pytest.raises(AttributeError):
            a.raw
        assert not hasattr(gobridge.Array("B", 2, name=name + "-2"), "raw")
    finally:
        a.close()


def test_c_refuses_other_one_byte_typecodes(name: str) -> None:
    v = gobridge.Value("c", b"z", name=name)
    try:
        with pytest.raises(gobridge.LayoutError):
            gobridge.Value("B", name=name)
        with pytest.raises(gobridge.LayoutError):
            gobridge.Value("b", name=name)
        assert gobridge.RawValue("c", name=name).value == b"z"
    finally:
        v.close()


# -- lock= -------------------------------------------------------------------------

@pytest.mark.parametrize("lock", [True, None, 1])
def test_lock_true_or_none_is_the_objects_own_rlock(name: str, lock: object) -> None:
    std = multiprocessing.Value("i", 1, lock=lock)
    v = gobridge.Value("i", 1, lock=lock, name=name)
    a = gobridge.Array("i", 2, lock=lock, name=name + "-2")
    try:
        assert type(std).__name__ == type(v).__name__ == "Synchronized"
        assert type(a).__name__ == type(multiprocessing.Array("i", 2, lock=lock)).__name__ == "SynchronizedArray"
        for o in (v, a):
            lk = o.get_lock()
            assert isinstance(lk, gobridge.RLock)
            with lk:
                with o.get_lock():  # recursive, as an RLock
                    pass
        assert v.get_obj().name == name and v.get_obj().value == 1
        # The lock is the segment's user lock: another handle's holds it off.
        other = gobridge.Value("i", name=name)
        try:
            other.get_lock().acquire()
            join = in_thread(lambda: v.value)
            time.sleep(0.2)
            with pytest.raises(AssertionError, match="still running"):
                join(0.01)
            other.get_lock().release()
            assert join() == 1
        finally:
            other.close()
    finally:
        v.close()
        a.close()


def test_lock_false_returns_the_raw_object(name: str) -> None:
    assert type(multiprocessing.Value("i", 1, lock=False)).__name__ == "c_int"  # the ctypes object itself
    v = gobridge.Value("i", 1, lock=False, name=name)
    a = gobridge.Array("c", b"ab", lock=False, name=name + "-2")
    try:
        assert type(v) is gobridge.RawValue and type(a) is gobridge.RawArray
        assert not hasattr(v, "get_lock") and not hasattr(a, "get_lock") and not hasattr(v, "acquire")
        assert v.value == 1 and a.value == b"ab"
    finally:
        v.close()
        a.close()


def test_a_given_lock_is_the_one_taken(name: str) -> None:
    lk = gobridge.Lock(name=name + "-l")
    v = gobridge.Value("i", 5, lock=lk, name=name)
    a = gobridge.Array("i", [1, 2], lock=lk, name=name + "-2")
    try:
        assert v.get_lock() is lk and a.get_lock() is lk
        assert v.acquire() is True
        v.release()
        with v:
            pass
        other = gobridge.Lock(name=name + "-l")  # another handle on the same lock
        try:
            other.acquire()
            joins = [in_thread(lambda: v.value), in_thread(lambda: a[1])]
            time.sleep(0.2)
            for join in joins:
                with pytest.raises(AssertionError, match="still running"):
                    join(0.01)
            other.release()
            assert [j() for j in joins] == [5, 2]
        finally:
            other.close()
        # and not its own segment's user lock: another Value handle holding
        # that does not stop this one
        w = gobridge.Value("i", name=name)
        try:
            with w.get_lock():
                assert v.value == 5
        finally:
            w.close()
        # pickled with the lock it was given
        u = pickle.loads(pickle.dumps(v))
        try:
            assert u.get_lock().name == lk.name and u.value == 5
            u.get_lock().close()
        finally:
            u.close()
    finally:
        v.close()
        a.close()
        lk.close()


@pytest.mark.parametrize("bad", ["x", 0, 2.5, object(), b"lock"])
def test_anything_else_raises_as_the_stdlib(name: str, bad: object) -> None:
    for mk, std in ((lambda: gobridge.Value("i", 1, lock=bad, name=name),
                     lambda: multiprocessing.Value("i", 1, lock=bad)),
                    (lambda: gobridge.Array("i", 1, lock=bad, name=name),
                     lambda: multiprocessing.Array("i", 1, lock=bad))):
        want = outcome(std)
        assert want[0] is AttributeError and "has no method 'acquire'" in want[1]
        assert outcome(mk) == want
    assert not os.path.lexists(_shm.path(name))  # the refused object's handle is closed


def test_lock_and_ctx_are_keywords_as_the_stdlib(name: str) -> None:
    v = gobridge.Value("i", 2, lock=True, ctx=multiprocessing.get_context(), name=name)
    try:
        assert v.value == 2
    finally:
        v.close()


# -- create=False ------------------------------------------------------------------

OPENERS = {
    "Queue": lambda n, **k: gobridge.Queue(name=n, **k),
    "JoinableQueue": lambda n, **k: gobridge.JoinableQueue(name=n, **k),
    "SimpleQueue": lambda n, **k: gobridge.SimpleQueue(name=n, **k),
    "Value": lambda n, **k: gobridge.Value("i", 3, name=n, **k),
    "Array": lambda n, **k: gobridge.Array("i", 2, name=n, **k),
    "RawValue": lambda n, **k: gobridge.RawValue("i", 3, name=n, **k),
    "RawArray": lambda n, **k: gobridge.RawArray("i", 2, name=n, **k),
    "Lock": lambda n, **k: gobridge.Lock(name=n, **k),
    "RLock": lambda n, **k: gobridge.RLock(name=n, **k),
    "Semaphore": lambda n, **k: gobridge.Semaphore(2, name=n, **k),
    "BoundedSemaphore": lambda n, **k: gobridge.BoundedSemaphore(2, name=n, **k),
    "Event": lambda n, **k: gobridge.Event(name=n, **k),
    "Condition": lambda n, **k: gobridge.Condition(name=n, **k),
    "Barrier": lambda n, **k: gobridge.Barrier(2, name=n, **k),
}


@pytest.mark.parametrize("what", sorted(OPENERS))
def test_create_false_opens_only_what_exists(name: str, what: str) -> None:
    open_ = OPENERS[what]
    typo = name + "-typo"
    with pytest.raises(FileNotFoundError) as ei:
        open_(typo, create=False)
    assert ei.value.errno == errno.ENOENT and ei.value.filename == typo and typo in str(ei.value)
    assert not os.path.lexists(_shm.path(typo))  # nothing was made under the typo
    made = open_(name)
    try:
        got = open_(name, create=False)
        assert got.name == name
        got.close()
    finally:
        made.close()
