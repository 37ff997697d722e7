"""Fingerprints of simulation runs: what the simulator's efficiency work must not change.

Each scenario (bundled topologies, random and ISP-shaped graphs, options, failures,
restarts) runs in the simulator while every input an LDP or OSPF instance gets is
hashed: the bytes on every wire (LDP TCP segments, LDP Hellos, OSPF packets) with
their virtual times, and every LFIB diff and OSPF RIB the instances hand out. After
each step the fingerprint also takes the LFIBs, the LIBs (local and remote labels),
the OSPF RIBs and the message counters. `tests/data/sim-fingerprint.json` holds the
fingerprints made by the code before the efficiency work (commit named in the file);
`tests/test_sim_identical.py` asserts today's code gives the same. OSPF flood pacing
(grouped LS Updates and delayed acks) changed the wire deliberately: the file was made
again then, and `tests/data/sim-tables-before.json` keeps the converged tables (LFIBs,
LIBs, RIBs) of the first fingerprint, which nothing may change.

    python -m tests.simprint --write    # regenerate (only for a deliberate change)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from benchmarks.topogen import isp_topology_yaml, random_topology_yaml
from ldp import events as ldp_ev
from ldp.instance import LdpInstance
from lsr import sim as sim_module
from lsr.core.lfib import LfibDiff
from lsr.core.topology import Topology, load_topology, parse_topology
from lsr.sim import Simulation
from ospf import events as ospf_ev
from ospf.instance import OspfInstance

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "sim-fingerprint.json"


def _h(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:24]


def _diff_json(d: LfibDiff) -> list:
    return [[e.to_json() for e in d.ftn_set], [str(p) for p in d.ftn_del],
            [e.to_json() for e in d.ilm_set], list(d.ilm_del)]


def _rib_json(rib: dict) -> list:
    return [rib[p].to_json() for p in sorted(rib, key=lambda n: (int(n.network_address),
                                                                 n.prefixlen))]


class Trace:
    """A running hash of what the LDP and OSPF instances receive and decide."""

    def __init__(self) -> None:
        self.wire = hashlib.sha256()
        self.decisions = hashlib.sha256()

    def ldp(self, inst: LdpInstance, event: Any, now: float | None, out: list) -> None:
        data = getattr(event, "data", None)
        if isinstance(data, bytes):
            self.wire.update(f"{now!r} {inst.name} {type(event).__name__} "
                             f"{getattr(event, 'conn', getattr(event, 'ifname', ''))} ".encode()
                             + data)
        for a in out:
            if isinstance(a, ldp_ev.ApplyLfib):
                self.decisions.update(f"{now!r} {inst.name} ".encode()
                                      + json.dumps(_diff_json(a.diff)).encode())

    def ospf(self, inst: OspfInstance, event: Any, now: float, out: list) -> None:
        if isinstance(event, ospf_ev.PacketReceived):
            self.wire.update(f"{now!r} {inst.rid} {event.ifname} {event.src} {event.dst} "
                             .encode() + event.data)
        for a in out:
            if isinstance(a, ospf_ev.RoutesChanged):
                self.decisions.update(f"{now!r} {inst.rid} ".encode()
                                      + json.dumps(_rib_json(a.rib)).encode())


@contextmanager
def traced() -> Iterator[Trace]:
    """Every LdpInstance / OspfInstance `handle` call feeds the trace while inside."""
    t = Trace()
    ldp_handle, ospf_handle = LdpInstance.handle, OspfInstance.handle

    def ldp(self: LdpInstance, event: Any, now: float | None = None) -> list:
        out = ldp_handle(self, event, now)
        t.ldp(self, event, now, out)
        return out

    def ospf(self: OspfInstance, event: Any, now: float) -> list:
        out = ospf_handle(self, event, now)
        t.ospf(self, event, now, out)
        return out

    LdpInstance.handle = ldp  # type: ignore[method-assign]
    OspfInstance.handle = ospf  # type: ignore[method-assign]
    try:
        yield t
    finally:
        LdpInstance.handle = ldp_handle  # type: ignore[method-assign]
        OspfInstance.handle = ospf_handle  # type: ignore[method-assign]


def state(sim: Simulation, res: Any, t: Trace) -> dict[str, Any]:
    """One checkpoint: hashes of the tables, counters in clear."""
    ospf_counters: dict[str, int] = {}
    for inst in sim.ospf.values():
        for k, v in inst.counters.items():
            ospf_counters[k] = ospf_counters.get(k, 0) + v
    libs = {r: sim.instances[r].bindings() for r in sim.routers}
    return {
        "converged": res.converged,
        "time": round(res.time, 9),
        "ended": round(res.ended, 9),
        "wire": t.wire.hexdigest()[:24],
        "decisions": t.decisions.hexdigest()[:24],
        "lfibs": _h(sim.lfib_json()),
        "libs": _h(libs),
        "ribs": _h({r: _rib_json(sim.ribs[r]) for r in sim.routers}),
        "ldp_messages": res.messages,
        "ldp_counters": _h({r: sim.instances[r].counters() for r in sim.routers}),
        "ospf_counters": dict(sorted(ospf_counters.items())),
        "spf_runs": sum(i.spf_runs for i in sim.ospf.values()),
    }


def _with_defaults(text: str, defaults: dict) -> str:
    d = yaml.safe_load(text)
    d["topology"]["defaults"] = defaults
    return yaml.safe_dump(d, sort_keys=False)


def _router_links(topo: Topology) -> list[int]:
    return [ln.index for ln in topo.links if all(topo.nodes[n].is_router for n in ln.nodes)]


Step = Callable[[Simulation], Any]


def _scenarios() -> dict[str, tuple[Callable[[], Topology], str, list[tuple[str, Step]]]]:
    """name -> (topology, igp, [(step name, step)]); each step returns a SimResult."""
    def quiet(sim: Simulation) -> Any:
        return sim.run(quiet=sim.quiet_time())

    def down(k: int) -> Step:
        def f(sim: Simulation) -> Any:
            sim.link_down(_router_links(sim.topo)[k])
            return quiet(sim)
        return f

    def up(k: int) -> Step:
        def f(sim: Simulation) -> Any:
            sim.link_up(_router_links(sim.topo)[k])
            return quiet(sim)
        return f

    def stop(r: str, crash: bool = False) -> Step:
        def f(sim: Simulation) -> Any:
            sim.router_stop(r, crash=crash)
            return sim.advance(60.0)
        return f

    def start(r: str) -> Step:
        def f(sim: Simulation) -> Any:
            sim.router_start(r)
            return quiet(sim)
        return f

    out: dict[str, tuple[Callable[[], Topology], str, list[tuple[str, Step]]]] = {}
    for path in sorted((ROOT / "topologies").glob("*.yaml")):
        def topo(p: Path = path) -> Topology:
            return load_topology(p)
        out[f"{path.stem}/ospf"] = (topo, "ospf", [("converge", quiet), ("down0", down(0)),
                                                   ("up0", up(0))])
        out[f"{path.stem}/reference"] = (topo, "reference", [("converge", quiet),
                                                             ("down0", down(0))])

    def rnd(n: int, extra: int, seed: int, defaults: dict | None = None,
            nodes: dict | None = None) -> Callable[[], Topology]:
        def f() -> Topology:
            text = random_topology_yaml(n, extra, seed, max_cost=10, name="fp")
            if defaults:
                text = _with_defaults(text, defaults)
            if nodes:
                d = yaml.safe_load(text)
                d["topology"]["nodes"].update(nodes)
                text = yaml.safe_dump(d, sort_keys=False)
            return parse_topology(text, f"<random {n}/{seed}>")
        return f

    out["random-40/failures"] = (rnd(40, 20, 3), "ospf", [
        ("converge", quiet), ("down3", down(3)), ("down11", down(11)),
        ("stop-r5", stop("r5")), ("start-r5", start("r5")),
        ("crash-r9", stop("r9", crash=True)), ("start-r9", start("r9")),
        ("up3", up(3)), ("up11", up(11)),
        ("refresh", lambda sim: sim.advance(1900.0))])
    out["random-40/reference"] = (rnd(40, 20, 3), "reference", [
        ("converge", quiet), ("down3", down(3)), ("up3", up(3))])
    out["random-30/ordered-conservative-md5"] = (rnd(30, 15, 5, {
        "ldp": {"control": "ordered", "retention": "conservative", "explicit_null": True},
        "ospf": {"md5_key": "fingerprint"}}), "ospf", [
        ("converge", quiet), ("down2", down(2)), ("down7", down(7)), ("up2", up(2))])
    out["random-30/loopbacks-sync"] = (rnd(30, 15, 6, {
        "ldp": {"fecs": "loopbacks", "igp_sync": True}}), "ospf", [
        ("converge", quiet), ("down4", down(4)), ("up4", up(4))])
    # r0-r1 is a link of every random graph (r1's parent in the spanning tree): an MD5
    # key on one end only keeps that LDP session down for good. A run that stops at its
    # time limit, then one that stops once nothing changes (`quiet`).
    out["random-30/stuck"] = (rnd(30, 15, 8, nodes={"r1": {"ldp": {"passwords": {"r0": "k"}}}}),
                              "ospf", [
        ("limit", lambda sim: sim.run(max_time=200.0)), ("quiet", quiet), ("down1", down(1)),
        ("limit2", lambda sim: sim.run(max_time=45.5))])
    # A limit just past stale timer entries (retransmission timers re-armed at 0.00x s),
    # before the next live event: the run ends at the last stale one.
    out["random-30/stuck-limit"] = (
        rnd(30, 15, 8, nodes={"r1": {"ldp": {"passwords": {"r0": "k"}}}}), "ospf", [
            ("limit", lambda sim: sim.run(max_time=5.0125)), ("quiet", quiet)])
    out["random-100/failures"] = (rnd(100, 50, 7), "ospf", [
        ("converge", quiet), ("down0", down(0)), ("down20", down(20)), ("up0", up(0))])
    out["isp-80/failures"] = (
        lambda: parse_topology(isp_topology_yaml(80, 2), "<isp 80>"), "ospf", [
            ("converge", quiet), ("down5", down(5)), ("crash-r40", stop("r40", crash=True)),
            ("start-r40", start("r40")), ("up5", up(5))])
    return out


SCENARIOS = _scenarios()


def fingerprint(name: str, compact: int | None = None) -> list[dict[str, Any]]:
    """`compact`: compact the event queue past that many entries (`lsr.sim._COMPACT_MIN`,
    normally only large networks reach it); ignored by code without compaction."""
    make, igp, steps = SCENARIOS[name]
    topo = make()
    saved = getattr(sim_module, "_COMPACT_MIN", None)
    if compact is not None and saved is not None:
        sim_module._COMPACT_MIN = compact  # type: ignore[attr-defined]
    try:
        with traced() as t:
            sim = Simulation(topo, igp=igp)
            return [{"step": s, **state(sim, fn(sim), t)} for s, fn in steps]
    finally:
        if saved is not None:
            sim_module._COMPACT_MIN = saved  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    # the scenarios of the first fingerprint (newer topologies are pinned by their goldens)
    names = json.loads(DATA.read_text())["scenarios"] if DATA.exists() else SCENARIOS
    data = {"made_by": commit, "scenarios": {n: fingerprint(n) for n in SCENARIOS if n in names}}
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if a.write:
        DATA.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
