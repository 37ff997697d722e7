"""OSPF in the simulator: adjacencies, flooding and SPF on the virtual clock, through
failures. The reference model (`lsr.core.igp.Igp`, SPF over the topology file) is
the oracle: after every change each router's OSPF RIB must equal it."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.topogen import random_topology
from lsr.core.topology import load_topology
from lsr.sim import OSPF, Simulation
from ospf import events as ev
from ospf.packets import Auth, Hello, Packet, encode_packet

from .conftest import BUNDLED


def ribs_match(sim: Simulation) -> list[str]:
    """Routers whose OSPF RIB differs from the reference model for the links now up."""
    return [r for r in sim.routers if sim.ribs[r] != sim.igp.rib(r)]


def settle(sim: Simulation, max_time: float = 300) -> None:
    res = sim.run(max_time=max_time)
    assert res.converged, sim.ospf_summary()
    assert not ribs_match(sim)


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_topologies_converge_to_the_reference(path):
    sim = Simulation(load_topology(path))
    settle(sim)
    ref = Simulation(load_topology(path), igp="reference")
    ref.run()
    # LDP on OSPF's routes builds the same LFIBs, labels included.
    assert sim.lfib_json() == ref.lfib_json()
    s = sim.ospf_summary()
    assert s["adjacencies"] == len(sim.expected_sessions()) // 2
    assert s["lsdb"] == len(sim.routers)  # one router-LSA each, synchronised everywhere
    for inst in sim.ospf.values():
        assert [k for k, _ in inst.lsdb.entries()] == \
            [k for k, _ in next(iter(sim.ospf.values())).lsdb.entries()]


def test_link_failures_and_recoveries_follow_the_reference():
    topo = load_topology(BUNDLED[0].parent / "backbone.yaml")
    sim = Simulation(topo)
    settle(sim)
    rng = random.Random(7)
    core = [ln.index for ln in topo.links
            if all(topo.nodes[n].is_router for n in ln.nodes)]
    for _ in range(12):
        i = rng.choice(core)
        if i in sim.down:
            sim.link_up(i)
        else:
            sim.link_down(i)
        settle(sim)


def test_router_restart_advances_its_sequence_number():
    """A restarted router originates 0x80000001 but its neighbours hold a newer instance
    from before: it must advance past it (§13.4) or its new LSA would be ignored."""
    topo = load_topology(BUNDLED[0].parent / "ring.yaml")
    sim = Simulation(topo)
    settle(sim)
    victim = sim.routers[1]
    inst = sim.ospf[victim]
    key = next(k for k, _ in inst.lsdb.entries() if k.adv_router == inst.rid)
    before = inst.lsdb.get(key).lsa.header.seq
    sim.advance(2)  # a flush within MinLSArrival of the last instance would be dropped
    sim._deliver(victim + OSPF, ev.Stop())
    # Its LSA was flushed (premature aging, §14.1): the others remove it.
    sim.advance(5)
    others = [r for r in sim.routers if r != victim]
    assert all(sim.ospf[r].lsdb.get(key) is None or
               sim.ospf[r].lsdb.get(key).age(sim.now) >= 3600 for r in others)
    from ospf.config import from_topology
    from ospf.instance import OspfInstance

    sim.ospf[victim] = OspfInstance(from_topology(topo, victim))  # a fresh process
    sim._deliver(victim + OSPF, ev.Start())
    settle(sim)
    after = sim.ospf[victim].lsdb.get(key).lsa.header.seq
    assert after > before


def test_stopped_router_is_routed_around_after_dead_interval():
    topo = load_topology(BUNDLED[0].parent / "diamond.yaml")
    sim = Simulation(topo)
    settle(sim)
    # kill -9: no flush, no more Hellos; neighbours notice after the dead interval.
    victim = "p1"
    sim.ospf[victim].running = False
    for (dest, timer) in list(sim._timers):
        if dest == victim + OSPF:
            del sim._timers[(dest, timer)]
    sim.advance(45)  # dead interval 40 s
    for r in ("pe1", "pe2"):
        nbrs = {n["neighbor"] for n in sim.ospf[r].neighbors_json()}
        assert victim not in nbrs
        for route in sim.ribs[r].values():
            assert all(nh.neighbor != victim for nh in route.nexthops)


def _pair_with(topo_text: str, **opts):
    from lsr.core.topology import parse_topology
    from ospf.config import from_topology

    topo = parse_topology(topo_text)
    sim = Simulation(topo)
    for r in sim.routers:
        from ospf.instance import OspfInstance
        sim.ospf[r] = OspfInstance(from_topology(topo, r, **opts.get(r, {})))
    return sim


PAIR = """
name: pair
topology:
  nodes: {a: {loopback: 10.255.0.1}, b: {loopback: 10.255.0.2}}
  links: [{endpoints: [a:eth1, b:eth1]}]
