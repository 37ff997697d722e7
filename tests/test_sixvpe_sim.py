"""6VPE (RFC 4659) in the simulator: IPv6 in the VRFs of BGP/MPLS IP VPNs across an
IPv4-only core. PEs export their VRFs' IPv6 subnets as VPN-IPv6 (AFI 2 / SAFI 128: label,
RD, IPv6 prefix; next hop RD 0 + ::ffff:<loopback>, §3.2.1.1), import them by route
target, push [LDP label, VPN label]; the egress pops the VPN label and looks the IPv6
packet up in the VRF. Two customers with the same IPv4 and IPv6 prefixes stay apart.
tshark decodes the UPDATEs."""

from __future__ import annotations

import shutil
import subprocess
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from pathlib import Path

import pytest
from click.testing import CliRunner
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6ND_NA, ICMPv6TimeExceeded, IPv6
from scapy.layers.l2 import Ether

from bgp import events as ev
from bgp.attrs import PathAttrs
from bgp.messages import Update, decode_message, encode
from bgp.nlri import (
    IPV6_VPN,
    Nlri,
    NlriError,
    Rd,
    decode_next_hop,
    decode_nlri,
    encode_next_hop,
    encode_nlri,
)
from forwarding.plane import Deliver, Drop, Forward, decide
from forwarding.walk import walk
from lsr.cli import main
from lsr.core.topology import load_topology
from lsr.oam.validate import validate, walk_ping, walk_trace
from lsr.sim import Simulation, converge
from tests.test_plane6 import ns_frame
from tests.v6_helpers import echo6, frame6, udp6

from .test_bgp_tshark import Pcap, Stream, tshark

ROOT = Path(__file__).resolve().parents[1]
SIXVPE = ROOT / "topologies" / "6vpe.yaml"
SITE1, SITE2 = IPv6Network("2001:db8:1:1::/64"), IPv6Network("2001:db8:1:2::/64")
RED1 = BLUE1 = "2001:db8:1:1::1"
RED2 = BLUE2 = "2001:db8:1:2::1"
PE1_RED = "2001:db8:1:1::2"


@pytest.fixture(scope="module")
def six():
    o = converge(load_topology(SIXVPE))
    assert o.converged
    return o.sim


@pytest.fixture(scope="module")
def tables(six):
    from forwarding.tables import build_all

    return build_all(six.topo, six.ribs, six.lfibs(), six.fib6s())


# ---------------------------------------------------------------- codec (RFC 4659 §3.2)


def test_vpn_ipv6_nlri_and_next_hop_on_the_wire():
    n = Nlri(IPv6Network("2001:db8:1::/48"), Rd.parse("10.255.0.1:7"))
    b = encode_nlri(IPV6_VPN, n, 4102)
    assert b[0] == 24 + 64 + 48 and len(b) == 1 + 3 + 8 + 6
    assert b[1:4] == bytes.fromhex("010061")  # label 4102, S set (RFC 8277 §2)
    assert b[4:12] == Rd.parse("10.255.0.1:7").pack()
    assert decode_nlri(IPV6_VPN, b) == [(n, 4102)]
    assert decode_nlri(IPV6_VPN, encode_nlri(IPV6_VPN, Nlri(IPv6Network("::/0"), Rd(0, 1, 2)),
                                             16)) == [(Nlri(IPv6Network("::/0"), Rd(0, 1, 2)), 16)]
    # next hop: an RD of zero, then the IPv4-mapped loopback (§3.2.1.1), 24 octets
    nh = encode_next_hop(IPV6_VPN, IPv4Address("10.255.0.2"))
    assert nh == bytes(8) + IPv6Address("::ffff:10.255.0.2").packed
    assert decode_next_hop(IPV6_VPN, nh) == IPv4Address("10.255.0.2")
    assert decode_next_hop(IPV6_VPN, nh + bytes(8) + IPv6Address("fe80::1").packed) \
        == IPv4Address("10.255.0.2")  # with a link-local after it (48 octets)
    assert decode_next_hop(IPV6_VPN, bytes(8) + IPv6Address("2001:db8::1").packed) \
        == IPv6Address("2001:db8::1")
    assert decode_next_hop(IPV6_VPN, nh[:16]) is None  # 6PE's length is not VPN-IPv6's
    with pytest.raises(NlriError):  # 88 + 129 bits: more than an IPv6 prefix
        decode_nlri(IPV6_VPN, bytes([88 + 129]) + bytes(3 + 8 + 17))
    with pytest.raises(ValueError):
        encode_nlri(IPV6_VPN, Nlri(IPv6Network("2001:db8::/32")), 16)  # no RD


