"""Benchmark: frames/s through `Dataplane.process` on one core (target >= 500,000 swaps/s).

    python -m benchmarks.bench_forwarding [--seconds 1.0] [--json]

Pure CPU: the same frame is fed in a loop (no sockets); the result list and
the output frame are built each time as in the real loop. Rates are per
second of this process's CPU time (`time.process_time`), so other load on a
shared machine does not skew them. Cases: swap (ILM,
one label), push (FTN, IPv4 in), pop (PHP, IPv4 out), ECMP push (diamond)
and the full `decide` for comparison, each at 64 and 1000 bytes.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0, help="per case")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
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
    if a.json:
        print(json.dumps({"results": results}, indent=2))
        return
    print(f"{'case':<10} {'path':<8} {'bytes':>6} {'frames/s':>12}")
    for x in results:
        print(f"{x['case']:<10} {x['path']:<8} {x['frame_bytes']:>6} {x['frames_per_s']:>12,}")
    swaps = min(x["frames_per_s"] for x in results if x["case"] == "swap" and x["path"] == "process")
    print(f"swap target 500,000/s: {'met' if swaps >= 500_000 else 'NOT met'} ({swaps:,}/s)")


if __name__ == "__main__":
    main()
