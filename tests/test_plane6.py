"""IPv6 in the forwarding plane (forwarding.plane6, ip6, icmp6, tables6): customer ports,
hop limit, ICMPv6 errors (with RFC 4884/4950 extensions along the LSP), Neighbor
Discovery answered by the edge router, 6PE push and pop, malformed packets by reason.
scapy decodes what we build (an independent codec)."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    ICMPv6TimeExceeded,
    IPv6,
)
from scapy.layers.l2 import Ether

from forwarding import ip6
from forwarding.labelops import parse_stack
from forwarding.plane import Dataplane, Deliver, Drop, DropReason, Forward, decide
from tests.fwd_helpers import eth, mpls_frame
from tests.v6_helpers import (
    CE1,
    CE2,
    CE3,
    PE1_6,
    PE2_6,
    a6,
    echo6,
    frame6,
    icmp6,
    line4_6,
    udp6,
    v6_tables,
)


@pytest.fixture
def T():
    return v6_tables(line4_6())


def icmp_of(frame: bytes) -> bytes:
    """The IPv6 packet of a frame (under its labels, if any)."""
    off = 14
    if frame[12:14] == b"\x88\x47":
        off = parse_stack(frame, 14)[1]
    return frame[off:]


def follow(T, frame: bytes, router: str, in_if: str, hops: int = 10):
    """Decide hop by hop until the frame leaves the routers; (results, last frame)."""
    out = []
    for _ in range(hops):
        t = T[router]
        r = decide(frame, in_if, t)
        out.append((router, r))
        if not isinstance(r, Forward):
            return out
        i = t.interfaces[r.out_if]
        if i.peer_node not in T:
            return out
        frame, router, in_if = r.frame, i.peer_node, i.peer_interface
    return out


# ---------------------------------------------------------------- 6PE push, swap, pop


def test_6pe_push_two_labels_then_php_then_egress_pop(T):
    hops = follow(T, frame6(T["pe1"], "eth1", udp6(CE1, CE2, hl=64)), "pe1", "eth1")
    ops = [(n, r.op, r.labels_in, r.labels_out, r.ttl) for n, r in hops]
    assert ops == [("pe1", "push", (), (4003, 4000), 63),  # [LDP label, 6PE label of pe2]
                   ("p1", "swap", (4003, 4000), (5003, 4000), 62),
                   ("p2", "pop", (5003, 4000), (4000,), 61),  # PHP: the 6PE label stays
                   ("pe2", "pop", (4000,), (), 60)]  # 6PE label popped, IPv6 to ce2
    last = hops[-1][1]
    assert last.frame[12:14] == b"\x86\xdd" and last.out_if == "eth1"
    p = IPv6(last.frame[14:])
    assert p.dst == CE2 and p.hlim == 60
    # P routers only ever saw labelled frames
    assert all(r.labels_in for n, r in hops if n in ("p1", "p2"))


def test_6pe_stack_bits_tc_and_ttl(T):
    pkt = bytearray(udp6(CE1, CE2, hl=9))
    pkt[0] |= 0x0B  # traffic class 0xb8 (EF): TC = 0xb8 >> 5 = 5
    pkt[1] |= 0x80
    r = decide(frame6(T["pe1"], "eth1", bytes(pkt)), "eth1", T["pe1"])
    entries, off = parse_stack(r.frame, 14)
    assert [(e.label, e.tc, e.s, e.ttl) for e in entries] == [(4003, 5, 0, 8), (4000, 5, 1, 8)]
    assert r.frame[off + 7] == 8  # hop limit decremented once


def test_6pe_pipe_model_pushes_255(T):
    T = v6_tables(line4_6(pe1='ttl_model: pipe'))
    r = decide(frame6(T["pe1"], "eth1", udp6(CE1, CE2, hl=9)), "eth1", T["pe1"])
    assert [e.ttl for e in parse_stack(r.frame, 14)[0]] == [255, 255]


def test_ipv6_explicit_null_egress():
    T = v6_tables(line4_6(), explicit_null=("pe2",))
    hops = follow(T, frame6(T["pe1"], "eth1", udp6(CE1, CE2)), "pe1", "eth1")
    assert hops[0][1].labels_out == (4003, 2)  # label 2 under the LDP label (RFC 4798 §3)
    assert hops[-1][0] == "pe2" and hops[-1][1].labels_in == (2,) and hops[-1][1].out_if == "eth1"


def test_egress_uniform_takes_smaller_label_ttl(T):
    f = mpls_frame(T["pe2"], "eth2", (4000,), udp6(CE1, CE2, hl=64), ttl=5)
    r = decide(f, "eth2", T["pe2"])
    assert isinstance(r, Forward) and IPv6(r.frame[14:]).hlim == 4


def test_6pe_label_above_bottom_is_malformed(T):
    f = mpls_frame(T["pe2"], "eth2", (4000, 4000), udp6(CE1, CE2))
    assert decide(f, "eth2", T["pe2"]).reason == DropReason.MALFORMED


def test_local_ipv6_forwarding_between_customer_ports(T):
    r = decide(frame6(T["pe1"], "eth1", udp6(CE1, CE3)), "eth1", T["pe1"])
    assert isinstance(r, Forward) and r.op == "forward" and r.out_if == "eth3"
    assert r.frame[:6] == T["pe1"].interfaces["eth3"].peer_mac and r.frame[12:14] == b"\x86\xdd"


def test_ipv6_on_a_core_link_is_refused(T):
    f = frame6(T["p1"], "eth1", udp6(CE1, CE2))
    assert decide(f, "eth1", T["p1"]).reason == DropReason.IPV6_UNSUPPORTED
    assert T["p1"].counters_json()["drops"]["ipv6-unsupported"] == 1


def test_labelled_frames_on_a_customer_port_are_refused(T):
    f = mpls_frame(T["pe1"], "eth1", (1000,), udp6(CE2, CE1))
    assert decide(f, "eth1", T["pe1"]).reason == DropReason.MPLS_INPUT_DISABLED


def test_no_route_sends_unreachable(T):
    r = decide(frame6(T["pe1"], "eth1", udp6(CE1, "2001:db8:99::1")), "eth1", T["pe1"])
    assert r.reason == DropReason.NO_ROUTE
    (rep,) = r.replies
    p = IPv6(rep.frame[14:])
    assert p.src == PE1_6 and p.dst == CE1 and isinstance(p.payload, ICMPv6DestUnreach)
    assert p.payload.code == 0 and p.payload.cksum == _cksum(rep.frame[14:])


def _cksum(pkt: bytes) -> int:
    """The ICMPv6 checksum scapy computes for the packet (an independent oracle)."""
    p = IPv6(pkt)
    p.payload.cksum = None
    return IPv6(bytes(p)).payload.cksum


# ---------------------------------------------------------------- hop limit, ICMPv6 errors


def test_hop_limit_expires_at_the_ingress(T):
    r = decide(frame6(T["pe1"], "eth1", udp6(CE1, CE2, hl=1)), "eth1", T["pe1"])
    assert r.reason == DropReason.TTL_EXPIRED
    (rep,) = r.replies
    assert rep.out_if == "eth1" and not rep.labels_out
    p = IPv6(rep.frame[14:])
    assert isinstance(p.payload, ICMPv6TimeExceeded) and p.src == PE1_6 and p.dst == CE1
    assert p.payload.cksum == _cksum(rep.frame[14:])
    assert rep.frame[4 + 14 + 40] == 0  # no RFC 4884 length: it came unlabelled


def test_p_router_sends_time_exceeded_with_label_stack_along_the_lsp(T):
    """RFC 3032 §2.3.2 / RFC 4950: p1 expires [4003, 4000]; its ICMPv6 Time Exceeded, from
    ::ffff:<p1's incoming address>, carries the stack as received and goes on to p2 with
    the onward labels [5003, 4000]; pe2 pops and routes it back over 6PE to ce1."""
    f = mpls_frame(T["p1"], "eth1", (4003, 4000), udp6(CE1, CE2, hl=63), ttl=1)
    r = decide(f, "eth1", T["p1"])
    assert r.reason == DropReason.TTL_EXPIRED
    (rep,) = r.replies
    assert rep.out_if == "eth2" and rep.labels_out == (5003, 4000)
    pkt = icmp_of(rep.frame)
    p = IPv6(pkt)
    assert p.src == "::ffff:10.0.0.2" and p.dst == CE1 and isinstance(p.payload, ICMPv6TimeExceeded)
    assert p.payload.cksum == _cksum(pkt)
    icmp = pkt[40:]
    assert icmp[4] == 16  # RFC 4884 §4.5: original datagram length in 64-bit words (128 octets)
    ext = icmp[8 + 128:]
    assert ext[0] >> 4 == 2 and ext[6:8] == b"\x01\x01"  # version 2; MPLS class 1 c-type 1
    assert struct.unpack("!II", ext[8:16]) == (4003 << 12 | 1, 4000 << 12 | 0x100 | 1)
    # the error walks on: p2 pops, pe2 pops the 6PE label and pushes it towards ce1
    hops = follow(T, rep.frame, "p2", "eth1")
    assert [(n, x.op) for n, x in hops] == [("p2", "pop"), ("pe2", "push"), ("p2", "swap"),
                                            ("p1", "pop"), ("pe1", "pop")]
    assert hops[-1][1].out_if == "eth1" and IPv6(hops[-1][1].frame[14:]).src == "::ffff:10.0.0.2"


def test_egress_time_exceeded_carries_the_6pe_label(T):
    f = mpls_frame(T["pe2"], "eth2", (4000,), udp6(CE1, CE2, hl=1), ttl=1)
    r = decide(f, "eth2", T["pe2"])
    (rep,) = r.replies
    p = IPv6(icmp_of(rep.frame))
    assert p.src == PE2_6 and p.dst == CE1  # pe2's own IPv6 address, routed over 6PE
    assert rep.labels_out == (5001, 1000)
    ext = icmp_of(rep.frame)[40 + 8 + 128:]
    assert struct.unpack("!I", ext[8:12])[0] >> 12 == 4000


def test_packet_too_big_with_labels_counts_them():
    T = v6_tables(line4_6(mtu1=1300))
    big = udp6(CE1, CE2, data=bytes(1300 - 48 - 4))  # 1296 + 8 octets of labels > 1300
    r = decide(frame6(T["pe1"], "eth1", big), "eth1", T["pe1"])
    assert r.reason == DropReason.PACKET_TOO_BIG
    p = IPv6(r.replies[0].frame[14:])
    assert isinstance(p.payload, ICMPv6PacketTooBig) and p.payload.mtu == 1292
    assert len(r.replies[0].frame) - 14 <= 1280  # RFC 4443 §2.4 c
    ok = udp6(CE1, CE2, data=bytes(1292 - 48))
    assert isinstance(decide(frame6(T["pe1"], "eth1", ok), "eth1", T["pe1"]), Forward)


def test_no_error_about_an_error_or_multicast(T):
    err = icmp6(CE1, CE2, 1, bytes(4) + udp6(CE2, CE1), hl=1)  # an ICMPv6 error, hop limit 1
    r = decide(frame6(T["pe1"], "eth1", err), "eth1", T["pe1"])
    assert r.reason == DropReason.TTL_EXPIRED and r.replies == ()
    mc = udp6(CE1, "ff0e::1", hl=1)
    r = decide(frame6(T["pe1"], "eth1", mc), "eth1", T["pe1"])
    assert isinstance(r, Deliver) and r.replies == ()  # multicast is delivered, never routed


# ---------------------------------------------------------------- for the router itself


def test_echo_to_the_pe_is_answered(T):
    r = decide(frame6(T["pe1"], "eth1", echo6(CE1, PE1_6)), "eth1", T["pe1"])
    assert isinstance(r, Deliver) and r.kind == "local"
    (rep,) = r.replies
    p = IPv6(rep.frame[14:])
    assert isinstance(p.payload, ICMPv6EchoReply) and p.src == PE1_6 and p.dst == CE1
    assert p.payload.id == 7 and p.payload.seq == 1 and bytes(p.payload.data) == b"ping6"
    assert p.payload.cksum == _cksum(rep.frame[14:])
    assert T["pe1"].counters_json()["icmp_sent"] == 1


def test_echo_across_6pe_to_the_far_pe(T):
    """ce1 pings pe2's address: labelled to pe2, answered there, back over 6PE."""
    hops = follow(T, frame6(T["pe1"], "eth1", echo6(CE1, PE2_6)), "pe1", "eth1")
    n, r = hops[-1]
    assert n == "pe2" and isinstance(r, Deliver) and r.labelled
    (rep,) = r.replies
    assert rep.labels_out == (5001, 1000)
    assert Dataplane(T["pe2"]).process(hops[-2][1].frame, "eth2")[0][1] == rep.frame


