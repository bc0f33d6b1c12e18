"""Private plumbing under the public modules; not an API.

``futex`` (futex words in shared memory), ``ring`` (the SPSC byte ring of
``shm:`` connections, SPEC 11), ``shmseg`` (named ``/dev/shm`` segments,
SPEC 9), ``ofdlock`` (OFD byte locks), ``layout`` (every shared-memory
offset and kind code, checked against interop_tests/vectors/layouts.json),
``objects`` (the handle every named shared object is built on, SPEC 10).
"""
