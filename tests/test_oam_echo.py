"""RFC 8029 echo codec: hand-built byte vectors (§3 layouts), round trips,
random bytes raise only DecodeError, IPv4/UDP packet builders, tshark oracle."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsr.oam.echo import (
    DS_FLAG_I,
    FLAG_V,
    LOCALHOST,
    UDP_PORT,
    BgpIpv6Fec,
    Ddmap,
    DecodeError,
    DsLabel,
    EchoMessage,
    ErroredTlvs,
    FecStackChange,
    InterfaceLabelStack,
    LabelEntry,
    LdpIpv4Fec,
    LdpIpv6Fec,
    MessageType,
    Multipath,
    MultipathType,
    NilFec,
    Pad,
    PadAction,
    RawTlv,
    ReplyMode,
    ReplyTos,
    ReturnCode,
    TargetFecStack,
    UnknownFec,
    VpnIpv4Fec,
    VpnIpv6Fec,
    build_echo_reply_packet,
    build_echo_request_packet,
    inet_checksum,
    label_stack,
    multipath_range,
    ntp_from_unix,
    ntp_to_unix,
    parse_udp_ipv4,
    return_code_for,
    return_code_name,
)

H = bytes.fromhex

# Header of §3: version 1, flags V, type 1 (request), reply mode 2, rc 0, rsc 0,
# handle 42, sequence 7, sent = NTP 0x83AA7E80.80000000 (Unix 0.5 s), received 0.
REQ_HEADER = H("0001 0001 01 02 00 00 0000002a 00000007 83aa7e80 80000000 00000000 00000000".replace(" ", ""))
# Target FEC Stack (type 1, length 12) with an LDP IPv4 prefix sub-TLV (type 1,
# length 5: 10.255.0.4, /32, then 3 octets of padding) - §3.2, §3.2.1.
FEC_TLV = H("0001000c" "00010005" "0aff0004" "20000000")
FEC = IPv4Network("10.255.0.4/32")


def request() -> EchoMessage:
    return EchoMessage(
        msg_type=MessageType.ECHO_REQUEST, reply_mode=ReplyMode.UDP, sender_handle=42, sequence=7,
        ts_sent=(0x83AA7E80, 0x80000000), flags=FLAG_V,
        tlvs=(TargetFecStack((LdpIpv4Fec(FEC),)),),
    )


# DDMAP (type 20, §3.4): MTU 1500, IPv4 numbered, DS flags I, downstream
# 10.0.0.6 / 10.0.0.6, rc 0, rsc 0, sub-TLV length 24; label stack sub-TLV
# (type 2, length 4): label 17, TC 0, S 1, protocol 3 (LDP); multipath
# sub-TLV (type 1, length 12): type 8 (bit-masked IPv4), length 8, reserved,
# 127.0.0.1 + mask ff000000 (127.0.0.1 .. 127.0.0.8).
DDMAP_TLV = H(
    "00140028" "05dc" "01" "02" "0a000006" "0a000006" "00" "00" "0018"
    "00020004" "00011103"
    "0001000c" "08" "0008" "00" "7f000000" "7f800000"  # 127.0.0.0 + bits 1-8: 127.0.0.1-8 (RFC 8029 §3.4.1.1.1: an aligned prefix)
)
DDMAP = Ddmap(
    IPv4Address("10.0.0.6"), IPv4Address("10.0.0.6"), mtu=1500, ds_flags=DS_FLAG_I,
    multipath=Multipath.bitmask(multipath_range(8)), labels=(DsLabel(17),),
)


# ---------------------------------------------------------------- byte vectors


def test_request_encodes_to_hand_built_bytes() -> None:
    assert request().encode() == REQ_HEADER + FEC_TLV


def test_request_decodes_from_hand_built_bytes() -> None:
    m = EchoMessage.decode(REQ_HEADER + FEC_TLV)
    assert m == request()
    assert m.validate_fec and m.fec_stack is not None
    assert m.fec_stack.fecs == (LdpIpv4Fec(FEC),)
    assert ntp_to_unix(m.ts_sent) == 0.5


def test_ddmap_vector() -> None:
    m = EchoMessage.decode(REQ_HEADER + DDMAP_TLV)
    assert m.ddmaps == (DDMAP,)
    assert m.ddmaps[0].multipath.addresses() == multipath_range(8)
    assert m.ddmaps[0].label_values == (17,)
    assert EchoMessage(tlvs=(DDMAP,)).encode()[32:] == DDMAP_TLV


@pytest.mark.parametrize(
    "tlv, wire",
    [
        (TargetFecStack((NilFec(0),)), "00010008" "00100004" "00000000"),
        (TargetFecStack((NilFec(1),)), "00010008" "00100004" "00001000"),
        (TargetFecStack((LdpIpv6Fec(IPv6Network("2001:db8::/32")),)),
         "00010018" "00020011" "20010db8000000000000000000000000" "20000000"),
        # §3.2.5 VPN IPv4 prefix (type 6, Length 13 + 3 octets of padding): RD type 0
        # 65000:1, then 10.1.2.0/24; RD type 1 10.255.0.2:7; RD type 2 4200000000:9.
        (TargetFecStack((VpnIpv4Fec.from_text("65000:1", IPv4Network("10.1.2.0/24")),)),
         "00010014" "0006000d" "0000fde800000001" "0a010200" "18000000"),
        (TargetFecStack((VpnIpv4Fec.from_text("10.255.0.2:7", IPv4Network("10.1.2.0/24")),)),
         "00010014" "0006000d" "00010aff00020007" "0a010200" "18000000"),
        (TargetFecStack((VpnIpv4Fec.from_text("4200000000:9", IPv4Network("0.0.0.0/0")),)),
         "00010014" "0006000d" "0002fa56ea000009" "00000000" "00000000"),
        (ReplyTos(0xC0), "000a0004" "c0000000"),
        (Pad(PadAction.COPY, b"abc"), "00030004" "02616263"),
        (InterfaceLabelStack(IPv4Address("10.0.0.2"), IPv4Address("10.0.0.2"), (LabelEntry(17, 0, True, 1),)),
         "00070010" "01000000" "0a000002" "0a000002" "00011101"),
        (ErroredTlvs((RawTlv(99, b"abcd"),)), "00090008" "00630004" "61626364"),
        (RawTlv(0x8001, b"xy"), "80010002" "78790000"),
        (Ddmap(), "00140010" "0000" "01" "00" "e0000002" "e0000002" "00000000"),
        (Ddmap(IPv4Address("10.0.0.1"), 7, address_type=2, return_code=5, return_subcode=1),
         "00140010" "0000" "02" "00" "0a000001" "00000007" "0501" "0000"),
        (Ddmap(multipath=Multipath.ip_ranges([(IPv4Address("127.0.0.1"), IPv4Address("127.0.0.4"))])),
         "00140020" "0000" "01" "00" "e0000002" "e0000002" "0000" "0010"
         "0001000c" "04" "0008" "00" "7f000001" "7f000004"),
        (Ddmap(fec_changes=(FecStackChange(FecStackChange.POP, LdpIpv4Fec(FEC), IPv4Address("10.0.0.9")),)),
         "00140028" "0000" "01" "00" "e0000002" "e0000002" "0000" "0018"
         "00030014" "02" "01" "0c" "00" "0a000009" "00010005" "0aff0004" "20000000"),
    ],
)
def test_tlv_vectors(tlv, wire: str) -> None:
    b = H(wire)
    assert EchoMessage(tlvs=(tlv,)).encode()[32:] == b
    assert EchoMessage.decode(REQ_HEADER + b).tlvs == (tlv,)


def test_reply_header_vector() -> None:
    reply = EchoMessage(msg_type=MessageType.ECHO_REPLY, reply_mode=ReplyMode.UDP_ROUTER_ALERT,
                        return_code=ReturnCode.EGRESS, return_subcode=1, sender_handle=1, sequence=2)
    assert reply.encode() == H("0001000002030301" "00000001" "00000002" + "00" * 16)


# ---------------------------------------------------------------- unknown TLVs (§3)


def test_unknown_mandatory_tlv_is_not_understood() -> None:
    m = EchoMessage.decode(REQ_HEADER + FEC_TLV + H("00630004deadbeef"))
    assert m.not_understood() == (RawTlv(99, H("deadbeef")),)


def test_unknown_optional_tlv_is_ignored() -> None:
    m = EchoMessage.decode(REQ_HEADER + FEC_TLV + H("80630004deadbeef"))
    assert m.not_understood() == ()
    assert m.tlvs[-1] == RawTlv(0x8063, H("deadbeef"))


def test_unknown_mandatory_fec_sub_tlv_errors_the_whole_fec_stack() -> None:
    wire = H("00010008" "00630004" "01020304")
    m = EchoMessage.decode(REQ_HEADER + wire)
    assert m.fec_stack.fecs == (UnknownFec(99, H("01020304")),)
    assert m.not_understood() == (RawTlv(1, wire[4:]),)


def test_unknown_mandatory_ddmap_sub_tlv() -> None:
    wire = H("00140018" "0000" "01" "00" "e0000002" "e0000002" "0000" "0008" "00630004" "00000000")
    assert EchoMessage.decode(REQ_HEADER + wire).not_understood() == (RawTlv(20, wire[4:]),)


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "wire, why",
    [
        (REQ_HEADER[:31], "shorter"),
        (H("0002") + REQ_HEADER[2:], "version"),
        (REQ_HEADER[:4] + H("07") + REQ_HEADER[5:], "message type"),
        (REQ_HEADER + H("00010008" "00010005" "0aff0004"), "truncated"),
        (REQ_HEADER + H("0001000c" "00010005" "0aff0004" "21000000"), "prefix length 33"),
        (REQ_HEADER + H("0001000c" "00010005" "0aff0004" "10000000"), "host bits"),
        (REQ_HEADER + H("0001000c" "00010004" "0aff0004" "20000000"), "length 4"),
        (REQ_HEADER + H("00010000"), "empty Target FEC Stack"),
        (REQ_HEADER + H("00010010" "0006000c" "0000fde800000001" "0a010200"), "VPN length 12"),
        (REQ_HEADER + H("00010014" "0006000d" "0000fde800000001" "0a010200" "21000000"),
         "VPN prefix length 33"),
        (REQ_HEADER + H("00010014" "0006000d" "0000fde800000001" "0a010201" "18000000"),
         "VPN host bits"),
        (REQ_HEADER + H("00140010" "0000" "09" "00" "e0000002" "e0000002" "00000000"), "address type"),
        (REQ_HEADER + H("00140010" "0000" "01" "00" "e0000002" "e0000002" "00000004"), "sub-TLV length"),
        (REQ_HEADER + H("00140018" "0000" "01" "00" "e0000002" "e0000002" "0000" "0008" "00020003" "00011100"),
         "label stack"),
        (REQ_HEADER + H("00140020" "0000" "01" "00" "e0000002" "e0000002" "0000" "0010"
                        "0001000c" "04" "0008" "00" "7f000004" "7f000001"), "low > high"),
        (REQ_HEADER + H("000a0002" "c0000000"), "Reply TOS"),
        (REQ_HEADER + H("00030001" "09000000"), "Pad action"),
    ],
)
def test_malformed_raises_decode_error(wire: bytes, why: str) -> None:
    with pytest.raises(DecodeError) as ei:
        EchoMessage.decode(wire)
    assert return_code_for(ei.value) == ReturnCode.MALFORMED_REQUEST


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        EchoMessage.decode(data)
    except DecodeError:
        pass


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=160))
def test_random_tlvs_raise_only_decode_error(data: bytes) -> None:
    try:
        EchoMessage.decode(REQ_HEADER + data)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 20, 7, 9, 3, 10]), st.binary(max_size=80))
def test_known_tlv_types_with_random_values_raise_only_decode_error(t: int, value: bytes) -> None:
    wire = struct.pack("!HH", t, len(value)) + value + b"\0" * (-len(value) % 4)
    try:
        EchoMessage.decode(REQ_HEADER + wire)
    except DecodeError:
        pass


# ---------------------------------------------------------------- round trips

addrs = st.integers(0, 2**32 - 1).map(IPv4Address)
prefixes = st.tuples(addrs, st.integers(0, 32)).map(lambda t: IPv4Network(t, strict=False))
prefixes6 = st.tuples(st.integers(0, 2**128 - 1).map(IPv6Address), st.integers(0, 128)).map(
    lambda t: IPv6Network(t, strict=False))
fecs = st.one_of(prefixes.map(LdpIpv4Fec), st.integers(0, 15).map(NilFec),
                 st.builds(VpnIpv4Fec, st.binary(min_size=8, max_size=8), prefixes),
                 st.builds(VpnIpv6Fec, st.binary(min_size=8, max_size=8), prefixes6),
                 prefixes6.map(BgpIpv6Fec))
labels = st.integers(0, 2**20 - 1)
ds_labels = st.builds(DsLabel, labels, st.integers(0, 255), st.integers(0, 7), st.booleans())
loop_addrs = st.lists(st.integers(0x7F000001, 0x7F0000FF).map(IPv4Address), min_size=1, max_size=20)
multipaths = st.one_of(
    st.none(),
    loop_addrs.map(Multipath.bitmask),
    loop_addrs.map(Multipath.ip_addresses),
)
ddmaps = st.builds(
    Ddmap, addrs, addrs, st.integers(0, 65535), st.just(1), st.integers(0, 3),
    st.integers(0, 255), st.integers(0, 255), multipaths, st.lists(ds_labels, max_size=3).map(tuple),
)
tlvs = st.one_of(
    st.lists(fecs, min_size=1, max_size=3).map(lambda f: TargetFecStack(tuple(f))),
    ddmaps,
    st.builds(Pad, st.sampled_from([1, 2]), st.binary(max_size=20)),
    st.integers(0, 255).map(ReplyTos),
    st.builds(InterfaceLabelStack, addrs, addrs,
              st.lists(st.builds(LabelEntry, labels, st.integers(0, 7), st.booleans(), st.integers(0, 255)),
                       max_size=3).map(tuple)),
    st.lists(st.builds(RawTlv, st.integers(0x8000, 0xFFFF), st.binary(max_size=9)), max_size=2)
    .map(lambda ts: ErroredTlvs(tuple(ts))),
    st.builds(RawTlv, st.integers(0x8000, 0xFFFF), st.binary(max_size=9)),
)
messages = st.builds(
    EchoMessage, st.sampled_from([1, 2]), st.integers(1, 4), st.integers(0, 255), st.integers(0, 255),
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.integers(0, 0xFFFF), st.lists(tlvs, max_size=5).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(messages)
def test_round_trip(m: EchoMessage) -> None:
    b = m.encode()
    assert len(b) % 4 == 0
    assert EchoMessage.decode(b) == m


@given(loop_addrs)
def test_multipath_encodings_select_the_same_addresses(a: list[IPv4Address]) -> None:
    want = tuple(sorted(set(a)))
    assert Multipath.bitmask(a).addresses() == want
    assert tuple(sorted(set(Multipath.ip_addresses(a).addresses()))) == want


def test_multipath_range_and_none() -> None:
    assert Multipath.bitmask([]).type == MultipathType.NONE
    assert Multipath.ip_ranges([(IPv4Address("127.0.0.1"), IPv4Address("127.0.0.3"))]).addresses() == \
        multipath_range(3)
    with pytest.raises(ValueError):
        multipath_range(2, IPv4Address("127.255.255.255"))


def test_ntp_timestamps() -> None:
    assert ntp_from_unix(0.0) == (2208988800, 0)
    assert ntp_from_unix(1.25) == (2208988801, 1 << 30)
    assert ntp_to_unix(ntp_from_unix(1700000000.5)) == 1700000000.5


def test_return_codes_and_names() -> None:
    assert [int(c) for c in ReturnCode] == [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15]
    assert return_code_name(8) == "label switched at stack depth"
    assert return_code_name(3) == "replying router is an egress for the FEC at stack depth"
    assert return_code_name(2) == "one or more TLVs not understood"
    assert "unknown" in return_code_name(200)


def test_label_stack_sets_bottom_of_stack() -> None:
    assert label_stack([17, 18], 5) == (LabelEntry(17, 0, False, 5), LabelEntry(18, 0, True, 5))


# ---------------------------------------------------------------- IPv4 / UDP


def test_inet_checksum_known_header() -> None:
    # A common worked example: 192.168.0.1 -> 192.168.0.199, UDP, TTL 64 -> 0xb861.
    hdr = H("450000730000400040110000c0a80001c0a800c7")
    assert inet_checksum(hdr) == 0xB861


def test_echo_request_packet() -> None:
    src = IPv4Address("10.255.0.1")
    pkt = build_echo_request_packet(request(), src, 49152)
    assert pkt[0] == 0x46  # IPv4, IHL 6: one option word
    assert pkt[20:24] == H("94040000")  # RFC 2113 Router Alert
    assert pkt[8] == 1  # IP TTL 1 (§4.3)
    assert pkt[9] == 17
    assert inet_checksum(pkt[:24]) == 0
    p = parse_udp_ipv4(pkt)
    assert (p.src, p.dst, p.sport, p.dport, p.ttl, p.router_alert) == (src, LOCALHOST, 49152, UDP_PORT, 1, True)
    assert EchoMessage.decode(p.payload) == request()
    with pytest.raises(ValueError):
        build_echo_request_packet(request(), src, 49152, dst=IPv4Address("10.0.0.1"))


def test_echo_reply_packet_goes_back_to_the_source_port() -> None:
    reply = EchoMessage(msg_type=2, return_code=3, return_subcode=1, reply_mode=ReplyMode.UDP)
    pkt = build_echo_reply_packet(reply, IPv4Address("10.0.0.10"), IPv4Address("10.255.0.1"), 49152)
    p = parse_udp_ipv4(pkt)
    assert (p.sport, p.dport, p.router_alert, pkt[0]) == (UDP_PORT, 49152, False, 0x45)
    ra = build_echo_reply_packet(replace(reply, reply_mode=ReplyMode.UDP_ROUTER_ALERT),
                                 IPv4Address("10.0.0.10"), IPv4Address("10.255.0.1"), 49152)
    assert parse_udp_ipv4(ra).router_alert


def test_parse_rejects_bad_checksums() -> None:
    pkt = bytearray(build_echo_request_packet(request(), IPv4Address("10.255.0.1"), 49152))
    pkt[-1] ^= 0xFF
    with pytest.raises(DecodeError, match="UDP checksum"):
        parse_udp_ipv4(bytes(pkt))
    pkt[-1] ^= 0xFF
    pkt[8] = 2
    with pytest.raises(DecodeError, match="header checksum"):
        parse_udp_ipv4(bytes(pkt))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_parse_udp_random_bytes(data: bytes) -> None:
    try:
        parse_udp_ipv4(data)
    except DecodeError:
        pass


# ---------------------------------------------------------------- tshark oracle


def _pcap(packets: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # Ethernet
    for i, p in enumerate(packets):
        frame = H("024c53000001" "024c53000002" "0800") + p
        out += struct.pack("<IIII", i, 0, len(frame), len(frame)) + frame
    return out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_request_and_reply(tmp_path) -> None:
    req = EchoMessage(
        flags=FLAG_V, sender_handle=42, sequence=7, ts_sent=ntp_from_unix(1.5),
        tlvs=(TargetFecStack((LdpIpv4Fec(FEC), NilFec(0))), DDMAP, Pad(PadAction.COPY, b"abcd"), ReplyTos(0xC0)),
    )
    vpn = EchoMessage(  # a VPN IPv4 FEC under the LDP FEC of the egress PE (RFC 8029 §3.2.5)
        flags=FLAG_V, sender_handle=43, sequence=8,
        tlvs=(TargetFecStack((LdpIpv4Fec(FEC), VpnIpv4Fec.from_text(
            "10.255.0.2:1", IPv4Network("10.1.2.0/24")))),),
    )
    reply = EchoMessage(
        msg_type=MessageType.ECHO_REPLY, return_code=ReturnCode.LABEL_SWITCHED, return_subcode=1,
        sender_handle=42, sequence=7,
        tlvs=(Ddmap(IPv4Address("10.0.0.10"), IPv4Address("10.0.0.10"), mtu=1500,
                    multipath=Multipath.ip_addresses([LOCALHOST]), labels=(DsLabel(3),)),
              InterfaceLabelStack(IPv4Address("10.255.0.2"), IPv4Address("10.0.0.2"), label_stack([17], 1)),
              ErroredTlvs((RawTlv(99, b"abcd"),))),
    )
    src = IPv4Address("10.255.0.1")
    pcap = tmp_path / "echo.pcap"
    pcap.write_bytes(_pcap([build_echo_request_packet(req, src, 49152),
                            build_echo_reply_packet(reply, IPv4Address("10.0.0.2"), src, 49152),
                            build_echo_request_packet(vpn, src, 49153)]))
    out = subprocess.run(["tshark", "-r", str(pcap), "-T", "json", "-V"], capture_output=True,
                         text=True, check=True).stdout
    pkts = json.loads(out)
    assert len(pkts) == 3
    vtext = json.dumps(pkts[2]["_source"]["layers"]["mpls-echo"])
    assert "VPN IPv4 prefix" in vtext and "10.1.2.0" in vtext and '"24"' in vtext, vtext
    pkts = pkts[:2]
    echo = [p["_source"]["layers"]["mpls-echo"] for p in pkts]
    assert echo[0]["mpls_echo.msg_type"] == "1" and echo[1]["mpls_echo.msg_type"] == "2"
    assert echo[0]["mpls_echo.sequence"] == "7" and echo[1]["mpls_echo.return_code"] == "8"
    text = json.dumps(echo)
    assert "10.255.0.4" in text and "127.0.0.1" in text
    # No expert info inside MPLS Echo, no malformed anywhere (IPv4 notes "TTL only 1": §4.3 wants it).
    assert "_ws.expert" not in text and "_ws.malformed" not in out and "alformed" not in out
    summary = subprocess.run(["tshark", "-r", str(pcap), "-q", "-z", "expert"], capture_output=True,
                             text=True, check=True).stdout
    assert "Malformed" not in summary and "Error" not in summary


@given(st.integers(0, (1 << 24) - 1), st.sets(st.integers(0, 300), min_size=1, max_size=40))
def test_bitmask_is_an_aligned_prefix_a_strict_reader_reads_alike(start: int, offsets) -> None:
    """RFC 8029 §3.4.1.1.1: type 8 is an address prefix and a mask of 2^(32 - prefix
    length) bits. A receiver that takes the prefix length from the Multipath Length and
    masks the prefix with it reads the same addresses as ours (base + bit position)."""
    base = int(IPv4Address("127.0.0.0")) + start
    addrs = {IPv4Address(min(base + o, int(IPv4Address("127.255.255.255")))) for o in offsets}
    mp = Multipath.bitmask(addrs)
    prefix, mask = int.from_bytes(mp.info[:4], "big"), mp.info[4:]
    nbits = len(mask) * 8
    assert nbits >= 32 and nbits & (nbits - 1) == 0  # a power of two: a prefix length
    strict = prefix & ~(nbits - 1) & 0xFFFFFFFF
    assert strict == prefix  # aligned: nothing for a strict reader to mask off
    read = {IPv4Address(strict + i) for i in range(nbits) if mask[i // 8] & (0x80 >> (i % 8))}
    assert read == addrs == set(mp.addresses())
