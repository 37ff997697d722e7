"""BGP with FRR's bgpd through failures: the lab stays right through its life.

One lab (tests/data/6vpe-frr.yaml: our three PEs with VPN-IPv4 and VPN-IPv6 customers,
FRR's bgpd the route reflector rr, reachable over p1 and over p2) is driven through
real failures, and after each the tables equal what they should for the new state:

* rr stopped (`lsr lab node NAME rr stop`): its bgpd stops with the rest of the node
  (Cease, RFC 4271 §6.7 / RFC 4486), our PEs' sessions go down and name why, the VPN
  routes learnt through it are withdrawn (RFC 4271 §9: the Loc-RIB and the VRFs lose
  them, RFC 4364 §4.3.3); started again, FRR's tables, ours and the VRFs equal the
  simulator's;
* `clear bgp *` in FRR's vtysh and bgpd alone killed (a crash): the sessions reset and
  come back with the same routes and labels;
* one of our PEs stopped: FRR withdraws its routes from the other PEs (RFC 4456 §8:
  the reflector re-advertises the change) and re-learns them when it starts;
* rr's links: one taken down inside its namespace (`ip link set eth1 down`), the IGP
  reroutes and the sessions between loopbacks survive; the other one too (`lsr lab
  link`), rr is cut off and the sessions end when the hold time (9 s) expires (RFC 4271
  §6.5), the VRFs lose the remote routes; both back: sessions, routes and pings return;
* afterwards our routers are idle.

A second, small lab (tests/data/frr-6pe.yaml) does the same for 6PE (RFC 4798) with
FRR as the other PE. Needs root and FRR with bgpd.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from ipaddress import ip_address

import pytest

from tests.conftest import ROOT, is_root
from tests.wait import wait_for


def _frr_missing() -> str | None:
    from lsr.lab.frr import FRR_LIBEXEC, missing_tools

    why = missing_tools()
    if why is None and not (FRR_LIBEXEC / "bgpd").exists():
        why = f"{FRR_LIBEXEC / 'bgpd'} not found"
    return why


FRR_WHY = _frr_missing() if is_root() else "needs root"
pytestmark = [
    pytest.mark.netns, pytest.mark.slow,
    pytest.mark.skipif(not is_root(), reason="needs root"),
    pytest.mark.skipif(FRR_WHY is not None, reason=f"FRR not usable: {FRR_WHY}"),
]

if is_root() and FRR_WHY is None:
    import lsr.lab as lab
    from bgp import views
    from lsr.core.topology import Topology, load_topology
    from lsr.lab import frr
    from lsr.lab.lsp import validate_live
    from lsr.lab.state import LabState, lab_dir, ns_name, pid_alive
    from lsr.sim import Simulation

FILE = ROOT / "tests" / "data" / "6vpe-frr.yaml"
FILE6PE = ROOT / "tests" / "data" / "frr-6pe.yaml"
_PREFIX = os.environ.get("LSR_TEST_LAB_PREFIX", "")
NAME = f"{_PREFIX}bf{os.getpid() % 1000}"
NAME6 = f"{_PREFIX}bf6p{os.getpid() % 1000}"
PES = {"pe1": "10.255.0.1", "pe2": "10.255.0.2", "pe3": "10.255.0.3"}
RR = "10.255.0.10"
HOLD = 9  # the topology's bgp.hold_time


def lsr_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`lsr ARGS...` as a user runs it (this tree's package)."""
    return subprocess.run([sys.executable, "-c", "from lsr.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def vpnlab():
    lab.down(NAME)
    try:
        yield lab.up(load_topology(FILE), name=NAME, timeout=120)
    finally:
        lab.down(NAME)
    assert not lab_dir(NAME).exists()
    assert frr.leftover_processes(NAME) == []


# ---------------------------------------------------------------- what should be


def simulated(file=FILE, stopped: Sequence[str] = (), down: Sequence[int] = ()) -> Simulation:
    """The simulator converged with `down` links and `stopped` routers, as
    `lsr.lab.expected` runs it."""
    sim = Simulation(load_topology(file))
    quiet = sim.quiet_time()
    sim.run(quiet=quiet)
    for i in down:
        sim.link_down(i)
        sim.run(quiet=quiet)
    for r in stopped:
        sim.router_stop(r)
    if stopped:
        sim.run(quiet=quiet)
    return sim


def _key(r: dict) -> tuple:
    return (r["rd"], r["prefix"], r["next_hop"], r["label"], tuple(sorted(r["route_targets"])))


def sim_routes(sim: Simulation, router: str, view: str) -> set[tuple]:
    return {_key(r) for r in views.routes(sim.bgp[router], views.VIEWS[view])}


def our_routes(router: str, view: str) -> set[tuple]:
    return {_key(r) for r in lab.bgp(NAME, router, view)["routers"][router]["routes"]}


def _frr_json(command: str, node: str = "rr", name: str | None = None):
    return json.loads(frr.vtysh(name or NAME, node, command))


def _mapped(a: str) -> str:
    """FRR prints ::ffff:a.b.c.d in hex (::ffff:aff:1); we write ::ffff:10.255.0.1."""
    v4 = ip_address(a).ipv4_mapped if ip_address(a).version == 6 else None
    return f"::ffff:{v4}" if v4 is not None else a


def frr_routes(view: str) -> set[tuple]:
    """FRR's best VPN-IPv4 (`vpn`) or VPN-IPv6 (`vpn6`) paths from its own JSON, read
    raw through vtysh: (RD, prefix, next hop, label, RTs)."""
    afi = {"vpn": "ipv4 vpn", "vpn6": "ipv6 vpn"}[view]
    table = _frr_json(f"show bgp {afi} json").get("routes", {}).get("routeDistinguishers", {})
    out = set()
    for rd, prefixes in table.items():
        for prefix in prefixes:
            detail = _frr_json(f"show bgp {afi} {prefix} json")[rd]
            (best,) = [p for p in detail["paths"] if p.get("bestpath", {}).get("overall")]
            rts = tuple(sorted(x[3:] for x in best["extendedCommunity"]["string"].split()
                               if x.startswith("RT:")))
            out.add((rd, prefix, _mapped(best["nexthops"][0]["ip"]), best["remoteLabel"], rts))
    return out


def pe_states() -> dict[str, str | None]:
    st = lab.status(NAME)["routers"]
    return {pe: st[pe].get("bgp", {}).get(RR) for pe in PES}


def established_counts() -> dict[str, int]:
    """How many times each PE's session with rr has been Established."""
    return {pe: lab.bgp(NAME, pe)["routers"][pe]["neighbors"][0]["established"] for pe in PES}


def assert_all_up(sim: Simulation | None = None, timeout: float = 30) -> None:
    """Every session Established; FRR's VPN tables, our PEs' and our view of FRR's equal
    the simulator's reflector's; the VRF tables equal the simulator's."""
    sim = sim or simulated()
    wait_for(lambda: set(pe_states().values()) == {"Established"}, timeout,
             lambda: f"every PE Established with rr: {pe_states()}")
    for view in ("vpn", "vpn6"):
        want = sim_routes(sim, "rr", view)
        assert len(want) == 6
        wait_for(lambda v=view, w=want: frr_routes(v) == w, timeout,
                 lambda v=view: f"FRR's {v} routes to be the simulator's: {frr_routes(v)}")
        for pe in PES:  # each PE keeps every route (its VRFs import them all)
            wait_for(lambda p=pe, v=view, w=want: our_routes(p, v) == w, timeout,
                     lambda p=pe, v=view: f"{p}'s {v} routes: {our_routes(p, v)}")
        assert our_routes("rr", view) == want
    wait_for(lambda: lab.vrf(NAME) == sim.vrf_json(), timeout, "the simulator's VRF tables")


def ping_sites(topo: Topology, six: bool = False) -> list[tuple[str, str]]:
    """Pairs of sites of one VPN that do not answer one ping (none: all answer); a
    ping of a site of the other customer must fail (RFC 4364 §1: separate VPNs)."""
    bad = []
    hosts = [h.name for h in topo.hosts]
    for a, b in itertools.permutations(hosts, 2):
        (i,) = topo.nodes[b].interfaces.values()
        addr = i.address6.ip if six else i.address.ip
        r = subprocess.run(["ip", "netns", "exec", ns_name(NAME, a), "ping", "-6" if six else "-4",
                            "-c", "1", "-W", "2", str(addr)], capture_output=True, timeout=10)
        same = topo.vrf_of(a) == topo.vrf_of(b)
        if same and r.returncode != 0:
            bad.append((a, b))
    return bad


def _bgpd_pid(name: str, node: str) -> tuple[int, int | None]:
    (p,) = [p for p in LabState(name).read()["pids"] if p["role"] == f"frr:{node}:bgpd"][-1:]
    return p["pid"], p.get("start")


# ---------------------------------------------------------------- the failures


def test_baseline(vpnlab):
    assert_all_up()


def test_frr_reflector_stopped_and_started(vpnlab):
    """`lsr lab node NAME rr stop` stops bgpd with the node's other daemons (it kept
    running before: the sessions stayed Established with a stopped node)."""
    bgpd = _bgpd_pid(NAME, "rr")
    r = lsr_cli("lab", "node", NAME, "rr", "stop")
    assert r.returncode == 0, r.stderr
    assert not pid_alive(*bgpd), "rr's bgpd still runs after `lab node rr stop`"
    assert "bgpd" in frr.not_running(NAME, "rr")
    # Cease (RFC 4486 §4, subcode 3 Peer De-configured) from FRR: our sessions go at once
    wait_for(lambda: "Established" not in pe_states().values(), 10,
             lambda: f"the PEs' sessions with the stopped rr to go down: {pe_states()}")
    for pe in PES:
        (n,) = lab.bgp(NAME, pe)["routers"][pe]["neighbors"]
        assert n["neighbor"] == "rr" and n["state"] != "Established"
        assert "CEASE" in n["last_error"], n
    # RFC 4271 §9: routes learnt from rr leave the Loc-RIB, and the VRFs (RFC 4364)
    sim = simulated(stopped=["rr"])
    for pe in PES:
        for view in ("vpn", "vpn6"):
            assert our_routes(pe, view) == sim_routes(sim, pe, view)
            assert {x[2] for x in our_routes(pe, view)} == {
                PES[pe] if view == "vpn" else f"::ffff:{PES[pe]}"}
    wait_for(lambda: lab.vrf(NAME) == sim.vrf_json(), 10,
             "the VRF tables of the simulator with rr stopped")
    # what is broken is named: status, validate
    st = lab.status(NAME)["routers"]
    assert st["rr"]["alive"] is False
    res = validate_live(NAME, traceroutes=False)
    assert res["result"] == "fail"
    texts = [c["detail"] for c in res["results"] if c["status"] == "fail"]
    assert any(t.startswith("rr: FRR router not running") and "bgpd" in t for t in texts), texts
    r = lsr_cli("lab", "node", NAME, "rr", "start")
    assert r.returncode == 0, r.stderr
    assert_all_up()
    assert ping_sites(vpnlab.topo) == [] and ping_sites(vpnlab.topo, six=True) == []