"""


def test_md5_authentication_both_sides():
    a = Auth.from_config("md5", "k1", 1)
    sim = _pair_with(PAIR, a={"auth": a}, b={"auth": a})
    settle(sim)
    assert sim.ospf["a"].full_neighbors() == 1


def test_md5_restart_reforms_every_adjacency():
    """A retransmitted DD carries a fresh MD5 sequence number: replaying the bytes of the
    first one (sent before some Hellos) had the neighbor drop every retransmission as a
    replay (D.5.2), and the adjacency stuck in ExStart for good."""
    topo = load_topology(BUNDLED[0].parent / "ring.yaml")
    auth = Auth.from_config("md5", "key", 1)
    sim = Simulation(topo)
    from ospf.config import from_topology
    from ospf.instance import OspfInstance

    for r in sim.routers:
        sim.ospf[r] = OspfInstance(from_topology(topo, r, auth=auth))
    settle(sim)
    victim = sim.routers[1]
    sim.advance(2)
    sim._deliver(victim + OSPF, ev.Stop())
    sim.advance(5)
    sim.ospf[victim] = OspfInstance(from_topology(topo, victim, auth=auth))
    sim._deliver(victim + OSPF, ev.Start())
    # The restarted router's sequence numbers start below what its neighbors last
    # accepted: they drop it until their dead interval ends (40 s), then it forms.
    settle(sim)
    assert sim.ospf_summary()["adjacencies"] == len(sim.expected_sessions()) // 2


def test_auth_mismatch_never_forms_and_is_counted():
    sim = _pair_with(PAIR, a={"auth": Auth.from_config("md5", "k1", 1)},
                     b={"auth": Auth.from_config("md5", "k2", 1)})
    res = sim.run(max_time=30)
    assert not res.converged
    assert sim.ospf["a"].full_neighbors() == 0
    assert sim.ospf["b"].counters.get("drop-auth-mismatch", 0) > 0


def test_hello_timer_mismatch_is_named():
    sim = _pair_with(PAIR, a={"hello_interval": 5, "dead_interval": 20})
    res = sim.run(max_time=30)
    assert not res.converged
    assert sim.ospf["b"].counters.get("drop-hello-timers-mismatch", 0) > 0


def test_malformed_packets_are_dropped_and_counted_adjacency_stays():
    sim = Simulation(load_topology(BUNDLED[0].parent / "line3.yaml"))
    settle(sim)
    p1 = sim.ospf["p1"]
    ifname = next(iter(p1.ifaces))
    src = IPv4Address("10.0.0.1")
    good = encode_packet(Packet(IPv4Address("10.255.0.1"), IPv4Address(0),
                                Hello(IPv4Address("255.255.255.252"), 10, 2, 1, 40,
                                      IPv4Address(0), IPv4Address(0), (p1.rid,))))
    bad = {
        "bad-checksum": good[:12] + b"\x00\x00" + good[14:],
        "bad-length": good[:10],
        "bad-type": good[:1] + b"\x07" + good[2:],
        "wrong-area": None,
        "auth-mismatch": good[:14] + b"\x00\x01" + good[16:],
    }
    wrong_area = Packet(IPv4Address("10.255.0.1"), IPv4Address("0.0.0.1"),
                        Hello(IPv4Address("255.255.255.252"), 10, 2, 1, 40, IPv4Address(0),
                              IPv4Address(0), (p1.rid,)))
    bad["wrong-area"] = encode_packet(wrong_area)
    before = p1.full_neighbors()
    for reason, data in bad.items():
        p1.handle(ev.PacketReceived(ifname, src, IPv4Address("224.0.0.5"), data), sim.now)
        assert p1.counters.get(f"drop-{reason}", 0) >= 1, reason
    rng = random.Random(1)
    for _ in range(300):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(80)))
        p1.handle(ev.PacketReceived(ifname, src, IPv4Address("224.0.0.5"), junk), sim.now)
    assert p1.full_neighbors() == before
    settle(sim)


@settings(max_examples=15, deadline=None)
@given(st.integers(3, 14), st.integers(0, 12), st.integers(0, 10_000))
def test_random_graphs_equal_the_reference_through_failures(n, extra, seed):
    topo = random_topology(n, extra, seed)
    sim = Simulation(topo)
    settle(sim, max_time=600)
    rng = random.Random(seed)
    for _ in range(3):
        i = rng.randrange(len(topo.links))
        (sim.link_up if i in sim.down else sim.link_down)(i)
        sim.run(max_time=600)
        assert not ribs_match(sim)


OPTS = """
name: opts
topology:
  defaults: {ospf: {hello_interval: 1, dead_interval: 4, md5_key: s3cret}}
  nodes:
    a: {loopback: 10.255.0.1}
    b: {loopback: 10.255.0.2, ospf: {md5_key_id: 2}}
    c: {loopback: 10.255.0.3}
  links: [{endpoints: [a:eth1, b:eth1]}, {endpoints: [a:eth2, c:eth1]}]
