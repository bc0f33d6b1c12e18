"""Every shared-memory layout's offsets, sizes and kind codes, in one place.

interop_tests/vectors/layouts.json is the contract (the Go side checks its
constants against it too); python/tests/test_layout.py checks these. Offsets
are bytes, integers little-endian. SPEC sections: 9.4 segment kinds, 10
shared objects, 11 shm: connections.
"""
from __future__ import annotations

# --- shm: connection memory (SPEC 11.2, 11.3) ------------------------------
CONN_MAGIC = b"GBSHMCN2"
CONN_VERSION = 2
CONN_REQUEST = b"GBSHMRQ2"  # dialer -> listener, with the memfd
CONN_ACCEPT = b"GBSHMOK2"  # listener -> dialer
CONN_HDR_SIZE = 4096
CONN_DEFAULT_RING = 1 << 20
CONN_MIN_RING = 4096
CONN_MAX_RING = 1 << 30
CONN_HANDSHAKE_SECONDS = 5.0
C_MAGIC = 0  # 8 bytes
C_VERSION = 8  # u32 version, u32 header size, u64 capacity: one struct from here
C_HDR_SIZE = 12
C_CAPACITY = 16
C_DIALER_PID = 24
C_LISTENER_PID = 28
C_RING0 = 64
C_RING1 = 256

# --- a ring's control block (SPEC 11.2) -------------------------------------
CTL_SIZE = 192
RING_STEP = 64 << 10
CTL_HEAD = 0  # u64
CTL_WCLOSED = 8  # u32
CTL_TAIL = 64  # u64
CTL_RCLOSED = 72  # u32
CTL_RWAIT = 128  # u32 futex word
CTL_WWAIT = 132  # u32 futex word

# --- shared-object header (SPEC 10.2) ---------------------------------------
OBJ_MAGIC = 0x504D4247  # "GBMP"
OBJ_VERSION = 2  # 2: queues have a get lock and a get redo log (SPEC 10.5)
OBJ_HEADER = 64
OBJ_REDO_MAX = 3
OBJ_REDO_ENTRY = 16  # u32 offset, u32 width, u64 value
O_MAGIC, O_VERSION, O_KIND, O_TYPECODE, O_ITEMSIZE = 0, 4, 5, 6, 7
O_REDO_N = 8
O_HOLDER = 12
O_REDO = 16
KIND_QUEUE, KIND_JOINABLE, KIND_VALUE, KIND_ARRAY, KIND_SEMAPHORE, KIND_LOCK, KIND_RLOCK = range(1, 8)
KIND_BOUNDED_SEMAPHORE = 8
KIND_EVENT = 9
KIND_CONDITION = 10
KIND_BARRIER = 11
KIND_NAMES = {
    KIND_QUEUE: "queue", KIND_JOINABLE: "joinable_queue", KIND_VALUE: "value", KIND_ARRAY: "array",
    KIND_SEMAPHORE: "semaphore", KIND_LOCK: "lock", KIND_RLOCK: "rlock",
    KIND_BOUNDED_SEMAPHORE: "bounded_semaphore", KIND_EVENT: "event",
    KIND_CONDITION: "condition", KIND_BARRIER: "barrier",
}
LOCK_INTERNAL, LOCK_USER, LOCK_GET = 0, 1, 2  # the bytes OFD-locked

# --- Value, Array, Semaphore (SPEC 10.3, 10.9) -------------------------------
VALUE_OFF = 64
ARRAY_LEN = 64
ARRAY_ITEMS = 72
SEM_COUNT = 64
SEM_WAITERS = 68
BSEM_BOUND = 72  # a bounded semaphore's bound (its initial value)
BSEM_SIZE = 80

# --- Event (SPEC 10.10) ---------------------------------------------------------
EV_STATE = 64  # u32 futex word: bit 0 set, bits 1-31 the sets that found it clear

# --- Condition (SPEC 10.11) -----------------------------------------------------
CV_SEQ = 64  # u32 futex word: +1 by every notify that marked a waiter
CV_TICKET = 68  # u32: the next waiter's ticket (wrapping)
CV_SLOTS = 72  # CV_NSLOTS slots of CV_SLOT bytes: u32 state, u32 ticket
CV_NSLOTS = 128
CV_SLOT = 8
CV_SIZE = CV_SLOTS + CV_NSLOTS * CV_SLOT
CV_LIVE = 64  # a waiter in slot i holds the OFD write lock on byte CV_LIVE + i
CV_FREE, CV_WAITING, CV_NOTIFIED = 0, 1, 2

# --- Barrier (SPEC 10.12) -------------------------------------------------------
BAR_PARTIES = 64  # u32, fixed at creation, 1..BAR_NSLOTS
BAR_GEN = 68  # u32 futex word: +1 at every trip, reset, abort or break
BAR_BROKEN = 72  # u32: not 0 = broken
BAR_COUNT = 76  # u32: parties arrived in this generation
BAR_SLOTS = 80  # BAR_NSLOTS slots of BAR_SLOT bytes: u32 state, u32 arrival index
BAR_NSLOTS = 128
BAR_SLOT = 8
BAR_SIZE = BAR_SLOTS + BAR_NSLOTS * BAR_SLOT
BAR_LIVE = 64  # a party in slot i holds the OFD write lock on byte BAR_LIVE + i
BAR_FREE, BAR_WAITING, BAR_PASSED, BAR_BROKEN_SLOT = 0, 1, 2, 3

# --- queues (SPEC 10.4) -------------------------------------------------------
Q_MAXSIZE, Q_CAPACITY, Q_HEAD, Q_TAIL, Q_PUTSEQ, Q_GETSEQ = 64, 72, 80, 88, 96, 104
Q_NPUT, Q_NGET, Q_GETTERS, Q_PUTTERS, Q_UNFIN = 112, 116, 120, 124, 128
Q_GET_REDO_N = 136
Q_GET_REDO = 144
Q_RING = 256
Q_REC_HEADER = 8
Q_MIN_CAP = 64
Q_DEFAULT_CAPACITY = 1 << 20

# --- segment kinds (SPEC 9.4) -------------------------------------------------
XATTR_KIND = "user.gobridge.kind"
XATTR_KEEP = "user.gobridge.keep"
SEG_KIND_RAW = "raw"
SEG_KIND_MMAP = "mmap"
SEG_KIND_SHAREABLE_LIST = "shareable_list"
SEGMENT_KINDS = (SEG_KIND_MMAP, SEG_KIND_RAW, SEG_KIND_SHAREABLE_LIST, *KIND_NAMES.values())

# --- struct flock (SPEC 10.5) -------------------------------------------------
FLOCK_STRUCT = "hhqqi4x"
