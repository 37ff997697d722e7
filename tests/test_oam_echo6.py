"""Echo codec for IPv6 FECs: the VPN IPv6 (RFC 8029 §3.2.6, type 7) and BGP labeled IPv6
(§3.2.14, type 13) Target FEC Stack sub-TLVs, the IPv6 Multipath Information of a DDMAP
(§3.4.1.1.1: ::ffff:127/104 addresses, 16 octets each) and the IPv6/UDP packet of an echo
request (§4.3: ::ffff:127/104, hop limit 1, Router Alert 69 of RFC 7506). Hand-built
vectors, malformed input, random bytes, and tshark as an independent decoder."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsr.oam.echo import (
    FLAG_V,
    LOCALHOST,
    LOCALHOST6,
    LOOPBACK_NET6,
    UDP_PORT,
    BgpIpv6Fec,
    Ddmap,
    DecodeError,
    DsLabel,
    EchoMessage,
    FecType,
    LdpIpv4Fec,
    MessageType,
    Multipath,
    MultipathType,
    ReturnCode,
    TargetFecStack,
    VpnIpv6Fec,
    build_echo_reply_packet,
    multipath_range,
    return_code_for,
)
from lsr.oam.echo6 import (
    build_echo_request_packet6,
    build_udp_ipv6,
    mapped,
    parse_udp_ipv6,
    reply_address,
)

H = bytes.fromhex
REQ_HEADER = H("0001" "0001" "01" "02" "00" "00" "0000002a" "00000001") + bytes(16)
LO = IPv4Network("10.255.0.4/32")
P6 = IPv6Network("2001:db8:2::/64")


def test_types_are_ianas() -> None:
    assert (FecType.VPN_IPV6, FecType.BGP_IPV6) == (7, 13)


@pytest.mark.parametrize("fec, wire", [
    # §3.2.6: Length 25 = RD 8 + prefix 16 + length 1; 3 octets of padding (MBZ)
    (VpnIpv6Fec.from_text("10.255.0.2:1", IPv6Network("2001:db8:1:2::/64")),
     "0001" "0020" "0007" "0019" "00010aff00020001" "20010db8000100020000000000000000"
     "40000000"),
    (VpnIpv6Fec.from_text("65000:7", IPv6Network("::/0")),
     "0001" "0020" "0007" "0019" "0000fde800000007" "00000000000000000000000000000000"
     "00000000"),
    # §3.2.14: Length 17 = prefix 16 + length 1 (the LDP IPv6 layout)
    (BgpIpv6Fec(P6), "0001" "0018" "000d" "0011" "20010db8000200000000000000000000" "40000000"),
    (BgpIpv6Fec(IPv6Network("2001:db8::1/128")),
     "0001" "0018" "000d" "0011" "20010db8000000000000000000000001" "80000000"),
])
def test_fec_vectors(fec, wire: str) -> None:
    tlv = TargetFecStack((fec,))
    assert EchoMessage(tlvs=(tlv,)).encode()[32:] == H(wire)
    assert EchoMessage.decode(REQ_HEADER + H(wire)).tlvs == (tlv,)


def test_text_forms() -> None:
    assert str(VpnIpv6Fec.from_text("10.255.0.2:1", P6)) == "10.255.0.2:1:2001:db8:2::/64"
    assert str(BgpIpv6Fec(P6)) == "2001:db8:2::/64"
    with pytest.raises(ValueError):
        VpnIpv6Fec(b"short", P6)


@pytest.mark.parametrize("wire, why", [
    ("0001001c" "00070018" "00010aff00020001" "20010db8000100020000000000000000", "VPN IPv6 length 24"),
    ("00010020" "00070019" "00010aff00020001" "20010db8000100020000000000000000" "81000000",
     "VPN IPv6 prefix length 129"),
    ("00010020" "00070019" "00010aff00020001" "20010db8000100020000000000000001" "40000000",
     "VPN IPv6 host bits"),
    ("00010018" "000d0010" "20010db8000200000000000000000000", "BGP IPv6 length 16"),
    ("00010018" "000d0011" "20010db8000200000000000000000000" "ff000000", "BGP IPv6 prefix length 255"),
    ("00010018" "000d0011" "20010db8000200000000000000000001" "40000000", "BGP IPv6 host bits"),
    ("00010010" "000d0011" "20010db8000200000000000000000000", "truncated"),
])
def test_malformed_fecs(wire: str, why: str) -> None:
    with pytest.raises(DecodeError) as ei:
        EchoMessage.decode(REQ_HEADER + H(wire))
    assert return_code_for(ei.value) == ReturnCode.MALFORMED_REQUEST


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([7, 13]), st.binary(max_size=40))
def test_random_values_of_the_ipv6_fecs_raise_only_decode_error(t: int, value: bytes) -> None:
    sub = struct.pack("!HH", t, len(value)) + value + b"\0" * (-len(value) % 4)
    try:
        m = EchoMessage.decode(REQ_HEADER + struct.pack("!HH", 1, len(sub)) + sub)
    except DecodeError:
        return
    assert EchoMessage.decode(m.encode()) == m


# ---------------------------------------------------------------- IPv6 multipath (§3.4.1.1.1)


def v6(text: str) -> IPv6Address:
    return IPv6Address("::ffff:" + text)


# The addresses of the §3.4.1.1.1 example: 127.2.1.0, 127.2.1.5-15, 127.2.1.20-29
RFC_EXAMPLE = [0, *range(5, 16), *range(20, 30)]
# ... "embedded in IPv6": the base ::ffff:127.2.1.0 in 16 octets, then the same 32-bit mask
RFC_BITMASK6 = "00000000" "00000000" "0000ffff" "7f020100" "87ff0ffc"
# DDMAP (§3.4) with ALL-ROUTERS, sub-TLV length 28: a Multipath Data sub-TLV (type 1, length
# 24): type 8, Multipath Length 20, reserved, then the information above
DDMAP_RFC6 = "0014002c" "0000" "01" "00" "e0000002" "e0000002" "0000" "001c" \
    "00010018" "08" "0014" "00" + RFC_BITMASK6


def test_rfc_bitmask_example_in_ipv6() -> None:
    addrs = [v6(f"127.2.1.{i}") for i in RFC_EXAMPLE]
    mp = Multipath.bitmask(addrs)
    assert mp == Multipath(MultipathType.BITMASK_IP, H(RFC_BITMASK6))
    assert EchoMessage(tlvs=(Ddmap(multipath=mp),)).encode()[32:] == H(DDMAP_RFC6)
    got = EchoMessage.decode(REQ_HEADER + H(DDMAP_RFC6)).ddmaps[0].multipath
    assert got == mp and got.addresses(v6=True) == tuple(addrs)
    # the IPv4 example is the same mask after the 4-octet base
    assert Multipath.bitmask([IPv4Address(f"127.2.1.{i}") for i in RFC_EXAMPLE]).info == \
        H("7f020100" "87ff0ffc")


@pytest.mark.parametrize("mp, info", [
    # type 2: one 16-octet address; type 4: a 32-octet low/high pair
    (Multipath.ip_addresses([LOCALHOST6]), "00000000000000000000ffff7f000001"),
    (Multipath.ip_ranges([(v6("127.0.0.1"), v6("127.0.0.4"))]),
     "00000000000000000000ffff7f000001" "00000000000000000000ffff7f000004"),
    # type 8 of one address: the prefix ::ffff:127.0.0.0/123, bit 1 of a 32-bit mask
    (Multipath.bitmask([LOCALHOST6]), "00000000000000000000ffff7f000000" "40000000"),
    # 127.0.0.1 .. .32 cross a /123: the prefix is /122, the mask 64 bits
    (Multipath.bitmask(multipath_range(32, LOCALHOST6)),
     "00000000000000000000ffff7f000000" "7fffffff" "80000000"),
])
def test_ipv6_multipath_vectors(mp: Multipath, info: str) -> None:
    assert mp.info == H(info)
    d = Ddmap(multipath=mp, labels=(DsLabel(17),))
    wire = EchoMessage(tlvs=(d,)).encode()[32:]
    assert wire[-len(H(info)):] == H(info) and wire[-len(H(info)) - 4:-len(H(info))] == \
        bytes((mp.type,)) + len(H(info)).to_bytes(2, "big") + b"\0"
    assert EchoMessage.decode(REQ_HEADER + wire).ddmaps == (d,)


def test_ipv6_multipath_addresses() -> None:
    assert Multipath.ip_addresses([LOCALHOST6]).addresses(v6=True) == (LOCALHOST6,)
    assert Multipath.ip_ranges([(v6("127.0.0.1"), v6("127.0.0.3"))]).addresses(v6=True) == \
        multipath_range(3, LOCALHOST6)
    assert multipath_range(2, LOCALHOST6) == (LOCALHOST6, v6("127.0.0.2"))
    assert all(a in LOOPBACK_NET6 for a in multipath_range(32, LOCALHOST6))
    with pytest.raises(ValueError):
        multipath_range(2, v6("127.255.255.255"))


def test_the_family_is_the_callers() -> None:
    """The sub-TLV does not name its family: 16 octets of type 2 are one IPv6 address or
    four IPv4 ones, read as the request's family (§3.4.1.1.1, §4.3)."""
    mp = Multipath.ip_addresses([LOCALHOST6])
    assert mp.addresses() == (IPv4Address(0), IPv4Address(0), IPv4Address("0.0.255.255"),
                              LOCALHOST)
    assert mp.addresses(v6=True) == (LOCALHOST6,)


