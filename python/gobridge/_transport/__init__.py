"""Transports under gobridge.connection; not an API.

``base`` is the one connection class (framing, frame limit, batching, the
receive buffer, poll, close, errors) over a transport's byte hooks; ``fd``
is the transport of sockets, pipes and FIFOs, ``shm`` the one of
shared-memory rings. ``unix``, ``fifo``, ``shm`` and ``tcp`` also hold each scheme's
listener and dialer, which gobridge.connection picks from its scheme table.
A new transport is one module here that imports ``base``.
"""
