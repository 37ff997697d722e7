"""Benchmark: SPF for every router of a random 1,000-router graph (target < 5 s, one core).

    python -m benchmarks.bench_igp [--routers 1000] [--degree 3] [--ribs]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.topogen import random_topology  # noqa: E402
from lsr.core.igp import Igp  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", type=int, default=1000)
    ap.add_argument("--degree", type=float, default=3.0, help="average router degree")
    ap.add_argument("--ribs", action="store_true", help="also build every full RIB")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    n = a.routers
    extra = int(n * a.degree / 2) - (n - 1)
    t0 = time.perf_counter()
    topo = random_topology(n, max(extra, 0), a.seed, max_cost=20)
    t1 = time.perf_counter()
    igp = Igp(topo)
    for r in topo.routers:
        igp.spf(r.name)
    t2 = time.perf_counter()
    print(f"topology: {n} routers, {len(topo.links)} links (built in {t1 - t0:.2f} s)")
    print(f"SPF for every router: {t2 - t1:.2f} s ({(t2 - t1) / n * 1000:.2f} ms per router)")
    ecmp = sum(1 for r in topo.routers for d in igp.spf(r.name).values() if len(d[1]) > 1)
    print(f"destinations reached over more than one equal-cost first hop: {ecmp}")
    if a.ribs:
        t3 = time.perf_counter()
        routes = sum(len(igp.rib(r.name)) for r in topo.routers)
        t4 = time.perf_counter()
        print(f"full RIBs for every router: {routes} routes in {t4 - t3:.2f} s")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
