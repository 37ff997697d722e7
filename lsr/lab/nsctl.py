"""Sysctls of a namespace written from this process: one thread enters the namespace
(setns), writes the /proc/sys files and goes back (/proc/sys/net shows the namespace of
the thread that opens it). `ip netns exec NS sysctl -w ...` did the same with two
processes and a private mount namespace per node: 400 processes for a 200-router lab."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Mapping

from lsr.errors import LsrError

CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def write_sysctls(ns: str, values: Mapping[str, str]) -> None:
    """`sysctl -w key=value ...` inside namespace `ns` (keys dotted: net.ipv4.ip_forward);
    one LsrError line if one cannot be written."""
    failed: list[str] = []

    def work() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(target)
                try:
                    for key, value in values.items():
                        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                            f.write(value)
                finally:
                    _setns(own)  # (a thread left in the namespace would end with it anyway)
            finally:
                os.close(target)
        except OSError as e:
            failed.append(f"{e.strerror or e}{': ' + e.filename if e.filename else ''}")
        finally:
            os.close(own)

    t = threading.Thread(target=work, name=f"sysctl-{ns}")
    t.start()
    t.join()
    if failed:
        raise LsrError(f"sysctl in {ns}: {failed[0]}")