def test_udp_to_the_pe_is_port_unreachable(T):
    r = decide(frame6(T["pe1"], "eth1", udp6(CE1, PE1_6)), "eth1", T["pe1"])
    p = IPv6(r.replies[0].frame[14:])
    assert isinstance(p.payload, ICMPv6DestUnreach) and p.payload.code == 4


def ns_frame(t, in_if: str, target: str, src: str = CE1, hl: int = 255, slla: bool = True,
             sol: bool = True) -> bytes:
    i = t.interfaces[in_if]
    dst = ip6.solicited_node(a6(target)) if sol else a6(target)
    body = bytes(4) + a6(target) + (bytes((1, 1)) + i.peer_mac if slla else b"")
    m = bytearray(bytes((135, 0, 0, 0)) + body)
    pkt = ip6.packet(a6(src), dst, 58, bytes(m), hl, csum_at=2)
    mac = ip6.multicast_mac(dst) if sol else i.mac
    return eth(mac, i.peer_mac, 0x86DD, pkt)


def test_neighbor_solicitation_is_answered(T):
    t = T["pe1"]
    r = decide(ns_frame(t, "eth1", PE1_6), "eth1", t)
    assert isinstance(r, Deliver) and r.kind == "nd"
    (na,) = r.replies
    e = Ether(na.frame)
    assert e.dst == t.interfaces["eth1"].peer_mac.hex(":") and e.src == t.interfaces["eth1"].mac.hex(":")
    p = e[IPv6]
    assert p.hlim == 255 and p.src == PE1_6 and p.dst == CE1
    adv = p[ICMPv6ND_NA]
    assert adv.R == 1 and adv.S == 1 and adv.O == 1 and adv.tgt == PE1_6
    assert p[ICMPv6NDOptDstLLAddr].lladdr == t.interfaces["eth1"].mac.hex(":")
    assert adv.cksum == _cksum(na.frame[14:])
    # the same through the hot loop, and the unicast probe of NUD (RFC 4861 §7.3)
    assert Dataplane(t).process(ns_frame(t, "eth1", PE1_6), "eth1") == [("eth1", na.frame)]
    r = decide(ns_frame(t, "eth1", PE1_6, sol=False, slla=False), "eth1", t)
    assert r.replies and Ether(r.replies[0].frame)[ICMPv6ND_NA].S == 1


