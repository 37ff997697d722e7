"""Forwarding decisions on crafted frames: push, swap, pop, egress, reserved labels, TTL, MTU, ECMP.

Every frame the plane produces is decoded by scapy and checked field by field.
Topology line4: ce1 - pe1 - p1 - p2 - pe2 - ce2 (pe1 pushes, p1 swaps, p2 pops).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, UDP, defragment
from scapy.layers.l2 import ARP, Ether
from scapy.packet import bind_layers

from forwarding.labelops import checksum16, encode_stack
from forwarding.plane import LOCAL_IF, Dataplane, Deliver, Drop, DropReason, Forward, decide
from forwarding.tables import RouterTables
from lsr.core.igp import Igp
from lsr.core.lfib import FtnEntry, IlmEntry, Lfib, LfibDiff, Nhlfe
from lsr.core.topology import load_topology
from tests.conftest import TOPOLOGIES
from tests.fwd_helpers import (
    all_tables,
    eth,
    icmp_echo,
    ilm_label,
    ip_frame,
    line3,
    line4,
    mpls_frame,
    udp,
)

bind_layers(Ether, MPLS, type=0x8847)

CE1, CE2 = "192.168.1.1", "192.168.2.2"
FEC2 = "192.168.2.0/24"


@pytest.fixture(scope="module")
def topo():
    return line4()


@pytest.fixture
def T(topo):
    return all_tables(topo)


def mac(topo, node, ifname):
    return topo.interface(node, ifname).mac


def labels_of(p):
    out = []
    m = p.getlayer(MPLS)
    while m is not None and isinstance(m, MPLS):
        out.append((m.label, m.cos, m.s, m.ttl))
        m = m.payload
    return out


def ip_ok(p):
    raw = bytes(p[IP])[: p[IP].ihl * 4]
    return checksum16(raw) == 0


# ---------------------------------------------------------------- ingress (FTN push)


def test_push_at_ingress(topo, T):
    pe1, p1 = T["pe1"], T["p1"]
    r = decide(ip_frame(pe1, "eth1", udp(CE1, CE2, ttl=64)), "eth1", pe1)
    assert isinstance(r, Forward) and r.op == "push" and r.out_if == "eth2"
    want = ilm_label(p1, FEC2)
    assert r.labels_out == (want,) and r.ttl == 63
    p = Ether(r.frame)
    assert p.dst == mac(topo, "p1", "eth1") and p.src == mac(topo, "pe1", "eth2")
    assert p.type == 0x8847
    assert labels_of(p) == [(want, 0, 1, 63)]  # uniform: label TTL = IP TTL - 1
    assert p[IP].ttl == 63 and ip_ok(p)
    assert p[UDP].dport == 5678 and bytes(p[UDP].payload) == b"hello"


def test_push_copies_ip_precedence_to_tc(T):
    pe1 = T["pe1"]
    r = decide(ip_frame(pe1, "eth1", udp(CE1, CE2, tos=0xB8)), "eth1", pe1)  # DSCP EF
    assert labels_of(Ether(r.frame))[0][1] == 5


def test_unlabelled_ftn_and_plain_ip_forward(T):
    # p2's FTN for pe2's loopback is unlabelled (pe2 advertised implicit null).
    p2 = T["p2"]
    r = decide(ip_frame(p2, "eth1", udp(CE1, "10.255.0.4", ttl=9)), "eth1", p2)
    assert r.op == "forward" and r.labels_out == () and r.out_if == "eth2"
    p = Ether(r.frame)
    assert p.type == 0x0800 and p[IP].ttl == 8 and ip_ok(p)
    # With no FTN at all, the RIB forwards plain IP.
    p2.set_lfib(Lfib())
    r = decide(ip_frame(p2, "eth1", udp(CE1, CE2, ttl=9)), "eth1", p2)
    assert r.op == "forward" and Ether(r.frame)[IP].ttl == 8


def test_lpm_prefers_longer_prefix(T):
    pe1 = T["pe1"]
    ftn = dict(pe1.lfib.ftn)
    nh = ftn[IPv4Network(FEC2)].nexthops[0]
    ftn[IPv4Network("192.168.2.2/32")] = FtnEntry(
        IPv4Network("192.168.2.2/32"), (Nhlfe(nh.neighbor, nh.interface, nh.nexthop, (777, 888)),))
    pe1.set_ftn(ftn)
    r = decide(ip_frame(pe1, "eth1", udp(CE1, CE2)), "eth1", pe1)
    assert r.labels_out == (777, 888)
    assert [x[2] for x in labels_of(Ether(r.frame))] == [0, 1]
    r = decide(ip_frame(pe1, "eth1", udp(CE1, "192.168.2.3")), "eth1", pe1)
    assert r.labels_out == (ilm_label(T["p1"], FEC2),)


# ---------------------------------------------------------------- ILM swap / pop


def test_swap(topo, T):
    p1 = T["p1"]
    inl, outl = ilm_label(p1, FEC2), ilm_label(T["p2"], FEC2)
    f = mpls_frame(p1, "eth1", (inl,), udp(CE1, CE2, ttl=50), ttl=40, tc=6)
    r = decide(f, "eth1", p1)
    assert r.op == "swap" and r.labels_in == (inl,) and r.labels_out == (outl,) and r.ttl == 39
    p = Ether(r.frame)
    assert p.dst == mac(topo, "p2", "eth1") and p.src == mac(topo, "p1", "eth2")
    assert labels_of(p) == [(outl, 6, 1, 39)]  # TC kept, S kept, TTL - 1
    assert p[IP].ttl == 50  # the IP header is not touched on a swap
    assert bytes(p[IP]) == udp(CE1, CE2, ttl=50)


def test_swap_top_of_two_label_stack(T):
    p1 = T["p1"]
    inl, outl = ilm_label(p1, FEC2), ilm_label(T["p2"], FEC2)
    f = mpls_frame(p1, "eth1", (inl, 9999), udp(CE1, CE2), ttls=(30, 200), tc=2)
    r = decide(f, "eth1", p1)
    assert labels_of(Ether(r.frame)) == [(outl, 2, 0, 29), (9999, 2, 1, 200)]


def test_swap_then_push_several_out_labels(T):
    p1 = T["p1"]
    inl = ilm_label(p1, FEC2)
    e = p1.ilm[inl].entry
    nh = e.nexthops[0]
    p1.apply_diff(LfibDiff(ilm_set=(IlmEntry(inl, e.fec, (
        Nhlfe(nh.neighbor, nh.interface, nh.nexthop, (500, 600), "swap"),)),)))
    r = decide(mpls_frame(p1, "eth1", (inl,), udp(CE1, CE2), ttl=30), "eth1", p1)
    assert labels_of(Ether(r.frame)) == [(500, 0, 0, 29), (600, 0, 1, 29)]
    p1.uniform = False  # pipe: the pushed outer entry gets 255
    r = decide(mpls_frame(p1, "eth1", (inl,), udp(CE1, CE2), ttl=30), "eth1", p1)
    assert labels_of(Ether(r.frame)) == [(500, 0, 0, 255), (600, 0, 1, 29)]


def test_php_pop_uniform_copies_smaller_ttl(topo, T):
    p2 = T["p2"]
    inl = ilm_label(p2, FEC2)
    r = decide(mpls_frame(p2, "eth1", (inl,), udp(CE1, CE2, ttl=64), ttl=10), "eth1", p2)
    assert r.op == "pop" and r.labels_out == () and r.out_if == "eth2" and r.ttl == 9
    p = Ether(r.frame)
    assert p.type == 0x0800 and p.dst == mac(topo, "pe2", "eth2")
    assert p[IP].ttl == 9 and ip_ok(p)  # RFC 3443 uniform: label TTL copied to IP


def test_php_pop_never_increases_ttl(T):
    p2 = T["p2"]
    inl = ilm_label(p2, FEC2)
    r = decide(mpls_frame(p2, "eth1", (inl,), udp(CE1, CE2, ttl=5), ttl=200), "eth1", p2)
    p = Ether(r.frame)
    assert p[IP].ttl == 5 and ip_ok(p)


def test_php_pop_pipe_leaves_ip_ttl(topo):
    T = all_tables(line4(p2="ttl_model: pipe"))
    p2 = T["p2"]
    inl = ilm_label(p2, FEC2)
    r = decide(mpls_frame(p2, "eth1", (inl,), udp(CE1, CE2, ttl=64), ttl=10), "eth1", p2)
    assert Ether(r.frame)[IP].ttl == 64


def test_pop_with_labels_underneath(T):
    p2 = T["p2"]
    inl = ilm_label(p2, FEC2)
    f = mpls_frame(p2, "eth1", (inl, 4444), udp(CE1, CE2), ttls=(10, 100))
    r = decide(f, "eth1", p2)
    assert r.op == "pop" and r.labels_out == (4444,)
    p = Ether(r.frame)
    assert p.type == 0x8847
    assert labels_of(p) == [(4444, 0, 1, 9)]  # uniform: outgoing TTL copied down, never up


def _untagged(t, fec: str) -> int:
    """Make `t`'s ILM entry for `fec` untagged (ldp.lde: our label, no downstream label
    yet): pop, IP to the IGP next hop. Returns the label."""
    inl = ilm_label(t, fec)
    e = t.lfib.ilm[inl]
    t.apply_diff(LfibDiff(ilm_set=(IlmEntry(inl, e.fec, tuple(
        Nhlfe(n.neighbor, n.interface, n.nexthop, (), "untagged") for n in e.nexthops)),)))
    return inl


def test_untagged_pops_and_forwards_ip_to_the_next_hop(topo, T):
    """p1 restarted: pe1 has its label, p1 has no label from p2 yet. The packet goes on
    as IP to p2 (which forwards it by IP: its FTN pops nothing, pe2 is the egress)."""
    p1 = T["p1"]
    inl = _untagged(p1, FEC2)
    f = mpls_frame(p1, "eth1", (inl,), udp(CE1, CE2, ttl=64), ttl=10)
    r = decide(f, "eth1", p1)
    assert isinstance(r, Forward) and r.op == "pop" and r.out_if == "eth2"
    p = Ether(r.frame)
    assert p.type == 0x0800 and p.dst == mac(topo, "p2", "eth1")
    assert p[IP].ttl == 9 and ip_ok(p)
    assert Dataplane(p1).process(f, "eth1") == [(r.out_if, r.frame)]  # the fast path agrees


def test_untagged_with_labels_below_is_dropped(T):
    """The next hop never allocated the label under ours (RFC 3031 §3.18)."""
    p1 = T["p1"]
    inl = _untagged(p1, FEC2)
    f = mpls_frame(p1, "eth1", (inl, 4444), udp(CE1, CE2), ttls=(10, 100))
    assert Dataplane(p1).process(f, "eth1") == []
    assert p1.counters_json()["drops"]["untagged-labelled"] == 1
    r = decide(f, "eth1", p1)
    assert isinstance(r, Drop) and r.reason is DropReason.UNTAGGED_LABELLED


def test_egress_forward_to_connected_host(topo, T):
    pe2 = T["pe2"]
    r = decide(ip_frame(pe2, "eth2", udp(CE1, CE2, ttl=9)), "eth2", pe2)
    assert r.op == "forward" and r.out_if == "eth1"
    p = Ether(r.frame)
    assert p.dst == mac(topo, "ce2", "eth0") and p.src == mac(topo, "pe2", "eth1")
    assert p[IP].ttl == 8 and ip_ok(p)


def test_unknown_station_on_connected_subnet(T):
    pe2 = T["pe2"]
    r = decide(ip_frame(pe2, "eth2", udp(CE1, "192.168.2.77")), "eth2", pe2)
    assert isinstance(r, Drop) and r.reason == DropReason.NO_NEIGHBOR


# ---------------------------------------------------------------- reserved labels


def test_explicit_null_at_bottom_pops_and_routes(topo, T):
    pe2 = T["pe2"]
    f = mpls_frame(pe2, "eth2", (0,), udp(CE1, CE2, ttl=64), ttl=20)
    r = decide(f, "eth2", pe2)
    assert r.op == "pop" and r.out_if == "eth1" and r.labels_in == (0,)
    p = Ether(r.frame)
    assert p.type == 0x0800 and p.dst == mac(topo, "ce2", "eth0")
    assert p[IP].ttl == 19 and ip_ok(p)  # min(IP, label) - 1


def test_explicit_null_pipe_egress_keeps_ip_ttl():
    T = all_tables(line4(pe2="ttl_model: pipe"))
    pe2 = T["pe2"]
    r = decide(mpls_frame(pe2, "eth2", (0,), udp(CE1, CE2, ttl=64), ttl=20), "eth2", pe2)
    assert Ether(r.frame)[IP].ttl == 64
    r = decide(mpls_frame(pe2, "eth2", (0,), udp(CE1, CE2, ttl=64), ttl=1), "eth2", pe2)
    assert r.reason == DropReason.TTL_EXPIRED


def test_explicit_null_short_pipe_egress_decrements_ip():
    T = all_tables(line4(pe2="ttl_model: short-pipe"))
    pe2 = T["pe2"]
    r = decide(mpls_frame(pe2, "eth2", (0,), udp(CE1, CE2, ttl=64), ttl=20), "eth2", pe2)
    assert Ether(r.frame)[IP].ttl == 63


def test_explicit_null_above_bottom_rfc4182(T):
    p1 = T["p1"]
    inl, outl = ilm_label(p1, FEC2), ilm_label(T["p2"], FEC2)
    f = mpls_frame(p1, "eth1", (0, inl), udp(CE1, CE2), ttls=(7, 100))
    r = decide(f, "eth1", p1)
    assert r.op == "swap" and r.labels_in == (0, inl)
    assert labels_of(Ether(r.frame)) == [(outl, 0, 1, 6)]  # uniform: min(7, 100) - 1


def test_explicit_null_to_own_address_is_delivered(T):
    pe2 = T["pe2"]
    pkt = icmp_echo(CE1, "10.255.0.4")
    r = decide(mpls_frame(pe2, "eth2", (0,), pkt), "eth2", pe2)
    assert isinstance(r, Deliver) and r.labelled and r.kind == "local"
    assert Dataplane(pe2).process(mpls_frame(pe2, "eth2", (0,), pkt), "eth2") == [(LOCAL_IF, pkt)]


@pytest.mark.parametrize("label,reason", [
    (3, DropReason.MALFORMED),  # implicit null never on the wire
    (4, DropReason.RESERVED_LABEL),
    (7, DropReason.RESERVED_LABEL),
    (13, DropReason.RESERVED_LABEL),
    (15, DropReason.RESERVED_LABEL),
    (2, DropReason.IPV6_UNSUPPORTED),
    (123456, DropReason.NO_ILM_ENTRY),
])
def test_reserved_and_unknown_labels(T, label, reason):
    p1 = T["p1"]
    r = decide(mpls_frame(p1, "eth1", (label,), udp(CE1, CE2)), "eth1", p1)
    assert isinstance(r, Drop) and r.reason == reason
    assert p1.counters_json()["drops"][reason.value] == 1


def test_router_alert_goes_to_control_plane(T):
    p1 = T["p1"]
    r = decide(mpls_frame(p1, "eth1", (1, 1000), udp(CE1, CE2)), "eth1", p1)
    assert isinstance(r, Deliver) and r.kind == "router-alert" and r.labels_in == (1, 1000)


def test_no_bottom_of_stack_is_malformed(T):
    p1 = T["p1"]
    i = p1.interfaces["eth1"]
    f = eth(i.mac, i.peer_mac, 0x8847, encode_stack((ilm_label(p1, FEC2),), bottom=False))
    assert decide(f, "eth1", p1).reason == DropReason.MALFORMED


# ---------------------------------------------------------------- non-MPLS / not for us


def test_arp_and_other_ethertypes(T):
    pe1 = T["pe1"]
    i = pe1.interfaces["eth1"]
    arp = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=i.peer_mac.hex(":")) / ARP(pdst=str(i.address.ip)))
    r = decide(arp, "eth1", pe1)  # the router's kernel answers ARP: delivered, not dropped
    assert isinstance(r, Deliver) and r.kind == "kernel" and pe1.delivered == 1
    assert decide(eth(i.mac, i.peer_mac, 0x88CC, b"\x00" * 46), "eth1", pe1).reason == DropReason.NOT_IP
    assert decide(eth(i.mac, i.peer_mac, 0x86DD, b"\x60" + b"\x00" * 45), "eth1",
                  pe1).reason == DropReason.IPV6_UNSUPPORTED
    mc = eth(i.mac, i.peer_mac, 0x8848, encode_stack((100,)) + udp(CE1, CE2))
    assert decide(mc, "eth1", pe1).reason == DropReason.MPLS_MULTICAST  # 0x8848: dropped
    assert decide(b"\x00" * 10, "eth1", pe1).reason == DropReason.MALFORMED
    assert decide(ip_frame(pe1, "eth1", udp(CE1, CE2)), "nope", pe1).reason \
        == DropReason.UNKNOWN_INTERFACE


def test_frame_for_another_mac_is_dropped(T):
    pe1 = T["pe1"]
    f = eth("02:00:00:00:00:99", pe1.interfaces["eth1"].peer_mac, 0x0800, udp(CE1, CE2))
    assert decide(f, "eth1", pe1).reason == DropReason.NOT_FOR_US
    bc = eth("ff:ff:ff:ff:ff:ff", pe1.interfaces["eth1"].peer_mac, 0x0800, udp(CE1, CE2))
    assert decide(bc, "eth1", pe1).reason == DropReason.NOT_FOR_US
    bcast = eth("ff:ff:ff:ff:ff:ff", pe1.interfaces["eth1"].peer_mac, 0x0800,
                udp(CE1, "192.168.1.255"))
    assert isinstance(decide(bcast, "eth1", pe1), Deliver)


def test_deliver_to_own_addresses(T):
    pe1 = T["pe1"]
    for dst in ("10.255.0.1", "192.168.1.2", str(pe1.interfaces["eth2"].address.ip)):
        r = decide(ip_frame(pe1, "eth1", icmp_echo(CE1, dst)), "eth1", pe1)
        assert isinstance(r, Deliver) and not r.labelled
        assert Dataplane(pe1).process(ip_frame(pe1, "eth1", icmp_echo(CE1, dst)), "eth1") == []


def test_no_route(T):
    pe1 = T["pe1"]
    r = decide(ip_frame(pe1, "eth1", udp(CE1, "8.8.8.8")), "eth1", pe1)
    assert r.reason == DropReason.NO_ROUTE


def test_bad_ip_checksum_is_malformed(T):
    pe1 = T["pe1"]
    pkt = bytearray(udp(CE1, CE2))
    pkt[10] ^= 0xFF
    assert decide(ip_frame(pe1, "eth1", bytes(pkt)), "eth1", pe1).reason == DropReason.MALFORMED


# ---------------------------------------------------------------- TTL models at ingress


@pytest.mark.parametrize("model", ["pipe", "short-pipe"])
def test_pipe_push_uses_255(model):
    T = all_tables(line4(pe1=f"ttl_model: {model}"))
    pe1 = T["pe1"]
    r = decide(ip_frame(pe1, "eth1", udp(CE1, CE2, ttl=64)), "eth1", pe1)
    p = Ether(r.frame)
    assert labels_of(p)[0][3] == 255 and p[IP].ttl == 63 and ip_ok(p)


def test_ip_ttl_expiry_at_ingress_sends_plain_icmp(topo, T):
    pe1 = T["pe1"]
    r = decide(ip_frame(pe1, "eth1", udp(CE1, CE2, ttl=1)), "eth1", pe1)
    assert r.reason == DropReason.TTL_EXPIRED and len(r.replies) == 1
    rep = r.replies[0]
    assert rep.out_if == "eth1"
    p = Ether(rep.frame)
    assert p.dst == mac(topo, "ce1", "eth0")
    assert p[IP].src == "192.168.1.2" and p[IP].dst == CE1 and ip_ok(p)
    assert p[ICMP].type == 11 and p[ICMP].code == 0 and p[ICMP].length == 0


def test_no_icmp_error_about_icmp_error(T):
    pe1 = T["pe1"]
    te = decide(ip_frame(pe1, "eth1", udp(CE1, CE2, ttl=1)), "eth1", pe1).replies[0]
    inner = te.frame[14:]
    bounced = bytearray(inner)
    bounced[8] = 1  # the error itself expiring
    bounced[10:12] = b"\x00\x00"
    bounced[10:12] = checksum16(bounced[:20]).to_bytes(2, "big")
    r = decide(ip_frame(T["p1"], "eth1", bytes(bounced)), "eth1", T["p1"])
    assert r.reason == DropReason.TTL_EXPIRED and r.replies == ()


# ---------------------------------------------------------------- MTU (RFC 3032 §3)


def _two_label_ftn(pe1: RouterTables):
    ftn = dict(pe1.lfib.ftn)
    e = ftn[IPv4Network(FEC2)]
    nh = e.nexthops[0]
    ftn[e.fec] = FtnEntry(e.fec, (Nhlfe(nh.neighbor, nh.interface, nh.nexthop, (100, 200)),))
    pe1.set_ftn(ftn)


def test_mtu_df_two_labels_gives_1492(T):
    pe1 = T["pe1"]
    _two_label_ftn(pe1)
    big = udp(CE1, CE2, data=b"x" * (1496 - 28), df=True)
    assert len(big) == 1496
    r = decide(ip_frame(pe1, "eth1", big), "eth1", pe1)
    assert isinstance(r, Drop) and r.reason == DropReason.FRAG_NEEDED
    p = Ether(r.replies[0].frame)
    assert p[ICMP].type == 3 and p[ICMP].code == 4 and p[ICMP].nexthopmtu == 1492
    assert p[IP].dst == CE1 and r.replies[0].out_if == "eth1"
    ok = udp(CE1, CE2, data=b"x" * (1492 - 28), df=True)
    assert isinstance(decide(ip_frame(pe1, "eth1", ok), "eth1", pe1), Forward)


def test_mtu_no_df_fragments_then_labels(T):
    pe1 = T["pe1"]
    _two_label_ftn(pe1)
    big = udp(CE1, CE2, data=bytes(range(256)) * 12)  # 3100 bytes
    r = decide(ip_frame(pe1, "eth1", big), "eth1", pe1)
    assert isinstance(r, Forward) and len(r.frames) == 3
    frags = []
    for f in r.frames:
        assert len(f) - 14 <= 1500
        p = Ether(f)
        assert [x[0] for x in labels_of(p)] == [100, 200]
        assert ip_ok(p)
        frags.append(p[IP])
    whole = defragment(frags)[0]
    want = IP(udp(CE1, CE2, ttl=63, data=bytes(range(256)) * 12))
    assert bytes(whole[UDP]) == bytes(want[UDP])


def test_labelled_mtu_at_transit_lsr():
    T = all_tables(line4(mtu2=1400))
    p1 = T["p1"]
    inl = ilm_label(p1, FEC2)
    big = udp(CE1, CE2, data=b"y" * (1400 - 28), df=True)
    r = decide(mpls_frame(p1, "eth1", (inl,), big, ttl=60), "eth1", p1)
    assert r.reason == DropReason.FRAG_NEEDED
    rep = r.replies[0]
    p = Ether(rep.frame)
    assert p[ICMP].nexthopmtu == 1396 and p[ICMP].length == 32  # RFC 4884 form, labels inside
    assert rep.labels_out == (ilm_label(T["p2"], FEC2),)  # sent onward along the LSP
    r = decide(mpls_frame(p1, "eth1", (inl,), udp(CE1, CE2, data=b"y" * 1372), ttl=60), "eth1", p1)
    assert isinstance(r, Forward) and len(r.frames) == 2
    assert all(len(f) - 14 <= 1400 for f in r.frames)


# ---------------------------------------------------------------- ECMP


def test_ecmp_flows_spread_and_stick():
    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    T = all_tables(topo)
    pe1 = T["pe1"]
    used = {}
    for sport in range(1000, 1064):
        f = ip_frame(pe1, "eth1", udp(CE1, CE2, sport=sport))
        r = decide(f, "eth1", pe1)
        used[sport] = r.out_if
        for _ in range(3):
            assert decide(f, "eth1", pe1).out_if == r.out_if
            assert Dataplane(pe1).process(f, "eth1")[0][0] == r.out_if
    assert set(used.values()) == {"eth2", "eth3"}


def test_ecmp_labelled_hash_uses_inner_header():
    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    T = all_tables(topo)
    pe1 = T["pe1"]
    pe1.set_mpls_input(pe1.interfaces)  # labelled frames in on eth1 (a host port) for this test
    fec = "10.255.0.4/32"
    inl = ilm_label(pe1, fec)
    seen = set()
    for sport in range(2000, 2032):
        f = mpls_frame(pe1, "eth1", (inl,), udp(CE1, "10.255.0.4", sport=sport))
        outs = {decide(f, "eth1", pe1).out_if for _ in range(2)}
        assert len(outs) == 1
        # The label TTL is not a hash input: same flow, other TTL, same path.
        g = mpls_frame(pe1, "eth1", (inl,), udp(CE1, "10.255.0.4", sport=sport), ttl=17)
        assert decide(g, "eth1", pe1).out_if in outs
        seen |= outs
    assert seen == {"eth2", "eth3"}


def test_ecmp_choices_of_two_routers_are_independent():
    """Hash polarisation: the flows one router sends to a neighbour must still spread
    over that neighbour's own next hops. CRC-32 is affine in its initial value, so
    seeding it with the router's name flips the same bits of every hash: with two next
    hops at each router, router B's choice was router A's (or its negation) for every
    flow, and a branch behind an ECMP transit router carried nothing."""
    from forwarding.plane import flow_hash, router_seed

    ips = [udp(CE1, f"10.255.{i}.{j}", sport=1000 + i) for i in range(8) for j in range(16)]
    for a, b in (("pe2", "p1"), ("pe1", "p2"), ("p1", "p2")):
        same = sum(flow_hash(ip, 0, router_seed(a)) % 2 == flow_hash(ip, 0, router_seed(b)) % 2
                   for ip in ips)
        assert 32 < same < 96, (a, b, same)  # about half the flows agree, not all or none
    # what B does with the flows A sends its way: both of B's next hops are used
    for a, b in (("pe2", "p1"), ("pe1", "p2")):
        to_b = [ip for ip in ips if flow_hash(ip, 0, router_seed(a)) % 2 == 0]
        assert {flow_hash(ip, 0, router_seed(b)) % 2 for ip in to_b} == {0, 1}


# ---------------------------------------------------------------- fast path == decide, counters, updates


def _sample_frames(T):
    pe1, p1, p2, pe2 = T["pe1"], T["p1"], T["p2"], T["pe2"]
    return [
        (pe1, "eth1", ip_frame(pe1, "eth1", udp(CE1, CE2))),
        (p1, "eth1", mpls_frame(p1, "eth1", (ilm_label(p1, FEC2),), udp(CE1, CE2))),
        (p2, "eth1", mpls_frame(p2, "eth1", (ilm_label(p2, FEC2),), udp(CE1, CE2), ttl=5)),
        (p2, "eth1", mpls_frame(p2, "eth1", (ilm_label(p2, FEC2),), udp(CE1, CE2, ttl=3))),
        (pe2, "eth2", ip_frame(pe2, "eth2", udp(CE1, CE2))),
        (p1, "eth1", mpls_frame(p1, "eth1", (ilm_label(p1, FEC2),), udp(CE1, CE2), ttl=1)),
        (pe1, "eth1", ip_frame(pe1, "eth1", udp(CE1, CE2, ttl=1))),
    ]


def test_process_matches_decide(T):
    for t, in_if, f in _sample_frames(T):
        r = decide(f, in_if, t)
        want = [(r.out_if, x) for x in r.frames] if isinstance(r, Forward) else \
            [(x.out_if, x.frame) for x in r.replies] if isinstance(r, Drop) else []
        assert Dataplane(t).process(f, in_if) == want
        assert Dataplane(t).process(memoryview(f), in_if) == want
        assert Dataplane(t).process(bytearray(f), in_if) == want


def test_fast_path_is_taken_for_swap_push_pop(T, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("slow path taken")

    monkeypatch.setattr(Dataplane, "_slow", boom)
    for t, in_if, f in _sample_frames(T)[:4]:
        assert len(Dataplane(t).process(f, in_if)) == 1


def test_counters_json(T):
    p1 = T["p1"]
    inl = ilm_label(p1, FEC2)
    f = mpls_frame(p1, "eth1", (inl,), udp(CE1, CE2))
    dp = Dataplane(p1)
    for _ in range(3):
        dp.process(f, "eth1")
    decide(f, "eth1", p1)
    dp.process(mpls_frame(p1, "eth1", (999999,), udp(CE1, CE2)), "eth1")
    dp.process(mpls_frame(p1, "eth1", (inl,), udp(CE1, CE2), ttl=1), "eth1")
    c = p1.counters_json()
    assert c["router"] == "p1" and c["ttl_model"] == "uniform"
    assert c["ilm"][str(inl)] == {"packets": 4, "bytes": 4 * len(f)}
    assert c["drops"]["no-ilm-entry"] == 1 and c["drops"]["ttl-expired"] == 1
    assert c["icmp_sent"] == 1
    p1.reset_counters()
    assert p1.counters_json()["ilm"][str(inl)]["packets"] == 0


def test_apply_diff_and_set_lfib_keep_counters(T):
    p1 = T["p1"]
    inl = ilm_label(p1, FEC2)
    f = mpls_frame(p1, "eth1", (inl,), udp(CE1, CE2))
    dp = Dataplane(p1)
    dp.process(f, "eth1")
    p1.apply_diff(LfibDiff(ilm_del=(inl,)))
    assert dp.process(f, "eth1") == []
    assert p1.drops["no-ilm-entry"] == 1
    nh = Nhlfe("p2", "eth2", IPv4Address(str(p1.interfaces["eth2"].peer_address)), (4242,), "swap")
    p1.apply_diff(LfibDiff(ilm_set=(IlmEntry(inl, IPv4Network(FEC2), (nh,)),)))
    out = dp.process(f, "eth1")
    assert labels_of(Ether(out[0][1]))[0][0] == 4242
    assert p1.counters_json()["ilm"][str(inl)]["packets"] == 2
    lf = Lfib(dict(p1.lfib.ftn), dict(p1.lfib.ilm))
    p1.set_lfib(lf)
    dp.process(f, "eth1")
    assert p1.counters_json()["ilm"][str(inl)]["packets"] == 3


def test_set_rib_after_link_down():
    topo = load_topology(TOPOLOGIES / "diamond.yaml")
    T = all_tables(topo)
    pe1 = T["pe1"]
    link = next(li.index for li in topo.links if set(li.nodes) == {"pe1", "p1"})
    pe1.set_rib(Igp(topo, down=[link]).rib("pe1"))
    ftn = {p: FtnEntry(p, tuple(n for n in e.nexthops if n.interface != "eth2"))
           for p, e in pe1.lfib.ftn.items()}
    pe1.set_ftn(ftn)
    for sport in range(100, 120):
        r = decide(ip_frame(pe1, "eth1", udp(CE1, CE2, sport=sport)), "eth1", pe1)
        assert r.out_if == "eth3"


def test_build_rejects_hosts_and_line3_smoke():
    topo = line3()
    with pytest.raises(ValueError):
        RouterTables.build(topo, "ce1", {}, Lfib())
    t = RouterTables.build(topo, "pe1", Igp(topo).rib("pe1"), None)
    r = decide(ip_frame(t, "eth1", udp(CE1, CE2)), "eth1", t)
    assert r.op == "forward"  # no LFIB: plain IP along the IGP


def test_ftn_diffs_are_incremental_and_equal_a_rebuild(T):
    pe1 = T["pe1"]
    fec = IPv4Network(FEC2)
    nh = pe1.lfib.ftn[fec].nexthops[0]
    host = IPv4Network("192.168.2.2/32")
    pe1.apply_diff(LfibDiff(ftn_set=(
        FtnEntry(fec, (Nhlfe(nh.neighbor, nh.interface, nh.nexthop, (5555,)),)),
        FtnEntry(host, (Nhlfe(nh.neighbor, nh.interface, nh.nexthop, (6666,)),)))))
    f2 = ip_frame(pe1, "eth1", udp(CE1, CE2))
    f3 = ip_frame(pe1, "eth1", udp(CE1, "192.168.2.3"))
    assert decide(f2, "eth1", pe1).labels_out == (6666,)  # new /32: longer prefix wins
    assert Dataplane(pe1).process(f3, "eth1")[0][1][14:17] == ((5555 << 4) | 1).to_bytes(3, "big")  # S=1
    pe1.apply_diff(LfibDiff(ftn_del=(host, fec)))
    r = decide(f2, "eth1", pe1)
    assert r.op == "forward" and r.labels_out == ()  # no FTN: plain IP along the RIB
    fresh = RouterTables.build(line4(), "pe1", pe1.rib, pe1.lfib)
    for dst in range(int(IPv4Address("10.0.0.0")), int(IPv4Address("10.0.0.16"))):
        a, b = pe1.lookup(dst), fresh.lookup(dst)
        assert (a and (a.kind, a.prefix, a.ftn)) == (b and (b.kind, b.prefix, b.ftn))
