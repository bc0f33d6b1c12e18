"""gobridge.mmap where CPython's test_mmap expects Windows' behaviour of
tagname: the argument's name in its TypeError, the stdlib's repr, and no
resize while another handle maps the tag."""
import errno
import os

import pytest

from gbtest_support import unique_name
from gobridge import mmap


def test_tagname_of_the_wrong_type_names_the_argument() -> None:
    with pytest.raises(TypeError, match="tagname"):
        mmap.mmap(-1, 8, tagname=1)  # type: ignore[arg-type]


def test_repr_is_the_stdlibs() -> None:
    tag = unique_name("repr")
    for m in (mmap.mmap(-1, 4096, tagname=tag), mmap.mmap(-1, 4096)):
        m.seek(10)
        assert repr(m) == "<mmap.mmap closed=False, access=ACCESS_DEFAULT, length=4096, pos=10, offset=0>"
        m.close()
        assert repr(m) == "<mmap.mmap closed=True>"


def test_resize_refused_while_another_handle_maps_the_tag() -> None:
    tag = unique_name("rsz")
    m1 = mmap.mmap(-1, 8192, tagname=tag)
    m2 = mmap.mmap(-1, 8192, tagname=tag)
    try:
        m1[:4] = b"data"
        for m in (m1, m2):
            with pytest.raises(OSError) as e:
                m.resize(4096)
            assert e.value.errno == errno.EBUSY and tag in str(e.value)
        assert m1.size() == m2.size() == 8192 and m2[:4] == b"data"
        m2.close()
        m1.resize(4096)
        assert m1.size() == len(m1) == 4096 and m1[:4] == b"data"
        m1.resize(16384)
        assert m1.size() == 16384 and os.stat("/dev/shm/" + tag).st_size == 16384
    finally:
        m2.close()
        m1.close()
    assert not os.path.exists("/dev/shm/" + tag)
