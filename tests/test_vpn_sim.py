"""BGP/MPLS IP VPNs (RFC 4364) in the simulator and the pure dataplane.

topologies/l3vpn.yaml: two customers (red, blue) with the same 10.1.x.0/24 at three sites
each, a route reflector. Every site reaches its own VPN's other sites over two labels
[LDP label, VPN label] (one, the VPN label, between neighbouring PEs) and never the
other customer's; a TTL that runs out in the core comes back to the source through the
egress PE's VRF (RFC 3032 §2.3.2); per-VRF and per-prefix labels; extranet and
hub-and-spoke by route targets; a customer link going down withdraws its route."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from scapy.contrib.mpls import ICMPExtension_MPLS
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether

from forwarding.plane import Drop, DropReason, Forward, decide
from forwarding.tables import A_CONNECTED, A_NHLFE, FAST_PHP, build_all
from forwarding.walk import walk
from lsr.core.igp import Igp
from lsr.core.lfib import FtnEntry, Nhlfe
from lsr.core.topology import Topology, load_topology, parse_topology
from lsr.core.vpnfib import compose
from lsr.core.vrf import VpnRoute
from lsr.sim import Simulation, simulate
from tests.fwd_helpers import ip_frame, udp
from tests.test_icmp_mpls import scapy_stack

from .conftest import TOPOLOGIES

L3VPN = TOPOLOGIES / "l3vpn.yaml"
SITES = {"red": ["red1", "red2", "red3"], "blue": ["blue1", "blue2", "blue3"]}


def tables_of(topo: Topology):
    sim, res = simulate(topo)
    assert res.converged
    return sim, build_all(topo, Igp(topo).ribs(), sim.lfibs())


@pytest.fixture(scope="module")
def net():
    topo = load_topology(L3VPN)
    sim, T = tables_of(topo)
    return topo, sim, T


def _follow(topo, T, router, in_if, frame, limit=16):
    """Carry a frame until it leaves towards a host: (host, frame, hops)."""
    hops = []
    for _ in range(limit):
        r = decide(frame, in_if, T[router])
        assert isinstance(r, Forward), (router, r)
        hops.append((router, r.labels_in, r.labels_out))
        i = T[router].interfaces[r.out_if]
        if not topo.nodes[i.peer_node].is_router:
            return i.peer_node, r.frame, hops
        router, in_if, frame = i.peer_node, i.peer_interface, r.frame
    raise AssertionError("loop")


def test_every_site_reaches_its_own_sites_over_two_labels(net):
    topo, _, T = net
    for vpn, hosts in SITES.items():
        for a in hosts:
            for b in hosts:
                if a == b:
                    continue
                w = walk(topo, T, a, b, "udp")
                assert w["result"] == "delivered", (a, b, w["hops"])
                first, *core, last = w["hops"]
                pes = {topo.pe_of(a), topo.pe_of(b)}
                assert first["op"] == "push" and last["op"] == "pop" and last["labels_out"] == []
                if pes == {"pe2", "pe3"}:  # neighbours: the LDP label is implicit-null
                    assert len(first["labels_out"]) == 1 and not core
                else:  # [LDP label, VPN label] on the first core link, then PHP at the P
                    assert len(first["labels_out"]) == 2
                    assert core and core[-1]["op"] == "pop" and len(core[-1]["labels_out"]) == 1
                    assert core[-1]["labels_out"][0] == first["labels_out"][1]  # the VPN label
                # The VPN label is the egress PE's, allocated for this VRF.
                vpn_label = first["labels_out"][-1]
                egress = T[topo.pe_of(b)].ilm[vpn_label]
                assert egress.vrf == vpn


def test_never_the_other_customers_host(net):
    topo, _, T = net
    for vpn, hosts in SITES.items():
        other = SITES["blue" if vpn == "red" else "red"]
        for a in hosts:
            for b in other:
                w = walk(topo, T, a, b, "icmp")
                assert w["result"] != "delivered", (a, b)
                # Same addresses: the packet reaches the own VPN's host of that address.
                last = w["hops"][-1]
                assert last["neighbor"] in hosts and topo.vrf_of(last["neighbor"]) == vpn


def test_vrf_port_never_looks_up_the_global_table(net):
    topo, _, T = net
    for dst in ("10.255.0.2", "10.0.0.10", "10.255.0.11"):  # a PE's loopback, core addresses
        w = walk(topo, T, "red1", dst)
        assert w["result"] == "dropped" and w["hops"][0]["reason"] == "no-route", dst
    # A packet for a VRF prefix arriving unlabelled on a core port: no route (global table).
    pe2 = T["pe2"]
    r = decide(ip_frame(pe2, "eth3", udp("10.1.1.1", "10.1.2.1")), "eth3", pe2)
    assert isinstance(r, Drop) and r.reason == DropReason.NO_ROUTE
    # and the global table has no VRF subnet at all
    assert pe2.lookup(int(IPv4Address("10.1.2.1"))) is None


def test_ttl_expiry_in_the_core_goes_on_to_the_egress_and_back(net):
    """RFC 3032 §2.3.2: p1 cannot route to 10.1.1.1 (a VRF address), so its Time Exceeded
    (RFC 4950: both labels as received) goes on along the LSP to pe2, which routes it in
    red back over the LSP to pe1 and red1."""
    topo, _, T = net
    w = walk(topo, T, "red1", "red2", "udp", ttl=2)
    drop = w["hops"][-1]
    assert drop["router"] == "p1" and drop["reason"] == "ttl-expired"
    assert len(drop["labels_in"]) == 2
    icmp = drop["icmp"]
    assert icmp["dst"] == "10.1.1.1" and icmp["labels_out"] == [drop["labels_in"][1]]
    # Replay it to get the reply frame and follow it.
    pe1 = T["pe1"]
    f = ip_frame(pe1, "eth1", udp("10.1.1.1", "10.1.2.1", ttl=2))
    out = decide(f, "eth1", pe1)
    i = pe1.interfaces[out.out_if]
    r = decide(out.frame, i.peer_interface, T["p1"])
    assert isinstance(r, Drop) and r.replies
    rep = r.replies[0]
    ext = Ether(rep.frame)[ICMPExtension_MPLS]
    assert [x[0] for x in scapy_stack(ext)] == list(out.labels_out)  # both labels
    j = T["p1"].interfaces[rep.out_if]
    host, frame, hops = _follow(topo, T, j.peer_node, j.peer_interface, rep.frame)
    assert host == "red1" and [h[0] for h in hops] == ["pe2", "p1", "pe1"]
    assert hops[0][1] == (drop["labels_in"][1],) and len(hops[0][2]) == 2  # pe2: pop, push back
    p = Ether(frame)
    assert p[IP].dst == "10.1.1.1" and p[ICMP].type == 11
    assert p[IP].src == str(topo.interface("p1", "eth1").address.ip)


def test_ttl_expiry_at_the_ingress_and_egress_pe_stays_in_the_vrf(net):
    topo, _, T = net
    w = walk(topo, T, "blue1", "blue2", "udp", ttl=1)  # at pe1: the VRF port's address
    icmp = w["hops"][0]["icmp"]
    assert icmp["src"] == "10.1.1.2" and icmp["dst"] == "10.1.1.1" and icmp["out_interface"] == "eth2"
    w = walk(topo, T, "blue1", "blue2", "udp", ttl=3)  # expires at pe2 after the VPN pop
    drop = w["hops"][-1]
    assert drop["router"] == "pe2" and drop["reason"] == "ttl-expired"
    icmp = drop["icmp"]
    # From blue's address on pe2 (a VRF has no loopback), back over [LDP, VPN label of pe1's blue]
    assert icmp["src"] == "10.1.2.2" and icmp["dst"] == "10.1.1.1"
    (blue_label,) = [e.in_label for e in T["pe1"].lfib.vpn_ilm.values() if e.vrf == "blue"]
    assert icmp["labels_out"][-1] == blue_label


def test_per_vrf_and_per_prefix_labels(net):
    topo, sim, T = net
    pe1, pe2 = sim.lfibs()["pe1"], sim.lfibs()["pe2"]
    assert {(e.vrf, e.prefix, e.nexthops) for e in pe1.vpn_ilm.values()} == {
        ("blue", None, ()), ("red", None, ())}
    assert {(e.vrf, e.prefix) for e in pe2.vpn_ilm.values()} == {
        ("blue", IPv4Network("10.1.2.0/24")), ("red", IPv4Network("10.1.2.0/24"))}
    # VPN labels come from the VPN part of the range, disjoint from LDP's.
    ldp, vpn = topo.label_ranges("pe1")
    assert all(vpn[0] <= k <= vpn[1] for k in pe1.vpn_ilm)
    assert all(ldp[0] <= k <= ldp[1] for k in pe1.ilm)
    # Every VPN label a PE exported is the one its VRFs' routes are imported with.
    for pe in ("pe1", "pe2", "pe3"):
        for vrf, fib in sim.lfibs()[pe].vrfs.items():
            for e in fib.values():
                if e.source == "vpn":
                    egress = {str(n.lsr_id): n.name for n in topo.routers}[str(e.pe)]
                    v = sim.lfibs()[egress].vpn_ilm[e.vpn_label]
                    assert v.vrf == vrf and v.prefix in (None, e.prefix)


STATIC = """\
name: st
topology:
  nodes:
    h1: {kind: host}
    pe1:
      vrfs:
        v: {rd: 1:1, rt: 1:1, interfaces: [eth1], label_mode: per-prefix,
            routes: [{to: 10.9.0.0/16, via: 10.1.1.1}]}
    p1: {}
    pe2:
      ttl_model: TTLMODEL
      vrfs:
        v: {rd: 1:2, rt: 1:1, interfaces: [eth1]}
    h2: {kind: host}
  links:
    - endpoints: [h1:eth0, pe1:eth1]
      subnet: 10.1.1.0/24
    - endpoints: [pe1:eth2, p1:eth1]
    - endpoints: [p1:eth2, pe2:eth2]
    - endpoints: [pe2:eth1, h2:eth0]
      subnet: 10.1.2.0/24