"""


def test_topology_ospf_options_reach_the_instances():
    from lsr.core.topology import parse_topology

    sim = Simulation(parse_topology(OPTS))
    a = sim.ospf["a"].cfg
    assert (a.hello_interval, a.dead_interval, a.auth.key, a.auth.key_id) == (1, 4, b"s3cret", 1)
    res = sim.run(max_time=30)
    # b's key id differs (D.3: the key id selects the key): a-c comes up, a-b never does.
    assert not res.converged
    assert sim.ospf["c"].full_neighbors() == 1 and sim.ospf["b"].full_neighbors() == 0
    assert sim.ospf["b"].counters.get("drop-auth-mismatch", 0) > 0


@pytest.mark.parametrize("opts,msg", [
    ("{hello_interval: 10, dead_interval: 10}", "dead_interval must be longer than hello_interval"),
    ("{md5_key: ''}", "md5_key must be a string of 1..16 characters"),
    ("{hello: 1}", "unknown key 'hello' (allowed: hello_interval, dead_interval"),
    ("{spf_hold_ms: 100, spf_max_hold_ms: 50}", "spf_max_hold_ms must be at least spf_hold_ms"),
])
def test_bad_ospf_options_are_one_located_line(opts, msg):
    from lsr.core.topology import TopologyError, parse_topology

    text = PAIR.replace("a: {loopback: 10.255.0.1}", f"a: {{loopback: 10.255.0.1, ospf: {opts}}}")
    with pytest.raises(TopologyError) as e:
        parse_topology(text, "bad.yaml")
    assert "bad.yaml:4: topology.nodes.a.ospf" in str(e.value) and msg in str(e.value)


def test_ldp_igp_sync_keeps_traffic_off_links_without_labels():
    """RFC 5443: with igp_sync a link is advertised at max metric until LDP is operational
    on it; once every session is up the routes are the reference model's again."""
    from lsr.core.topology import parse_topology

    text = (BUNDLED[0].parent / "diamond.yaml").read_text().replace(
        "  nodes:", "  defaults: {ldp: {igp_sync: true}}\n  nodes:", 1)
    topo = parse_topology(text)
    sim = Simulation(topo)
    sim.start()
    pe1 = sim.ospf["pe1"]
    # Before any LDP session: every router link at max metric.
    assert all(i.metric == 0xFFFF for i in pe1.ifaces.values() if not i.cfg.passive)
    settle(sim)
    assert all(i.metric is None for i in pe1.ifaces.values())
    # A link that comes back is held at max metric until its LDP session is up again.
    li = next(ln.index for ln in topo.links if set(ln.nodes) == {"pe1", "p1"})
    sim.link_down(li)
    settle(sim)
    sim.link_up(li)
    p1_if = pe1.ifaces[topo.links[li].end("pe1")[1]]
    seen = []  # (OSPF Full on the link, its metric, LDP operational on it), every 0.5 ms
    for _ in range(100):
        sim.advance(0.0005)
        full = p1_if.nbr is not None and p1_if.nbr.state.label == "Full"
        ldp_up = p1_if.name in sim.instances["pe1"].operational_interfaces()
        seen.append((full, p1_if.metric, ldp_up))
    assert (True, 0xFFFF, False) in seen  # adjacency up, labels not yet: pushed away
    assert all(m is None for full, m, up in seen if up)
    settle(sim)
    assert p1_if.metric is None


