"""Benchmark the simulator: time and peak memory to converge OSPF + LDP.

    python benchmarks/bench_sim.py                       # ISP-shaped 100 ... 1500: the table
    python benchmarks/bench_sim.py --isp 3000 [--seed 1] [--json]   # ~14 GB, ~40 CPU min
    python benchmarks/bench_sim.py --routers 100,200 [--extra 100] [--igp both] [--link-down]
    python benchmarks/bench_sim.py --isp 200 --profile     # cProfile, in this process

The default cases are real-ISP-shaped maps (`benchmarks/topogen.isp_topology`: a meshed
core, long chains and rings, a quarter of the routers on a single link, ~1.15 links a
router, like the Topology Zoo and Rocketfuel maps), every router running OSPF and LDP
(LDP on each router's SPF routes), every prefix a FEC. `--routers` adds random
connected graphs (spanning tree + `extra` random links) and `--igp reference|both` LDP
on the centrally computed RIB, the simulator before OSPF.

Each case runs in a fresh interpreter, so its peak RSS (ru_maxrss, the whole process:
~40 MB of it is the interpreter with everything imported) is its own. Time is from
building the `Simulation` to convergence: wall and CPU seconds of that process (the
machine may be shared: the load average before each case is printed). Targets
(docs/scale.md): 750 routers < 30 s and < 1 GB, 3,000 routers < 5 min and < 4 GB.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.topogen import isp_topology, random_topology  # noqa: E402
from lsr.core.topology import Topology, load_topology  # noqa: E402
from lsr.sim import IGP_MODES, Simulation  # noqa: E402

# (routers, seconds, MB): what the issue asks of OSPF + LDP on one core
TARGETS = {750: (30.0, 1024.0), 3000: (300.0, 4096.0)}


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def topology(case: str, extra: int, seed: int) -> Topology:
    if case == "backbone":
        return load_topology(ROOT / "topologies" / "backbone.yaml")
    kind, _, n = case.partition("-")
    if kind == "isp":
        return isp_topology(int(n), seed)
    return random_topology(int(n), extra, seed, max_cost=10, name="bench")


def bench(name: str, topo: Topology, igp: str, link_down: bool = False) -> dict:
    rss0 = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    sim = Simulation(topo, igp=igp)
    res = sim.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _rss_mb()
    ospf = sim.ospf_summary() if sim.ospf else {}
    out = {
        "case": name,
        "igp": igp,
        "routers": len(sim.routers),
        "links": len(topo.links),
        "converged": res.converged,
        "virtual_s": round(res.time, 6),
        "events": res.events,
        "ldp_messages": sum(res.messages.values()),
        "label_mappings": res.messages.get("LABEL_MAPPING", 0),
        "ospf_packets": ospf.get("packets", 0),
        "spf_runs": ospf.get("spf_runs", 0),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "rss_base_MB": rss0,
        "peak_rss_MB": peak,
    }
    if igp == "ospf":  # the reference model is the oracle: OSPF must have built its RIBs
        out["ribs_equal_reference"] = all(sim.ribs[r] == sim.igp.rib(r) for r in sim.routers)
    if link_down:  # the first router-router link fails: SPF + withdraw + remap
        t1, c1 = time.perf_counter(), time.process_time()
        li = next(lk.index for lk in topo.links if all(topo.nodes[x].is_router for x in lk.nodes))
        sim.link_down(li)
        r2 = sim.run()
        out["link_down_wall_s"] = round(time.perf_counter() - t1, 2)
        out["link_down_cpu_s"] = round(time.process_time() - c1, 2)
        out["link_down_converged"] = r2.converged
    return out


def _child(case: str, igp: str, a: argparse.Namespace) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", case, "--igp", igp, "--extra", str(a.extra),
           "--seed", str(a.seed)] + (["--link-down"] if a.link_down else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        print(f"{case} {igp}: failed (exit {p.returncode}): {last}", file=sys.stderr, flush=True)
        return None
    return json.loads(p.stdout.splitlines()[-1])


def _mb(mb: float) -> str:
    return f"{mb / 1024:.2f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def _target(r: dict) -> str:
    t = TARGETS.get(r["routers"])
    if t is None:
        return ""
    def word(ok: bool) -> str:
        return "met" if ok else "missed"
    return (f"time {word(r['wall_s'] < t[0])} (< {t[0]:.0f} s), "
            f"memory {word(r['peak_rss_MB'] < t[1])} (< {_mb(t[1])})")


def table(rows: list[dict]) -> str:
    head = ("| routers | links | sim wall | CPU | peak memory (RSS) | label mappings "
            "| OSPF packets | target | load before |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['routers']:,} ({r['case']}, {r['igp']}) | {r['links']:,} | {r['wall_s']:.1f} s "
            f"| {r['cpu_s']:.1f} s | {_mb(r['peak_rss_MB'])} | {r['label_mappings']:,} "
            f"| {r['ospf_packets']:,} | {_target(r)} | {r['load']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--isp", default=None,
                    help="ISP-shaped sizes, comma-separated (default 100,200,400,750,1500)")
    ap.add_argument("--routers", default="", help="random graph sizes, comma-separated")
    ap.add_argument("--extra", type=int, default=100, help="random graphs: links past the tree")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--igp", choices=(*IGP_MODES, "both"), default="ospf")
    ap.add_argument("--backbone", action="store_true", help="also the bundled backbone")
    ap.add_argument("--link-down", action="store_true", help="then fail a link, reconverge")
    ap.add_argument("--profile", action="store_true", help="cProfile each case in this process")
    ap.add_argument("--json", action="store_true", help="one JSON object per case")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # one case, JSON on stdout
    a = ap.parse_args()
    if a.worker:
        r = bench(a.worker, topology(a.worker, a.extra, a.seed), a.igp, a.link_down)
        print(json.dumps(r), flush=True)
        return
    isp = a.isp if a.isp is not None else ("" if a.routers else "100,200,400,750,1500")
    cases = (["backbone"] if a.backbone else []) + \
        [f"isp-{n}" for n in isp.split(",") if n] + \
        [f"random-{n}" for n in a.routers.split(",") if n]
    igps = IGP_MODES if a.igp == "both" else (a.igp,)
    rows = []
    for case in cases:
        for igp in igps:
            if a.profile:
                pr = cProfile.Profile()
                pr.enable()
                r = bench(case, topology(case, a.extra, a.seed), igp, a.link_down)
                pr.disable()
                print(r)
                pstats.Stats(pr).sort_stats("tottime").print_stats(30)
                continue
            load = f"{os.getloadavg()[0]:.1f}"
            r = _child(case, igp, a)
            if r is None:
                continue
            r["load"] = load
            rows.append(r)
            print(json.dumps(r) if a.json else
                  f"{case} {igp}: {r['wall_s']} s wall, {r['cpu_s']} s CPU, "
                  f"{_mb(r['peak_rss_MB'])}, converged {r['converged']}", flush=True)
    if rows and not a.json:
        print()
        print(table(rows))


if __name__ == "__main__":
    main()
