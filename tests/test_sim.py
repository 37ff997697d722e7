"""Whole-network LDP simulation: LFIBs match the IGP, LSPs follow shortest paths."""

from __future__ import annotations

import json
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
