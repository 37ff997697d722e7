"""BGP codec: byte vectors written from the RFC layouts (encode and decode separately),
round trips, and random bytes (only DecodeError subclasses ever come out)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgp.attrs import (
    AS2,
    AS4,
    AS_SEQUENCE,
    AS_SET,
    AS_TRANS,
    NO_EXPORT,
    AsPath,
    ExtCommunity,
    MpReach,
    MpUnreach,
    PathAttrs,
    RawAttr,
    decode_attributes,
    encode_attributes,
)
from bgp.messages import (
    KEEPALIVE_BYTES,
    FourOctetAs,
    Keepalive,
    MessageError,
    MessageReader,
    Multiprotocol,
    Notification,
    Open,
    RouteRefresh,
    RouteRefreshCap,
    UnknownCapability,
    Update,
    decode_message,
    encode,
)
from bgp.nlri import (
    IPV4_UNICAST,
    IPV4_VPN,
    IPV6_LABELLED,
    WITHDRAW_LABEL,
    Nlri,
    Rd,
    decode_nlri,
    encode_nlri,
)
from lsr.core.codec import DecodeError

M = "ff" * 16
LO = IPv4Address("10.255.0.1")


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


def msg(mtype: int, body: str) -> bytes:
    b = h(body)
    return h(M) + struct.pack("!HB", 19 + len(b), mtype) + b


# ---------------------------------------------------------------- byte vectors

OPEN_BYTES = msg(1, "04 fde8 005a 0aff0001 14"
                    " 02 06 01 04 0001 00 80"   # Multiprotocol AFI 1 SAFI 128 (RFC 4760 §8)
                    " 02 02 02 00"              # Route Refresh (RFC 2918 §2)
                    " 02 06 41 04 0000fde8")    # 4-octet AS 65000 (RFC 6793 §3)
OPEN = Open(65000, 90, LO, (Multiprotocol(1, 128), RouteRefreshCap(), FourOctetAs(65000)))

VPN_NLRI = Nlri(IPv4Network("10.1.0.0/16"), Rd(0, 65000, 1))
VPN_UPDATE_BYTES = msg(2, "0000 003b"
                          # MP_REACH_NLRI first (RFC 7606 §5.1): AFI 1, SAFI 128, NH len 12,
                          # RD 0 + 10.255.0.1 (RFC 4364 §4.3.2), reserved, then one NLRI of
                          # 104 bits: label 1000 with S (RFC 8277 §2), RD 65000:1, 10.1/16
                          " 80 0e 1f 0001 80 0c 0000000000000000 0aff0001 00"
                          "   68 003e81 0000fde800000001 0a01"
                          " 40 01 01 00"                 # ORIGIN IGP
                          " 40 02 00"                    # AS_PATH empty (iBGP)
                          " 40 05 04 00000064"           # LOCAL_PREF 100
                          " c0 10 08 0002fde800000001")  # RT 65000:1 (RFC 4360 §4)
VPN_UPDATE = Update(
    attrs=PathAttrs(local_pref=100, ext_communities=(ExtCommunity.route_target("65000:1"),)),
    mp_reach=MpReach(IPV4_VPN, LO, ((VPN_NLRI, 1000),)))

VPN_WITHDRAW_BYTES = msg(2, "0000 0014 80 0f 11 0001 80 68 800000 0000fde800000001 0a01")
VPN_WITHDRAW = Update(mp_unreach=MpUnreach(IPV4_VPN, (VPN_NLRI,)))

V4_UPDATE_BYTES = msg(2, "0003 10 0a09"                  # withdrawn 10.9.0.0/16
                         " 001b 40 01 01 00"
                         " 40 02 06 02 01 0000fde9"      # AS_SEQUENCE [65001], 4 octets
                         " 40 03 04 0a000001"            # NEXT_HOP 10.0.0.1
                         " 80 04 04 00000005"            # MED 5
                         " 18 c0a801")                   # NLRI 192.168.1.0/24
V4_UPDATE = Update(withdrawn=(Nlri(IPv4Network("10.9.0.0/16")),),
                   attrs=PathAttrs(as_path=AsPath(((AS_SEQUENCE, (65001,)),)),
                                   next_hop=IPv4Address("10.0.0.1"), med=5),
                   nlri=(Nlri(IPv4Network("192.168.1.0/24")),))

SIXPE_BYTES = msg(2, "0000 002e 80 0e 1d 0002 04 10 00000000000000000000ffff0aff0001 00"
                     " 38 007d01 20010db8"
                     " 40 01 01 00 40 02 00 40 05 04 00000064")
SIXPE = Update(attrs=PathAttrs(local_pref=100),
               mp_reach=MpReach(IPV6_LABELLED, LO,
                                ((Nlri(IPv6Network("2001:db8::/32")), 2000),)))

VECTORS = [
    ("keepalive", KEEPALIVE_BYTES, Keepalive()),
    ("open", OPEN_BYTES, OPEN),
    ("notification", msg(3, "06 02"), Notification(6, 2)),
    ("notification-data", msg(3, "02 01 0004"), Notification(2, 1, b"\x00\x04")),
    ("route-refresh", msg(5, "0001 00 80"), RouteRefresh(1, 128)),
    ("vpn-update", VPN_UPDATE_BYTES, VPN_UPDATE),
    ("vpn-withdraw", VPN_WITHDRAW_BYTES, VPN_WITHDRAW),
    ("ipv4-update", V4_UPDATE_BYTES, V4_UPDATE),
    ("6pe-update", SIXPE_BYTES, SIXPE),
    ("eor-ipv4", msg(2, "0000 0000"), Update()),
    ("eor-vpn", msg(2, "0000 0006 80 0f 03 0001 80"), Update(mp_unreach=MpUnreach(IPV4_VPN, ()))),
]


@pytest.mark.parametrize("name,wire,obj", VECTORS, ids=[v[0] for v in VECTORS])
def test_encode_gives_the_rfc_bytes(name, wire, obj):
    assert encode(obj) == wire


@pytest.mark.parametrize("name,wire,obj", VECTORS, ids=[v[0] for v in VECTORS])
def test_decode_gives_the_object(name, wire, obj):
    assert decode_message(wire) == obj


def test_end_of_rib_markers():
    assert decode_message(msg(2, "0000 0000")).is_end_of_rib() == IPV4_UNICAST
    assert decode_message(msg(2, "0000 0006 80 0f 03 0001 80")).is_end_of_rib() == IPV4_VPN
    assert VPN_WITHDRAW.is_end_of_rib() is None and VPN_UPDATE.is_end_of_rib() is None


def test_route_distinguishers_and_route_targets():
    # RFC 4364 §4.2 types 0, 1, 2
    assert Rd.parse("65000:1").pack() == h("0000 fde8 00000001")
    assert Rd.parse("10.0.0.1:7").pack() == h("0001 0a000001 0007")
    assert Rd.parse("4200000000:1").pack() == h("0002 fa56ea00 0001")
    for t in ("65000:1", "10.0.0.1:7", "4200000000:1"):
        assert str(Rd.unpack(Rd.parse(t).pack())) == t
    # RFC 4360 §4 (types 0x00, 0x01) and RFC 5668 (0x02), subtype 0x02 route target
    assert ExtCommunity.route_target("65000:1").raw == h("0002 fde8 00000001")
    assert ExtCommunity.route_target("10.0.0.1:5").raw == h("0102 0a000001 0005")
    assert ExtCommunity.route_target("4200000000:9").raw == h("0202 fa56ea00 0009")
    assert str(ExtCommunity(h("0102 0a000001 0005"))) == "RT:10.0.0.1:5"
    assert ExtCommunity.route_origin("65000:3").raw == h("0003 fde8 00000003")
    with pytest.raises(ValueError):
        Rd.parse("70000:70000")  # fits neither type 0 (AS) nor 2 (number)


def test_withdraw_label_and_received_labels():
    wd = encode_nlri(IPV4_VPN, VPN_NLRI, None)
    assert wd[1:4] == WITHDRAW_LABEL.to_bytes(3, "big")  # RFC 8277 §2.4
    [(n, label)] = decode_nlri(IPV4_VPN, wd)
    assert n == VPN_NLRI and label == 0x80000  # receivers ignore it
    # trailing bits past the prefix length are irrelevant (RFC 4271 §4.3)
    [(n, _)] = decode_nlri(IPV4_UNICAST, h("18 c0a801"))
    [(m, _)] = decode_nlri(IPV4_UNICAST, h("17 c0a8ff"))
    assert str(n.prefix) == "192.168.1.0/24" and str(m.prefix) == "192.168.254.0/23"


def test_two_octet_session_as4_path():
    """RFC 6793 §4.2.2: AS_TRANS in AS_PATH, the real path in AS4_PATH; §4.2.3 merges."""
    a = PathAttrs(as_path=AsPath(((AS_SEQUENCE, (65001, 4200000000, 65002)),)),
                  aggregator=(4200000000, IPv4Address("10.0.0.9")))
    wire = encode_attributes(a, AS2)
    assert h("40 02 08 02 03 fde9 5ba0 fdea") in wire  # 2-octet ASNs, AS_TRANS = 23456
    assert h("c0 11 0e 02 03 0000fde9 fa56ea00 0000fdea") in wire  # AS4_PATH
    assert h("c0 07 06 5ba0 0a000009") in wire and h("c0 12 08 fa56ea00 0a000009") in wire
    assert decode_attributes(wire, AS2).attrs == a
    # a 4-octet session sends neither, and a NEW speaker discards AS4_* it receives
    assert b"\xc0\x11" not in encode_attributes(a, AS4)
    got = decode_attributes(wire, AS4)
    assert got.attrs.as4_path is None


def test_as4_merge_keeps_the_leading_two_octet_ases():
    # An OLD speaker (AS 65010) prepended itself to AS_PATH only: 3 ASes vs 2 in AS4_PATH.
    wire = (h("40 02 08 02 03 fdf2 5ba0 fdea")
            + h("c0 11 0a 02 02 fa56ea00 0000fdea"))
    got = decode_attributes(wire, AS2).attrs
    assert got.as_path == AsPath(((AS_SEQUENCE, (65010,)), (AS_SEQUENCE, (4200000000, 65002))))
    assert got.as_path.length == 3


def test_as_path_helpers():
    p = AsPath(((AS_SEQUENCE, (1, 2)), (AS_SET, (3, 4, 5))))
    assert p.length == 3 and p.first_as == 1 and p.contains(4) and str(p) == "1 2 {3 4 5}"
    assert p.prepend(9).segments[0] == (AS_SEQUENCE, (9, 1, 2))
    assert AsPath().prepend(7) == AsPath(((AS_SEQUENCE, (7,)),))


def test_capabilities_unknown_kept_and_families():
    o = Open(65000, 90, LO, (Multiprotocol(1, 128), UnknownCapability(64, b"\x00\x78")))
    back = decode_message(encode(o))
    assert back == o and back.families() == {IPV4_VPN}
    assert Open(65000, 90, LO).families() == {IPV4_UNICAST}  # RFC 4760 §8
    big = Open(4200000000, 90, LO, (FourOctetAs(4200000000),))
    assert encode(big)[20:22] == struct.pack("!H", AS_TRANS)
    assert decode_message(encode(big)).asn == 4200000000


def test_long_attribute_sets_extended_length():
    comms = tuple(range(1, 101))  # 400 octets > 255
    a = PathAttrs(communities=comms)
    wire = encode_attributes(a)
    assert h("d0 08 0190") in wire  # O|T|E, COMMUNITIES, 2-octet length 400
    assert decode_attributes(wire).attrs.communities == comms


def test_unknown_optional_transitive_goes_on_partial():
    wire = encode_attributes(PathAttrs()) + h("c0 63 02 abcd") + h("80 64 01 ff")
    d = decode_attributes(wire)
    assert d.attrs.unknown == (RawAttr(0xC0, 0x63, h("abcd")),)  # non-transitive 0x64 dropped
    assert h("e0 63 02 abcd") in encode_attributes(d.attrs)  # RFC 4271 §9: Partial set


# ---------------------------------------------------------------- message errors (§6.1, §6.2)


@pytest.mark.parametrize("wire,code,sub,data", [
    (h("00" * 16 + "0013 04"), 1, 1, b""),                 # marker
    (h(M + "0012 04"), 1, 2, h("0012")),                   # length < 19
    (h(M + "0014 04 00"), 1, 2, h("0014")),                # KEEPALIVE of 20
    (h(M + "1001 02") + bytes(4078), 1, 2, h("1001")),     # > 4096
    (h(M + "0013 09"), 1, 3, h("09")),                     # unknown type
    (msg(1, "03 fde8 005a 0aff0001 00"), 2, 1, h("0004")),  # version 3: data = 4
    (msg(1, "04 fde8 0002 0aff0001 00"), 2, 6, b""),        # hold time 2
    (msg(1, "04 fde8 005a 00000000 00"), 2, 3, h("00000000")),  # BGP Identifier 0
    (msg(1, "04 fde8 005a 0aff0001 03 01 01 00"), 2, 4, b""),  # optional parameter 1
    (msg(3, "06"), 1, 2, h("0014")),                       # NOTIFICATION too short
    (msg(5, "0001 00 80 00"), 7, 1, h("0001008000")),      # RFC 7313 §5
], ids=["marker", "short", "keepalive-len", "long", "type", "version", "hold", "bgp-id",
        "opt-param", "notification-len", "route-refresh-len"])
def test_message_errors_name_their_notification(wire, code, sub, data):
    with pytest.raises(MessageError) as e:
        decode_message(wire)
    assert (e.value.code, e.value.subcode, e.value.data) == (code, sub, data)


def test_reader_frames_a_stream_byte_by_byte():
    stream = OPEN_BYTES + KEEPALIVE_BYTES + VPN_UPDATE_BYTES
    r = MessageReader()
    got = []
    for i in range(len(stream)):
        got += list(r.feed(stream[i:i + 1]))
    assert got == [OPEN_BYTES, KEEPALIVE_BYTES, VPN_UPDATE_BYTES]


# ---------------------------------------------------------------- round trips


asns = st.integers(1, 0xFFFFFFFF)
v4 = st.builds(IPv4Address, st.integers(0x01000000, 0xDFFFFFFF)).filter(
    lambda a: a.packed[0] != 127)
segments = st.lists(st.tuples(st.sampled_from([AS_SET, AS_SEQUENCE]),
                              st.lists(asns, min_size=1, max_size=6).map(tuple)),
                    max_size=3).map(tuple)
attrs_st = st.builds(
    PathAttrs,
    origin=st.integers(0, 2),
    as_path=st.builds(AsPath, segments),
    next_hop=st.none() | v4,
    med=st.none() | st.integers(0, 0xFFFFFFFF),
    local_pref=st.none() | st.integers(0, 0xFFFFFFFF),
    atomic_aggregate=st.booleans(),
    aggregator=st.none() | st.tuples(asns, v4),
    communities=st.lists(st.integers(0, 0xFFFFFFFF), max_size=5).map(tuple),
    originator_id=st.none() | v4,
    cluster_list=st.lists(v4, max_size=3).map(tuple),
    ext_communities=st.lists(st.binary(min_size=8, max_size=8).map(ExtCommunity),
                             max_size=3).map(tuple),
)
rds = st.one_of(
    st.builds(Rd, st.just(0), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)),
    st.builds(Rd, st.just(1), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF)),
    st.builds(Rd, st.just(2), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF)))
v4net = st.builds(lambda a, n: IPv4Network((a, n), strict=False),
                  st.integers(0, 0xFFFFFFFF), st.integers(0, 32))
v6net = st.builds(lambda a, n: IPv6Network((a, n), strict=False),
                  st.integers(0, (1 << 128) - 1), st.integers(0, 128))
labels = st.integers(16, (1 << 20) - 1)


@settings(max_examples=150, deadline=None)
@given(attrs_st, st.lists(st.tuples(rds, v4net, labels), min_size=1, max_size=5), v4)
def test_vpn_update_round_trip(attrs, entries, nh):
    attrs = PathAttrs(**{**attrs.__dict__, "next_hop": None})
    reach = MpReach(IPV4_VPN, nh, tuple((Nlri(p, rd), lab) for rd, p, lab in entries))
    u = Update(attrs=attrs, mp_reach=reach)
    for ctx in (AS4, AS2):
        assert decode_message(encode(u, ctx), ctx) == u


@settings(max_examples=100, deadline=None)
@given(attrs_st, st.lists(v4net, max_size=5), st.lists(v4net, max_size=5), v4)
def test_ipv4_update_round_trip(attrs, withdrawn, nlri, nh):
    attrs = PathAttrs(**{**attrs.__dict__, "next_hop": nh})
    u = Update(tuple(Nlri(p) for p in withdrawn), attrs, tuple(Nlri(p) for p in nlri))
    assert decode_message(encode(u)) == u


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(v6net, labels), min_size=1, max_size=4), v4)
def test_6pe_round_trip(entries, nh):
    u = Update(attrs=PathAttrs(),
               mp_reach=MpReach(IPV6_LABELLED, nh, tuple((Nlri(p), lab) for p, lab in entries)))
    assert decode_message(encode(u)) == u
    assert IPv6Address(encode(u)[30:46]).ipv4_mapped == nh  # RFC 4798 §2


# ---------------------------------------------------------------- random bytes


@settings(max_examples=1500, deadline=None)
@given(st.integers(1, 5), st.binary(max_size=200), st.sampled_from([AS4, AS2]))
def test_random_bodies_raise_only_decode_errors(mtype, body, ctx):
    wire = h(M) + struct.pack("!HB", 19 + len(body), mtype) + body
    try:
        decode_message(wire, ctx)
    except DecodeError:
        pass


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([AS4, AS2]))
def test_random_attributes_never_raise(data, ctx):
    d = decode_attributes(data, ctx)
    assert all(p.handling for p in d.problems)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_mutated_updates_raise_only_decode_errors(noise):
    base = bytearray(VPN_UPDATE_BYTES)
    for i, b in enumerate(noise[: len(noise) // 2 * 2: 2]):
        base[19 + (noise[2 * i + 1] % (len(base) - 19))] = b
    try:
        decode_message(bytes(base))
    except DecodeError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_reader_on_random_streams(data):
    r = MessageReader()
    try:
        for raw in r.feed(h(M) + data):
            try:
                decode_message(raw)
            except DecodeError:
                pass
    except DecodeError:
        pass


def test_no_export_constant():
    assert NO_EXPORT == 0xFFFFFF01  # RFC 1997
