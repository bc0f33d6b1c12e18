"""The Python constants of every shared-memory layout agree with
interop_tests/vectors/layouts.json, the contract the Go side is checked
against too: a layout changed on one side only fails here."""
import json
import struct
from pathlib import Path

import pytest

from gobridge import queues, synchronize
from gobridge._internal import layout as L
from gobridge._internal import objects, ofdlock, ring, shmseg
from gobridge._transport import shm

LAYOUTS = json.loads((Path(__file__).resolve().parents[2] / "interop_tests" / "vectors" / "layouts.json").read_text())


def fields(section):
    return {k: tuple(v) for k, v in LAYOUTS[section]["fields"].items()}


def test_shm_conn_header():
    c = LAYOUTS["shm_conn"]
    assert (L.CONN_MAGIC, L.CONN_REQUEST, L.CONN_ACCEPT) == (c["magic"].encode(), c["request"].encode(), c["accept"].encode())
    assert (L.CONN_VERSION, L.CONN_HDR_SIZE) == (c["version"], c["header_size"])
    assert (L.CONN_DEFAULT_RING, L.CONN_MIN_RING, L.CONN_MAX_RING) == (c["default_ring"], c["min_ring"], c["max_ring"])
    assert L.CONN_HANDSHAKE_SECONDS == c["handshake_seconds"]
    assert fields("shm_conn") == {
        "magic": (L.C_MAGIC, len(L.CONN_MAGIC)), "version": (L.C_VERSION, 4), "header_size": (L.C_HDR_SIZE, 4),
        "capacity": (L.C_CAPACITY, 8), "dialer_pid": (L.C_DIALER_PID, 4), "listener_pid": (L.C_LISTENER_PID, 4),
        "ring0": (L.C_RING0, L.CTL_SIZE), "ring1": (L.C_RING1, L.CTL_SIZE),
    }
    # the transport's header struct covers version, header size and capacity, in that order
    assert shm._HDR.size == 16 and L.C_VERSION + 4 == L.C_HDR_SIZE and L.C_HDR_SIZE + 4 == L.C_CAPACITY
    assert (shm.HDR_SIZE, shm.VERSION, shm.CONN_MAGIC, shm.DEFAULT_RING) == (
        c["header_size"], c["version"], c["magic"].encode(), c["default_ring"])
    assert shm.HANDSHAKE_TIMEOUT == c["handshake_seconds"]


def test_ring_header():
    r = LAYOUTS["ring_ctl"]
    assert (L.CTL_SIZE, ring.CTL_SIZE, L.RING_STEP, ring.STEP) == (r["size"], r["size"], r["step"], r["step"])
    assert fields("ring_ctl") == {
        "head": (L.CTL_HEAD, 8), "wclosed": (L.CTL_WCLOSED, 4), "tail": (L.CTL_TAIL, 8),
        "rclosed": (L.CTL_RCLOSED, 4), "rwait": (L.CTL_RWAIT, 4), "wwait": (L.CTL_WWAIT, 4),
    }
    # the ring's word indices (8-byte words for indices, 4-byte for flags)
    assert (ring._HEAD * 8, ring._TAIL * 8) == (r["fields"]["head"][0], r["fields"]["tail"][0])
    assert [i * 4 for i in (ring._WCLOSED, ring._RCLOSED, ring._RWAIT, ring._WWAIT)] == [
        r["fields"][k][0] for k in ("wclosed", "rclosed", "rwait", "wwait")]


def test_shared_object_header():
    o = LAYOUTS["object"]
    assert (objects.MAGIC, objects.VERSION, objects.HEADER, objects.REDO_MAX) == (
        o["magic"], o["version"], o["header_size"], o["redo_max"])
    assert L.OBJ_REDO_ENTRY == o["redo_entry_size"]
    assert fields("object") == {
        "magic": (L.O_MAGIC, 4), "version": (L.O_VERSION, 1), "kind": (L.O_KIND, 1), "typecode": (L.O_TYPECODE, 1),
        "itemsize": (L.O_ITEMSIZE, 1), "redo_n": (objects.OFF_REDO_N, 4), "holder": (objects.OFF_HOLDER, 4),
        "redo": (L.O_REDO, L.OBJ_REDO_MAX * L.OBJ_REDO_ENTRY),
    }
    assert {name: code for code, name in objects.KIND_NAMES.items()} == o["kinds"]
    assert (objects.LOCK_INTERNAL, objects.LOCK_USER, objects.LOCK_GET) == tuple(
        o["lock_bytes"][k] for k in ("internal", "user", "get"))