@pytest.mark.parametrize("mtype, info, why", [
    (MultipathType.IP_ADDRESS, "7f000001", "one IPv4 address"),
    (MultipathType.IP_ADDRESS, "7f000001" * 5, "20 octets"),
    (MultipathType.IP_RANGE, "7f000001" "7f000004", "an IPv4 pair"),
    # a valid run of IPv4 pairs but, as one IPv6 pair, ::ffff:127.0.0.9 .. ::ffff:127.0.0.1
    (MultipathType.IP_RANGE, "00000000000000000000ffff7f000009" "00000000000000000000ffff7f000001",
     "low > high"),
    (MultipathType.BITMASK_IP, "7f000000" "ffffffff", "an IPv4 base"),
    (MultipathType.BITMASK_IP, "00000000000000000000ffff7f000000" "4000", "half a mask word"),
])
def test_ipv6_malformed_multipath(mtype: int, info: str, why: str) -> None:
    """Valid IPv4 Multipath Information (so the message decodes) that is not valid IPv6:
    check and addresses raise DecodeError for an IPv6 request, and the responder answers
    1 (malformed, tests/test_lsp_v6_sim.py)."""
    wire = Multipath(mtype, H(info)).value()
    sub = struct.pack("!HH", 1, len(wire)) + wire
    ddmap = "0014" + f"{16 + len(sub):04x}" + "0000" "01" "00" "e0000002" "e0000002" "0000" + \
        f"{len(sub):04x}"
    try:
        mp = EchoMessage.decode(REQ_HEADER + H(ddmap) + sub).ddmaps[0].multipath
    except DecodeError:  # valid for neither family: the message is malformed
        mp = Multipath(mtype, H(info))
        with pytest.raises(DecodeError):
            mp.check(v6=False)
    for call in (lambda: mp.check(v6=True), lambda: mp.addresses(v6=True)):
        with pytest.raises(DecodeError) as ei:
            call()
        assert return_code_for(ei.value) == ReturnCode.MALFORMED_REQUEST


