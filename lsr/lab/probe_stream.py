"""A steady UDP probe stream with sequence numbers, for convergence measurements.

Run inside a namespace (`ip netns exec NS python -m lsr.lab.probe_stream MODE ...`):

* ``send DST PORT RATE SECONDS``: RATE packets per second for SECONDS to DST:PORT;
  each payload is (sequence, total, send time) padded to 64 octets; prints
  ``{"sent", "t0", "t1"}``.
* ``recv PORT UNTIL``: a UDP socket counting distinct sequence numbers until
  the absolute time UNTIL (the independent receiver count); prints
  ``{"received", "total", "lost", "duplicates"}``.
* ``sniff IFNAME PORT UNTIL``: an AF_PACKET capture of the probes arriving on
  IFNAME with their arrival times; prints ``{"arrivals": [[seq, t], ...]}``.

Each mode prints ``ready`` on a line of its own once its socket is open.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time

_P = struct.Struct("!IId")
PACKET_OUTGOING = 4


def send(dst: str, port: int, rate: float, seconds: float) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    total = int(rate * seconds)
    print("ready", flush=True)
    t0 = time.time()
    sent = 0
    for i in range(total):
        target = t0 + i / rate
        d = target - time.time()
        if d > 0.0002:
            time.sleep(d - 0.0001)
        while time.time() < target:
            pass
        try:
            s.sendto(_P.pack(i, total, time.time()).ljust(64, b"\0"), (dst, port))
            sent += 1
        except OSError:
            pass  # no route for a moment: the probe is lost like on the wire
    return {"sent": sent, "total": total, "t0": t0, "t1": time.time()}


def recv(port: int, until: float) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.05)
    print("ready", flush=True)
    seen: set[int] = set()
    dups = 0
    total = 0
    while time.time() < until:
        try:
            data = s.recv(2048)
        except TimeoutError:
            continue
        if len(data) < _P.size:
            continue
        seq, total, _t = _P.unpack_from(data)
        if seq in seen:
            dups += 1
        seen.add(seq)
    return {"received": len(seen), "total": total, "lost": total - len(seen), "duplicates": dups}


def sniff(ifname: str, port: int, until: float) -> dict:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    s.bind((ifname, 0))
    s.settimeout(0.05)
    print("ready", flush=True)
    arrivals: dict[int, float] = {}
    while time.time() < until:
        try:
            f, addr = s.recvfrom(2048)
        except TimeoutError:
            continue
        if addr[2] == PACKET_OUTGOING or len(f) < 20:
            continue
        ihl = (f[0] & 0xF) * 4
        if f[9] != 17 or len(f) < ihl + 8 + _P.size:
            continue
        if struct.unpack_from("!H", f, ihl + 2)[0] != port:
            continue
        seq = _P.unpack_from(f, ihl + 8)[0]
        arrivals.setdefault(seq, time.time())
    return {"arrivals": sorted([k, v] for k, v in arrivals.items())}


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
