"""6VPE with FRR's bgpd as the route reflector (tests/data/6vpe-frr.yaml: the l3vpn
customers with IPv6 in their VRFs, rr an FRR node).

Every PE session is Established with VPN-IPv6 (AFI 2 / SAFI 128) negotiated in FRR's
own `show bgp summary json`; FRR's `show bgp ipv6 vpn` (read raw through vtysh: RDs,
next hops ::ffff:<PE loopback>, labels, route targets) holds exactly the VPN-IPv6 routes
our reflector holds in the simulator, and each PE's Loc-RIB the same from FRR; the VRF
tables equal the simulator's and every site pings its own VPN's sites over IPv6. Needs
root and FRR with bgpd.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from ipaddress import ip_address

import pytest

from tests.conftest import ROOT, is_root
from tests.test_interop_frr_vpn import FRR_WHY
from tests.wait import wait_for

pytestmark = [
    pytest.mark.netns, pytest.mark.slow,
    pytest.mark.skipif(not is_root(), reason="needs root"),
    pytest.mark.skipif(FRR_WHY is not None, reason=f"FRR not usable: {FRR_WHY}"),
]

if is_root() and FRR_WHY is None:
    import lsr.lab as lab
    from bgp import views
    from lsr.core.topology import load_topology
    from lsr.lab import frr
    from lsr.lab.state import ns_name
    from lsr.sim import converge

FILE = ROOT / "tests" / "data" / "6vpe-frr.yaml"
NAME = f"{os.environ.get('LSR_TEST_LAB_PREFIX', 'vp')}6f{os.getpid() % 1000}"
PES = {"pe1": "10.255.0.1", "pe2": "10.255.0.2", "pe3": "10.255.0.3"}


@pytest.fixture(scope="module")
def frr6():
    lab.down(NAME)
    try:
        yield lab.up(load_topology(FILE), name=NAME, timeout=120)
    finally:
        lab.down(NAME)
    assert frr.leftover_processes(NAME) == []


def _frr_json(command: str):
    return json.loads(frr.vtysh(NAME, "rr", command))


def _mapped(a: str) -> str:
    """FRR prints ::ffff:a.b.c.d in hex (::ffff:aff:1); ours: ::ffff:10.255.0.1."""
    v4 = ip_address(a).ipv4_mapped
    return f"::ffff:{v4}" if v4 is not None else a


def frr_vpn6_routes() -> set[tuple]:
    """FRR's best VPN-IPv6 paths from its own JSON: (RD, prefix, next hop, label, RTs)."""
    table = _frr_json("show bgp ipv6 vpn json")["routes"]["routeDistinguishers"]
    out = set()
    for rd, prefixes in table.items():
        for prefix in prefixes:
            detail = _frr_json(f"show bgp ipv6 vpn {prefix} json")[rd]
            (best,) = [p for p in detail["paths"] if p.get("bestpath", {}).get("overall")]
            rts = tuple(sorted(x[3:] for x in best["extendedCommunity"]["string"].split()
                               if x.startswith("RT:")))
            out.add((rd, prefix, _mapped(best["nexthops"][0]["ip"]), best["remoteLabel"], rts))
    return out


def _ours(routes: list[dict]) -> set[tuple]:
    return {(r["rd"], r["prefix"], r["next_hop"], r["label"], tuple(sorted(r["route_targets"])))
            for r in routes}


def test_sessions_negotiate_vpn_ipv6(frr6):
    peers = _frr_json("show bgp summary json")["ipv6Vpn"]["peers"]
    assert {a: p["state"] for a, p in peers.items()} == {a: "Established" for a in PES.values()}
    for pe in PES:
        (n,) = lab.bgp(NAME, pe)["routers"][pe]["neighbors"]
        assert n["state"] == "Established" and "ipv6-vpn" in n["families"]


def test_vpn6_routes_equal_frrs(frr6):
    sim = converge(load_topology(FILE)).sim
    want = _ours(views.routes(sim.bgp["rr"], views.VIEWS["vpn6"]))  # our reflector's
    assert len(want) == 6 and {x[2] for x in want} == {f"::ffff:{a}" for a in PES.values()}
    wait_for(lambda: frr_vpn6_routes() == want, 20, "FRR's VPN-IPv6 routes to be the simulator's")
    for pe in PES:  # each PE keeps every route (its VRFs import them) from FRR
        routes = lab.bgp(NAME, pe, "vpn6")["routers"][pe]["routes"]
        assert _ours(routes) == want and {r["from"] for r in routes} == {"local", "rr"}
    assert _ours(lab.bgp(NAME, "rr", "vpn6")["routers"]["rr"]["routes"]) == want


def test_vrf_tables_and_sites_over_ipv6(frr6):
    topo = load_topology(FILE)
    sim = converge(topo).sim
    wait_for(lambda: lab.vrf(NAME) == sim.vrf_json(), 20, "the VRF tables of the simulator")
    hosts = [h.name for h in topo.hosts]
    bad = []
    for a, b in itertools.permutations(hosts, 2):
        if topo.vrf_of(a) == topo.vrf_of(b):
            (addr,) = [i.address6.ip for i in topo.nodes[b].interfaces.values()]
            r = subprocess.run(["ip", "netns", "exec", ns_name(NAME, a), "ping", "-6", "-c", "1",
                                "-W", "2", str(addr)], capture_output=True, timeout=10)
            if r.returncode != 0:
                bad.append((a, b))
    assert not bad, bad
