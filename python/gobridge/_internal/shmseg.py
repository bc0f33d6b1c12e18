"""Named shared-memory segments in /dev/shm, the Python half of Go's
internal/shmseg (wire/SPEC.md section 9).

A segment is a regular file /dev/shm/<name>: the same object that
multiprocessing.shared_memory.SharedMemory(name=<name>) maps. Each handle
(Segment) holds flock(LOCK_SH) on its own descriptor; the handle whose close
wins flock(LOCK_EX | LOCK_NB) is the last one and removes the file, unless
the segment is marked keep. Only segments carrying the xattr
user.gobridge.kind (set when gobridge creates them) follow that rule, so a
segment made by SharedMemory lives until its unlink(), as in Python.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import ShareableList, SharedMemory
from typing import Any, Callable, Optional

from .layout import SEG_KIND_MMAP, SEG_KIND_RAW, XATTR_KEEP, XATTR_KIND

DIR = "/dev/shm"
MAX_NAME_LEN = 255
DEFAULT_MODE = 0o600
KIND_RAW = SEG_KIND_RAW
KIND_MMAP = SEG_KIND_MMAP
_MAX_KIND = 64
_MAX_RETRY = 100


class ShmNameError(ValueError):
    """An invalid tag: empty, longer than 255 bytes, not valid UTF-8 (a str
    with lone surrogates), or holding '/', NUL or '..', or starting with '.'."""


class OtherOwnerError(PermissionError):
    """The segment belongs to another user (pass allow_other_owner=True)."""


class NotRegularError(OSError):
    """The name in /dev/shm is a symlink, FIFO, directory... not a segment."""


class TooSmallError(ValueError):
    """The existing segment is shorter than the requested length."""


def validate_name(name: str) -> None:
    """Raise ShmNameError unless name can be a tag: 1 to 255 bytes of valid
    UTF-8, no '/', no NUL, no '..', not starting with '.' (SPEC 9.1; Go's
    shmseg.ValidateName checks the same, in the same order)."""
    if not isinstance(name, str):
        raise TypeError(f"tag must be str, not {type(name).__name__}")
    try:
        raw = os.fsencode(name)  # surrogateescape: the bytes the file system would see
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "surrogatepass")  # a lone surrogate: refused below
    if not raw:
        raise ShmNameError("invalid segment name: empty")
    if len(raw) > MAX_NAME_LEN:
        raise ShmNameError(f"invalid segment name: {len(raw)} bytes, the limit is {MAX_NAME_LEN}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ShmNameError(f"invalid segment name {name!r}: not valid UTF-8") from None
    if b"/" in raw:
        raise ShmNameError(f"invalid segment name {name!r}: contains '/'")
    if b"\x00" in raw:
        raise ShmNameError(f"invalid segment name {name!r}: contains NUL")
    if raw.startswith(b"."):
        raise ShmNameError(f"invalid segment name {name!r}: starts with '.' (or is '..')")
    if b".." in raw:
        raise ShmNameError(f"invalid segment name {name!r}: contains '..'")


def path(name: str) -> str:
    """The file that holds tag name."""
    return os.path.join(DIR, name)


class _Retry(Exception):
    pass


class Segment:
    """One handle on a named segment. close() releases it; the last handle
    removes a gobridge segment unless it is kept."""

    def __init__(self, name: str, fd: int, created: bool, keep: bool) -> None:
        self.name = name
        self.path = path(name)
        self.created = created
        self._fd: Optional[int] = fd
        self._keep = keep
        st = os.fstat(fd)
        self._id = (st.st_dev, st.st_ino)

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("segment handle is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def size(self) -> int:
        return os.fstat(self.fileno()).st_size

    def kind(self) -> str:
        """The segment's user.gobridge.kind mark; "" when it has none (not
        gobridge's, or a file system without user xattrs)."""
        return _get_mark(self.fileno(), XATTR_KIND)

    def handles(self) -> int:
        """How many handles (this one included) hold the segment now, from
        the flocks in /proc/locks: each open handle, in any process and either
        language, holds one (SPEC 9.2). 1 when /proc/locks cannot be read."""
        st = os.fstat(self.fileno())
        ident = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
        n = 0
        try:
            with open("/proc/locks", encoding="ascii", errors="replace") as f:
                for line in f:
                    fields = line.split()
                    # "1: FLOCK ADVISORY READ PID MAJ:MIN:INO 0 EOF"; waiters' lines have "->" second.
                    if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == ident:
                        n += 1
        except OSError:
            return 1
        return max(n, 1)

    def set_keep(self) -> None:
        """Keep the segment after its last handle closes (and from gc)."""
        self._keep = True
        os.setxattr(self.fileno(), XATTR_KEEP, b"1")

    def close(self) -> None:
        """Release this handle; idempotent."""
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        try:
            if not self._keep and _get_mark(fd, XATTR_KIND) and not _get_mark(fd, XATTR_KEEP):
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    _unlink_if_same(self.path, self._id)
        finally:
            os.close(fd)

    def abandon(self) -> None:
        """Release this handle without the last-close rule: the segment stays
        whatever the other handles do (for an opener that refused what it
        found under the name and must leave it as it was). Idempotent."""
        fd = self._fd
        if fd is not None:
            self._fd = None
            os.close(fd)

    def __enter__(self) -> "Segment":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _get_mark(fd_or_path: "int | str", key: str) -> str:
    try:
        if isinstance(fd_or_path, int):
            v = os.getxattr(fd_or_path, key)
        else:
            v = os.getxattr(fd_or_path, key, follow_symlinks=False)
    except OSError:
        return ""
    if len(v) > _MAX_KIND:
        return ""  # as Go reads it: a mark longer than 64 bytes is no mark
    return v.decode("ascii", "replace")


