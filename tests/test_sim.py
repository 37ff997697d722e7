"""Whole-network LDP simulation: LFIBs match the IGP, LSPs follow shortest paths."""

from __future__ import annotations

import json
import weakref
from ipaddress import IPv4Network

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.topogen import random_topology
from lsr.core.igp import Igp
from lsr.core.topology import load_topology, parse_topology
from lsr.sim import Simulation, simulate
from tests.conftest import BUNDLED


def check_lfibs(sim: Simulation) -> None:
    """FTN/ILM next hops = IGP ECMP sets; labels chain to the egress, pop at the PHP."""
    igp = Igp(sim.topo, sim.down)
    topo = sim.topo
    inst = sim.instances
    owners = topo.prefixes()
    for r in sim.routers:
        rib = igp.rib(r)
        lfib = inst[r].lfib
        for prefix, route in rib.items():
            if route.connected:
                assert prefix not in lfib.ftn, (r, prefix)
                continue
            ftn = lfib.ftn.get(prefix)
            assert ftn is not None, f"{r}: no FTN for {prefix}"
            want = {(sim.instances[nh.neighbor].lsr_id, nh.interface, nh.address)
                    for nh in route.nexthops}
            got = {(inst[sim.name_of(n.neighbor)].lsr_id, n.interface, n.nexthop)
                   for n in ftn.nexthops}
            assert got == want, (r, prefix)
            local = inst[r].lde.local[prefix]
            assert local >= 16
            ilm = lfib.ilm[local]
            assert ilm.fec == prefix
            assert {(n.interface, n.nexthop) for n in ilm.nexthops} == {
                (nh.interface, nh.address) for nh in route.nexthops}
            for nh in ftn.nexthops:
                nxt = sim.name_of(nh.neighbor)
                nrib = igp.rib(nxt)
                if nrib[prefix].connected:  # penultimate hop: pop (implicit-null)
                    assert nh.out_labels == ()
                else:
                    assert nh.out_labels == (inst[nxt].lde.local[prefix],)
                    assert nrib[prefix].metric < route.metric
            for nh in ilm.nexthops:
                assert nh.op == ("pop" if nh.out_labels == () else "swap")
        # walk every LSP hop by hop from this router (first ECMP branch), cost = IGP metric
        for prefix, route in rib.items():
            if route.connected:
                continue
            cur, cost, labels = r, 0, None
            for _ in range(len(sim.routers) + 1):
                if igp.rib(cur)[prefix].connected:
                    break
                entry = (inst[cur].lfib.ftn[prefix] if labels is None
                         else inst[cur].lfib.ilm[labels[0]])
                nh = entry.nexthops[0]
                nxt = sim.name_of(nh.neighbor)
                link = topo.interface(cur, nh.interface).link
                cost += topo.links[link].cost
                labels = nh.out_labels
                cur = nxt
                if labels == ():
                    assert igp.rib(cur)[prefix].connected, "pop before the egress"
                    break
            assert any(o == cur for o, _ in owners[prefix]), (r, prefix, cur)
            extra = dict(owners[prefix])[cur]
            assert cost + extra == route.metric, (r, prefix)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_converge(path):
    sim, res = simulate(load_topology(path))
    assert res.converged
    check_lfibs(sim)
    assert res.messages["LABEL_MAPPING"] > 0


def test_line3_labels_golden():
    sim, _ = simulate(load_topology(BUNDLED[[p.stem for p in BUNDLED].index("line3")]))
    j = sim.lfib_json(["pe1"])["routers"]["pe1"]
    assert j["lsr_id"] == "10.255.0.1"
    ftn = {e["fec"]: e for e in j["ftn"]}
    assert ftn["10.255.0.3/32"]["nexthops"] == [
        {"neighbor": "p1", "interface": "eth2", "nexthop": "10.0.0.2", "out_labels": [2001]}]
    b = sim.bindings_json("p1")["bindings"]
    lo = {e["fec"]: e for e in b}
    assert lo["10.255.0.2/32"]["local_label"] == 3
    assert lo["10.255.0.1/32"]["remote"] == [{"neighbor": "pe1", "label": 3},
                                            {"neighbor": "pe2", "label": 3001}]


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_deterministic(path):
    a, ra = simulate(load_topology(path))
    b, rb = simulate(load_topology(path))
    assert json.dumps(a.lfib_json()) == json.dumps(b.lfib_json())
    assert ra.messages == rb.messages and ra.time == rb.time and ra.events == rb.events


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(5, 15), extra=st.integers(0, 10), seed=st.integers(0, 10_000))
def test_random_graphs(n, extra, seed):
    sim, res = simulate(random_topology(n, extra, seed, max_cost=4))
    assert res.converged
    check_lfibs(sim)


