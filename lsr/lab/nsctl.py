"""Sysctls of a namespace written from this process: one thread enters the namespace
(setns), writes the /proc/sys files and goes back (/proc/sys/net shows the namespace of
the thread that opens it). `ip netns exec NS sysctl -w ...` did the same with two
processes and a private mount namespace per node: 400 processes for a 200-router lab."""

from __future__ import annotations

import array
import contextlib
import ctypes
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence

from lsr.errors import LsrError

CLONE_NEWNET = 0x40000000
SIOCETHTOOL = 0x8946
# Legacy ethtool set commands (linux/ethtool.h), struct ethtool_value {cmd, data}
ETHTOOL_STXCSUM, ETHTOOL_SGSO, ETHTOOL_SGRO = 0x17, 0x24, 0x2C


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def entered(ns: str) -> Iterator[None]:
    """The calling thread inside namespace `ns` for the block, then back in its own
    (sockets made in the block stay in `ns`)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


def in_namespace(ns: str, work: Callable[[], None]) -> None:
    """Run `work` in a thread that has entered namespace `ns`; OSError as raised."""
    failed: list[OSError] = []

    def run() -> None:
        try:
            with entered(ns):
                work()
        except OSError as e:
            failed.append(e)

    t = threading.Thread(target=run, name=f"in-{ns}")
    t.start()
    t.join()
    if failed:
        raise failed[0]


def write_sysctls(ns: str, values: Mapping[str, str]) -> None:
    """`sysctl -w key=value ...` inside namespace `ns` (keys dotted: net.ipv4.ip_forward);
    one LsrError line if one cannot be written."""
    def work() -> None:
        for key, value in values.items():
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)

    try:
        in_namespace(ns, work)
    except OSError as e:
        raise LsrError(f"sysctl in {ns}: {e.strerror or e}"
                       f"{': ' + e.filename if e.filename else ''}") from None


def offloads_off(ns: str, ifnames: Sequence[str]) -> list[str]:
    """`ethtool -K IF tx off gso off gro off` for each interface of namespace `ns`, by the
    ioctls ethtool has for them (TX checksumming off takes TSO with it, as with ethtool);
    returns the interfaces where that failed (the caller runs ethtool for those)."""
    bad: list[str] = []

    def work() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # made in `ns`
            for ifname in ifnames:
                try:
                    for cmd in (ETHTOOL_STXCSUM, ETHTOOL_SGSO, ETHTOOL_SGRO):
                        val = array.array("I", [cmd, 0])
                        ifr = struct.pack("16sP", ifname.encode(), val.buffer_info()[0])
                        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr + bytes(40 - len(ifr)))
                except OSError:
                    bad.append(ifname)

    try:
        in_namespace(ns, work)
    except OSError:
        return list(ifnames)
    return bad
