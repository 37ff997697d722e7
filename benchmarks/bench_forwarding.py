"""Benchmark: frames/s through `Dataplane.process` on one core (target >= 500,000 swaps/s).

    python -m benchmarks.bench_forwarding [--seconds 1.0] [--json]

Pure CPU: the same frame is fed in a loop (no sockets); the result list and
the output frame are built each time as in the real loop. Rates are per
second of this process's CPU time (`time.process_time`), so other load on a
shared machine does not skew them. Cases: swap (ILM,
one label), push (FTN, IPv4 in), pop (PHP, IPv4 out), ECMP push (diamond)
and the full `decide` for comparison, each at 64 and 1000 bytes.

Then the ring-to-ring fast path (`forwarding.ioloop.FastPath`, what a lab router
runs): CPU microseconds a frame for a run of waiting frames taken from an RX ring
into TX rings (anonymous mmaps laid out like TPACKET_V2 rings, as in
tests/test_ioloop.py), by the scalar loop and by the numpy vector path
(`forwarding.vector`): what numpy buys.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forwarding.plane import Dataplane, decide  # noqa: E402
from lsr.core.topology import load_topology  # noqa: E402
from tests.fwd_helpers import (  # noqa: E402
    all_tables,
    ilm_label,
    ip_frame,
    line4,
    mpls_frame,
    udp,
)

CE1, CE2 = "192.168.1.1", "192.168.2.2"
FEC2 = "192.168.2.0/24"


def _udp_of_frame_size(size: int, labelled: bool) -> bytes:
    """A UDP packet so that the frame (Ethernet header + labels + IP, no FCS) is `size` bytes."""
    overhead = 14 + (4 if labelled else 0) + 20 + 8
    return udp(CE1, CE2, ttl=64, data=b"\x00" * max(0, size - overhead))


def _rate(fn, frame: bytes, in_if: str, seconds: float) -> float:
    """Frames per second of CPU time of this process (robust on a shared machine)."""
    n = 0
    batch = 2000
    t0 = time.process_time()
    deadline = t0 + seconds
    while True:
        for _ in range(batch):
            fn(frame, in_if)
        n += batch
        t1 = time.process_time()
        if t1 >= deadline:
            return n / (t1 - t0)


def _ring_us(t, in_if: str, frame: bytes, mpls: bool, vector: bool, run: int,
             seconds: float) -> float:
    """CPU microseconds a frame for FastPath on runs of `run` identical waiting frames."""
    from forwarding.ioloop import FastPath
    from tests.test_ioloop import FS, rx_ring, tx_ring

    txs = {name: tx_ring(1024) for name in t.interfaces}
    fp = FastPath(t, txs, vector=vector)
    assert (fp.vector is not None) == vector
    rx = rx_ring([frame] * run, n=1024)
    step = fp.mpls if mpls else fp.ipv4
    mac = t.interfaces[in_if].mac
    spent, frames = 0.0, 0
    while spent < seconds:
        for k in range(run):  # the kernel's part: fill the RX slots, empty the TX rings
            struct.pack_into("=I", rx.ring, k * FS, 1)
            for tx in txs.values():
                struct.pack_into("=I", tx.ring, k * FS, 0)
        rx.index = 0
        for tx in txs.values():
            tx.index = tx.pending = 0
        t0 = time.process_time()
        got, fwd, slow = step(rx, mac, run)
        spent += time.process_time() - t0
        assert got == fwd == run and not slow, (got, fwd, len(slow))
        frames += run
    return spent / frames * 1e6


def ring_cases(seconds: float, runs: tuple[int, ...] = (64, 512)) -> list[dict]:
    """Scalar loop vs vector path, us a frame, per case, frame size and run length."""
    T = all_tables(line4())
    pe1, p1, p2 = T["pe1"], T["p1"], T["p2"]
    out = []
    for size in (64, 1000):
        cases = [
            ("swap", p1, mpls_frame(p1, "eth1", (ilm_label(p1, FEC2),),
                                    _udp_of_frame_size(size, True)), True),
            ("pop", p2, mpls_frame(p2, "eth1", (ilm_label(p2, FEC2),),
                                   _udp_of_frame_size(size, True)), True),
            ("push", pe1, ip_frame(pe1, "eth1", _udp_of_frame_size(size, False)), False),
        ]
        for name, t, frame, mpls in cases:
            for run in runs:
                sc = _ring_us(t, "eth1", frame, mpls, False, run, seconds)
                vec = _ring_us(t, "eth1", frame, mpls, True, run, seconds)
                out.append({"case": name, "frame_bytes": len(frame), "run": run,
                            "scalar_us": round(sc, 3), "vector_us": round(vec, 3),
                            "speedup": round(sc / vec, 2)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0, help="per case")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", choices=["process", "ring"],
                    help="only Dataplane.process, or only the ring fast path (scalar vs vector)")
    a = ap.parse_args()
    if a.only == "ring":
        _print_ring(ring_cases(a.seconds), a.json)
        return
    T = all_tables(line4())
    pe1, p1, p2 = T["pe1"], T["p1"], T["p2"]
    root = Path(__file__).resolve().parents[1]
    D = all_tables(load_topology(root / "topologies" / "diamond.yaml"))
    results = []
    for size in (64, 1000):
        cases = [
            ("swap", p1, "eth1",
             mpls_frame(p1, "eth1", (ilm_label(p1, FEC2),), _udp_of_frame_size(size, True))),
            ("push", pe1, "eth1", ip_frame(pe1, "eth1", _udp_of_frame_size(size, False))),
            ("pop", p2, "eth1",
             mpls_frame(p2, "eth1", (ilm_label(p2, FEC2),), _udp_of_frame_size(size, True))),
            ("push-ecmp", D["pe1"], "eth1",
             ip_frame(D["pe1"], "eth1", _udp_of_frame_size(size, False))),
        ]
        for name, t, in_if, frame in cases:
            dp = Dataplane(t)
            out = dp.process(frame, in_if)
            assert len(out) == 1, (name, out)
            r = _rate(dp.process, frame, in_if, a.seconds)
            results.append({"case": name, "path": "process", "frame_bytes": len(frame),
                            "frames_per_s": round(r)})
        name, t, in_if, frame = cases[0]
        r = _rate(lambda f, i, t=t: decide(f, i, t), frame, in_if, a.seconds)
        results.append({"case": "swap", "path": "decide", "frame_bytes": len(frame),
                        "frames_per_s": round(r)})
    ring = [] if a.only == "process" else ring_cases(a.seconds)
    if a.json:
        print(json.dumps({"results": results, "ring": ring}, indent=2))
        return
    print(f"{'case':<10} {'path':<8} {'bytes':>6} {'frames/s':>12}")
    for x in results:
        print(f"{x['case']:<10} {x['path']:<8} {x['frame_bytes']:>6} {x['frames_per_s']:>12,}")
    swaps = min(x["frames_per_s"] for x in results if x["case"] == "swap" and x["path"] == "process")
    print(f"swap target 500,000/s: {'met' if swaps >= 500_000 else 'NOT met'} ({swaps:,}/s)")
    if ring:
        print()
        _print_ring(ring, False)


def _print_ring(ring: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ring": ring}, indent=2))
        return
    print("ring fast path, CPU us a frame (a run of waiting frames, RX ring -> TX ring):")
    print(f"{'case':<6} {'bytes':>6} {'run':>5} {'scalar':>8} {'vector':>8} {'speedup':>8}")
    for x in ring:
        print(f"{x['case']:<6} {x['frame_bytes']:>6} {x['run']:>5} {x['scalar_us']:>8.2f} "
              f"{x['vector_us']:>8.2f} {x['speedup']:>7.1f}x")


if __name__ == "__main__":
    main()