def test_an_update_with_vpn_ipv6_round_trips():
    from bgp.attrs import AS4, ExtCommunity, MpReach

    u = Update(attrs=PathAttrs(local_pref=100, ext_communities=(
        ExtCommunity.route_target("65000:1"),)), mp_reach=MpReach(
        IPV6_VPN, IPv4Address("10.255.0.1"), ((Nlri(SITE1, Rd.parse("10.255.0.1:1")), 1101),)))
    assert decode_message(encode(u, AS4), AS4) == u


# ---------------------------------------------------------------- control plane


def test_pes_export_and_import_vpn_ipv6(six):
    pe1 = six.bgp["pe1"]
    assert IPV6_VPN in pe1.cfg.families
    p = pe1.loc_rib[(IPV6_VPN, Nlri(SITE2, Rd.parse("10.255.0.2:1")))]
    # pe2's red labels per prefix: its IPv4 subnet 4101, its IPv6 subnet 4102
    assert p.next_hop == IPv4Address("10.255.0.2") and p.label == 4102
    assert [str(c.admin_number()) for c in p.attrs.ext_communities] == ["65000:1"]
    blue = pe1.loc_rib[(IPV6_VPN, Nlri(SITE2, Rd.parse("10.255.0.2:2")))]
    assert blue.label == 4100  # per VRF: the same label as its IPv4 routes
    vrfs = six.vpn_tables("pe1").vrfs
    e = vrfs["red"][SITE2]
    assert e.source == "vpn" and e.pe == IPv4Address("10.255.0.2") and e.vpn_label == 4102
    assert [n.out_labels for n in e.nexthops] == [(2002, 4102)]  # [LDP label, VPN label]
    assert vrfs["blue"][SITE2].nexthops[0].out_labels == (2002, 4100)
    assert vrfs["red"][SITE1].source == "connected" and vrfs["red"][SITE1].interface == "eth1"
    ilm = six.vpn_tables("pe2").ilm
    assert (ilm[4102].vrf, ilm[4102].prefix) == ("red", SITE2)


def test_a_withdrawn_site_leaves_the_other_vrf(six):
    s = Simulation(load_topology(SIXVPE))
    assert s.run(max_time=120).converged
    red2 = next(lk.index for lk in s.topo.links if "red2" in lk.nodes)
    s.link_down(red2)
    s.run(max_time=60)
    assert (IPV6_VPN, Nlri(SITE2, Rd.parse("10.255.0.2:1"))) not in s.bgp["pe1"].loc_rib
    assert SITE2 not in s.vpn_tables("pe1").vrfs["red"]
    assert SITE2 in s.vpn_tables("pe1").vrfs["blue"]  # the other customer's stays
    s.link_up(red2)
    s.run(max_time=60)
    assert SITE2 in s.vpn_tables("pe1").vrfs["red"]


# ---------------------------------------------------------------- forwarding


def test_walk_two_labels_then_the_vpn_label_then_the_vrf(six, tables):
    w = walk(six.topo, tables, "red1", "red2", family=6)
    assert w["result"] == "delivered"
    assert [(h["router"], h["op"], h["labels_out"]) for h in w["hops"]] == [
        ("pe1", "push", [2002, 4102]), ("p1", "swap", [3002, 4102]), ("p2", "pop", [4102]),
        ("pe2", "pop", [])]
    assert w["hops"][0]["table"] == "vrf" and w["hops"][-1]["table"] == "vpn"


