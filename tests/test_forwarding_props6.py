"""Property tests (hypothesis) for IPv6 in the forwarding plane: random and mutated frames,
extension header chains of every shape, 6PE round trips. Whatever comes in, `decide`
returns one counted outcome without raising, the hot loop agrees with it, and the router
keeps forwarding afterwards."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forwarding import ip6
from forwarding.plane import Dataplane, Drop, Forward, decide
from tests.fwd_helpers import eth, mpls_frame
from tests.v6_helpers import CE1, CE2, a6, frame6, line4_6, udp6, v6_tables

TOPO = line4_6()
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
IPV6_REASONS = {"ipv6-malformed", "ipv6-ext-chain", "ipv6-chain-too-long", "icmpv6-malformed",
                "martian-source", "martian-destination", "no-route", "not-for-us",
                "ttl-expired", "packet-too-big", "no-neighbor", "ipv6-unsupported"}


def fresh():
    return v6_tables(TOPO)


def total(c: dict) -> int:
    return c["forwarded"] + c["delivered"] + sum(c["drops"].values())


def outputs(r):
    if isinstance(r, Forward):
        return [(r.out_if, f) for f in r.frames]
    return [(x.out_if, x.frame) for x in r.replies]


def same_as_hot_loop(router: str, in_if: str, frames: list[bytes]) -> None:
    """decide and Dataplane.process give the same frames and counters; each frame is
    counted once; the router still forwards a good packet afterwards."""
    A, B = fresh(), fresh()
    dp = Dataplane(B[router])
    for f in frames:
        r = decide(f, in_if, A[router])
        assert dp.process(f, in_if) == outputs(r)
        if isinstance(r, Drop):
            assert r.reason.value in IPV6_REASONS | {"malformed", "no-ilm-entry", "not-ip"}
    ca, cb = A[router].counters_json(), B[router].counters_json()
    assert ca == cb and total(ca) == len(frames)
    good = frame6(A["pe1"], "eth1", udp6(CE1, CE2))
    assert isinstance(decide(good, "eth1", A["pe1"]), Forward)


@SETTINGS
@given(st.lists(st.binary(max_size=120), min_size=1, max_size=8))
def test_random_bytes_on_a_customer_port(payloads):
    t = fresh()["pe1"]
    i = t.interfaces["eth1"]
    same_as_hot_loop("pe1", "eth1", [eth(i.mac, i.peer_mac, 0x86DD, p) for p in payloads])


@SETTINGS
@given(st.lists(st.binary(max_size=120), min_size=1, max_size=8), st.integers(0, 255))
def test_random_bytes_under_the_6pe_label(payloads, ttl):
    t = fresh()["pe2"]
    same_as_hot_loop("pe2", "eth2", [mpls_frame(t, "eth2", (4000,), b"\x60" + p, ttl=ttl)
                                     for p in payloads])


@SETTINGS
@given(st.binary(min_size=1, max_size=4), st.integers(0, 200), st.integers(0, 2))
def test_mutated_packets(junk, at, mode):
    """A valid packet with bytes overwritten, cut short or padded."""
    t = fresh()["pe1"]
    pkt = bytearray(udp6(CE1, CE2, data=b"0123456789" * 3))
    if mode == 0:
        at %= len(pkt)
        pkt[at:at + len(junk)] = junk
    elif mode == 1:
        pkt = pkt[:at % len(pkt)]
    else:
        pkt += junk
    same_as_hot_loop("pe1", "eth1", [frame6(t, "eth1", bytes(pkt))])


ext_type = st.sampled_from(sorted(ip6.EXT_HEADERS) + [ip6.NH_UDP, ip6.NH_ICMPV6, ip6.NH_NONE,
                                                       ip6.NH_ESP, 99])


@SETTINGS
@given(st.lists(st.tuples(ext_type, st.integers(0, 255), st.integers(0, 64)), max_size=12),
       st.integers(0, 255), st.binary(max_size=40))
def test_extension_header_chains(chain, first_len, tail):
    """Any chain (type, length octet, bytes present): one outcome, never an exception;
    walking it never reads past the payload length."""
    body = b""
    types = [c[0] for c in chain] + [ip6.NH_UDP]
    for k, (_typ, ln, present) in enumerate(chain):
        body += (bytes((types[k + 1], ln)) + bytes(6) + bytes(8 * ln))[:present + 2]
    body += tail
    first = types[0] if chain else first_len
    pkt = ip6.header(a6(CE1), a6(CE2), first, len(body), 64) + body
    r = ip6.check(pkt)
    if isinstance(r, ip6.Parsed6):
        assert 40 <= r.l4 <= r.total == len(pkt) and r.ext <= ip6.MAX_EXT_HEADERS
    t = fresh()["pe1"]
    same_as_hot_loop("pe1", "eth1", [frame6(t, "eth1", pkt)])


@SETTINGS
@given(st.integers(5, 255), st.binary(max_size=600), st.integers(0, (1 << 20) - 1),
       st.integers(0, 255))
def test_6pe_round_trip_keeps_the_packet(hl, data, flow, tclass):
    """ce1 -> pe1 (push 2) -> p1 (swap) -> p2 (PHP) -> pe2 (pop) -> ce2: the IPv6 packet
    arrives as sent but for the hop limit, 4 lower."""
    T = fresh()
    pkt = bytearray(udp6(CE1, CE2, hl=hl, data=data, flow=flow))
    pkt[0] = 0x60 | tclass >> 4
    pkt[1] = (tclass & 0x0F) << 4 | (pkt[1] & 0x0F)
    frame, router, in_if = frame6(T["pe1"], "eth1", bytes(pkt)), "pe1", "eth1"
    for _ in range(4):
        r = decide(frame, in_if, T[router])
        assert isinstance(r, Forward)
        if router in ("p1", "p2"):
            assert frame[12:14] == b"\x88\x47"  # P routers never see unlabelled IPv6
        i = T[router].interfaces[r.out_if]
        frame, router, in_if = r.frame, i.peer_node, i.peer_interface
    assert router == "ce2" and frame[12:14] == b"\x86\xdd"
    want = bytearray(pkt)
    want[7] = hl - 4
    assert frame[14:] == bytes(want)


@SETTINGS
@given(st.integers(0, 65535), st.integers(0, 65535), st.integers(0, (1 << 20) - 1))
def test_flow_hash_is_a_function_of_the_flow(sport, dport, flow):
    a = udp6(CE1, CE2, sport=sport, dport=dport, flow=flow, data=b"a")
    b = udp6(CE1, CE2, sport=sport, dport=dport, flow=flow, data=b"b" * 30, hl=7)
    assert ip6.flow_hash6(a, 0, 5) == ip6.flow_hash6(b, 0, 5)
    assert struct.unpack("!I", a[:4])[0] & 0xFFFFF == flow
