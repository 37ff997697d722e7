"""A steady UDP probe stream with sequence numbers, for convergence measurements.

Run inside a namespace (`ip netns exec NS python .../probe_stream.py MODE ...`; only the
standard library, so it starts in a fraction of a second even on a loaded machine):

* ``send DST PORT RATE SECONDS``: RATE packets per second for SECONDS to DST:PORT;
  each payload is (sequence, total, send time) padded to 64 octets; prints
  ``{"sent", "total", "t0", "t1", "sent_at", "unsent"}``: ``sent_at`` is each probe's
  send time (seconds after t0: a loaded sender falls behind its schedule, so the
  schedule would misplace losses), ``unsent`` the probes sendto() refused.
* ``recv PORT UNTIL``: a UDP socket counting distinct sequence numbers; prints
  ``{"received", "total", "duplicates", "drops"}`` (``drops``: the namespace's UDP
  receive-buffer and checksum errors meanwhile, from /proc/net/snmp).
* ``sniff IFNAME PORT UNTIL``: an AF_PACKET capture of the probes arriving on
  IFNAME with their arrival times (the kernel's timestamps) and IP TTLs; prints
  ``{"arrivals": [[seq, t, ttl], ...], "drops"}`` (``drops``: frames the kernel dropped for
  want of buffer, PACKET_STATISTICS). The TTL tells paths of different lengths apart.

Each mode prints ``ready`` on a line of its own once its socket is open. The receivers
stop at the absolute time UNTIL at the latest; earlier at the time written on their
standard input (the caller writes it once the sender is done), or once every probe of
the stream has arrived. They drain their socket before reporting. (Both receivers stop
at the same time, so they see the same probes: one that stopped on its own, e.g. a
while after the last probe, would miss a straggler the other one counts.)
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable

_P = struct.Struct("!IId")
PACKET_HOST = 0  # sockaddr_ll.sll_pkttype of a frame to this host's MAC
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35  # also SCM_TIMESTAMPNS: a struct timespec per received frame
_TS = struct.Struct("@qq")
RCVBUF = 8 << 20  # minutes of probes: a receiver descheduled for a while loses nothing


def send(dst: str, port: int, rate: float, seconds: float) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    total = int(rate * seconds)
    print("ready", flush=True)
    t0 = time.time()
    sent = 0
    sent_at: list[float] = []
    unsent: list[int] = []
    for i in range(total):
        target = t0 + i / rate
        d = target - time.time()
        if d > 0.0002:
            time.sleep(d - 0.0001)
        while time.time() < target:
            pass
        now = time.time()
        try:
            s.sendto(_P.pack(i, total, now).ljust(64, b"\0"), (dst, port))
            sent += 1
        except OSError:
            unsent.append(i)  # no route for a moment: the probe is lost like on the wire
        sent_at.append(round(now - t0, 6))
    return {"sent": sent, "total": total, "t0": t0, "t1": time.time(), "sent_at": sent_at,
            "unsent": unsent}


def _big_rcvbuf(s: socket.socket) -> None:
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)  # root: beyond rmem_max
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)


def _udp_errors() -> int:
    """This namespace's UDP RcvbufErrors + InCsumErrors (/proc/net/snmp)."""
    try:
        rows = [ln.split() for ln in open("/proc/net/snmp") if ln.startswith("Udp:")]
        names, values = rows[0][1:], [int(v) for v in rows[1][1:]]
    except (OSError, IndexError, ValueError):
        return 0
    d = dict(zip(names, values, strict=False))
    return d.get("RcvbufErrors", 0) + d.get("InCsumErrors", 0)


def _receive(s: socket.socket, until: float, take: Callable[[socket.socket], bool]) -> None:
    """Call take(socket) whenever `s` is readable, until the deadline (see the module
    docstring); then drain what is still queued."""
    s.setblocking(False)
    watch = [s]
    if not sys.stdin.closed and not sys.stdin.isatty():
        watch.append(sys.stdin)
    deadline = until
    while (left := deadline - time.time()) > 0:
        ready, _, _ = select.select(watch, [], [], min(left, 0.5))
        if sys.stdin in ready:
            line = os.read(sys.stdin.fileno(), 256).decode(errors="replace").strip()
            watch.remove(sys.stdin)
            try:  # no line (end of input, /dev/null): UNTIL stays the deadline
                deadline = min(deadline, float(line.split()[0])) if line else deadline
            except ValueError:
                pass
        if s in ready and take(s):  # the whole stream is in
            break
    take(s)


def recv(port: int, until: float) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _big_rcvbuf(s)
    s.bind(("0.0.0.0", port))
    errors0 = _udp_errors()
    print("ready", flush=True)
    seen: set[int] = set()
    state = {"dups": 0, "total": 0}

    def take(sock: socket.socket) -> bool:
        while True:
            try:
                data = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return 0 < state["total"] == len(seen)
            if len(data) < _P.size:
                continue
            seq, total, _t = _P.unpack_from(data)
            state["total"] = total
            if seq in seen:
                state["dups"] += 1
            seen.add(seq)

    _receive(s, until, take)
    return {"received": len(seen), "total": state["total"], "duplicates": state["dups"],
            "drops": _udp_errors() - errors0}


def _stamp(ancdata: list[tuple[int, int, bytes]]) -> float:
    """The SCM_TIMESTAMPNS of a received frame (now, if the kernel gave none)."""
    for level, kind, data in ancdata:
        if (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMPNS) and len(data) >= _TS.size:
            sec, nsec = _TS.unpack_from(data)
            return sec + nsec * 1e-9
    return time.time()


def sniff(ifname: str, port: int, until: float) -> dict:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    _big_rcvbuf(s)
    # the kernel's arrival time: a capture that was not scheduled for a while would
    # stamp a whole queue of probes with the time it read them
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind((ifname, 0))
    print("ready", flush=True)
    arrivals: dict[int, tuple[float, int]] = {}
    drops = total = 0

    def take(sock: socket.socket) -> bool:
        nonlocal drops, total
        while True:
            try:
                f, anc, _flags, addr = sock.recvmsg(2048, 64)
            except (BlockingIOError, InterruptedError):
                break
            now = _stamp(anc)
            if addr[2] != PACKET_HOST or len(f) < 20:  # ours, or for another MAC: not delivered
                continue
            ihl = (f[0] & 0xF) * 4
            if f[9] != 17 or len(f) < ihl + 8 + _P.size:
                continue
            if struct.unpack_from("!H", f, ihl + 2)[0] != port:
                continue
            seq, total, _t = _P.unpack_from(f, ihl + 8)
            arrivals.setdefault(seq, (now, f[8]))  # f[8]: the IP TTL, one less per hop
        # tp_drops, reset by each read
        drops += struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
        return 0 < total == len(arrivals)

    _receive(s, until, take)
    return {"arrivals": sorted([k, t, ttl] for k, (t, ttl) in arrivals.items()), "drops": drops}


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "send":
        out = send(argv[1], int(argv[2]), float(argv[3]), float(argv[4]))
    elif mode == "recv":
        out = recv(int(argv[1]), float(argv[2]))
    elif mode == "sniff":
        out = sniff(argv[1], int(argv[2]), float(argv[3]))
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
