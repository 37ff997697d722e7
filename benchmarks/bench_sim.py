"""Benchmark the LDP simulator: wall time and peak memory to converge.

    python benchmarks/bench_sim.py [--routers 200] [--extra 100] [--seed 1] [--profile] [--codec]

Cases: the bundled backbone and a random connected graph of N routers
(spanning tree + `extra` random links). Target: 200 routers < 20 s on one core.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.topogen import random_topology  # noqa: E402
from lsr.core.topology import Topology, load_topology  # noqa: E402
from lsr.sim import Simulation  # noqa: E402


def bench(name: str, topo: Topology, mem: bool) -> dict:
    if mem:
        tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    sim = Simulation(topo)
    res = sim.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = None
    if mem:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    summary = sim.summary_json(res)
    out = {
        "case": name,
        "routers": summary["routers"],
        "sessions": summary["sessions"],
        "fecs": summary["fecs"],
        "converged": res.converged,
        "virtual_s": summary["convergence_time"],
        "events": res.events,
        "messages": sum(res.messages.values()),
        "label_mappings": res.messages.get("LABEL_MAPPING", 0),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
    }
    if peak is not None:
        out["peak_traced_MB"] = round(peak / 2**20, 1)
    # link down/up on the busiest router's first link: withdraw + remap
    t1 = time.perf_counter()
    li = next(lk.index for lk in topo.links if all(topo.nodes[x].is_router for x in lk.nodes))
    sim.link_down(li)
    r2 = sim.run()
    out["link_down_wall_s"] = round(time.perf_counter() - t1, 3)
    out["link_down_converged"] = r2.converged
    return out


def bench_codec(n: int = 300, rounds: int = 100) -> dict:
    """ldp.codec alone: µs per Label Mapping to encode (encode_pdus) and to decode
    (PduReader.feed), n distinct /24 FECs per batch, as a session sees them."""
    from ipaddress import IPv4Address, IPv4Network

    from ldp import codec
    from ldp.messages import LabelMapping, LdpId, PrefixFec

    lid = LdpId(IPv4Address("10.255.0.1"))
    msgs = [LabelMapping(i, (PrefixFec(IPv4Network(f"10.{i % 250}.{i // 250}.0/24")),), 16 + i)
            for i in range(n)]
    t0 = time.perf_counter()
    for _ in range(rounds):
        pdus = codec.encode_pdus(lid, msgs)
    enc = time.perf_counter() - t0
    data = b"".join(pdus)
    t0 = time.perf_counter()
    for _ in range(rounds):
        codec.PduReader().feed(data)
    dec = time.perf_counter() - t0
    per = 1e6 / (n * rounds)
    return {"case": "codec", "encode_us_per_msg": round(enc * per, 2),
            "decode_us_per_msg": round(dec * per, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", type=int, default=200)
    ap.add_argument("--extra", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--no-mem", action="store_true", help="skip tracemalloc (it slows runs)")
    ap.add_argument("--codec", action="store_true", help="also time ldp.codec alone")
    a = ap.parse_args()
    if a.codec:
        print(bench_codec(), flush=True)
    cases = [("backbone", load_topology(ROOT / "topologies" / "backbone.yaml")),
             (f"random-{a.routers}",
              random_topology(a.routers, a.extra, a.seed, max_cost=10, name="bench"))]
    for name, topo in cases:
        if a.profile:
            pr = cProfile.Profile()
            pr.enable()
            r = bench(name, topo, mem=False)
            pr.disable()
            print(r)
            pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
            continue
        r = bench(name, topo, mem=False)  # timing without tracemalloc overhead
        if not a.no_mem:
            r["peak_traced_MB"] = bench(name, topo, mem=True)["peak_traced_MB"]
        print(r, flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of the process: {rss:.0f} MB")


if __name__ == "__main__":
    main()