def test_same_addresses_two_customers_never_meet(six, tables):
    # blue1 to the address red2 and blue2 share ends at blue2, and red1's at red2
    for src, end in (("blue1", "blue2"), ("red1", "red2")):
        w = walk(six.topo, tables, src, RED2)
        assert w["result"] == "delivered" and w["hops"][-1]["neighbor"] == end, w
    w = walk(six.topo, tables, "red1", "blue2", family=6)  # blue2 by name: red2 answers
    assert w["result"] == "misdelivered" and w["hops"][-1]["neighbor"] == "red2"


def test_p_router_time_exceeded_goes_on_and_back_through_the_vrf(six, tables):
    w = walk(six.topo, tables, "blue2", "blue1", proto="udp", ttl=2, family=6)
    (drop,) = [h for h in w["hops"] if h["op"] == "drop"]
    assert drop["router"] == "p2" and drop["reason"] == "ttl-expired"
    icmp = drop["icmp"]
    assert icmp["type"] == 3 and icmp["src"] == "::ffff:10.0.0.9" and icmp["onward"]
    assert icmp["result"] == "delivered" and icmp["hops"][-1]["neighbor"] == "blue2"
    # the error rode the LSP to pe1 under blue's VPN label, pe1 looked it up in blue
    assert [(h["router"], h["labels_out"]) for h in icmp["hops"]][:3] == [
        ("p2", [2001, 1100]), ("p1", [1100]), ("pe1", [2002, 4100])]


def test_the_pe_answers_its_vrf_sites(tables):
    t = tables["pe1"]
    for port in ("eth1", "eth2"):  # the same address in red and in blue
        r = decide(ns_frame(t, port, PE1_RED, src=RED1), port, t)
        assert isinstance(r, Deliver) and r.kind == "nd" and r.replies[0].out_if == port
        assert Ether(r.replies[0].frame)[ICMPv6ND_NA].tgt == PE1_RED
        r = decide(frame6(t, port, echo6(RED1, PE1_RED)), port, t)
        assert isinstance(r, Deliver) and r.replies[0].out_if == port
        assert ICMPv6EchoReply in Ether(r.replies[0].frame)


def test_hop_limit_at_the_ingress_pe_is_answered_in_the_vrf(tables):
    t = tables["pe1"]
    r = decide(frame6(t, "eth2", udp6(BLUE1, BLUE2, hl=1)), "eth2", t)
    assert isinstance(r, Drop) and r.reason.value == "ttl-expired"
    (fw,) = r.replies
    p = IPv6(fw.frame[14:])
    assert fw.out_if == "eth2" and p.src == PE1_RED and p.dst == BLUE1
    assert ICMPv6TimeExceeded in p


def test_ipv6_under_a_vpn_label_is_looked_up_in_its_vrf(tables):
    from tests.fwd_helpers import mpls_frame

    t = tables["pe2"]
    before = t.counters_json()["vrf"][f"red {SITE2}"]["packets"]
    pkt = udp6(RED1, RED2, hl=9)
    r = decide(mpls_frame(t, "eth3", (4102,), pkt, ttl=9), "eth3", t)
    assert isinstance(r, Forward) and r.out_if == "eth1" and r.op == "pop"
    r = decide(mpls_frame(t, "eth3", (4100,), pkt, ttl=9), "eth3", t)  # blue's label
    assert isinstance(r, Forward) and r.out_if == "eth2"
    assert t.counters_json()["vrf"][f"red {SITE2}"]["packets"] == before + 1


# ---------------------------------------------------------------- checks and CLI


def test_validate_walks_ipv6_between_sites(six):
    topo = six.topo
    lfibs = six.lfibs()
    from lsr.core.igp import Igp

    igp = Igp(topo)
    trace = walk_trace(topo, lfibs, igp)
    rows = {r.check: r for r in validate(topo, lfibs, igp, ping=walk_ping(topo, lfibs, igp, trace),
                                         trace=trace)}
    assert rows["invariant vpn-reachability"].status == "pass"
    assert "2 over IPv6 too" in rows["invariant vpn-reachability"].detail
    assert rows["invariant vpn-isolation"].status == "pass"
    assert "IPv6:" in rows["expect[0] vpn red1 -> red2 (line 59)"].detail