def test_dad_probe_gets_all_nodes_advert_and_others_are_ignored(T):
    t = T["pe1"]
    r = decide(ns_frame(t, "eth1", PE1_6, src="::", slla=False), "eth1", t)
    p = Ether(r.replies[0].frame)[IPv6]
    assert p.dst == "ff02::1" and p[ICMPv6ND_NA].S == 0
    r = decide(ns_frame(t, "eth1", CE1), "eth1", t)  # the host's own DAD / another target
    assert isinstance(r, Deliver) and r.replies == ()
    r = decide(ns_frame(t, "eth1", CE3), "eth1", t)  # our address, but on another link
    assert r.replies == ()


@pytest.mark.parametrize("kw,why", [
    ({"hl": 64}, "hop limit 64"),
    ({"src": "::", "slla": True}, "unspecified source with a source link-layer address"),
])
def test_invalid_neighbor_solicitations(T, kw, why):
    t = T["pe1"]
    r = decide(ns_frame(t, "eth1", PE1_6, **kw), "eth1", t)
    assert r.reason == DropReason.ICMPV6_MALFORMED and why in r.detail


def test_bad_icmpv6_checksum(T):
    f = bytearray(frame6(T["pe1"], "eth1", echo6(CE1, PE1_6)))
    f[14 + 40 + 3] ^= 0xFF
    r = decide(bytes(f), "eth1", T["pe1"])
    assert r.reason == DropReason.ICMPV6_MALFORMED and r.detail == "bad ICMPv6 checksum"