bgp:
  asn: 65000
  routers: {pe1: {}, pe2: {}}
"""


def test_static_route_per_prefix_label_forwards_without_lookup():
    topo = parse_topology(STATIC.replace("TTLMODEL", "uniform"))
    sim, T = tables_of(topo)
    lf = sim.lfibs()["pe1"]
    (st,) = [e for e in lf.vpn_ilm.values() if e.prefix == IPv4Network("10.9.0.0/16")]
    assert st.nexthops and st.nexthops[0].nexthop == IPv4Address("10.1.1.1")
    # pop and send to the CE: the fast paths' PHP case
    assert T["pe1"].fast_ilm[st.in_label][0] == FAST_PHP
    fib = sim.lfibs()["pe2"].vrfs["v"]
    assert fib[IPv4Network("10.9.0.0/16")].vpn_label == st.in_label
    w = walk(topo, T, "h2", "10.9.1.1")
    assert w["result"] == "misdelivered" and w["hops"][-1]["neighbor"] == "h1"  # reached the CE
    assert w["hops"][-1]["router"] == "pe1" and w["hops"][-1]["op"] == "pop"


@pytest.mark.parametrize("model,ip_ttl", [("uniform", 61), ("short-pipe", 63), ("pipe", 64)])
def test_vpn_egress_ttl_models(model, ip_ttl):
    """RFC 3443 at the per-VRF egress: uniform takes the label's TTL, short-pipe forwards
    on the IP header (one decrement), pipe leaves the IP TTL alone."""
    topo = parse_topology(STATIC.replace("TTLMODEL", model))
    sim, T = tables_of(topo)
    pe2 = T["pe2"]
    (lbl,) = [k for k, e in sim.lfibs()["pe2"].vpn_ilm.items()]
    from tests.fwd_helpers import mpls_frame

    f = mpls_frame(pe2, "eth2", (lbl,), udp("10.1.1.1", "10.1.2.2", ttl=64), ttl=62)
    r = decide(f, "eth2", pe2)
    assert isinstance(r, Forward) and r.out_if == "eth1" and r.op == "pop"
    assert r.frame[14 + 8] == ip_ttl
    r = decide(mpls_frame(pe2, "eth2", (lbl, 99), udp("10.1.1.1", "10.1.2.2")), "eth2", pe2)
    assert isinstance(r, Drop) and r.reason == DropReason.MALFORMED  # VPN label not at the bottom


EXTRA = """\
name: ex
topology:
  nodes:
    r1: {kind: host}
    g1: {kind: host}
    s1: {kind: host}
    pe1:
      vrfs:
        red: {rd: 1:1, rt: 65000:1, import: 65000:99, interfaces: [eth1]}
        green: {rd: 1:2, rt: 65000:2, interfaces: [eth2]}
        svc: {rd: 1:3, export: 65000:99, import: [65000:1, 65000:2], interfaces: [eth3]}
    p1: {}
    pe2:
      vrfs:
        red: {rd: 2:1, rt: 65000:1, interfaces: [eth1]}
        green: {rd: 2:2, rt: 65000:2, import: 65000:99, interfaces: [eth2]}
        spoke: {rd: 2:3, import: 65000:20, export: 65000:10, interfaces: [eth3]}
        hub: {rd: 2:4, import: 65000:10, export: 65000:20, interfaces: [eth4]}
    pe3:
      vrfs:
        spoke: {rd: 3:3, import: 65000:20, export: 65000:10, interfaces: [eth1]}
    r2: {kind: host}
    g2: {kind: host}
    k1: {kind: host}
    hb: {kind: host}
    k2: {kind: host}
  links:
    - endpoints: [r1:eth0, pe1:eth1]
      subnet: 10.1.1.0/24
    - endpoints: [g1:eth0, pe1:eth2]
      subnet: 10.2.1.0/24
    - endpoints: [s1:eth0, pe1:eth3]
      subnet: 10.9.9.0/24
    - endpoints: [pe1:eth9, p1:eth1]
    - endpoints: [p1:eth2, pe2:eth9]
    - endpoints: [p1:eth3, pe3:eth9]
    - endpoints: [r2:eth0, pe2:eth1]
      subnet: 10.1.2.0/24
    - endpoints: [g2:eth0, pe2:eth2]
      subnet: 10.2.2.0/24
    - endpoints: [k1:eth0, pe2:eth3]
      subnet: 10.5.1.0/24
    - endpoints: [hb:eth0, pe2:eth4]
      subnet: 10.5.0.0/24
    - endpoints: [k2:eth0, pe3:eth1]
      subnet: 10.5.2.0/24
