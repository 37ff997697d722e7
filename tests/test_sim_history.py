"""After any sequence of failures and repairs -- links down and up, routers stopped and
started -- the simulator's converged tables are those of a simulation that starts in the
final state: a network's tables depend on its state, not on how it got there (labels
are planned per FEC, RFC 5036 leaves the choice to the LSR). Each random sequence is
checked after every step: the running routers' LFIBs (VRF and 6PE parts included), VRF
tables and BGP Loc-RIBs, and the run says it converged whenever the fresh one does.

Found this way: a restarted router took its links that were down for up (a lab router
reads their carrier); a run stopped as converged during a restarted router's RFC 6987
stub-router time; a restarted PE never exported its VRFs again; two BGP speakers that
connected to each other at the same moment could see the other's OPEN before their own
connection was up (a float rounding in the simulated TCP) and failed every retry."""

from __future__ import annotations

import json
import random

import pytest

from bgp import views
from lsr.core.topology import load_topology
from lsr.sim import Simulation
from tests.conftest import ROOT, TOPOLOGIES


def _tables(s: Simulation) -> dict:
    lf = s.lfib_json()
    out: dict = {"lfib": {r: v for r, v in lf["routers"].items() if r not in s.stopped}}
    if any(r.vrfs for r in s.topo.routers):
        out["vrf"] = {r: v for r, v in s.vrf_json()["routers"].items() if r not in s.stopped}
    out["bgp"] = {r: {v: sorted(json.dumps(x, sort_keys=True, default=str)
                                for x in views.routes(i, fam))
                      for v, fam in views.VIEWS.items() if fam in i.cfg.families}
                  for r, i in s.bgp.items() if r not in s.stopped}
    return out


def _fresh(path, down: set[int], stopped: set[str]) -> Simulation:
    s = Simulation(load_topology(path))
    q = s.quiet_time()
    s.run(quiet=q)
    for i in sorted(down):
        s.link_down(i)
        s.run(quiet=q)
    for r in sorted(stopped):
        s.router_stop(r)
    if stopped:
        s.run(quiet=q)
    return s


@pytest.mark.parametrize("path,seed", [
    (TOPOLOGIES / "l3vpn.yaml", 0), (TOPOLOGIES / "l3vpn.yaml", 5),
    (TOPOLOGIES / "6pe.yaml", 1), (TOPOLOGIES / "6vpe.yaml", 2),
    (TOPOLOGIES / "diamond.yaml", 1), (TOPOLOGIES / "ring.yaml", 1),
    (ROOT / "tests" / "data" / "bgp-rr.yaml", 7)])
def test_tables_depend_on_the_state_not_the_history(path, seed):
    t = load_topology(path)
    rng = random.Random(seed)
    s = Simulation(t)
    q = s.quiet_time()
    s.run(quiet=q)
    down: set[int] = set()
    stopped: set[str] = set()
    routers = [r.name for r in t.routers]
    done: list[str] = []
    for _ in range(10):
        if rng.random() < 0.5:
            i = rng.randrange(len(t.links))
            (s.link_up if i in down else s.link_down)(i)
            (down.discard if i in down else down.add)(i)
            done.append(f"{'up' if i not in down else 'down'} {t.link_name(t.links[i])}")
        else:
            r = rng.choice(routers)
            (s.router_start if r in stopped else s.router_stop)(r)
            (stopped.discard if r in stopped else stopped.add)(r)
            done.append(f"{'start' if r not in stopped else 'stop'} {r}")
        res = s.run(quiet=q)
        f = _fresh(path, down, stopped)
        a, b = _tables(s), _tables(f)
        assert a == b, f"after {done}: {[k for k in a if a[k] != b[k]]} differ"
        assert res.converged or not f.run(quiet=q).converged, f"after {done}: not converged"