def test_stopped_router_keeps_its_neighbours_subnets():
    """`lab node R stop` in the simulator: R's LSA is flushed and it is routed around,
    but its links keep carrier, so its neighbours still reach their side of each link."""
    topo = load_topology(BUNDLED[0].parent / "diamond.yaml")
    sim = Simulation(topo)
    settle(sim)
    sim.advance(2)
    sim.router_stop("pe1")
    res = sim.run(max_time=120)
    assert res.converged
    subnet = next(ln.subnet for ln in topo.links if set(ln.nodes) == {"pe1", "p1"})
    assert subnet in sim.ribs["pe2"]  # via p1, whose interface is still up
    assert all(nh.neighbor != "pe1" for r in sim.ribs["pe2"].values() for nh in r.nexthops)
    assert IPv4Address(str(topo.nodes["pe1"].loopback)) not in [
        r.prefix.network_address for r in sim.ribs["pe2"].values()]


def test_validate_igp_routes_invariant_names_a_wrong_route():
    from lsr.oam.validate import igp_route_result

    sim = Simulation(load_topology(BUNDLED[0].parent / "diamond.yaml"))
    settle(sim)
    assert igp_route_result(sim.topo, sim.ribs, sim.igp).status == "pass"
    ribs = {r: dict(v) for r, v in sim.ribs.items()}
    victim = next(p for p, rt in ribs["pe1"].items() if len(rt.nexthops) == 2)
    rt = ribs["pe1"][victim]
    ribs["pe1"][victim] = type(rt)(rt.prefix, rt.metric, rt.nexthops[:1])  # ECMP lost
    res = igp_route_result(sim.topo, ribs, sim.igp)
    assert res.status == "fail" and f"pe1 {victim}" in res.detail


@pytest.mark.parametrize("crash", [True, False], ids=["kill-9", "stop"])
def test_restarted_router_is_answered_at_once(crash):
    """A transit router's process restarts; its links keep carrier. Its first Hello lists
    nobody, so each neighbour falls back to Init (§10.5 1-WayReceived) and routes around
    it -- and answers at once with a Hello that lists it: the adjacencies are Full again
    in well under a HelloInterval (10 s), not when the neighbours' hello timers run out."""
    topo = load_topology(BUNDLED[0].parent / "line3.yaml")
    sim = Simulation(topo)
    settle(sim)
    sim.advance(3)  # mid-way between two of the neighbours' Hellos
    sim.router_stop("p1", crash=crash)
    sim.advance(0.5)
    sim.router_start("p1")
    t0 = sim.now
    p1 = sim.ospf["p1"]
    while p1.full_neighbors() < 2 and sim.now - t0 < 15:
        sim.advance(0.05)
    assert p1.full_neighbors() == 2 and sim.now - t0 < 1.0, sim.now - t0
    for r in ("pe1", "pe2"):
        assert [n["state"] for n in sim.ospf[r].neighbors_json()] == ["Full"]


