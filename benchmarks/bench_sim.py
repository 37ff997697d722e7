"""Benchmark the simulator: wall time and peak memory to converge, OSPF + LDP against
LDP on the reference IGP.

    python benchmarks/bench_sim.py [--routers 200[,50...]] [--extra 100] [--seed 1]
                                   [--igp both|ospf|reference] [--traced] [--profile] [--codec]

Cases: the bundled backbone and a random connected graph of N routers (spanning
tree + `extra` random links, `benchmarks/topogen.py`). `--igp ospf` runs OSPF and
LDP together (LDP takes its next hops from each router's SPF); `--igp reference`
is LDP on the centrally computed RIB (`lsr.core.igp.Igp`), the simulator before
OSPF; `both` (the default) runs each case both ways, in the same run.

Every (case, igp) runs in a fresh interpreter, so its peak RSS (ru_maxrss) is its
own; `rss_base_MB` is that interpreter after imports and building the topology.
`--traced` adds tracemalloc's peak (a second run: tracemalloc slows it). Target:
200 routers < 20 s on one core.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.topogen import random_topology  # noqa: E402
from lsr.core.topology import Topology, load_topology  # noqa: E402
from lsr.sim import IGP_MODES, Simulation  # noqa: E402


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def topology(case: str, extra: int, seed: int) -> Topology:
    if case == "backbone":
        return load_topology(ROOT / "topologies" / "backbone.yaml")
    n = int(case.removeprefix("random-"))
    return random_topology(n, extra, seed, max_cost=10, name="bench")


def bench(name: str, topo: Topology, igp: str, mem: bool = False) -> dict:
    rss0 = _rss_mb()
    if mem:
        tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    sim = Simulation(topo, igp=igp)
    res = sim.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = None
    if mem:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    summary = sim.summary_json(res)
    ospf = summary.get("ospf", {})
    out = {
        "case": name,
        "igp": igp,
        "routers": summary["routers"],
        "sessions": summary["sessions"],
        "fecs": summary["fecs"],
        "converged": res.converged,
        "virtual_s": summary["convergence_time"],
        "events": res.events,
        "ldp_messages": sum(res.messages.values()),
        "label_mappings": res.messages.get("LABEL_MAPPING", 0),
        "ospf_packets": ospf.get("packets", 0),
        "spf_runs": ospf.get("spf_runs", 0),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "rss_base_MB": rss0,
        "peak_rss_MB": _rss_mb(),
    }
    if igp == "ospf":  # the reference model is the oracle: OSPF must have built its RIBs
        out["ribs_equal_reference"] = all(sim.ribs[r] == sim.igp.rib(r) for r in sim.routers)
    if peak is not None:
        out["peak_traced_MB"] = round(peak / 2**20, 1)
    # link down on the first router-router link: SPF (or the reference) + withdraw + remap
    t1, c1 = time.perf_counter(), time.process_time()
    li = next(lk.index for lk in topo.links if all(topo.nodes[x].is_router for x in lk.nodes))
    sim.link_down(li)
    r2 = sim.run()
    out["link_down_wall_s"] = round(time.perf_counter() - t1, 3)
    out["link_down_cpu_s"] = round(time.process_time() - c1, 3)
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


def _child(case: str, igp: str, a: argparse.Namespace, traced: bool) -> dict:
    cmd = [sys.executable, __file__, "--worker", case, "--igp", igp, "--extra", str(a.extra),
           "--seed", str(a.seed)] + (["--traced"] if traced else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", default="200", help="random graph sizes, comma-separated")
    ap.add_argument("--extra", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--igp", choices=(*IGP_MODES, "both"), default="both")
    ap.add_argument("--profile", action="store_true", help="cProfile each case in this process")
    ap.add_argument("--traced", action="store_true", help="also tracemalloc's peak (slow)")
    ap.add_argument("--codec", action="store_true", help="also time ldp.codec alone")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # one case, JSON on stdout
    a = ap.parse_args()
    if a.worker:
        topo = topology(a.worker, a.extra, a.seed)
        r = bench(a.worker, topo, a.igp, mem=a.traced)
        print(json.dumps(r), flush=True)
        return
    if a.codec:
        print(bench_codec(), flush=True)
    igps = IGP_MODES if a.igp == "both" else (a.igp,)
    cases = ["backbone"] + [f"random-{n}" for n in a.routers.split(",")]
    for case in cases:
        for igp in igps:
            if a.profile:
                pr = cProfile.Profile()
                pr.enable()
                r = bench(case, topology(case, a.extra, a.seed), igp)
                pr.disable()
                print(r)
                pstats.Stats(pr).sort_stats("tottime").print_stats(30)
                continue
            r = _child(case, igp, a, traced=False)  # timing without tracemalloc overhead
            if a.traced:
                r["peak_traced_MB"] = _child(case, igp, a, traced=True)["peak_traced_MB"]
            print(r, flush=True)


if __name__ == "__main__":
    main()