def test_scapy_builds_an_ns_we_answer(T):
    t = T["pe1"]
    i = t.interfaces["eth1"]
    ns = Ether(dst=ip6.multicast_mac(ip6.solicited_node(a6(PE1_6))).hex(":"), src=i.peer_mac.hex(":")) \
        / IPv6(src=CE1, dst="ff02::1:ff00:2", hlim=255) / ICMPv6ND_NS(tgt=PE1_6) \
        / ICMPv6NDOptSrcLLAddr(lladdr=i.peer_mac.hex(":"))
    r = decide(bytes(ns), "eth1", t)
    assert r.replies and r.replies[0].frame[:6] == i.peer_mac


# ---------------------------------------------------------------- never forwarded, malformed


@pytest.mark.parametrize("src,dst,reason", [
    ("fe80::1", CE2, DropReason.MARTIAN_SOURCE),
    ("::1", CE2, DropReason.MARTIAN_SOURCE),
    ("::", CE2, DropReason.MARTIAN_SOURCE),
    ("ff02::1", CE2, DropReason.MARTIAN_SOURCE),
    (CE1, "fe80::2", DropReason.MARTIAN_DESTINATION),
    (CE1, "::1", DropReason.MARTIAN_DESTINATION),
])
def test_martians(T, src, dst, reason):
    r = decide(frame6(T["pe1"], "eth1", udp6(src, dst)), "eth1", T["pe1"])
    assert r.reason == reason