def test_a_leak_over_ipv6_is_caught(six):
    """blue's IPv6 route put into red: vpn-isolation names it."""
    from dataclasses import replace

    from lsr.core.igp import Igp
    from lsr.oam.vpncheck import leak_problems

    lfibs = six.lfibs()
    red = lfibs["pe1"].vrfs["red"]
    blue = lfibs["pe1"].vrfs["blue"][SITE2]
    red[SITE2] = replace(blue, route_targets=("65000:2",))
    bad = leak_problems(six.topo, lfibs)
    assert any("pe1 red 2001:db8:1:2::/64 from pe2 blue" in b for b in bad), bad
    trace = walk_trace(six.topo, lfibs, Igp(six.topo))
    w = trace("red1", RED2)
    assert w["hops"][-1]["neighbor"] == "blue2"  # the leak, walked


def test_cli_sim_vrf_and_bgp_vpn6():
    r = CliRunner().invoke(main, ["sim", "vrf", str(SIXVPE), "pe1", "--vrf", "red", "--json"])
    assert r.exit_code == 0, r.output
    import json

    fib = json.loads(r.output)["routers"]["pe1"]["vrfs"]["red"]["fib"]
    assert [e["prefix"] for e in fib] == ["10.1.1.0/24", "10.1.2.0/24", str(SITE1), str(SITE2)]
    r = CliRunner().invoke(main, ["sim", "bgp", str(SIXVPE), "pe2", "vpn6", "--json"])
    assert r.exit_code == 0, r.output
    routes = json.loads(r.output)["routers"]["pe2"]["routes"]
    assert {(x["rd"], x["prefix"], x["next_hop"], x["label"]) for x in routes if
            x["from"] == "pe1"} == {("10.255.0.1:1", str(SITE1), "::ffff:10.255.0.1", 1101),
                                    ("10.255.0.1:2", str(SITE1), "::ffff:10.255.0.1", 1100)}
    r = CliRunner().invoke(main, ["sim", "bgp", str(SIXVPE), "pe2", "vpn6"])
    assert "VPN-IPv6 (6VPE) routes" in r.output


# ---------------------------------------------------------------- tshark


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_the_6vpe_updates(tmp_path):
    sim = Simulation(load_topology(SIXVPE))
    pcap = Pcap()
    streams: dict[tuple[str, int], Stream] = {}
    perform = sim._perform_bgp

    def spy(router: str, actions: list) -> None:
        for a in actions:
            if isinstance(a, ev.TcpSend):
                pipe = sim._bgp_pipes.get((router, a.conn))
                if pipe is not None:
                    peer, pconn, local, remote = pipe
                    cli = (router, a.conn) if a.conn > 0 else (peer, pconn)
                    st = streams.get(cli)
                    if st is None:
                        c, sv = (local, remote) if a.conn > 0 else (remote, local)
                        st = streams[cli] = Stream((c, 30000 + cli[1]), (sv, 179))
                        pcap.handshake(sim.now, st)
                    pcap.send(sim.now, st, a.conn > 0, a.data)
        perform(router, actions)

    sim._perform_bgp = spy  # type: ignore[method-assign]
    assert sim.run(max_time=120).converged
    red2 = next(lk.index for lk in sim.topo.links if "red2" in lk.nodes)
    sim.link_down(red2)  # pe2 withdraws red's routes: MP_UNREACH of VPN-IPv6 too
    sim.run(max_time=30)
    path = tmp_path / "6vpe.pcap"
    pcap.write(path)
    frames = tshark(path)
    bad = [(n, d.problems) for n, d in enumerate(frames, 1) if d.problems]
    assert not bad, bad[:5]
    text = subprocess.run(["tshark", "-r", str(path), "-V"], capture_output=True, text=True,
                          timeout=600, check=True).stdout
    # pe2's red IPv6 route as tshark reads it: VPN-IPv6, the next hop RD 0 + mapped IPv4
    assert "Subsequent address family identifier (SAFI): Labeled VPN Unicast (128)" in text
    assert "Next hop:  RD=0:0 IPv6=::ffff:10.255.0.2" in text
    assert "Label Stack=4102 (bottom) RD=10.255.0.2:1, IPv6=2001:db8:1:2::/64" in text
    assert "Label Stack=1100 (bottom) RD=10.255.0.1:2, IPv6=2001:db8:1:1::/64" in text
    assert "Label Stack=0 (withdrawn) RD=10.255.0.2:1, IPv6=2001:db8:1:2::/64" in text


