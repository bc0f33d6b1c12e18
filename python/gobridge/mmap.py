"""A drop-in for the stdlib mmap module in which Windows' tagname works on Linux.

    from gobridge import mmap
    m = mmap.mmap(-1, 1024, tagname='test', access=mmap.ACCESS_WRITE)

maps the named segment /dev/shm/test (creating it, zero-filled, when it does
not exist), which Go's shm.Open("test", ...) and Python's
multiprocessing.shared_memory.SharedMemory(name='test') map too. The result is
an instance of the stdlib mmap.mmap (slicing, the buffer protocol, find,
readline, move, resize, the context manager all behave as usual). Without a
tagname, or with a real file descriptor, everything is the stdlib's. The
module's constants are the stdlib's.

As on Windows, the segment disappears when its last handle is closed, by
close(), by leaving a with block, or when the object is garbage-collected or
the process exits; pass keep=True (a gobridge extension) to keep it until
unlink(tagname) or `gobridge shm rm`. ACCESS_READ on a tag that does not exist
yet maps zeroes, as Windows does. wire/SPEC.md section 9 has the details.
"""
from __future__ import annotations

import errno
import mmap as _stdmmap
import weakref
from mmap import ACCESS_COPY as ACCESS_COPY
from mmap import ACCESS_DEFAULT as ACCESS_DEFAULT
from mmap import ACCESS_READ as ACCESS_READ
from mmap import ACCESS_WRITE as ACCESS_WRITE
from mmap import ALLOCATIONGRANULARITY as ALLOCATIONGRANULARITY
from mmap import MAP_ANON as MAP_ANON
from mmap import MAP_ANONYMOUS as MAP_ANONYMOUS
from mmap import MAP_PRIVATE as MAP_PRIVATE
from mmap import MAP_SHARED as MAP_SHARED
from mmap import PAGESIZE as PAGESIZE
from mmap import PROT_EXEC as PROT_EXEC
from mmap import PROT_READ as PROT_READ
from mmap import PROT_WRITE as PROT_WRITE
from typing import Any, Dict, Optional

from ._internal import shmseg as _shm

# Every other public name of the stdlib module (MADV_*, MAP_POPULATE, error,
# ... as this Python has them) is re-exported too.
globals().update(
    {n: getattr(_stdmmap, n) for n in dir(_stdmmap) if not n.startswith("_") and n not in ("mmap",)}
)

_MADV_POPULATE_READ = getattr(_stdmmap, "MADV_POPULATE_READ", 22)
_MADV_POPULATE_WRITE = getattr(_stdmmap, "MADV_POPULATE_WRITE", 23)


class mmap(_stdmmap.mmap):
    """The stdlib mmap.mmap, plus tagname=NAME with fileno -1 on Linux.

    Windows-style calls work: mmap(-1, n, tagname='x', access=ACCESS_READ)
    and mmap(-1, n, 'x'). Linux-style calls (flags, prot) are passed to the
    stdlib unchanged; with a tagname they are an error, use access.
    """

    _gobridge_segment: Optional[_shm.Segment]
    _gobridge_release: Optional[weakref.finalize[[], mmap]]

    def __new__(
        cls,
        fileno: int,
        length: int,
        *args: Any,
        tagname: Optional[str] = None,
        access: int = _stdmmap.ACCESS_DEFAULT,
        offset: int = 0,
        keep: bool = False,
        **kwargs: Any,
    ) -> "mmap":
        if args and (args[0] is None or isinstance(args[0], str)):
            # Windows positional form: mmap(fileno, length, tagname, access, offset)
            if tagname is not None:
                raise TypeError("tagname given twice")
            if len(args) > 3:
                raise TypeError("too many arguments")
            tagname = args[0]
            if len(args) > 1:
                access = args[1]
            if len(args) > 2:
                offset = args[2]
            args = ()
        if tagname is None or fileno != -1:
            # Everything but a tagged anonymous map is the stdlib's. (With a
            # real file the file itself is the shared object.)
            kw: Dict[str, Any] = dict(kwargs, access=access, offset=offset)
            self = super().__new__(cls, fileno, length, *args, **kw)
            self._gobridge_segment = None
            self._gobridge_release = None
            return self
        if not isinstance(tagname, str):
            raise TypeError(f"mmap() argument 'tagname' must be str or None, not {type(tagname).__name__}")
        if args or kwargs:
            raise TypeError("tagname cannot be combined with flags or prot; use access")
        if length < 0 or offset < 0:
            raise OverflowError("memory mapped length and offset must be positive")
        seg = _shm.open_segment(
            tagname,
            offset + length if length else 0,
            readonly=access == _stdmmap.ACCESS_READ,
            keep=keep,
            kind=_shm.KIND_MMAP,
        )
        try:
            self = super().__new__(cls, seg.fileno(), length, access=access, offset=offset)
        except BaseException:
            seg.close()
            raise
        self._gobridge_segment = seg
        # Windows semantics: a handle dropped without close() is closed when
        # the object is collected or at exit. close() is still the way.
        self._gobridge_release = weakref.finalize(self, seg.close)
        self._prefault(access)
        return self

    def _prefault(self, access: int) -> None:
        advice = _MADV_POPULATE_WRITE
        if access in (_stdmmap.ACCESS_READ, _stdmmap.ACCESS_COPY):
            advice = _MADV_POPULATE_READ
        try:
            self.madvise(advice)
        except (OSError, ValueError, AttributeError):
            pass  # kernel before 5.14: pages fault in on first touch

    @property
    def tagname(self) -> Optional[str]:
        """The tag, or None for an untagged map."""
        seg = self._gobridge_segment
        return None if seg is None else seg.name

    def keep(self) -> None:
        """Keep the tagged segment after its last handle closes."""
        seg = self._gobridge_segment
        if seg is None:
            raise ValueError("not a tagged mmap")
        seg.set_keep()

    def resize(self, newsize: int) -> None:
        """The stdlib's resize; for a tagged map, as on Windows, only while no
        other handle (in this process or another, Go's included) maps the tag:
        otherwise OSError(EBUSY) and nothing changes. (Shrinking a segment
        under another handle would make its accesses past the end fault.)"""
        seg = self._gobridge_segment
        if seg is not None and not self.closed:
            others = seg.handles() - 1
            if others > 0:
                raise OSError(errno.EBUSY, f"gobridge: cannot resize tag {seg.name!r}: "
                              f"{others} other handle{'s' if others > 1 else ''} map{'' if others > 1 else 's'} it")
        super().resize(newsize)

    def __sizeof__(self) -> int:
        # As on Windows, where the object also holds its tag (NUL-terminated).
        n = super().__sizeof__()
        seg = self._gobridge_segment
        return n if seg is None else n + len(seg.name.encode()) + 1

    def __repr__(self) -> str:
        # The stdlib's text, under the name users call it by (mmap.mmap).
        r = super().__repr__()
        return "<mmap.mmap " + r[len("<mmap "):] if r.startswith("<mmap ") else r

    def close(self) -> None:
        super().close()
        release = self._gobridge_release
        if release is not None:
            release()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def unlink(tagname: str) -> None:
    """Remove the tagged segment now (like SharedMemory.unlink)."""
    _shm.unlink(tagname)
