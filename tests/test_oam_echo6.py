"""Echo codec for IPv6 FECs: the VPN IPv6 (RFC 8029 §3.2.6, type 7) and BGP labeled IPv6
(§3.2.12, type 13) Target FEC Stack sub-TLVs, and the IPv6/UDP packet of an echo request
(§4.3: ::ffff:127/104, hop limit 1, Router Alert 69 of RFC 7506). Hand-built vectors,
malformed input, random bytes, and tshark as an independent decoder."""

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
    LOCALHOST6,
    UDP_PORT,
    BgpIpv6Fec,
    DecodeError,
    EchoMessage,
    FecType,
    LdpIpv4Fec,
    ReturnCode,
    TargetFecStack,
    VpnIpv6Fec,
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
    # §3.2.12: Length 17 = prefix 16 + length 1 (the LDP IPv6 layout)
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
    [LDP, VPN label]): tshark names both sub-TLVs, no malformed item, no expert error."""
    eth = H("024c53000001" "024c53000002" "8847")
    src = mapped(IPv4Address("10.255.0.1"))
    vpn = EchoMessage(flags=FLAG_V, sender_handle=43, sequence=2, tlvs=(TargetFecStack((
        LdpIpv4Fec(LO), VpnIpv6Fec.from_text("10.255.0.2:1", IPv6Network("2001:db8:1:2::/64")))),))
    f1 = eth + struct.pack("!I", 3000 << 12 | 0x100 | 255) + build_echo_request_packet6(
        request(), src, 3503)
    f2 = eth + struct.pack("!II", 17 << 12 | 255, 20 << 12 | 0x100 | 255) + \
        build_echo_request_packet6(vpn, src, 3503)
    pcap = tmp_path / "echo6.pcap"
    pcap.write_bytes(_pcap([f1, f2]))
    out = subprocess.run(["tshark", "-r", str(pcap), "-T", "json", "-V"], capture_output=True,
                         text=True, check=True).stdout
    pkts = json.loads(out)
    assert len(pkts) == 2
    echo = [json.dumps(p["_source"]["layers"]["mpls-echo"]) for p in pkts]
    assert "BGP labeled IPv6 prefix" in echo[0] and "2001:db8:2::" in echo[0], echo[0]
    assert "VPN IPv6 prefix" in echo[1] and "2001:db8:1:2::" in echo[1], echo[1]
    assert "_ws.malformed" not in out and "alformed" not in out
    summary = subprocess.run(["tshark", "-r", str(pcap), "-q", "-z", "expert"],
                             capture_output=True, text=True, check=True).stdout
    assert "Malformed" not in summary and "Error" not in summary, summary