def test_malformed_for_both_families_fails_the_decode() -> None:
    # 3 octets; 32 octets whose first IPv4 pair and only IPv6 pair both run high to low
    for info in ("7f0000", "7f000009" "7f000001" + "00" * 24):
        wire = Multipath(MultipathType.IP_RANGE, H(info)).value()
        wire += b"\0" * (-len(wire) % 4)
        sub = struct.pack("!HH", 1, len(wire)) + wire
        ddmap = H("0014" + f"{16 + len(sub):04x}" + "0000" "01" "00" "e0000002" "e0000002"
                  "0000" + f"{len(sub):04x}") + sub
        with pytest.raises(DecodeError):
            EchoMessage.decode(REQ_HEADER + ddmap)


def test_ipv6_multipath_constructor_errors() -> None:
    with pytest.raises(ValueError, match="mix"):
        Multipath.ip_addresses([LOCALHOST, LOCALHOST6])
    with pytest.raises(ValueError, match="mix"):
        Multipath.bitmask([LOCALHOST, LOCALHOST6])
    with pytest.raises(ValueError, match="too wide"):  # a 2^24-bit mask: no 16-bit length
        Multipath.bitmask([v6("127.0.0.1"), v6("127.255.255.255")])
    assert Multipath.bitmask([]) == Multipath()


