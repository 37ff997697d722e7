"""Benchmark: ESP encapsulate + decapsulate packets/s on one core.

    python -m benchmarks.bench_esp [--seconds 1.0] [--repeat 3] [--clock cpu|wall] [--json]

For each algorithm (AES-128-CBC + HMAC-SHA2-256-128, AES-128-GCM-16) and
inner UDP payload size (100 and 1,400 bytes), times `SecurityAssociation.
encapsulate` and `decapsulate` (outer IPv4 parse, SPI check, replay window,
ICV, decrypt, padding, inner IPv4 and selector checks) on the same thread.
Reports the best of `--repeat` runs; process CPU time by default (the box is
shared), `--clock wall` for wall-clock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from ipaddress import IPv4Network
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forwarding.ipsec.esp import Decapsulated, Encapsulated, SecurityAssociation  # noqa: E402
from forwarding.ipsec.spd import Selector  # noqa: E402

SIZES = (100, 1400)


def inner_packet(payload: int) -> bytes:
    import struct

    from forwarding.ipsec.esp import ipv4_checksum

    total = 20 + 8 + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 63, 17, 0,
                      bytes([198, 51, 100, 10]), bytes([203, 0, 113, 20]))
    hdr = hdr[:10] + struct.pack("!H", ipv4_checksum(hdr)) + hdr[12:]
    return hdr + struct.pack("!HHHH", 4000, 7, 8 + payload, 0) + b"x" * payload


def make(kind: str) -> tuple[SecurityAssociation, SecurityAssociation]:
    sel = [Selector(IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24"))]
    if kind == "aes-128-cbc+hmac-sha2-256-128":
        kw = dict(encryption="aes-128-cbc", enc_key=os.urandom(16),
                  integrity="hmac-sha2-256-128", auth_key=os.urandom(32))
    else:
        kw = dict(encryption="aes-128-gcm-16", enc_key=os.urandom(20))
    common = dict(name="b", spi=0x1234, src="192.0.2.1", dst="192.0.2.2", selectors=sel)
    return SecurityAssociation(**common, **kw), SecurityAssociation(**common, **kw)


def clock(kind: str):
    return time.process_time if kind == "cpu" else time.perf_counter


def run(kind: str, payload: int, seconds: float, tick) -> dict[str, float]:
    tx, rx = make(kind)
    inner = inner_packet(payload)
    n = 0
    enc_t = dec_t = 0.0
    start = tick()
    while tick() - start < seconds:
        t0 = tick()
        pkts = []
        for _ in range(1000):
            r = tx.encapsulate(inner)
            pkts.append(r.packet)  # type: ignore[union-attr]
        t1 = tick()
        for p in pkts:
            d = rx.decapsulate(p)
        t2 = tick()
        assert isinstance(r, Encapsulated) and isinstance(d, Decapsulated)
        enc_t += t1 - t0
        dec_t += t2 - t1
        n += 1000
    return {
        "enc_pps": n / enc_t,
        "dec_pps": n / dec_t,
        "roundtrip_pps": n / (enc_t + dec_t),
        "wire_bytes": len(pkts[0]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tick = clock(a.clock)
    results = []
    for kind in ("aes-128-cbc+hmac-sha2-256-128", "aes-128-gcm-16"):
        for size in SIZES:
            best = max((run(kind, size, a.seconds, tick) for _ in range(a.repeat)),
                       key=lambda r: r["roundtrip_pps"])
            results.append({"algorithm": kind, "payload": size, "inner_bytes": size + 28, **best})
    if a.json:
        print(json.dumps(results, indent=2))
        return
    print(f"ESP on one core ({a.clock} time, best of {a.repeat}); payload = inner UDP payload bytes")
    print(f"{'algorithm':32} {'payload':>7} {'wire B':>7} {'enc pkt/s':>11} {'dec pkt/s':>11} "
          f"{'enc+dec pkt/s':>14} {'Mbit/s (inner)':>15}")
    for r in results:
        mbit = r["roundtrip_pps"] * r["inner_bytes"] * 8 / 1e6
        print(f"{r['algorithm']:32} {r['payload']:>7} {r['wire_bytes']:>7} {r['enc_pps']:>11,.0f} "
              f"{r['dec_pps']:>11,.0f} {r['roundtrip_pps']:>14,.0f} {mbit:>15,.0f}")


if __name__ == "__main__":
    main()