def test_6pe_and_6vpe_on_one_pe():
    """Global IPv6 customers (6PE) beside the VRFs (6VPE): one label split (6PE label,
    LDP, VPN labels), both families, every check passes, a VRF site cannot reach a
    global IPv6 host."""
    from lsr.core.topology import parse_topology

    text = SIXVPE.read_text().replace(
        "    red2: {kind: host}\n", "    red2: {kind: host}\n    ce1: {kind: host}\n"
        "    ce2: {kind: host}\n").replace("bgp:\n", """    - endpoints: [ce1:eth0, pe1:eth5]
      subnet6: 2001:db8:99:1::/64
    - endpoints: [ce2:eth0, pe2:eth5]
      subnet6: 2001:db8:99:2::/64
bgp:
""", 1)
    o = converge(parse_topology(text, "mixed.yaml"))
    assert o.converged
    s = o.sim
    assert s.topo.label_ranges("pe1")[0][0] == 1001 and s.fib6("pe1").labels == (1000,)
    assert s.vpn_tables("pe1").vrfs["red"][SITE2].vpn_label == 4102
    lfibs = s.lfibs()
    from lsr.core.igp import Igp
    from lsr.oam.sixpe_check import sixpe_results

    igp = Igp(s.topo)
    trace = walk_trace(s.topo, lfibs, igp)
    rows = validate(s.topo, lfibs, igp, ping=walk_ping(s.topo, lfibs, igp, trace), trace=trace)
    rows += sixpe_results(s.topo, lfibs, igp, s.fib6s())
    assert [r for r in rows if r.status != "pass"] == []
    assert {r.check for r in rows} >= {"invariant 6pe-reachability", "invariant vpn-reachability"}
    w = trace("red1", "2001:db8:99:2::1")
    assert w["result"] == "dropped" and w["hops"][0]["reason"] == "no-route"


# ---------------------------------------------------------------- IPv6 static routes in VRFs

STATIC6 = "2001:db8:99::/48"
BEHIND_RED1 = "2001:db8:99::1"


def _static_topo(pe: str = "pe1", route: str = f"{{to: '{STATIC6}', via: '{RED1}'}}"):
    from lsr.core.topology import parse_topology

    text = SIXVPE.read_text()
    old = ("red: {rd: 10.255.0.1:1, rt: 65000:1, interfaces: [eth1]}" if pe == "pe1" else
           "red: {rd: 10.255.0.2:1, rt: 65000:1, interfaces: [eth1], label_mode: per-prefix}")
    assert old in text
    return parse_topology(text.replace(old, old[:-1] + f", routes: [{route}]}}"),
                          Path(f"/tmp/{pe}-static6.yaml"))


def _converged(topo):
    from forwarding.tables import build_all

    o = converge(topo)
    assert o.converged
    return o.sim, build_all(topo, o.sim.ribs, o.sim.lfibs(), o.sim.fib6s())