def with_ext(headers: list[tuple[int, bytes]], proto: int = 17, payload: bytes = b"x" * 12,
             hl: int = 64) -> bytes:
    """An IPv6 packet CE1 -> CE2 with extension headers (type, body after the 2-octet
    next header/length; the length octet is computed) before `payload`."""
    chain = b""
    types = [h for h, _ in headers] + [proto]
    for k, (typ, body) in enumerate(headers):
        nxt = types[k + 1]
        if typ == ip6.NH_FRAGMENT:
            chain += bytes((nxt, 0)) + body
        else:
            ln = (len(body) + 2) // 8 - 1
            chain += bytes((nxt, ln)) + body
    first = types[0]
    data = chain + payload
    return ip6.header(a6(CE1), a6(CE2), first, len(data), hl) + data


PAD6 = bytes(6)  # a minimal option area (PadN)


@pytest.mark.parametrize("pkt,reason", [
    (udp6(CE1, CE2)[:39], DropReason.IPV6_MALFORMED),
    (b"\x40" + udp6(CE1, CE2)[1:], DropReason.IPV6_MALFORMED),
    (udp6(CE1, CE2)[:4] + b"\x05\x00" + udp6(CE1, CE2)[6:], DropReason.IPV6_MALFORMED),
    (with_ext([(ip6.NH_DSTOPTS, PAD6), (ip6.NH_HOPOPTS, PAD6)]), DropReason.IPV6_EXT_CHAIN),
    (ip6.header(a6(CE1), a6(CE2), ip6.NH_DSTOPTS, 8) + bytes((17, 3)) + PAD6,  # says 32 octets
     DropReason.IPV6_EXT_CHAIN),
    (with_ext([(ip6.NH_DSTOPTS, PAD6)] * 9), DropReason.IPV6_CHAIN_TOO_LONG),
    (with_ext([(ip6.NH_DSTOPTS, PAD6 + bytes(8 * 70))]), DropReason.IPV6_CHAIN_TOO_LONG),
    (with_ext([(ip6.NH_FRAGMENT, bytes(6))], payload=b""), DropReason.IPV6_EXT_CHAIN),
])
def test_malformed_ipv6_is_dropped_by_reason(T, pkt, reason):
    t = T["pe1"]
    r = decide(frame6(t, "eth1", pkt), "eth1", t)
    assert isinstance(r, Drop) and r.reason == reason, r
    c = t.counters_json()
    assert c["drops"][reason.value] == 1 and c["forwarded"] == 0


@pytest.mark.parametrize("headers", [
    [(ip6.NH_HOPOPTS, PAD6)],
    [(ip6.NH_HOPOPTS, PAD6), (ip6.NH_DSTOPTS, PAD6), (ip6.NH_ROUTING, bytes(6))],
    [(ip6.NH_FRAGMENT, b"\x00\x01" + bytes(4))],  # a later fragment: no upper-layer header
    [(ip6.NH_DSTOPTS, PAD6)] * 8,
])
def test_valid_extension_chains_are_forwarded(T, headers):
    r = decide(frame6(T["pe1"], "eth1", with_ext(headers)), "eth1", T["pe1"])
    assert isinstance(r, Forward) and r.labels_out == (4003, 4000)


