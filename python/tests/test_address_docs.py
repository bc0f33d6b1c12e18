"""The address docs and constants say what the transports do (wire/SPEC.md section 4)."""
import os

import pytest

import gobridge
from gobridge import _address
from gbtest_support import unique_name


def test_every_scheme_not_reserved_listens(sockdir):
    """RESERVED_SCHEMES lists exactly the schemes without a transport: each other one listens."""
    addrs = {"unix": "unix:" + os.path.join(sockdir, "s"), "fifo": "fifo:" + os.path.join(sockdir, "f"),
             "shm": "shm:" + unique_name("addr"), "tcp": "tcp:127.0.0.1:0"}
    assert set(addrs) == set(_address.SCHEMES)
    for scheme, addr in addrs.items():
        if scheme in _address.RESERVED_SCHEMES:
            with pytest.raises(NotImplementedError):
                gobridge.Listener(addr)
        else:
            gobridge.Listener(addr).close()
    assert os.listdir(sockdir) == []


def test_parse_address_doc_names_the_transports():
    doc = gobridge.parse_address.__doc__
    assert "reserved for later" not in doc
    for scheme, section in (("fifo", "6.6"), ("shm", "11")):
        assert f'"{scheme}:' in doc and f"SPEC {section}" in doc
