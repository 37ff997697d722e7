"""BGP in the simulator: four PEs and a route reflector over OSPF (tests/data/bgp-rr.yaml).

VPN-IPv4 routes handed in through the hook (`Simulation.bgp_originate`) reach every
PE through the reflector with ORIGINATOR_ID and CLUSTER_LIST set (RFC 4456 §8);
sessions reset on a NOTIFICATION and come back; a silent peer is found by the hold
timer; a stopped router's routes are withdrawn; a malformed attribute withdraws only
its routes (RFC 7606)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from bgp import events as ev
from bgp.attrs import ExtCommunity
from bgp.nlri import IPV4_UNICAST, IPV4_VPN, Nlri, Rd
from lsr.sim import Simulation

from .bgp_section import load_bgp_topology as load_topology

TOPO = Path(__file__).parent / "data" / "bgp-rr.yaml"

LO = {n: IPv4Address(f"10.255.0.{i}") for n, i in
      (("pe1", 1), ("pe2", 2), ("pe3", 3), ("pe4", 4), ("rr", 10), ("p1", 11))}
A = Nlri(IPv4Network("10.1.0.0/16"), Rd.parse("65000:1"))
B = Nlri(IPv4Network("10.1.0.0/16"), Rd.parse("65000:2"))  # same prefix, other customer


def vpn(nlri: Nlri, label: int, rt: str) -> ev.LocalRoute:
    return ev.LocalRoute(IPV4_VPN, nlri, label, ext_communities=(ExtCommunity.route_target(rt),))


@pytest.fixture
def sim() -> Simulation:
    s = Simulation(load_topology(TOPO))
    s.bgp_originate("pe1", (vpn(A, 1001, "65000:1"),))
    s.bgp_originate("pe2", (vpn(B, 2001, "65000:2"),))
    res = s.run(max_time=120)
    assert res.converged
    return s


def best(s: Simulation, router: str, nlri: Nlri, fam=IPV4_VPN):
    return s.bgp[router].loc_rib.get((fam, nlri))


def states(s: Simulation) -> set[str]:
    return {n["state"] for i in s.bgp.values() for n in i.neighbors()}


def test_sessions_up_and_vpn_routes_reflected(sim):
    assert states(sim) == {"Established"}
    assert sorted((r, n["name"]) for r, i in sim.bgp.items() for n in i.neighbors()) == [
        ("pe1", "rr"), ("pe2", "rr"), ("pe3", "rr"), ("pe4", "rr"),
        ("rr", "pe1"), ("rr", "pe2"), ("rr", "pe3"), ("rr", "pe4")]
    for pe in ("pe2", "pe3", "pe4"):
        p = best(sim, pe, A)
        assert p is not None and p.peer == LO["rr"], pe
        assert p.next_hop == LO["pe1"] and p.label == 1001
        assert p.attrs.originator_id == LO["pe1"]  # RFC 4456 §8: set by the reflector
        assert p.attrs.cluster_list == (LO["rr"],)  # its cluster ID = its router ID
        assert p.attrs.route_targets() == ("65000:1",) and p.attrs.local_pref == 100
    # the reflector learnt it directly: no reflection attributes on its copy
    r = best(sim, "rr", A)
    assert r.peer == LO["pe1"] and r.attrs.originator_id is None and not r.attrs.cluster_list
    # overlapping customer prefix, told apart by the RD
    assert best(sim, "pe3", B).label == 2001 and best(sim, "pe3", B).next_hop == LO["pe2"]
    # the originator never gets its own route back
    assert best(sim, "pe1", A).local and sim.bgp["pe1"].peers[LO["rr"]].adj_in.get((IPV4_VPN, A)) is None
    # IPv4 unicast from `networks:` too
    assert best(sim, "pe4", Nlri(IPv4Network("10.30.0.0/16")), IPV4_UNICAST).next_hop == LO["pe3"]
    # End-of-RIB (RFC 4724 §2) from the reflector for both families
    assert sim.bgp["pe4"].peers[LO["rr"]].eor_received == {IPV4_UNICAST, IPV4_VPN}


def test_best_path_hook_and_withdrawal(sim):
    seen: list[tuple[str, ev.BestPathChanged]] = []
    sim.bgp_listeners.append(lambda r, a: seen.append((r, a)))
    sim.bgp_withdraw("pe1", IPV4_VPN, (A,))
    sim.run(max_time=5)
    assert sorted(r for r, a in seen if a.nlri == A and a.path is None) == [
        "pe1", "pe2", "pe3", "pe4", "rr"]
    assert best(sim, "pe3", A) is None and best(sim, "pe3", B) is not None


def test_decision_prefers_the_nearer_exit_then_lower_id(sim):
    # The same VPN route from pe1 and pe2. The reflector is 20 from both (equal IGP cost,
    # §9.1.2.2 e), so the lower ORIGINATOR_ID/BGP Identifier wins (f): pe1's. It reflects
    # only that one; pe2 keeps its own (IGP cost 0).
    sim.bgp_originate("pe2", (vpn(A, 2002, "65000:1"),))
    sim.run(max_time=5)
    assert best(sim, "rr", A).next_hop == LO["pe1"]
    assert best(sim, "pe2", A).local
    assert best(sim, "pe4", A).next_hop == LO["pe1"]
    # pe1 withdraws: the reflector falls back to pe2's and tells everyone.
    sim.bgp_withdraw("pe1", IPV4_VPN, (A,))
    sim.run(max_time=5)
    assert best(sim, "pe4", A).next_hop == LO["pe2"] and best(sim, "pe4", A).label == 2002


def test_notification_resets_the_session_and_it_comes_back(sim):
    sim.bgp_deliver("pe1", ev.PeerStop(LO["rr"]))  # ManualStop: Cease/Administrative Shutdown
    sim.advance(0.01)
    rr_side = sim.bgp["rr"].peers[LO["pe1"]]
    assert rr_side.state.value != "Established"
    assert rr_side.last_error == "received CEASE/2"
    assert best(sim, "pe3", A) is None  # withdrawn through the reflector
    sim.bgp_deliver("pe1", ev.PeerStart(LO["rr"]))
    assert sim.run(max_time=30).converged
    assert best(sim, "pe3", A).label == 1001


def test_malformed_update_resets_only_that_session(sim):
    rr = sim.bgp["rr"]
    conn = rr.peers[LO["pe1"]].session.id
    # an unrecognized well-known attribute: RFC 4271 §6.3, kept by RFC 7606 -> reset
    body = bytes.fromhex("0000 0004 40 63 01 00".replace(" ", ""))
    sim.bgp_deliver("rr", ev.TcpData(conn, b"\xff" * 16 + struct.pack("!HB", 19 + len(body), 2)
                                     + body))
    sim.advance(0.01)
    assert rr.peers[LO["pe1"]].last_error.startswith("sent UPDATE_MESSAGE/2")
    assert sim.bgp["pe1"].peers[LO["rr"]].last_error == "received UPDATE_MESSAGE/2"
    assert rr.peers[LO["pe2"]].state.value == "Established"  # the others stay
    assert sim.run(max_time=30).converged  # and it comes back by itself (Event 3)
    assert best(sim, "pe3", A) is not None


def test_treat_as_withdraw_keeps_the_session_and_other_routes(sim):
    rr = sim.bgp["rr"]
    pe1 = rr.peers[LO["pe1"]]
    # a well-formed UPDATE for A's RD/prefix but with ORIGIN 3 (RFC 7606 §7.1)
    nl = bytes.fromhex("68 003e91 0000fde800000001 0a01".replace(" ", ""))
    mp = bytes.fromhex("0001 80 0c 0000000000000000 0aff0001 00".replace(" ", "")) + nl
    attrs = bytes([0x80, 14, len(mp)]) + mp + bytes.fromhex("40010103 400200")
    body = b"\0\0" + struct.pack("!H", len(attrs)) + attrs
    sim.bgp_deliver("rr", ev.TcpData(pe1.session.id, b"\xff" * 16
                                     + struct.pack("!HB", 19 + len(body), 2) + body))
    sim.advance(0.01)
    assert pe1.state.value == "Established" and pe1.treated_as_withdraw == 1
    assert best(sim, "rr", A) is None and best(sim, "pe3", A) is None  # withdrawn everywhere
    assert best(sim, "pe3", B) is not None  # other routes stay


def test_hold_timer_finds_a_silent_peer(sim):
    sim.router_crash("pe4")  # no NOTIFICATION, no FIN: only the hold timer (9 s) tells
    sim.advance(8)
    assert sim.bgp["rr"].peers[LO["pe4"]].state.value == "Established"
    sim.advance(2)
    p = sim.bgp["rr"].peers[LO["pe4"]]
    assert p.state.value != "Established" and p.last_error == "hold timer expired"


def test_cut_off_reflector_is_found_by_the_hold_timer(sim):
    """Every link of rr down: no FIN crosses a cut link, the sessions' data waits for a
    route (TCP retransmitting) and they end when the hold time (9 s) expires (RFC 4271
    §6.5), withdrawing what came through rr (§9). A run does not stop before that as if
    settled (it did: the reference kept rr's routes), and stops soon after: a connect
    failing again every ConnectRetryTime is no progress (it ran to its 3600 s limit)."""
    t0 = sim.now
    for peer in ("p1", "pe3", "pe4"):
        sim.link_down(sim.topo.find_link("rr", peer).index)
    quiet = sim.quiet_time()
    res = sim.run(quiet=quiet)
    assert not res.converged
    assert all(sim.bgp[pe].peers[LO["rr"]].state.value != "Established"
               for pe in ("pe1", "pe2", "pe3", "pe4"))
    assert best(sim, "pe4", A) is None and best(sim, "pe3", B) is None
    assert 9 < sim.now - t0 < 9 + quiet + 10
    assert {s.cause for s in sim.stuck() if s.a == "pe1"} == {
        "no route from pe1 to rr's loopback 10.255.0.10"}


def test_router_stop_withdraws_its_routes(sim):
    assert best(sim, "pe4", A) is not None
    sim.router_stop("pe1")
    sim.advance(0.05)
    assert best(sim, "pe4", A) is None and best(sim, "rr", A) is None
    assert best(sim, "pe4", B) is not None
    assert sim.bgp["rr"].peers[LO["pe1"]].last_error == "received CEASE/2"


def test_sessions_wait_for_the_igp():
    """No route to the peer's loopback, no TCP: the first attempts fail (Connect ->
    Idle, Event 18), and the session comes up once OSPF has the route."""
    s = Simulation(load_topology(TOPO), log=True)
    s.run(max_time=120)
    lines = [ln for ln in s.log_lines if "bgp:" in ln and " rr " in ln and "pe1:" in ln]
    assert "Connect -> Idle (TcpConnectionFails (Event 18))" in lines[1]
    assert lines[-1].endswith("OpenConfirm -> Established (KeepAliveMsg (Event 26))")


def test_deterministic():
    def run() -> list:
        s = Simulation(load_topology(TOPO), log=True)
        s.bgp_originate("pe1", (vpn(A, 1001, "65000:1"),))
        s.run(max_time=120)
        return s.log_lines
    assert run() == run()


def test_passive_pair_is_not_expected_up_and_views():
    """tests/data/bgp-lab.yaml: pe1 and raw are passive towards each other, so neither
    connects; the simulation still converges (that pair is not expected up), and
    `bgp.views` gives the routes of `vpn_networks` with their RDs, labels and RTs."""
    from bgp import views

    s = Simulation(load_topology(Path(__file__).parent / "data" / "bgp-lab.yaml"))
    assert s.run(max_time=120).converged
    assert ("pe1", "raw") not in s.bgp_sessions() and ("pe1", "rr") in s.bgp_sessions()
    pe1 = {n["neighbor"]: n for n in views.summary(s.bgp["pe1"], s.now)["neighbors"]}
    assert pe1["raw"]["state"] == "Active" and pe1["rr"]["state"] == "Established"
    assert pe1["rr"]["md5"] and pe1["raw"]["passive"]
    got = [(r["rd"], r["prefix"], r["next_hop"], r["label"], r["route_targets"], r["from"])
           for r in views.routes(s.bgp["pe2"], IPV4_VPN)]
    assert got == [("65000:1", "10.1.0.0/16", "10.255.0.1", 1001, ["65000:1"], "rr"),
                   ("65000:2", "10.2.0.0/16", "10.255.0.1", 1002, ["65000:2", "65000:99"], "rr"),
                   ("65000:3", "10.1.0.0/16", "10.255.0.2", 2001, ["65000:1"], "local")]


def test_failed_connects_do_not_hide_why_the_session_went_down(sim):
    """rr stops (Cease): the PEs keep trying to connect and fail; `last_error` still says
    why the session went down, `connect_error` why the retries fail (a full CI run saw
    the retry's error replace the Cease). The session up again clears both."""
    sim.router_stop("rr")
    sim.advance(300)  # several ConnectRetry periods
    p = sim.bgp["pe1"].peers[LO["rr"]]
    assert p.state.value != "Established"
    assert p.last_error == "received CEASE/2"
    assert p.connect_error
    (n,) = [n for n in sim.bgp["pe1"].neighbors() if n["name"] == "rr"]
    assert n["last_error"] == "received CEASE/2" and n["connect_error"] == p.connect_error
    sim.router_start("rr")
    assert sim.run(max_time=600).converged
    assert p.state.value == "Established" and p.last_error == p.connect_error == ""


def test_a_lab_expects_no_session_across_a_partition():
    """l3vpn with pe2 and pe3 cut off from the rest (p2-pe3 and p1-pe2 down): what a lab
    must reach (`lsr.lab.expected`, for `lab link`, `lab chaos`, `lab up`) has no BGP
    session of theirs with rr; it expected the sessions configured between running
    routers, and `lab chaos` waited for them until it gave up."""
    from lsr.core.topology import load_topology as load
    from lsr.lab import expected
    from tests.conftest import TOPOLOGIES

    t = load(TOPOLOGIES / "l3vpn.yaml")
    cut = [t.find_link("p2", "pe3").index, t.find_link("p1", "pe2").index]
    exp = expected(t, cut)
    assert {r: exp[r]["bgp"]["peers"] for r in ("rr", "pe1", "pe2", "pe3")} == {
        "rr": ["10.255.0.1"], "pe1": ["10.255.0.10"], "pe2": [], "pe3": []}
    assert not any(x for v in exp["pe2"]["bgp"]["routes"].values() for x in v
                   if "10.255.0.1:" in str(x))  # pe1's sites are gone from pe2 too
    whole = expected(t)
    assert whole["rr"]["bgp"]["peers"] == ["10.255.0.1", "10.255.0.2", "10.255.0.3"]