def test_hash_uses_ports_and_flow_label():
    a, b = udp6(CE1, CE2, sport=1), udp6(CE1, CE2, sport=2)
    assert ip6.flow_hash6(a, 0) != ip6.flow_hash6(b, 0)
    assert ip6.flow_hash6(udp6(CE1, CE2, flow=1), 0) != ip6.flow_hash6(udp6(CE1, CE2, flow=2), 0)
    assert ip6.flow_hash6(udp6(CE1, CE2, data=b"a"), 0) == ip6.flow_hash6(udp6(CE1, CE2, data=b"bb"), 0)
    ext = with_ext([(ip6.NH_DSTOPTS, PAD6)], payload=udp6(CE1, CE2)[40:])
    p = ip6.check(ext)  # the ports are found behind the extension header
    assert p.proto == 17 and p.l4 == 48


# ---------------------------------------------------------------- fast paths = decide


@pytest.mark.parametrize("make", [
    lambda T: ("pe1", "eth1", frame6(T["pe1"], "eth1", udp6(CE1, CE2))),
    lambda T: ("pe1", "eth1", frame6(T["pe1"], "eth1", echo6(CE1, CE2, hl=2))),
    lambda T: ("pe2", "eth2", mpls_frame(T["pe2"], "eth2", (4000,), udp6(CE1, CE2), ttl=9)),
    lambda T: ("pe2", "eth2", mpls_frame(T["pe2"], "eth2", (4000,), udp6(CE1, CE2, hl=1), ttl=9)),
    lambda T: ("pe1", "eth1", frame6(T["pe1"], "eth1", udp6(CE1, CE2, hl=1))),
    lambda T: ("pe1", "eth1", frame6(T["pe1"], "eth1", udp6(CE1, CE3))),
])
def test_fast_paths_equal_decide(make):
    A, B = v6_tables(line4_6()), v6_tables(line4_6())
    router, in_if, f = make(A)
    r = decide(f, in_if, A[router])
    want = [(r.out_if, x) for x in r.frames] if isinstance(r, Forward) else \
        [(x.out_if, x.frame) for x in r.replies]
    assert Dataplane(B[router]).process(f, in_if) == want
    assert A[router].counters_json() == B[router].counters_json()


def test_counters_add_up(T):
    t = T["pe1"]
    frames = [frame6(t, "eth1", udp6(CE1, CE2)), frame6(t, "eth1", udp6(CE1, CE3)),
              frame6(t, "eth1", udp6(CE1, CE2, hl=1)), frame6(t, "eth1", b"\x60" + bytes(10)),
              ns_frame(t, "eth1", PE1_6), frame6(t, "eth1", echo6(CE1, PE1_6))]
    dp = Dataplane(t)
    for f in frames:
        dp.process(f, "eth1")
    c = t.counters_json()
    assert c["forwarded"] + c["delivered"] + sum(c["drops"].values()) == len(frames)
    assert c["ftn6"]["2001:db8:2::/64"]["packets"] == 1 and c["ip6"]["2001:db8:3::/64"]["packets"] == 1


def test_ipv6_ecmp_choices_of_two_routers_are_independent():
    """As for IPv4 (test_plane): a seeded CRC-32 makes every router choose alike for every
    flow, so a branch behind an ECMP transit router would carry no IPv6 at all."""
    from forwarding.ip6 import flow_hash6
    from forwarding.plane import router_seed

    pkts = [udp6("2001:db8:1::1", f"2001:db8:2::{i:x}", sport=1000 + i) for i in range(128)]
    for a, b in (("pe2", "p1"), ("pe1", "p2"), ("p1", "p2")):
        same = sum(flow_hash6(p, 0, router_seed(a)) % 2 == flow_hash6(p, 0, router_seed(b)) % 2
                   for p in pkts)
        assert 32 < same < 96, (a, b, same)
        to_b = [p for p in pkts if flow_hash6(p, 0, router_seed(a)) % 2 == 0]
        assert {flow_hash6(p, 0, router_seed(b)) % 2 for p in to_b} == {0, 1}