loop6 = st.lists(st.integers(0x7F000000, 0x7F0003FF).map(lambda i: v6(str(IPv4Address(i)))),
                 min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(loop6)
def test_ipv6_bitmask_is_an_aligned_prefix_and_selects_the_set(a: list[IPv6Address]) -> None:
    mp = Multipath.bitmask(a)
    base, mask = int.from_bytes(mp.info[:16], "big"), mp.info[16:]
    nbits = len(mask) * 8
    assert nbits >= 32 and nbits & (nbits - 1) == 0 and base % nbits == 0  # §3.4.1.1.1
    want = tuple(sorted(set(a)))
    assert mp.addresses(v6=True) == want
    assert tuple(sorted(set(Multipath.ip_addresses(a).addresses(v6=True)))) == want


@settings(max_examples=200, deadline=None)
@given(st.one_of(loop6.map(Multipath.bitmask), loop6.map(Multipath.ip_addresses),
                 loop6.map(lambda a: Multipath.ip_ranges([(min(a), max(a))]))),
       st.lists(st.integers(0, 2**20 - 1).map(DsLabel), max_size=2))
def test_ipv6_multipath_round_trip(mp: Multipath, labels: list[DsLabel]) -> None:
    m = EchoMessage(tlvs=(TargetFecStack((LdpIpv4Fec(LO), BgpIpv6Fec(P6))),
                          Ddmap(multipath=mp, labels=tuple(labels))))
    got = EchoMessage.decode(m.encode())
    assert got == m
    assert got.ddmaps[0].multipath.addresses(v6=True) == mp.addresses(v6=True)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from([0, 1, 2, 3, 4, 8, 9, 200]), st.binary(max_size=40))
def test_random_multipath_information_raises_only_decode_error(mtype: int, info: bytes) -> None:
    """Random Multipath Information of every type, in a DDMAP: the decoder, and reading it
    as either family, raise DecodeError or nothing."""
    wire = struct.pack("!BHB", mtype, len(info), 0) + info + b"\0" * (-len(info) % 4)
    sub = struct.pack("!HH", 1, 4 + len(info)) + wire
    body = struct.pack("!HBB", 0, 1, 0) + bytes(8) + struct.pack("!BBH", 0, 0, len(sub)) + sub
    try:
        mp = EchoMessage.decode(REQ_HEADER + struct.pack("!HH", 20, len(body)) + body
                                ).ddmaps[0].multipath
    except DecodeError:
        return
    for fam in (False, True):
        try:
            mp.check(fam)
            mp.addresses(fam)
        except DecodeError:
            pass


def request() -> EchoMessage:
    return EchoMessage(flags=FLAG_V, sender_handle=42, sequence=1,
                       tlvs=(TargetFecStack((LdpIpv4Fec(LO), BgpIpv6Fec(P6))),))


def test_request_packet6() -> None:
    src = mapped(IPv4Address("10.255.0.1"))
    assert str(src) == "::ffff:aff:1" and reply_address(src) == IPv4Address("10.255.0.1")
    pkt = build_echo_request_packet6(request(), src, 3503)
    assert pkt[0] >> 4 == 6 and pkt[6] == 0 and pkt[7] == 1  # Hop-by-Hop next, hop limit 1
    assert pkt[24:40] == LOCALHOST6.packed
    assert pkt[40:48] == H("11" "00" "0502" "0045" "0100")  # UDP next; RA 69 (RFC 7506); PadN
    p = parse_udp_ipv6(pkt)
    assert (p.src, p.dst, p.sport, p.dport, p.ttl, p.router_alert) == (src, LOCALHOST6, 3503,
                                                                        UDP_PORT, 1, True)
    assert EchoMessage.decode(p.payload) == request()
    with pytest.raises(ValueError):
        build_echo_request_packet6(request(), src, 3503, dst=IPv6Address("2001:db8::1"))
    assert reply_address(IPv6Address("2001:db8::1")) is None


def test_parse6_rejects_bad_checksum_and_zero() -> None:
    pkt = bytearray(build_echo_request_packet6(request(), mapped(IPv4Address("10.255.0.1")), 3503))
    pkt[-1] ^= 0xFF
    with pytest.raises(DecodeError, match="UDP checksum"):
        parse_udp_ipv6(bytes(pkt))
    pkt[-1] ^= 0xFF
    pkt[54:56] = b"\0\0"  # RFC 8200 §8.1: zero is no checksum, invalid over IPv6
    with pytest.raises(DecodeError, match="UDP checksum"):
        parse_udp_ipv6(bytes(pkt))
    plain = build_udp_ipv6(b"x", IPv6Address("::1"), IPv6Address("::2"), 1, 2)
    assert not parse_udp_ipv6(plain).router_alert


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_parse_udp6_random_bytes(data: bytes) -> None:
    for b in (data, bytes((0x60,)) + data[1:]):
        try:
            parse_udp_ipv6(b)
        except DecodeError:
            pass