def _core_links(topo):
    return [link.index for link in topo.links
            if all(topo.nodes[x].is_router for x in link.nodes)]


@pytest.mark.parametrize("name", ["diamond", "ring", "backbone"])
def test_link_down_reconverges(name):
    topo = load_topology(next(p for p in BUNDLED if p.stem == name))
    sim, res = simulate(topo)
    before = res.messages.get("LABEL_WITHDRAW", 0)
    for li in _core_links(topo)[:3]:
        sim.link_down(li)
        r2 = sim.run()
        assert r2.converged
        check_lfibs(sim)
        sim.link_up(li)
        r3 = sim.run()
        assert r3.converged
        check_lfibs(sim)
    assert sim.message_counts().get("LABEL_WITHDRAW", 0) > before
    assert sim.message_counts().get("LABEL_RELEASE", 0) > 0


def test_link_down_withdraws_subnet():
    topo = load_topology(next(p for p in BUNDLED if p.stem == "diamond"))
    sim, _ = simulate(topo)
    li = _core_links(topo)[0]
    subnet = topo.links[li].subnet
    sim.link_down(li)
    res = sim.run()
    assert res.converged
    for r in sim.routers:
        assert subnet not in sim.instances[r].lfib.ftn
        for peer in sim.instances[r].lde.peers.values():
            assert subnet not in peer.lib  # withdrawn everywhere
    check_lfibs(sim)


@pytest.mark.parametrize("opts", [
    {"control": "ordered"},
    {"retention": "conservative"},
    {"fecs": "loopbacks"},
    {"explicit_null": True},
])
def test_ldp_options(opts):
    text = next(p for p in BUNDLED if p.stem == "ring").read_text()
    doc = yaml.safe_load(text)
    doc["topology"]["defaults"] = {"ldp": opts}
    topo = parse_topology(yaml.safe_dump(doc), "<ring>")
    sim, res = simulate(topo)
    assert res.converged
    if opts.get("explicit_null"):
        for r in sim.routers:
            for e in sim.instances[r].lfib.ftn.values():
                nxt = sim.name_of(e.nexthops[0].neighbor)
                if Igp(topo).rib(nxt)[e.fec].connected:
                    assert e.nexthops[0].out_labels == (0,)
        return
    check_lfibs_subset(sim, loopbacks_only=opts.get("fecs") == "loopbacks")
    if opts.get("control") == "ordered" or opts.get("retention") == "conservative":
        li = _core_links(topo)[0]
        sim.link_down(li)
        assert sim.run().converged
        check_lfibs_subset(sim, loopbacks_only=False)


def check_lfibs_subset(sim: Simulation, loopbacks_only: bool) -> None:
    if not loopbacks_only:
        check_lfibs(sim)
        return
    for r in sim.routers:
        for p in sim.instances[r].lfib.ftn:
            assert p.prefixlen == 32
        for n in sim.topo.routers:
            if n.name != r:
                assert IPv4Network(f"{n.loopback}/32") in sim.instances[r].lfib.ftn


def test_labels_never_reserved_and_in_range():
    text = next(p for p in BUNDLED if p.stem == "ring").read_text()
    doc = yaml.safe_load(text)
    doc["topology"]["defaults"] = {"labels": [1000, 1999]}
    sim, res = simulate(parse_topology(yaml.safe_dump(doc), "<ring>"))
    for inst in sim.instances.values():
        for lbl in inst.lde.local.values():
            assert lbl in (3,) or 1000 <= lbl <= 1999
        assert min(inst.lfib.ilm) == 1000


def test_link_down_sends_address_withdraw_and_link_up_address():
    """§3.5.6: both ends withdraw their link address from their remaining peers; on
    link up they advertise it again (§3.5.5), and the network reconverges."""
    topo = load_topology(next(p for p in BUNDLED if p.stem == "ring"))
    sim, _ = simulate(topo)
    li = _core_links(topo)[0]
    link = topo.links[li]
    ends = {n: topo.nodes[n].interfaces[i].address.ip for n, i in (link.a, link.b)}
    w0 = sim.message_counts().get("ADDRESS_WITHDRAW", 0)
    a0 = sim.message_counts().get("ADDRESS", 0)
    sim.link_down(li)
    assert sim.run().converged
    assert sim.message_counts().get("ADDRESS_WITHDRAW", 0) > w0
    for r in sim.routers:
        for pid, peer in sim.instances[r].lde.peers.items():
            owner = sim.name_of(str(pid))
            if owner in ends:
                assert ends[owner] not in peer.addresses, (r, owner)
    check_lfibs(sim)
    sim.link_up(li)
    assert sim.run().converged
    assert sim.message_counts().get("ADDRESS", 0) > a0
    for r in sim.routers:
        for pid, peer in sim.instances[r].lde.peers.items():
            owner = sim.name_of(str(pid))
            if owner in ends:
                assert ends[owner] in peer.addresses, (r, owner)
    check_lfibs(sim)