def test_value_array_semaphore():
    v, s = LAYOUTS["value"], LAYOUTS["semaphore"]
    assert fields("value") == {"value": (objects.VALUE_OFF, 8), "array_len": (L.ARRAY_LEN, 8),
                               "array_items": (L.ARRAY_ITEMS, 0)}
    assert v["value_size"] == objects.VALUE_OFF + 8
    assert v["item_sizes"] == objects.TYPECODES  # typecodes and their sizes, 'c' included (SPEC 10.3)
    assert fields("semaphore") == {"count": (synchronize.Semaphore._VALUE, 4),
                                   "waiters": (synchronize.Semaphore._WAITERS, 4)}
    assert s["size"] == L.SEM_WAITERS + 4
    assert fields("bounded_semaphore") == {"count": (synchronize.BoundedSemaphore._VALUE, 4),
                                           "waiters": (synchronize.BoundedSemaphore._WAITERS, 4),
                                           "bound": (L.BSEM_BOUND, 4)}
    assert LAYOUTS["bounded_semaphore"]["size"] == L.BSEM_SIZE
    assert fields("event") == {"state": (L.EV_STATE, 4)}
    assert LAYOUTS["event"]["size"] == L.VALUE_OFF + 8
    c = LAYOUTS["condition"]
    assert fields("condition") == {"seq": (L.CV_SEQ, 4), "ticket": (L.CV_TICKET, 4),
                                   "slots": (L.CV_SLOTS, L.CV_NSLOTS * L.CV_SLOT)}
    assert (c["size"], c["slots"], c["slot_size"], c["liveness_lock_byte"]) == (
        L.CV_SIZE, L.CV_NSLOTS, L.CV_SLOT, L.CV_LIVE)
    assert c["slot_fields"] == {"state": [0, 4], "ticket": [4, 4]}
    assert c["states"] == {"free": L.CV_FREE, "waiting": L.CV_WAITING, "notified": L.CV_NOTIFIED}
    b = LAYOUTS["barrier"]
    assert fields("barrier") == {"parties": (L.BAR_PARTIES, 4), "gen": (L.BAR_GEN, 4), "broken": (L.BAR_BROKEN, 4),
                                 "count": (L.BAR_COUNT, 4), "slots": (L.BAR_SLOTS, L.BAR_NSLOTS * L.BAR_SLOT)}
    assert (b["size"], b["slots"], b["slot_size"], b["liveness_lock_byte"]) == (
        L.BAR_SIZE, L.BAR_NSLOTS, L.BAR_SLOT, L.BAR_LIVE)
    assert b["slot_fields"] == {"state": [0, 4], "index": [4, 4]}
    assert b["states"] == {"free": L.BAR_FREE, "waiting": L.BAR_WAITING, "passed": L.BAR_PASSED,
                           "broken": L.BAR_BROKEN_SLOT}


def test_queue_layout():
    q = LAYOUTS["queue"]
    assert (queues.REC_HEADER, queues.MIN_CAP, queues.DEFAULT_CAPACITY) == (
        q["record_header"], q["min_capacity"], q["default_capacity"])
    assert fields("queue") == {
        "maxsize": (queues.Q_MAXSIZE, 8), "capacity": (queues.Q_CAPACITY, 8), "head": (queues.Q_HEAD, 8),
        "tail": (queues.Q_TAIL, 8), "put_seq": (queues.Q_PUTSEQ, 8), "get_seq": (queues.Q_GETSEQ, 8),
        "nput": (queues.Q_NPUT, 4), "nget": (queues.Q_NGET, 4), "getters": (queues.Q_GETTERS, 4),
        "putters": (queues.Q_PUTTERS, 4), "unfinished": (queues.Q_UNFIN, 4),
        "get_redo_n": (objects.OFF_GET_REDO_N, 4), "get_redo": (L.Q_GET_REDO, L.OBJ_REDO_MAX * L.OBJ_REDO_ENTRY),
        "ring": (queues.Q_RING, 0),
    }


def test_segment_kinds():
    k = LAYOUTS["segment_kinds"]
    assert (shmseg.XATTR_KIND, shmseg.XATTR_KEEP) == (k["xattr_kind"], k["xattr_keep"])
    assert (shmseg.KIND_MMAP, shmseg.KIND_RAW) == ("mmap", "raw")
    assert sorted(L.SEGMENT_KINDS) == sorted(k["kinds"])
    assert set(objects.KIND_NAMES.values()) <= set(k["kinds"])


def test_struct_flock():
    f = LAYOUTS["flock"]
    assert ofdlock.FLOCK.format == f["python_struct"] and ofdlock.FLOCK.size == f["size"]
    assert struct.calcsize(L.FLOCK_STRUCT) == f["size"]


@pytest.mark.parametrize("section", sorted(k for k in LAYOUTS if k != "about"))
def test_every_section_is_checked(section):
    """A section added to layouts.json needs a check here."""
    checked = {"shm_conn", "ring_ctl", "object", "value", "semaphore", "bounded_semaphore", "event", "condition",
               "barrier",
               "queue", "segment_kinds", "flock"}
    assert section in checked