def test_ipv6_static_route_in_a_vrf_is_exported_and_forwarded():
    """An IPv6 static route of pe1's red (via red1's address on the port's subnet6) goes out
    as a VPN-IPv6 route (RFC 4659) with red's label; pe2's red pushes [LDP, VPN label] to
    it, pe1 pops the label and sends the packet to red1 (its MAC, no label)."""
    topo = _static_topo()
    (r,) = topo.nodes["pe1"].vrfs["red"].routes
    assert (str(r.prefix), str(r.via), r.interface) == (STATIC6, RED1, "eth1")
    sim, t = _converged(topo)
    own = sim.lfibs()["pe1"].vrfs["red"][IPv6Network(STATIC6)]
    assert own.source == "static" and own.nexthops[0].nexthop == IPv6Address(RED1)
    got = sim.lfibs()["pe2"].vrfs["red"][IPv6Network(STATIC6)]
    assert got.source == "vpn" and str(got.pe) == "10.255.0.1"
    assert IPv6Network(STATIC6) not in sim.lfibs()["pe2"].vrfs["blue"]  # red's only
    w = walk(topo, t, "red2", BEHIND_RED1)
    assert [h["router"] for h in w["hops"]] == ["pe2", "p2", "p1", "pe1"]
    assert w["hops"][0]["labels_out"][-1] == got.vpn_label and w["hops"][0]["fec"] == STATIC6
    assert w["hops"][-1]["op"] == "pop" and w["hops"][-1]["neighbor"] == "red1"
    w = walk(topo, t, "blue2", BEHIND_RED1)
    assert w["result"] == "dropped" and w["hops"][0]["reason"] == "no-route"
    # the frame pe1 sends: IPv6 (0x86dd) to red1's MAC, no label, hop limit 64 - 4
    from lsr.teach import step

    _, steps = step.step_walk(topo, t, "red2", BEHIND_RED1)
    sent = steps[-1].sent
    red1_mac = topo.nodes["red1"].interfaces["eth0"].mac
    assert sent.eth[0] == red1_mac and sent.eth[2] == 0x86DD and sent.labels == []
    assert sent.ip[1] == BEHIND_RED1 and sent.ip[2] == 60


def test_ipv6_static_route_per_prefix_label_and_json_roundtrip():
    """pe2's red allocates per prefix: the IPv6 static route gets a label of its own that
    pops and looks up in red; the lfib JSON (as a lab answers) reads back with the IPv6
    next hop, and the step view names the static route."""
    from lsr.oam.validate import lfibs_from_json
    from lsr.teach import step

    topo = _static_topo("pe2", f"{{to: '{STATIC6}', via: '{RED2}'}}")
    sim, t = _converged(topo)
    (lbl,) = [e for e in sim.lfibs()["pe2"].vpn_ilm.values() if str(e.prefix) == STATIC6]
    assert lbl.nexthops == ()  # pop, then red's lookup finds the static route
    assert sim.lfibs()["pe1"].vrfs["red"][IPv6Network(STATIC6)].vpn_label == lbl.in_label
    w, steps = step.step_walk(topo, t, "red1", BEHIND_RED1.replace("99::1", "99::7"))
    assert w["hops"][-1]["router"] == "pe2" and w["hops"][-1]["neighbor"] == "red2"
    assert steps[-1].rule[-1] == (f"{STATIC6} static via {RED2} (red2) eth1", True)
    back = lfibs_from_json(sim.lfib_json())
    assert back["pe2"].vrfs["red"][IPv6Network(STATIC6)].nexthops[0].nexthop == IPv6Address(RED2)


@pytest.mark.parametrize("route,message", [
    (f"{{to: '{STATIC6}', via: '2001:db8:5::1'}}",
     "2001:db8:5::1 is on no subnet of VRF red's interfaces (IPv6: a port's subnet6)"),
    (f"{{to: '{STATIC6}', via: 10.1.1.1}}",
     f"10.1.1.1 is not an IPv6 address: a route to {STATIC6} needs a next hop of its family"),
    (f"{{to: '{STATIC6}', via: 'fe80::1'}}",
     "fe80::1 is not a unicast global address (the CE's address on the port's subnet6)"),
    (f"{{to: '{STATIC6}', via: '{PE1_RED}'}}", f"{PE1_RED} is pe1's own address"),
    ("{to: '2001:db8:99::1/48', via: '2001:db8:1:1::1'}",
     "bad IPv6 prefix '2001:db8:99::1/48': 2001:db8:99::1/48 has host bits set"),
])
def test_ipv6_static_route_errors(route: str, message: str):
    from lsr.core.topology import TopologyError

    with pytest.raises(TopologyError) as e:
        _static_topo(route=route)
    assert message in str(e.value) and "routes[0]" in str(e.value), str(e.value)