def test_gtsm_option_converges_and_is_validated():
    text = next(p for p in BUNDLED if p.stem == "ring").read_text()
    doc = yaml.safe_load(text)
    doc["topology"]["defaults"] = {"ldp": {"gtsm": True}}
    sim, res = simulate(parse_topology(yaml.safe_dump(doc), "<ring>"))
    assert res.converged
    for r in sim.routers:
        assert sim.instances[r].options.gtsm
        assert all(n["gtsm"] for n in sim.instances[r].neighbors())
    check_lfibs(sim)
    doc["topology"]["defaults"] = {"ldp": {"gtsm": "yes"}}
    with pytest.raises(Exception, match="gtsm"):
        parse_topology(yaml.safe_dump(doc), "<ring>")


# ---------------------------------------------------------------- router restart

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


_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # sim -> (key, tables)


def _delivered(sim: Simulation, src: str, dst: str) -> bool:
    """One UDP packet src -> dst through the routers' current RIBs and LFIBs; a stopped
    router forwards nothing."""
    from forwarding.tables import build_all
    from forwarding.walk import walk

    key = (sim.last_change, frozenset(sim.stopped))  # the tables change with these
    if sim not in _TABLES or _TABLES[sim][0] != key:
        _TABLES[sim] = (key, build_all(sim.topo, sim.ribs,
                                       {r: sim.instances[r].lfib for r in sim.routers}))
    w = walk(sim.topo, _TABLES[sim][1], src, dst, proto="udp")
    return w["result"] == "delivered" and not any(h["router"] in sim.stopped for h in w["hops"])


def _restart_outages(topo, router: str, crash: bool, down: float = 0.5,
                     step: float = 0.01, window: float = 30.0) -> list[tuple[float, float]]:
    """Restart `router` under a 100 pps stream ce1 -> ce2 (a packet walked every `step`
    of virtual time): the runs of lost packets, (first lost, first delivered after) in
    seconds from the stop."""
    sim = Simulation(topo)
    assert sim.run().converged
    sim.advance(20)  # past start-up: LSA intervals and hello phases of a running network
    assert _delivered(sim, "ce1", "ce2")
    t0 = sim.now
    sim.router_stop(router, crash=crash)
    started = False
    runs: list[tuple[float, float]] = []
    lost_since = None
    while sim.now - t0 < window:
        if not started and sim.now - t0 >= down:
            sim.router_start(router)
            started = True
        ok = _delivered(sim, "ce1", "ce2")
        if not ok and lost_since is None:
            lost_since = sim.now - t0
        elif ok and lost_since is not None:
            runs.append((round(lost_since, 3), round(sim.now - t0, 3)))
            lost_since = None
        sim.advance(step)
    assert lost_since is None, f"not recovered: lost since {lost_since:.2f} s ({runs})"
    return runs


@pytest.mark.parametrize("crash", [True, False], ids=["kill-9", "stop"])
@pytest.mark.parametrize("name", ["line3", "alt"])
def test_router_restart_is_one_outage(name, crash):
    """A transit router restarts (process only: its links keep carrier). Traffic across it
    is lost once, while it is down and until its adjacencies and sessions are back -- and
    never again after it came back: a label it advertises forwards at once (untagged
    until its downstream session is up, ldp.lde._untagged), its active-side peers
    reconnect on its first Hello (ldp.session.Session.hello_cuts_backoff), and its OSPF
    neighbours answer its first Hello at once (ospf.instance._recv_hello)."""
    topo = load_topology(BUNDLED[0].parent / "line3.yaml") if name == "line3" \
        else parse_topology(ALT)
    runs = _restart_outages(topo, "p1", crash)
    assert len(runs) <= 1, f"{len(runs)} outages (traffic came back, then was lost again): {runs}"
    # the one outage is the stop's: a loss that begins once p1 runs again is a second one
    assert all(first < 0.5 for first, _ in runs), runs
    if name == "line3":  # the only path: lost from the stop until it is back
        (run,) = runs
        assert run[0] == 0.0 and run[1] < 3.0, run
