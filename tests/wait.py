"""Waiting in tests for something to happen: poll for the event, never sleep a fixed time.

A fixed sleep is either too short on a loaded machine (a flaky test) or longer than
needed everywhere else; polling returns as soon as the event has happened and fails
with what was awaited when it has not. A sleep that paces a stream (a ping interval)
is not synchronisation and stays where it is.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str | Callable[[], str],
             interval: float = 0.05) -> T:
    """The first truthy value of `predicate()`, polled every `interval` s; AssertionError
    naming `what` (a string, or a function giving one, e.g. the last state) if there is
    none within `timeout` s. The predicate is always tried once more at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g} s waiting for {text}")
        time.sleep(interval)


def tcp_listening(ns: str, port: int) -> bool:
    """A TCP socket listens on `port` in network namespace `ns`."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn", "sport", "=", f":{port}"],
                         capture_output=True, text=True, timeout=10).stdout
    return bool(out.strip())


def wait_tcp_listening(ns: str, port: int, server: subprocess.Popen | None = None,
                       timeout: float = 10) -> None:
    """Until a server started in `ns` listens on `port` (a connect before is refused)."""
    def ready() -> bool:
        if server is not None and server.poll() is not None:
            raise AssertionError(f"the server for port {port} in {ns} exited: {server.returncode}")
        return tcp_listening(ns, port)
    wait_for(ready, timeout, f"a listener on TCP port {port} in {ns}")


def rx_packets(ns: str, ifname: str = "eth0") -> int:
    """Frames received so far on an interface in namespace `ns` (the kernel's counter):
    a way to see that a stream (a ping) is running."""
    return int(subprocess.run(["ip", "netns", "exec", ns, "cat",
                               f"/sys/class/net/{ifname}/statistics/rx_packets"],
                              capture_output=True, text=True, check=True, timeout=10).stdout)


class Capture:
    """tcpdump in a namespace writing `pcap`; returns once tcpdump says it is listening
    (its filter is attached then: every later frame is captured)."""

    def __init__(self, ns: str, ifname: str, pcap: Path, *filter_: str,
                 count: int | None = None, timeout: float = 20) -> None:
        self.pcap = pcap
        argv = ["ip", "netns", "exec", ns, "tcpdump", "--immediate-mode", "-U", "-n",
                "-i", ifname, "-w", str(pcap)]
        if count is not None:
            argv += ["-c", str(count)]
        self.proc = subprocess.Popen([*argv, *filter_], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        buf = b""
        deadline = time.monotonic() + timeout
        while b"listening on" not in buf and time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stderr], [], [], 0.1)
            if r:
                chunk = os.read(self.proc.stderr.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
        if b"listening on" not in buf:
            self.stop()
            raise AssertionError(f"tcpdump on {ns} {ifname} did not start: {buf!r}")

    def frames(self) -> list[bytes]:
        """The frames written so far (a record still being written is left out)."""
        return pcap_frames(self.pcap)

    def wait(self, predicate: Callable[[list[bytes]], object], timeout: float, what: str) -> None:
        """Until the frames captured so far satisfy `predicate`."""
        wait_for(lambda: predicate(self.frames()), timeout, what)

    def wait_exit(self, timeout: float = 10) -> None:
        """Until tcpdump has captured its `count` frames and exited by itself."""
        wait_for(lambda: self.proc.poll() is not None, timeout, "tcpdump to capture its frames",
                 interval=0.02)

    def stop(self) -> None:
        """SIGINT (tcpdump closes the file cleanly), then reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def pcap_frames(pcap: Path) -> list[bytes]:
    """The frames of a classic pcap file (either byte order); a truncated last record
    (tcpdump still writing) is left out."""
    try:
        raw = pcap.read_bytes()
    except FileNotFoundError:
        return []
    if len(raw) < 24:
        return []
    endian = "<" if raw[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, off = [], 24
    while off + 16 <= len(raw):
        incl = struct.unpack_from(endian + "I", raw, off + 8)[0]
        if off + 16 + incl > len(raw):
            break
        out.append(raw[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


def icmp_echo_in_mpls(frame: bytes, icmp_type: int = 8) -> bool:
    """An Ethernet frame carrying MPLS (one label or more) over IPv4 ICMP of `icmp_type`."""
    if frame[12:14] != b"\x88\x47":
        return False
    off = 14
    while off + 4 <= len(frame):
        bos = frame[off + 2] & 1
        off += 4
        if bos:
            break
    else:
        return False
    if off + 20 > len(frame) or frame[off] >> 4 != 4 or frame[off + 9] != 1:
        return False
    ihl = (frame[off] & 0xF) * 4
    return len(frame) > off + ihl and frame[off + ihl] == icmp_type


def pcap_records(pcap: Path) -> list[tuple[float, bytes]]:
    """(capture time, frame) of each record of a classic pcap file, microsecond or
    nanosecond timestamps, either byte order; a truncated last record is left out."""
    try:
        raw = pcap.read_bytes()
    except FileNotFoundError:
        return []
    if len(raw) < 24:
        return []
    magic = raw[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    frac = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    out, off = [], 24
    while off + 16 <= len(raw):
        sec, sub, incl = struct.unpack_from(endian + "III", raw, off)
        if off + 16 + incl > len(raw):
            break
        out.append((sec + sub * frac, raw[off + 16:off + 16 + incl]))
        off += 16 + incl
    return out
