"""Outage when a link fails inside a namespace: our routers vs FRR routers (root, FRR).

    sudo python benchmarks/bench_outage.py [--rounds N] [--rate PPS] [--variants ours,mixed,frr]
                                           [--json OUT]

A diamond whose costs make p1 the path in both directions and p2 the backup:

    ce1 - pe1 -10- p1 -10- pe2 - ce2
            \\               /
             `-20- p2 -20-'

Variants, in the same run: `ours` (every router ours), `mixed` (p1 and p2 FRR:
zebra + ospfd + ldpd, our dataplane fed from FRR's RIB and bindings), `frr`
(all four routers FRR). Hello/dead/retransmit, SPF throttle and LSA timers are
the same everywhere: FRR's ospfd.conf is rendered from our OspfConfig
(`lsr.lab.frr.render_ospfd`).

Each round: UDP probe streams (sequence numbers, `lsr.lab.probe_stream`) run
both ways, ce1 -> ce2 and ce2 -> ce1; after `--before` seconds
`ip link set eth2 down` runs inside pe1's namespace (pe1's link to p1, the
way any lab tool fails a link). Per direction: probes lost and the outage,
as probes lost x the probe interval (`lost_ms`), and as the arrival gap from the
last probe before the loss to the first after it (`gap_ms`, captured in the
receiving host; it also holds any stall of the sending process on a loaded
machine). ce1 -> ce2 is repaired by the ingress PE
(pe1) alone; ce2 -> ce1 by p1 (its end of the link loses carrier too) and by
pe2 once the new LSAs reach it. Then the link comes back, the lab reconverges
(LFIBs equal the simulator's) and idles past the SPF hold time before the
next round. Numbers to report; nothing asserted (tests/test_interop_frr_ospf.py
asserts that the traffic recovers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOPO = """
name: outage
topology:
  defaults:
    ldp: {{hello_interval: 1, hello_holdtime: 3}}
  nodes:
    ce1: {{kind: host}}
    pe1: {{kind: {pe}, loopback: 10.255.0.1}}
    p1: {{kind: {p}, loopback: 10.255.0.2}}
    p2: {{kind: {p}, loopback: 10.255.0.3}}
    pe2: {{kind: {pe}, loopback: 10.255.0.4}}
    ce2: {{kind: host}}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet: 192.168.1.0/24
    - endpoints: [pe1:eth2, p1:eth1]
      cost: 10
    - endpoints: [pe1:eth3, p2:eth1]
      cost: 20
    - endpoints: [p1:eth2, pe2:eth2]
      cost: 10
    - endpoints: [p2:eth2, pe2:eth3]
      cost: 20
    - endpoints: [pe2:eth1, ce2:eth0]
      subnet: 192.168.2.0/24