ALT = """
name: alt
topology:
  nodes:
    ce1: {kind: host}
    pe1: {loopback: 10.255.0.1}
    p1: {loopback: 10.255.0.2}
    p2: {loopback: 10.255.0.3}
    pe2: {loopback: 10.255.0.4}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
    - endpoints: [pe1:eth2, p1:eth1]
    - endpoints: [pe1:eth3, p2:eth1]
      cost: 20
    - endpoints: [p1:eth2, pe2:eth2]
    - endpoints: [p2:eth2, pe2:eth3]
      cost: 20
    - endpoints: [pe2:eth1, ce2:eth0]
"""


def _p2p_metrics(sim: Simulation, router: str) -> list[int]:
    inst = sim.ospf[router]
    (lsa,) = [e for e in inst.lsdb_json() if e["adv_router"] == str(inst.rid)]
    return [ln["metric"] for ln in lsa["links"] if ln["type"] == 1]


@pytest.mark.parametrize("crash", [True, False], ids=["kill-9", "stop"])
def test_restarted_router_is_a_stub_router_until_its_routes_are_in(crash):
    """RFC 6987 after a restart: p1 advertises its transit links at MaxLinkMetric for
    restart_max_metric_ms, so pe1 keeps the backup path (p2) until p1 has computed its
    own routes; then the links get their costs back and the traffic returns to p1."""
    from lsr.core.topology import parse_topology

    sim = Simulation(parse_topology(ALT))
    settle(sim)
    sim.advance(3)
    ce2 = next(p for p, r in sim.ribs["pe2"].items() if r.connected and p.prefixlen == 24
               and p.network_address.packed[0] == 192)
    assert [nh.neighbor for nh in sim.ribs["pe1"][ce2].nexthops] == ["p1"]
    sim.router_stop("p1", crash=crash)
    sim.advance(0.5)
    sim.router_start("p1")
    sim.advance(2)  # adjacencies Full, LSAs exchanged, SPF run everywhere
    assert sim.ospf["p1"].stub and _p2p_metrics(sim, "p1") == [0xFFFF, 0xFFFF]
    assert sim.ospf["p1"].full_neighbors() == 2 and ce2 in sim.ribs["p1"]
    assert [nh.neighbor for nh in sim.ribs["pe1"][ce2].nexthops] == ["p2"]
    sim.advance(4)  # restart_max_metric_ms 5000 from the start
    assert not sim.ospf["p1"].stub and _p2p_metrics(sim, "p1") == [10, 10]
    assert [nh.neighbor for nh in sim.ribs["pe1"][ce2].nexthops] == ["p1"]


def test_a_first_start_is_no_stub_router_and_zero_turns_it_off():
    from lsr.core.topology import parse_topology

    sim = Simulation(parse_topology(ALT))
    settle(sim)
    assert not any(o.stub for o in sim.ospf.values())
    off = parse_topology(ALT.replace("topology:\n", "topology:\n  defaults: "
                                     "{ospf: {restart_max_metric_ms: 0}}\n", 1))
    sim = Simulation(off)
    settle(sim)
    sim.router_stop("p1", crash=True)
    sim.advance(0.5)
    sim.router_start("p1")
    sim.advance(2)
    assert not sim.ospf["p1"].stub and _p2p_metrics(sim, "p1") == [10, 10]
