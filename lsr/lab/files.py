"""Files and directories of a lab: created with the modes they need, never through a link.

Labs hold secrets (LDP and OSPF keys, IPsec keys, IKE PSKs) and root-only
management sockets, and some of their directories belong to another user (FRR's
daemons run as `frr`). The rules, documented under "Lab files" in
docs/architecture.md:

* modes are set explicitly, never left to the umask;
* root writes only in directories no other user can write, and still opens
  every file with O_NOFOLLOW (a planted symlink fails the open instead of
  redirecting the write); atomic replacements go through a fresh O_EXCL
  temporary file;
* what root reads from a directory another user owns is opened with O_NOFOLLOW
  and O_NONBLOCK and must be a regular file (a FIFO there must not hang the
  reader).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def make_dir(path: Path, mode: int, uid: int = 0, gid: int = 0, exist_ok: bool = False) -> Path:
    """A directory with exactly `mode` and owner; an existing one (exist_ok) must be a real
    directory of that owner (a symlink or someone else's directory is refused)."""
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not exist_ok:
            raise
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            raise FileExistsError(f"{path} exists and is not a directory owned by uid {uid}") \
                from None
    # Its parent is root's, so nobody can swap it for a link between the mkdir and these.
    os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(path, mode)  # exactly: mkdir's mode went through the umask
    return path


def write_file(path: Path, data: bytes | str, mode: int = 0o600, gid: int | None = None) -> None:
    """Replace `path` atomically with `data`: a fresh temporary file beside it (O_EXCL and
    O_NOFOLLOW: never an existing file or a link), `mode` and group set on the open file,
    then renamed over `path`."""
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, _CREATE, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away
        if gid is not None:
            os.fchown(fd, -1, gid)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)


def open_append(path: Path, mode: int = 0o600) -> int:
    """A log file opened for appending (created with `mode`); a symlink in its place fails
    with ELOOP instead of being followed. Returns the descriptor (for a child's stdout)."""
    # O_NONBLOCK: a FIFO in its place fails (ENXIO) or is refused below instead of hanging
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
                 | os.O_NONBLOCK, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return fd


def read_foreign(path: Path, offset: int = 0, limit: int = 1 << 20) -> bytes | None:
    """Up to `limit` bytes from `offset` of a regular file in a directory another user owns;
    None if it is missing, a link, or not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.pread(fd, limit, offset)
    finally:
        os.close(fd)


__all__ = ["make_dir", "open_append", "read_foreign", "write_file"]
