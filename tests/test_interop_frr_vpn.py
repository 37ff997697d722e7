"""A mixed VPN lab with FRR's bgpd as the route reflector (tests/data/l3vpn-frr.yaml: the
l3vpn customers on our three PEs, rr an FRR node running zebra, ospfd, ldpd and bgpd).

Every PE session is Established (in our status and in FRR's own `show bgp summary
json`); FRR's `show bgp ipv4 vpn json` (read raw through vtysh, labels and route
targets from its per-prefix JSON) holds exactly the VPN routes our reflector holds in
the simulator, and our PEs' Loc-RIBs the same (RDs, route targets, labels); the PEs'
VRF tables equal the simulator's, and the sites ping their own VPN. Needs root and FRR
with bgpd.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess

import pytest

from tests.conftest import ROOT, frr_missing, is_root
from tests.wait import wait_for

FRR_WHY = frr_missing("bgpd") if is_root() else "needs root"
pytestmark = [
    pytest.mark.netns, pytest.mark.slow,
    pytest.mark.skipif(not is_root(), reason="needs root"),
    pytest.mark.skipif(FRR_WHY is not None, reason=f"FRR not usable: {FRR_WHY}"),
]

if is_root() and FRR_WHY is None:
    import lsr.lab as lab
    from bgp import views
    from lsr.core.topology import host_address, load_topology
    from lsr.lab import frr
    from lsr.lab.state import lab_dir, ns_name
    from lsr.sim import converge

FILE = ROOT / "tests" / "data" / "l3vpn-frr.yaml"
NAME = f"{os.environ.get('LSR_TEST_LAB_PREFIX', 'vp')}f{os.getpid() % 1000}"
PES = {"pe1": "10.255.0.1", "pe2": "10.255.0.2", "pe3": "10.255.0.3"}
RR = "10.255.0.10"


@pytest.fixture(scope="module")
def frrvpn():
    lab.down(NAME)
    try:
        yield lab.up(load_topology(FILE), name=NAME, timeout=120)
    finally:
        lab.down(NAME)
    assert not lab_dir(NAME).exists()
    assert frr.leftover_processes(NAME) == []


def _frr_json(command: str):
    return json.loads(frr.vtysh(NAME, "rr", command))


def frr_vpn_routes() -> set[tuple]:
    """FRR's best VPN-IPv4 paths from its own JSON: (RD, prefix, next hop, label, RTs)."""
    table = _frr_json("show bgp ipv4 vpn json")["routes"]["routeDistinguishers"]
    out = set()
    for rd, prefixes in table.items():
        for prefix in prefixes:
            detail = _frr_json(f"show bgp ipv4 vpn {prefix} json")[rd]
            (best,) = [p for p in detail["paths"] if p.get("bestpath", {}).get("overall")]
            rts = tuple(sorted(x[3:] for x in best["extendedCommunity"]["string"].split()
                               if x.startswith("RT:")))
            out.add((rd, prefix, best["nexthops"][0]["ip"], best["remoteLabel"], rts))
    return out


def _ours(routes: list[dict]) -> set[tuple]:
    return {(r["rd"], r["prefix"], r["next_hop"], r["label"], tuple(sorted(r["route_targets"])))
            for r in routes}


def test_every_pe_session_established(frrvpn):
    st = lab.status(NAME)["routers"]
    for pe in PES:
        assert st[pe]["bgp"] == {RR: "Established"}
    assert st["rr"]["bgp"] == {a: "Established" for a in PES.values()}
    peers = _frr_json("show bgp summary json")["ipv4Vpn"]["peers"]
    assert {a: p["state"] for a, p in peers.items()} == {a: "Established" for a in PES.values()}


def test_vpn_routes_equal_frrs(frrvpn):
    sim = converge(load_topology(FILE)).sim
    want = _ours(views.routes(sim.bgp["rr"], views.VIEWS["vpn"]))  # our reflector's
    assert len(want) == 6 and {x[3] for x in want} == {1100, 1101, 5100, 5101, 6100, 6101}
    wait_for(lambda: frr_vpn_routes() == want, 20, "FRR's VPN routes to be the simulator's")
    for pe in PES:  # each PE keeps every route (both its VRFs import them) from FRR
        routes = lab.bgp(NAME, pe, "vpn")["routers"][pe]["routes"]
        assert _ours(routes) == want
        assert {r["from"] for r in routes} == {"local", "rr"}
    assert _ours(lab.bgp(NAME, "rr", "vpn")["routers"]["rr"]["routes"]) == want


def test_vrf_tables_and_sites(frrvpn):
    topo = load_topology(FILE)
    sim = converge(topo).sim
    ours = [r.name for r in topo.routers if not frr.is_frr(topo, r.name)]
    wait_for(lambda: lab.vrf(NAME) == sim.vrf_json(), 20, "the VRF tables of the simulator")
    # FRR's ldpd allocates its own labels: our routers' LFIBs, not rr's, equal the sim's
    assert lab.lfib(NAME, ours) == sim.lfib_json(ours)
    hosts = [h.name for h in topo.hosts]
    for a, b in itertools.permutations(hosts, 2):
        if topo.vrf_of(a) == topo.vrf_of(b):
            r = subprocess.run(["ip", "netns", "exec", ns_name(NAME, a), "ping", "-c", "1",
                                "-W", "2", str(host_address(topo, b))], capture_output=True)
            assert r.returncode == 0, (a, b)