bgp:
  asn: 65000
  routers: {pe1: {}, pe2: {}, pe3: {}}
"""


@pytest.fixture(scope="module")
def extra():
    topo = parse_topology(EXTRA)
    sim, T = tables_of(topo)
    return topo, sim, T


def test_extranet_shared_service(extra):
    """svc (pe1) exports 65000:99 and imports both customers' targets; red on pe1 and green
    on pe2 import 99: r1 reaches the service on its own PE (a leak between two VRFs of
    pe1), g2 from pe2; the other sites do not, and red and green still not each other."""
    topo, sim, T = extra

    def ok(a, b):
        return walk(topo, T, a, b)["result"] == "delivered"

    assert ok("r1", "s1") and ok("s1", "r1") and ok("g2", "s1") and ok("s1", "g2")
    assert not ok("g1", "s1") and not ok("r2", "s1") and ok("r2", "r1")
    assert not ok("r1", "g1") and not ok("r1", "g2") and not ok("g2", "r2")
    fib = sim.lfibs()["pe1"].vrfs
    assert fib["red"][IPv4Network("10.9.9.0/24")].source == "leaked"
    assert fib["red"][IPv4Network("10.9.9.0/24")].interface == "eth3"
    assert IPv4Network("10.2.1.0/24") not in fib["red"]
    # the service's routes are not in red's own sites' targets: r2 (pe2's red) has none
    assert IPv4Network("10.9.9.0/24") not in sim.lfibs()["pe2"].vrfs["red"]


def test_hub_and_spoke(extra):
    topo, sim, T = extra

    def ok(a, b):
        return walk(topo, T, a, b)["result"] == "delivered"

    assert ok("k1", "hb") and ok("hb", "k1") and ok("k2", "hb") and ok("hb", "k2")
    assert not ok("k1", "k2") and not ok("k2", "k1")  # spokes only learn the hub's routes
    assert set(sim.lfibs()["pe3"].vrfs["spoke"]) == {IPv4Network("10.5.2.0/24"),
                                                      IPv4Network("10.5.0.0/24")}


def test_customer_link_down_withdraws_its_route():
    topo = load_topology(L3VPN)
    sim = Simulation(topo)
    assert sim.run().converged
    red2 = next(k.index for k in topo.links if "red2" in k.nodes)
    p = IPv4Network("10.1.2.0/24")
    assert p in sim.lfibs()["pe1"].vrfs["red"]
    sim.link_down(red2)
    sim.run()
    assert p not in sim.lfibs()["pe1"].vrfs["red"] and p in sim.lfibs()["pe1"].vrfs["blue"]
    sim.link_up(red2)
    sim.run()
    assert sim.lfibs()["pe1"].vrfs["red"][p].source == "vpn"


def test_compose_needs_an_lsp_to_the_next_hop():
    """RFC 4364 §5: a VPN route whose next hop has no LSP is not installed."""
    topo = load_topology(L3VPN)
    p = IPv4Network("10.1.2.0/24")
    vr = VpnRoute(p, "10.255.0.2:1", IPv4Address("10.255.0.2"), 5101, ("65000:1",))
    vt = compose(topo, "pe1", {"red": {p: vr}}, {}, {("red", None): 1101})
    assert p not in vt.vrfs["red"] and vt.rejected == [("red", p, "no LSP to 10.255.0.2 (RFC 4364 §5)")]
    ftn = {IPv4Network("10.255.0.2/32"): FtnEntry(IPv4Network("10.255.0.2/32"), (
        Nhlfe("p1", "eth3", IPv4Address("10.0.0.2"), (2005,)),
        Nhlfe("p2", "eth4", IPv4Address("10.0.0.6"), (3005,))))}
    vt = compose(topo, "pe1", {"red": {p: vr}}, ftn, {("red", None): 1101})
    e = vt.vrfs["red"][p]
    assert [n.out_labels for n in e.nexthops] == [(2005, 5101), (3005, 5101)]  # ECMP, both
    assert vt.ilm[1101].vrf == "red" and vt.ilm[1101].nexthops == ()


def test_vrf_lookup_actions(net):
    topo, _, T = net
    red = T["pe1"].vrfs["red"]
    a = red.lookup(int(IPv4Address("10.1.1.1")))
    assert a.kind == A_CONNECTED and a.out_if == "eth1"
    a = red.lookup(int(IPv4Address("10.1.3.1")))
    assert a.kind == A_NHLFE and len(a.nhs[0].out_labels) == 2
    assert T["pe1"].vrfs["blue"].lookup(int(IPv4Address("10.1.1.1"))).out_if == "eth2"


def test_pes_keep_only_routes_their_vrfs_import(extra):
    """Inbound route-target filtering: pe3 (one spoke VRF, importing 65000:20) keeps the
    hub's route and its own, not red's, green's or the service's; pe1 keeps what its
    VRFs import (red, green, svc's targets)."""
    from bgp.nlri import IPV4_VPN
    from bgp.vpn import route_targets

    topo, sim, _ = extra
    rib3 = {(str(n.rd), str(n.prefix)): p for (f, n), p in sim.bgp["pe3"].loc_rib.items()
            if f == IPV4_VPN}
    assert set(rib3) == {("2:4", "10.5.0.0/24"), ("3:3", "10.5.2.0/24")}
    rts1 = {t for (f, _), p in sim.bgp["pe1"].loc_rib.items() if f == IPV4_VPN
            for t in route_targets(p)}
    assert rts1 <= {"65000:1", "65000:2", "65000:99"} and "65000:1" in rts1
    assert sim.bgp["pe1"].cfg.import_targets is not None


def test_fragmentation_needed_counts_both_labels(net):
    """RFC 3032 §3: a 1500-octet DF packet does not fit under [LDP, VPN label] on a
    1500 link: pe1 answers 3/4 with next-hop MTU 1500 - 2 x 4, routed back in the VRF."""
    from tests.fwd_helpers import ip

    topo, _, T = net
    pe1 = T["pe1"]
    pkt = ip("10.1.1.1", "10.1.2.1", payload=bytes(1480), df=True)
    r = decide(ip_frame(pe1, "eth1", pkt), "eth1", pe1)
    assert isinstance(r, Drop) and r.reason == DropReason.FRAG_NEEDED
    (rep,) = r.replies
    p = Ether(rep.frame)
    assert rep.out_if == "eth1" and p[IP].src == "10.1.1.2" and p[IP].dst == "10.1.1.1"
    assert (p[ICMP].type, p[ICMP].code, p[ICMP].nexthopmtu) == (3, 4, 1492)
    ok = decide(ip_frame(pe1, "eth1", ip("10.1.1.1", "10.1.2.1", payload=bytes(1472),
                                         df=True)), "eth1", pe1)
    assert isinstance(ok, Forward) and len(ok.frame) == 14 + 8 + 1492


def test_a_restarted_pe_exports_its_vrfs_again():
    """`router_start` of a PE (a new process, as `lsr lab node R start` runs): it
    originates its VRFs' routes again, and every VRF table equals the one before the stop.
    They never came back: the simulator remembered them as exported by the old process."""
    from lsr.core.topology import load_topology
    from lsr.sim import Simulation
    from tests.conftest import TOPOLOGIES

    s = Simulation(load_topology(TOPOLOGIES / "l3vpn.yaml"))
    s.run(quiet=s.quiet_time())
    before = s.vrf_json()
    s.router_stop("pe1")
    s.run(quiet=s.quiet_time())
    assert s.vrf_json() != before  # pe1's sites are gone from the other PEs
    s.router_start("pe1")
    s.run(quiet=s.quiet_time())
    assert s.vrf_json() == before