def _set_mark(fd: int, key: str, value: str) -> None:
    try:
        os.setxattr(fd, key, value.encode("ascii"))
    except OSError:
        pass  # no user xattrs on this file system: the segment stays unmarked


def _unlink_if_same(p: str, ident: "tuple[int, int]") -> None:
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    if (st.st_dev, st.st_ino) != ident:
        return
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass


def _still_named(fd: int, p: str) -> bool:
    st = os.fstat(fd)
    if st.st_nlink == 0:
        return False
    try:
        pst = os.lstat(p)
    except FileNotFoundError:
        return False
    return (pst.st_dev, pst.st_ino) == (st.st_dev, st.st_ino)


Init = Callable[[int], None]


def _prepare(fd: int, size: int, mode: int, kind: str, keep: bool, init: Optional[Init]) -> None:
    os.fchmod(fd, mode)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        os.ftruncate(fd, size)
    _set_mark(fd, XATTR_KIND, kind)
    if keep:
        _set_mark(fd, XATTR_KEEP, "1")
    fcntl.flock(fd, fcntl.LOCK_SH)
    if init is not None:
        init(fd)


#: Tests set this to take the fallback that does without O_TMPFILE.
_NO_TMPFILE = False


def _create(name: str, size: int, mode: int, kind: str, keep: bool, init: Optional[Init]) -> Segment:
    if _NO_TMPFILE:
        return _create_linked(name, size, mode, kind, keep, init)
    try:
        fd = os.open(DIR, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return _create_linked(name, size, mode, kind, keep, init)
        raise
    try:
        _prepare(fd, size, mode, kind, keep, init)
        # linkat never replaces an existing name nor follows a symlink there.
        # (A dir fd makes os.link use linkat(AT_SYMLINK_FOLLOW), not link.)
        dfd = os.open(DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dfd, follow_symlinks=True)
        finally:
            os.close(dfd)
    except FileNotFoundError:
        os.close(fd)
        return _create_linked(name, size, mode, kind, keep, init)
    except BaseException:
        os.close(fd)
        raise
    return Segment(name, fd, True, keep)


def _create_linked(name: str, size: int, mode: int, kind: str, keep: bool, init: Optional[Init]) -> Segment:
    """The fallback where O_TMPFILE or /proc is missing: build the segment
    under a private temporary name (a dot name, no valid tag), hard-link it
    to its real name (link(2) fails when the name exists and never follows a
    symlink there), remove the temporary name. The real name only ever names
    a complete segment; a creator killed before the link leaves the marked,
    unheld temporary file for gc."""
    for _ in range(10):
        tmp = os.path.join(DIR, f".gbnew-{os.getpid()}-{os.urandom(8).hex()}")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
            break
        except FileExistsError:
            continue
    else:
        raise OSError(errno.EEXIST, "could not make a temporary segment name")
    try:
        try:
            _prepare(fd, size, mode, kind, keep, init)
            os.link(tmp, path(name), follow_symlinks=False)
        except BaseException:
            os.close(fd)
            raise
    finally:
        os.unlink(tmp)
    return Segment(name, fd, True, keep)


def _describe(mode: int) -> str:
    for test, what in ((stat.S_ISSOCK, "a socket"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISLNK, "a symlink"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return what
    return "not a regular file"


def _attach(name: str, size: int, readonly: bool, keep: bool, allow_other_owner: bool) -> Segment:
    p = path(name)
    flags = os.O_RDONLY if readonly else os.O_RDWR
    try:
        fd = os.open(p, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotRegularError(errno.ELOOP, f"{p} is a symlink, not a segment") from None
        if not isinstance(e, FileNotFoundError):
            # a unix socket (ENXIO), a directory (EISDIR)...: say what it is
            try:
                st = os.lstat(p)
            except OSError:
                raise e from None
            if not stat.S_ISREG(st.st_mode):
                raise NotRegularError(e.errno, f"{p} is {_describe(st.st_mode)}, not a segment") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularError(errno.EINVAL, f"{p} is {_describe(st.st_mode)}, not a segment")
        if st.st_uid != os.geteuid() and not allow_other_owner:
            raise OtherOwnerError(
                errno.EPERM,
                f"{p} belongs to uid {st.st_uid}, not {os.geteuid()} "
                "(pass allow_other_owner=True to attach anyway)",
            )
        os.set_blocking(fd, True)
        fcntl.flock(fd, fcntl.LOCK_SH)
        if not _still_named(fd, p):
            raise _Retry()
        cur = os.fstat(fd).st_size
        if size > cur:
            raise TooSmallError(f"segment {name!r} has {cur} bytes, {size} asked for")
        if keep:
            _set_mark(fd, XATTR_KEEP, "1")
        return Segment(name, fd, False, keep)
    except BaseException:
        os.close(fd)
        raise


def open_segment(
    name: str,
    size: int,
    *,
    readonly: bool = False,
    mode: int = DEFAULT_MODE,
    keep: bool = False,
    allow_other_owner: bool = False,
    kind: str = KIND_RAW,
    create: bool = True,
    attach: bool = True,
    init: Optional[Init] = None,
) -> Segment:
    """Open segment name: create it with size bytes (zero-filled) if create
    and it does not exist, else attach if attach. size 0 attaches only.
    An existing segment smaller than size raises TooSmallError.

    init(fd), when given, fills a new segment before its name is published
    (sized, marked and locked, invisible to other processes): an attacher
    never finds it half made. An exception from init abandons the segment.
    It may run more than once for one call (a fallback after a failed first
    attempt), each time on a new file; attaching never calls it."""
    validate_name(name)
    if size < 0:
        raise ValueError(f"negative size {size}")
    if mode & ~0o777:
        raise ValueError(f"mode {mode:o} has bits beyond the permissions")
    if not kind or len(kind) > _MAX_KIND:
        raise ValueError(f"kind {kind!r} must be 1 to {_MAX_KIND} characters")
    if create and not attach and size == 0:
        raise ValueError("a new segment needs at least 1 byte")
    for _ in range(_MAX_RETRY):
        if create and size > 0:
            try:
                return _create(name, size, mode, kind, keep, init)
            except FileExistsError:
                if not attach:
                    raise
        try:
            return _attach(name, size, readonly, keep, allow_other_owner)
        except _Retry:
            continue
        except FileNotFoundError:
            if create and size > 0:
                continue  # unlinked under us: start over
            raise
    raise OSError(errno.EAGAIN, f"segment {name!r}: gave up after {_MAX_RETRY} create/unlink races")


def unlink(name: str) -> None:
    """Remove segment name now, whoever holds it; mappings stay valid."""
    validate_name(name)
    os.unlink(path(name))


def attach_shared_memory(name: str) -> SharedMemory:
    """multiprocessing.shared_memory.SharedMemory(name=name), for a segment
    this process only attaches to (one that Go or another process made),
    kept out of this process's resource tracker, which would otherwise unlink
    the segment when this process exits (CPython issue 82300): track=False on
    3.13+, an explicit unregister before. close() it when done; never
    unlink() what another process owns. Exported as
    gobridge.attach_shared_memory (SPEC 9.3)."""
    validate_name(name)
    if sys.version_info >= (3, 13):
        return SharedMemory(name=name, track=False)  # type: ignore[call-arg,unused-ignore]
    shm = SharedMemory(name=name)
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined,unused-ignore]
    return shm


def attach_shareable_list(name: str) -> "ShareableList[Any]":
    """multiprocessing.shared_memory.ShareableList(name=name) for a list this
    process only attaches to (Go's shm.NewShareableList made it, say), kept
    out of the resource tracker as attach_shared_memory does: ShareableList
    registers its segment on every version, 3.13 included. Close it with
    ``sl.shm.close()``. Exported as gobridge.attach_shareable_list."""
    validate_name(name)
    sl: "ShareableList[Any]" = ShareableList(name=name)
    resource_tracker.unregister(sl.shm._name, "shared_memory")  # type: ignore[attr-defined]
    return sl