"""
VARIANTS = {"ours": ("lsr", "lsr"), "mixed": ("lsr", "frr"), "frr": ("frr", "frr")}
FAIL = ("pe1", "eth2")  # pe1's link to p1
PORTS = {"ce1->ce2": 47001, "ce2->ce1": 47002}


def topology(variant: str) -> Any:
    from lsr.core.topology import parse_topology

    pe, p = VARIANTS[variant]
    return parse_topology(TOPO.format(pe=pe, p=p))


def _spawn(lab: str, node: str, args: list[str]) -> subprocess.Popen:
    from lsr.lab.state import ns_name

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.Popen(["ip", "netns", "exec", ns_name(lab, node), sys.executable, "-m",
                          "lsr.lab.probe_stream", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None
    if p.stdout.readline().strip() != "ready":
        p.kill()
        raise RuntimeError(f"probe {args[0]} in {node}: {p.communicate()[1][-300:]}")
    return p


def _result(p: subprocess.Popen, timeout: float) -> dict[str, Any]:
    out, err = p.communicate(timeout=timeout)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"probe failed: {err[-300:]}")
    return json.loads(lines[-1])


def fail_once(lab: str, topo: Any, rate: int = 1000, before: float = 1.0,
              after: float = 3.0) -> dict[str, dict[str, Any]]:
    """One failure of pe1-p1 from inside pe1 under both probe streams; the link stays down.
    Per direction: sent, lost, outage_ms (None if the stream never came back),
    first_after_ms (first probe after the gap, from the failure)."""
    from lsr.lab import exec_in
    from lsr.lab.converge import analyse

    ends = {"ce1->ce2": ("ce1", "ce2"), "ce2->ce1": ("ce2", "ce1")}
    seconds = before + after
    # The receivers stop at `until`: room for four interpreters to start on a loaded box.
    until = time.time() + seconds + 8.0
    procs: list[subprocess.Popen] = []
    try:
        sniffs = {d: _spawn(lab, dst, ["sniff", "eth0", str(PORTS[d]), repr(until)])
                  for d, (_, dst) in ends.items()}
        procs += sniffs.values()
        sends = {}
        for d, (src, dst) in ends.items():
            ip = str(topo.interface(dst, "eth0").address.ip)
            sends[d] = _spawn(lab, src, ["send", ip, str(PORTS[d]), str(rate), str(seconds)])
            procs.append(sends[d])
        time.sleep(before)
        t_fail = time.time()
        if exec_in(lab, FAIL[0], ["ip", "link", "set", FAIL[1], "down"]) != 0:
            raise RuntimeError("ip link set down failed")
        out = {}
        for d in ends:
            sent = _result(sends[d], seconds + 10)
            cap = _result(sniffs[d], until - time.time() + 10)
            st = analyse([sent["t0"] + t for t in sent["sent_at"]], cap["arrivals"], t_fail)
            recovered = st["recovered"]
            lost = sent["total"] - st["received"]
            out[d] = {"sent": sent["total"], "lost": lost,
                      "lost_ms": round(lost * 1000 / rate, 1),
                      "gap_ms": st["outage_ms"] if recovered else None,
                      "first_after_ms": (st["first_after"] or {}).get("t_ms"),
                      "recovered": recovered}
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


def restore(lab: str, settle: float = 6.0) -> float:
    """Link up again; seconds until the lab reconverged. Then idle past the SPF and LSA
    hold times (5 s max) so the next failure starts from a quiet network."""
    import lsr.lab

    if lsr.lab.exec_in(lab, FAIL[0], ["ip", "link", "set", FAIL[1], "up"]) != 0:
        raise RuntimeError("ip link set up failed")
    t = lsr.lab.wait_converged(lab, timeout=60)
    time.sleep(settle)  # a fixed idle on purpose: the quiet period is what is wanted
    return t


def run_variant(variant: str, rounds: int, rate: int) -> dict[str, Any]:
    import lsr.lab

    topo = topology(variant)
    name = f"bo{variant[:2]}{os.getpid() % 1000}"
    runs = []
    try:
        L = lsr.lab.up(topo, name=name, timeout=90)
        time.sleep(6.0)  # past the start-up SPF/LSA hold times, as between rounds
        for _ in range(rounds):
            r = fail_once(name, topo, rate)
            r["reconverged_s"] = round(restore(name), 3)
            runs.append(r)
            print(f"  {variant}: {json.dumps(r)}", flush=True)
        up = L.timings.get("converged")
    finally:
        lsr.lab.down(name)
    return {"lab_up_s": up, "runs": runs}


def _summary(runs: list[dict[str, Any]], d: str) -> str:
    rec = [r[d] for r in runs if r[d]["recovered"]]
    if not rec:
        return "not recovered"

    def stat(key: str) -> str:
        v = [x[key] or 0.0 for x in rec]
        return f"median {statistics.median(v):.0f} ms (min {min(v):.0f}, max {max(v):.0f})"

    s = f"lost {stat('lost_ms')}; arrival gap {stat('gap_ms')}"
    return s + (f"; {len(runs) - len(rec)} not recovered" if len(rec) < len(runs) else "")


def main() -> int:
    if os.geteuid() != 0:
        print("bench_outage: needs root", file=sys.stderr)
        return 2
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--variants", default="ours,mixed,frr")
    ap.add_argument("--json")
    args = ap.parse_args()
    from lsr.lab.frr import missing_tools
    from ospf.config import from_topology

    cfg = from_topology(topology("ours"), "pe1")
    print(f"timers: hello {cfg.hello_interval} s, dead {cfg.dead_interval} s, spf "
          f"{cfg.spf_delay * 1000:.0f}/{cfg.spf_hold * 1000:.0f}/{cfg.spf_max_hold * 1000:.0f} ms, "
          f"MinLSInterval {cfg.min_ls_interval} s, MinLSArrival {cfg.min_ls_arrival} s")
    results: dict[str, Any] = {}
    for v in args.variants.split(","):
        if v != "ours" and missing_tools():
            print(f"skipping {v}: {missing_tools()}")
            continue
        results[v] = run_variant(v, args.rounds, args.rate)
    print(f"\noutage after `ip link set eth2 down` in pe1 ({args.rounds} rounds, "
          f"{args.rate} probes/s each way)")
    for v, res in results.items():
        print(f"  {v:6s} lab up {res['lab_up_s']:.1f} s")
        for d in PORTS:
            print(f"    {d}: {_summary(res['runs'], d)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