def _pcap(frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # Ethernet
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", i, 0, len(f), len(f)) + f
    return out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_ipv6_fecs_under_labels(tmp_path) -> None:
    """The request as a 6PE egress gets it (under [6PE label]) and a 6VPE one (under
    [LDP, VPN label]), a multipath traceroute request with its ::ffff:127/104 bit mask and
    the reply (IPv4, lsr.oam.echo6) with one: tshark names the sub-TLVs, no malformed
    item, no expert error. Wireshark 4.0 reads the first 4 octets of a type 8 as "IP
    Address" (0.0.0.0 here) and the rest as the mask; types 2 and 4 of 16-octet addresses
    it calls malformed, so IPv6 multipath goes out as type 8 (lsr.oam.responder)."""
    eth = H("024c53000001" "024c53000002" "8847")
    src = mapped(IPv4Address("10.255.0.1"))
    vpn = EchoMessage(flags=FLAG_V, sender_handle=43, sequence=2, tlvs=(TargetFecStack((
        LdpIpv4Fec(LO), VpnIpv6Fec.from_text("10.255.0.2:1", IPv6Network("2001:db8:1:2::/64")))),))
    f1 = eth + struct.pack("!I", 3000 << 12 | 0x100 | 255) + build_echo_request_packet6(
        request(), src, 3503)
    f2 = eth + struct.pack("!II", 17 << 12 | 255, 20 << 12 | 0x100 | 255) + \
        build_echo_request_packet6(vpn, src, 3503)
    mp = Multipath.bitmask(multipath_range(32, LOCALHOST6))
    trace = EchoMessage(flags=FLAG_V, sender_handle=44, sequence=3, tlvs=(
        *request().tlvs, Ddmap(IPv4Address("10.0.0.2"), IPv4Address("10.0.0.2"), mtu=1500,
                               multipath=mp, labels=(DsLabel(17), DsLabel(3000)))))
    f3 = eth + struct.pack("!II", 16 << 12 | 1, 3000 << 12 | 0x100 | 1) + \
        build_echo_request_packet6(trace, src, 3503, v6("127.0.0.5"))
    reply = EchoMessage(msg_type=MessageType.ECHO_REPLY, return_code=ReturnCode.LABEL_SWITCHED,
                        return_subcode=1, sender_handle=44, sequence=3, tlvs=(
                            Ddmap(IPv4Address("10.0.0.6"), IPv4Address("10.0.0.6"), mtu=1500,
                                  multipath=Multipath.bitmask([LOCALHOST6, v6("127.0.0.5")]),
                                  labels=(DsLabel(3), DsLabel(3000))),))
    f4 = H("024c53000001" "024c53000002" "0800") + build_echo_reply_packet(
        reply, IPv4Address("10.0.0.2"), IPv4Address("10.255.0.1"), 3503)
    pcap = tmp_path / "echo6.pcap"
    pcap.write_bytes(_pcap([f1, f2, f3, f4]))
    out = subprocess.run(["tshark", "-r", str(pcap), "-T", "json", "-V"], capture_output=True,
                         text=True, check=True).stdout
    pkts = json.loads(out)
    assert len(pkts) == 4
    echo = [json.dumps(p["_source"]["layers"]["mpls-echo"]) for p in pkts]
    assert "BGP labeled IPv6 prefix" in echo[0] and "2001:db8:2::" in echo[0], echo[0]
    assert "VPN IPv6 prefix" in echo[1] and "2001:db8:1:2::" in echo[1], echo[1]
    for e, bits in ((echo[2], "00000000000000000000ffff7f0000007fffffff80000000"),
                    (echo[3], "00000000000000000000ffff7f00000044000000")):
        assert "Multipath sub-TLV" in e and "IP address prefix and bit mask" in e, e
        assert bits[8:] in e.replace(":", ""), e  # the mask field: all but the first 4 octets
    assert "::ffff:127.0.0.5" in json.dumps(pkts[2]["_source"]["layers"]["ipv6"])
    assert "_ws.malformed" not in out and "alformed" not in out
    summary = subprocess.run(["tshark", "-r", str(pcap), "-q", "-z", "expert"],
                             capture_output=True, text=True, check=True).stdout
    assert "Malformed" not in summary and "Error" not in summary, summary
