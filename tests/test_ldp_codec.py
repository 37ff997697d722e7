"""ldp.codec: hand-written RFC 5036 byte vectors, error paths, framing, oracles.

Byte vectors are written out field by field from the RFC 5036 diagrams (§3.1
PDU, §3.3 TLV, §3.4 TLVs, §3.5 messages); encoding and decoding are tested
separately against them.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from ldp.codec import (
    DecodeError,
    PduReader,
    Problem,
    decode_pdu,
    encode_message,
    encode_pdu,
    encode_pdus,
    pdu_length,
    status_for,
)
from ldp.messages import (
    FATAL_STATUS,
    Address,
    AddressFamily,
    AddressWithdraw,
    Hello,
    Initialization,
    KeepAlive,
    LabelAbortRequest,
    LabelMapping,
    LabelRelease,
    LabelRequest,
    LabelWithdraw,
    LdpId,
    MessageError,
    Notification,
    Pdu,
    PrefixFec,
    Status,
    StatusCode,
    UnknownMessage,
    UnknownTlv,
    WildcardFec,
)

LID = LdpId(IPv4Address("10.0.0.1"), 0)
# PDU header for LID: Version 1 | PDU Length | LSR ID 10.0.0.1 | label space 0 (§3.1)
LID_HEX = "0a000001 0000"


def h(s: str) -> bytes:
    """Hex with spaces/newlines allowed, '#' starts a comment."""
    return bytes.fromhex("".join(line.split("#")[0] for line in s.splitlines()).replace(" ", ""))


def pdu_bytes(*messages: bytes, version: int = 1, lid_hex: str = LID_HEX) -> bytes:
    body = b"".join(messages)
    return struct.pack("!HH", version, 6 + len(body)) + h(lid_hex) + body


def one(data: bytes):
    """Decode a PDU holding one message and return that message (or MessageError)."""
    pdu = decode_pdu(data)
    assert len(pdu.messages) == 1, pdu.messages
    return pdu.messages[0]


def p4(s: str) -> PrefixFec:
    return PrefixFec(IPv4Network(s))


# ---------------------------------------------------------------- vectors
# (message value, wire bytes of the message) — every RFC 5036 message.

VECTORS: dict[str, tuple[object, str]] = {
    "notification": (
        Notification(0x11, Status.of(StatusCode.SHUTDOWN, message_id=3, message_type=0x0400)),
        """
        0001 0012 00000011       # U=0 Notification, length 18, msg id 0x11
        0300 000a                # Status TLV, length 10
        8000000a                 # E=1 F=0 status data 0x0a (Shutdown)
        00000003 0400            # message id 3, message type 0x0400
        """,
    ),
    "notification_nonfatal": (
        Notification(1, Status(0x04, fatal=False, forward=True, message_id=9, message_type=0x3F00)),
        """
        0001 0012 00000001
        0300 000a 40000004 00000009 3f00     # E=0 F=1 Unknown Message Type
        """,
    ),
    "hello_frr": (
        Hello(1, 15, gtsm=True, transport_address=IPv4Address("10.0.0.1"), config_seq=7),
        """
        0100 001c 00000001       # Hello, length 28
        0400 0004 000f 2000      # Common Hello Params: hold 15, T=0 R=0 G=1 (RFC 6720)
        0401 0004 0a000001       # IPv4 Transport Address 10.0.0.1
        0402 0004 00000007       # Configuration Sequence Number 7
        """,
    ),
    "hello_targeted": (
        Hello(2, 0xFFFF, targeted=True, request_targeted=True),
        """
        0100 000c 00000002
        0400 0004 ffff c000      # hold infinite, T=1 R=1
        """,
    ),
    "hello_ipv6_ta": (
        Hello(3, 0, transport_address=IPv6Address("2001:db8::1")),
        """
        0100 0020 00000003
        0400 0004 0000 0000
        0403 0010 20010db8000000000000000000000001   # IPv6 Transport Address
        """,
    ),
    "init": (
        Initialization(2, 180, LdpId(IPv4Address("10.0.0.2"), 0)),
        """
        0200 0016 00000002       # Initialization, length 22
        0500 000e                # Common Session Params, length 14
        0001 00b4                # version 1, KeepAlive 180
        00 00 0000               # A=0 D=0, PVLim 0, Max PDU 0 (= 4096)
        0a000002 0000            # receiver LDP id 10.0.0.2:0
        """,
    ),
    "init_dod": (
        Initialization(
            5,
            9,
            LdpId(IPv4Address("192.0.2.1"), 7),
            downstream_on_demand=True,
            loop_detection=True,
            path_vector_limit=254,
            max_pdu_length=8192,
        ),
        """
        0200 0016 00000005
        0500 000e 0001 0009
        c0 fe 2000               # A=1 D=1, PVLim 254, Max PDU 8192
        c0000201 0007
        """,
    ),
    "keepalive": (KeepAlive(3), "0201 0004 00000003"),
    "address": (
        Address(4, (IPv4Address("1.2.3.4"), IPv4Address("10.0.12.1"))),
        """
        0300 0012 00000004       # Address, length 18
        0101 000a 0001           # Address List, length 10, family 1 (IPv4)
        01020304 0a000c01
        """,
    ),
    "address_withdraw_v6": (
        AddressWithdraw(5, (IPv6Address("::1"),), AddressFamily.IPV6),
        """
        0301 001a 00000005       # Address Withdraw, length 26
        0101 0012 0002           # Address List, length 18, family 2 (IPv6)
        00000000000000000000000000000001
        """,
    ),
    "mapping": (
        LabelMapping(6, (p4("10.1.128.0/17"),), 16),
        """
        0400 0017 00000006       # Label Mapping, length 23
        0100 0007                # FEC TLV, length 7
        02 0001 11 0a0180        # Prefix, AF 1, /17, ceil(17/8)=3 octets
        0200 0004 00000010       # Generic Label 16
        """,
    ),
    "mapping_full": (
        LabelMapping(
            7,
            (p4("10.255.0.2/32"), p4("0.0.0.0/0")),
            3,
            request_msg_id=0x01020304,
            hop_count=2,
            path_vector=(IPv4Address("1.1.1.1"), IPv4Address("2.2.2.2")),
        ),
        """
        0400 0035 00000007       # length 53
        0100 000c                # FEC TLV, length 12: two elements
        02 0001 20 0aff0002      # 10.255.0.2/32
        02 0001 00               # 0.0.0.0/0: no prefix octets
        0200 0004 00000003       # implicit NULL
        0600 0004 01020304       # Label Request Message ID
        0103 0001 02             # Hop Count 2
        0104 0008 01010101 02020202   # Path Vector
        """,
    ),
    "request_v6": (
        LabelRequest(8, (PrefixFec(IPv6Network("2001:db8:8000::/33")),), hop_count=1),
        """
        0401 0016 00000008       # Label Request, length 22
        0100 0009 02 0002 21 20010db880   # AF 2, /33 -> 5 octets
        0103 0001 01
        """,
    ),
    "withdraw_wildcard": (
        LabelWithdraw(9, (WildcardFec(),)),
        """
        0402 0009 00000009
        0100 0001 01             # Wildcard FEC element alone
        """,
    ),
    "withdraw_label": (
        LabelWithdraw(10, (p4("10.255.0.1/32"),), 17),
        """
        0402 0018 0000000a
        0100 0008 02 0001 20 0aff0001
        0200 0004 00000011
        """,
    ),
    "release": (
        LabelRelease(11, (p4("10.255.12.0/30"),), 3),
        """
        0403 0018 0000000b
        0100 0008 02 0001 1e 0aff0c00
        0200 0004 00000003
        """,
    ),
    "release_wildcard": (
        LabelRelease(12, (WildcardFec(),)),
        "0403 0009 0000000c 0100 0001 01",
    ),
    "abort": (
        LabelAbortRequest(13, (p4("1.0.0.0/8"),), 7),
        """
        0404 0015 0000000d       # Label Abort Request, length 21
        0100 0005 02 0001 08 01
        0600 0004 00000007       # Label Request Message ID 7
        """,
    ),
    "unknown_u1": (
        UnknownMessage(0x3F00, 14, b"\xaa\xbb", True),
        "bf00 0006 0000000e aabb",  # U=1, type 0x3f00
    ),
}


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_encode_vector(name: str) -> None:
    msg, wire = VECTORS[name]
    assert encode_message(msg).hex() == h(wire).hex()


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_decode_vector(name: str) -> None:
    msg, wire = VECTORS[name]
    assert one(pdu_bytes(h(wire))) == msg


def test_pdu_header_vector() -> None:
    pdu = Pdu(LdpId(IPv4Address("10.0.0.1"), 0), (KeepAlive(3),))
    wire = h("0001 000e 0a000001 0000  0201 0004 00000003")  # PDU Length 14 = 6 + 8
    assert encode_pdu(pdu) == wire
    assert decode_pdu(wire) == pdu
    assert decode_pdu(memoryview(wire)) == pdu
    assert pdu_length(wire) == 18
    assert pdu_length(wire[:3]) is None


def test_pdu_label_space_vector() -> None:
    wire = h("0001 000e c0a80101 0005 0201 0004 00000001")
    assert decode_pdu(wire).ldp_id == LdpId(IPv4Address("192.168.1.1"), 5)


def test_frr_init_with_capabilities() -> None:
    """FRR 8.4 Init as captured: 3 capability TLVs with U=1, which we ignore."""
    wire = h(
        """
        0200 0025 00000002       # length 37 = 22 + 3 * 5
        0500 000e 0001 00b4 00 00 0000 0a000002 0000
        8506 0001 80             # Dynamic Capability Announcement, U=1, S-bit
        850b 0001 80             # Typed Wildcard FEC capability
        8603 0001 80             # Unrecognized Notification capability
        """
    )
    msg = one(pdu_bytes(wire))
    assert isinstance(msg, Initialization)
    assert msg.keepalive_time == 180
    assert [(t.tlv_type, t.u_bit, t.f_bit, t.value) for t in msg.unknown_tlvs] == [
        (0x0506, True, False, b"\x80"),
        (0x050B, True, False, b"\x80"),
        (0x0603, True, False, b"\x80"),
    ]
    assert encode_message(msg) == wire  # kept TLVs are re-emitted verbatim


def test_frr_like_multi_message_pdu() -> None:
    """KeepAlive + Address + 3 Mappings in one PDU, as FRR sends them."""
    msgs = [
        KeepAlive(20),
        Address(21, (IPv4Address("10.255.0.2"), IPv4Address("10.255.12.2"))),
        LabelMapping(22, (p4("10.255.0.2/32"),), 3),
        LabelMapping(23, (p4("10.255.12.0/30"),), 3),
        LabelMapping(24, (p4("10.255.0.1/32"),), 16),
    ]
    wire = pdu_bytes(*(h(x) for x in [
        "0201 0004 00000014",
        "0300 0012 00000015 0101 000a 0001 0aff0002 0aff0c02",
        "0400 0018 00000016 0100 0008 02000120 0aff0002 0200 0004 00000003",
        "0400 0018 00000017 0100 0008 0200011e 0aff0c00 0200 0004 00000003",
        "0400 0018 00000018 0100 0008 02000120 0aff0001 0200 0004 00000010",
    ]))  # fmt: skip
    assert decode_pdu(wire).messages == tuple(msgs)
    assert encode_pdu(Pdu(LID, tuple(msgs))) == wire


# ---------------------------------------------------------------- PDU-level errors


def _err(data: bytes, **kw) -> DecodeError:
    with pytest.raises(DecodeError) as ei:
        decode_pdu(data, **kw)
    return ei.value


KA = h("0201 0004 00000001")


def test_bad_version_is_fatal() -> None:
    e = _err(pdu_bytes(KA, version=2))
    assert e.status == Status.of(StatusCode.BAD_PROTOCOL_VERSION)
    assert e.status.fatal and e.status.wire_code == 0x80000002


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x00",  # < 4 octets
        pdu_bytes(KA)[:-1],  # truncated
        pdu_bytes(KA) + b"\x00",  # trailing octets
        h("0001 000d 0a000001 0000 0201 0004 000000"),  # length 13 < 14
        h("0001 0006 0a000001 0000"),  # no message at all
    ],
)
def test_bad_pdu_length_is_fatal(data: bytes) -> None:
    e = _err(data)
    assert e.status.code == StatusCode.BAD_PDU_LENGTH and e.status.fatal


def test_pdu_over_max_len() -> None:
    big = encode_pdu(Pdu(LID, (Address(1, tuple(IPv4Address(i) for i in range(1, 1100))),)))
    assert len(big) > 4096
    assert decode_pdu(big).messages  # no limit unless asked
    assert _err(big, max_pdu_len=4096).status.code == StatusCode.BAD_PDU_LENGTH


# ---------------------------------------------------------------- message-level status paths


def _merr(msg_wire: str) -> MessageError:
    """Decode one message whose Message Length is recomputed (these vectors test TLVs)."""
    raw = bytearray(h(msg_wire))
    raw[2:4] = struct.pack("!H", len(raw) - 4)
    m = one(pdu_bytes(bytes(raw)))
    assert isinstance(m, MessageError), m
    return m


def test_unknown_message_u0_non_fatal_and_decoding_continues() -> None:
    pdu = decode_pdu(pdu_bytes(h("3f00 0004 00000063"), KA))
    err, ka = pdu.messages
    assert isinstance(err, MessageError)
    assert err.status == Status.of(StatusCode.UNKNOWN_MESSAGE_TYPE, 0x63, 0x3F00)
    assert not err.status.fatal and (err.msg_id, err.msg_type) == (0x63, 0x3F00)
    assert ka == KeepAlive(1)


def test_unknown_message_u1_kept_silently() -> None:
    pdu = decode_pdu(pdu_bytes(h("bf00 0006 00000063 0102"), KA))
    assert pdu.messages == (UnknownMessage(0x3F00, 0x63, b"\x01\x02", True), KeepAlive(1))


def test_message_longer_than_pdu_is_bad_message_length() -> None:
    m = one(pdu_bytes(h("0201 0010 00000001")))
    assert isinstance(m, MessageError)
    assert m.status == Status.of(StatusCode.BAD_MESSAGE_LENGTH, 1, 0x0201) and m.status.fatal


def test_stray_octets_after_message_is_bad_message_length() -> None:
    pdu = decode_pdu(pdu_bytes(KA, b"\x02\x01\x00"))
    assert pdu.messages[0] == KeepAlive(1)
    assert pdu.messages[1].status.code == StatusCode.BAD_MESSAGE_LENGTH


def test_message_length_below_four() -> None:
    m = one(pdu_bytes(h("0201 0002 00000001 0000")))
    assert m.status.code == StatusCode.BAD_MESSAGE_LENGTH and m.status.fatal


def test_decoding_stops_after_fatal_error() -> None:
    bad_tlv = h("0201 0008 00000005 0400 0009")  # TLV overruns the message
    pdu = decode_pdu(pdu_bytes(KA, bad_tlv, KA))
    assert len(pdu.messages) == 2
    assert pdu.messages[1].status == Status.of(StatusCode.BAD_TLV_LENGTH, 5, 0x0201)


def test_unknown_tlv_u0_ignores_message() -> None:
    m = _merr("0201 000c 00000007 3e00 0004 deadbeef")
    assert m.status == Status.of(StatusCode.UNKNOWN_TLV, 7, 0x0201)
    assert not m.status.fatal


@pytest.mark.parametrize("uf", [(True, False), (True, True)])
def test_unknown_tlv_u1_kept_with_f_bit(uf: tuple[bool, bool]) -> None:
    u, f = uf
    head = 0x3E00 | (0x8000 if u else 0) | (0x4000 if f else 0)
    wire = h("0201 000c 00000007") + struct.pack("!HH", head, 4) + b"\xde\xad\xbe\xef"
    m = one(pdu_bytes(wire))
    assert m == KeepAlive(7, (UnknownTlv(0x3E00, b"\xde\xad\xbe\xef", u, f),))
    assert encode_message(m) == wire


@pytest.mark.parametrize(
    "wire",
    [
        "0201 0007 00000001 3e00 00",  # truncated TLV header
        "0201 0008 00000001 3e00 0001",  # TLV value beyond the message
        "0400 0016 00000001 0100 0008 02000120 0aff0001 0200 0002 0000",  # label len 2
        "0100 000c 00000001 0400 0004 000f 0000 0401 0000",  # transport address len 0
        "0200 0015 00000002 0500 000d 0001 00b4 0000 0000 0a000002 00",  # CSP len 13
        "0001 0011 00000001 0300 0009 8000000a 00000003 04",  # Status len 9
        "0300 0011 00000004 0101 0005 0001 010203",  # Address List not 4*n
        "0300 000b 00000004 0101 0001 00",  # Address List shorter than family
        "0400 001b 00000006 0100 0007 0200011100a018 0200 0004 00000010 0104 0003 010101",
        "0400 0013 00000006 0100 0000 0200 0004 00000010",  # empty FEC TLV
        "0401 0012 00000006 0100 0005 0200010801 0103 0002 0101",  # hop count len 2
    ],
)
def test_bad_tlv_length_is_fatal(wire: str) -> None:
    m = _merr(wire)
    assert m.status.code == StatusCode.BAD_TLV_LENGTH and m.status.fatal, m


@pytest.mark.parametrize(
    "wire",
    [
        # prefix length 33 for IPv4 (FRR PR #5335)
        "0400 0017 00000006 0100 0008 02000121 0a000001 0200 0004 00000010",
        # prefix length 129 for IPv6
        "0401 0018 00000006 0100 0014 02000281 20010db8000000000000000000000000",
        # Label > 2^20 - 1
        "0400 0017 00000006 0100 0007 02000111 0a0180 0200 0004 00100000",
        # reserved label 7 (RFC 3032 §2.1)
        "0400 0017 00000006 0100 0007 02000111 0a0180 0200 0004 00000007",
        # Common Hello Parameters length != 4 (holo / FRR)
        "0100 000d 00000001 0400 0005 000f 0000 00",
        # Wildcard not alone
        "0402 000d 00000009 0100 0005 01 02000100 ",
        "0402 000d 00000009 0100 0005 02000100 01",
        # prefix octets missing
        "0400 0016 00000006 0100 0006 02000118 0a00 0200 0004 00000010",
        # Prefix element header truncated
        "0400 0014 00000006 0100 0003 020001 0200 0004 00000010",
    ],
)
def test_malformed_tlv_value_is_fatal(wire: str) -> None:
    m = _merr(wire)
    assert m.status.code == StatusCode.MALFORMED_TLV_VALUE and m.status.fatal, m


@pytest.mark.parametrize(
    "wire",
    [
        "0400 0017 00000006 0100 0007 02000311 0a0180 0200 0004 00000010",  # FEC AF 3
        "0300 000e 00000004 0101 0006 0003 01020304",  # Address List AF 3
    ],
)
def test_unsupported_address_family(wire: str) -> None:
    m = _merr(wire)
    assert m.status.code == StatusCode.UNSUPPORTED_ADDRESS_FAMILY and not m.status.fatal


@pytest.mark.parametrize(
    "wire",
    [
        "0402 000c 00000009 0100 0004 05020001",  # typed wildcard (RFC 5918): not ours
        "0400 0011 00000006 0100 0001 01 0200 0004 00000010",  # wildcard in a Mapping
        "0401 0009 00000006 0100 0001 01",  # wildcard in a Request
        "0404 0011 00000006 0100 0001 01 0600 0004 00000001",  # wildcard in an Abort
    ],
)
def test_unknown_fec(wire: str) -> None:
    m = _merr(wire)
    assert m.status.code == StatusCode.UNKNOWN_FEC and not m.status.fatal


@pytest.mark.parametrize(
    "wire",
    [
        "0400 000f 00000006 0100 0007 02000111 0a0180",  # Mapping without Label
        "0400 000c 00000006 0200 0004 00000010",  # Mapping without FEC
        "0100 000c 00000001 0401 0004 0a000001",  # Hello without Common Hello Params
        "0200 0004 00000002",  # Init without Common Session Params
        "0001 0004 00000001",  # Notification without Status
        "0300 0004 00000004",  # Address without Address List
        "0301 0004 00000004",
        "0404 000d 00000006 0100 0005 0200010801",  # Abort without Request Message ID
        "0401 0004 00000006",
        "0402 0004 00000006",
        "0403 0004 00000006",
    ],
)
def test_missing_message_parameters(wire: str) -> None:
    m = _merr(wire)
    assert m.status.code == StatusCode.MISSING_MESSAGE_PARAMETERS and not m.status.fatal
    assert m.status.message_id == m.msg_id and m.status.message_type == m.msg_type


def test_notification_optional_tlvs_kept() -> None:
    wire = h(
        """
        0001 0038 00000001       # length 56
        0300 000a 00000004 00000063 3f00      # Status: Unknown Message Type
        0301 0004 00000001                    # Extended Status
        0302 000e 0001000e0a000001000002010004 # Returned PDU (a KeepAlive PDU, cut)
        0303 0008 3f00 0004 00000063          # Returned Message
        """
    )
    m = one(pdu_bytes(wire))
    assert isinstance(m, Notification)
    assert m.status == Status(4, False, False, 0x63, 0x3F00)
    assert [t.tlv_type for t in m.unknown_tlvs] == [0x0301, 0x0302, 0x0303]
    assert encode_message(m) == wire


def test_duplicate_and_second_transport_address_kept() -> None:
    wire = h(
        """
        0100 0030 00000001
        0400 0004 000f 0000
        0401 0004 0a000001
        0403 0010 20010db8000000000000000000000001   # second transport address
        0401 0004 0a000009                           # duplicate IPv4 one
        """
    )
    m = one(pdu_bytes(wire))
    assert m.transport_address == IPv4Address("10.0.0.1")
    assert [t.tlv_type for t in m.unknown_tlvs] == [0x0403, 0x0401]


def test_known_message_with_u_bit_decodes() -> None:
    assert one(pdu_bytes(h("8201 0004 00000003"))) == KeepAlive(3)


def test_prefix_host_bits_in_padding_are_masked() -> None:
    m = one(pdu_bytes(h("0400 0017 00000006 0100 0007 02000111 0a01ff 0200 0004 00000010")))
    assert m.fec == (p4("10.1.128.0/17"),)


def test_hello_reserved_flag_bits_ignored() -> None:
    m = one(pdu_bytes(h("0100 000c 00000002 0400 0004 0003 1fff")))
    assert m == Hello(2, 3)


def test_status_for_is_total_and_matches_fatal_set() -> None:
    for p in Problem:
        st = status_for(p, 5, 0x400)
        assert st.fatal == (StatusCode(st.code) in FATAL_STATUS)
        assert (st.message_id, st.message_type) == (5, 0x400)
    assert not status_for(Problem.UNKNOWN_TLV).fatal
    assert status_for(Problem.BAD_TLV_LENGTH).fatal


def test_decode_error_attributes() -> None:
    e = DecodeError(Problem.BAD_VERSION, "v2")
    assert e.status == Status.of(StatusCode.BAD_PROTOCOL_VERSION)
    assert (e.detail, e.msg_id, e.msg_type) == ("v2", 0, 0) and e.fatal


# ---------------------------------------------------------------- encoder validation


@pytest.mark.parametrize(
    "msg",
    [
        LabelMapping(1, (p4("10.0.0.0/8"),), 1 << 20),
        LabelMapping(1, (p4("10.0.0.0/8"),), 1),
        LabelMapping(1, (), 16),
        LabelWithdraw(1, (WildcardFec(), p4("10.0.0.0/8"))),
        Address(1, (IPv6Address("::1"),)),
        KeepAlive(1 << 32),
        Hello(1, 0x10000),
    ],
)
def test_encode_rejects_invalid(msg) -> None:
    with pytest.raises(ValueError):
        encode_message(msg)


def test_encode_pdu_rejects_empty_and_errors() -> None:
    with pytest.raises(ValueError):
        encode_pdu(Pdu(LID, ()))
    with pytest.raises(ValueError):
        encode_pdu(Pdu(LID, (MessageError(1, 1, Status.of(StatusCode.SHUTDOWN)),)))


# ---------------------------------------------------------------- encode_pdus


def test_encode_pdus_packs_under_limit() -> None:
    msgs = [LabelMapping(i, (p4(f"10.{i // 256}.{i % 256}.0/24"),), 16 + i) for i in range(600)]
    pdus = encode_pdus(LID, msgs)
    assert len(pdus) > 1
    assert all(len(p) <= 4096 for p in pdus)
    assert all(len(p) > 4096 - 30 for p in pdus[:-1])  # greedily filled
    out = [m for p in pdus for m in decode_pdu(p, max_pdu_len=4096).messages]
    assert out == msgs


def test_encode_pdus_small_limit_and_defaults() -> None:
    msgs = [KeepAlive(i) for i in range(60)]  # 8 octets each
    assert [len(p) for p in encode_pdus(LID, msgs, max_pdu_len=10 + 8 * 40)] == [330, 170]
    assert [len(p) for p in encode_pdus(LID, msgs, max_pdu_len=10 + 8 * 40 + 7)] == [330, 170]
    assert len(encode_pdus(LID, msgs, max_pdu_len=0)) == 1  # <= 255 means 4096 (§3.5.3)
    assert encode_pdus(LID, []) == []
    with pytest.raises(ValueError):
        encode_pdus(LID, [Address(1, tuple(IPv4Address(i) for i in range(1, 100)))], 300)


# ---------------------------------------------------------------- PduReader


def _stream() -> tuple[bytes, list[Pdu]]:
    pdus = [
        Pdu(LID, (Initialization(1, 180, LdpId(IPv4Address("10.0.0.2"))),)),
        Pdu(LID, (KeepAlive(2), Address(3, (IPv4Address("10.0.0.1"),)))),
        Pdu(LID, (LabelMapping(4, (p4("10.0.0.1/32"),), 3),)),
    ]
    return b"".join(encode_pdu(p) for p in pdus), pdus


def test_reader_byte_by_byte() -> None:
    data, pdus = _stream()
    r = PduReader()
    out = []
    for i in range(len(data)):
        out += r.feed(data[i : i + 1])
    assert out == pdus and r.buffered == 0


def test_reader_all_at_once_and_split() -> None:
    data, pdus = _stream()
    assert PduReader().feed(data) == pdus
    first = pdu_length(data)
    assert first == 36
    r = PduReader()
    assert r.feed(data[: first + 5]) == pdus[:1]
    assert r.feed(memoryview(data)[first + 5 :]) == pdus[1:]


def test_reader_fatal_error_ends_stream() -> None:
    data, pdus = _stream()
    r = PduReader()
    bad = pdu_bytes(KA, version=2)
    out = r.feed(data[: pdu_length(data)] + bad + data)
    assert out[0] == pdus[0]
    assert isinstance(out[1], DecodeError) and out[1].status.code == StatusCode.BAD_PROTOCOL_VERSION
    assert len(out) == 2 and r.closed
    assert r.feed(data) == []


def test_reader_rejects_oversized_before_buffering() -> None:
    r = PduReader()
    out = r.feed(b"\x00\x01\x10\x01")  # PDU Length 4097 > 4096 (§3.1)
    assert len(out) == 1 and out[0].status.code == StatusCode.BAD_PDU_LENGTH
    r2 = PduReader(max_pdu_len=8192)
    assert r2.feed(b"\x00\x01\x10\x01") == []
    r2.max_pdu_len = 0  # negotiated <= 255 -> 4096
    assert r2.feed(b"")[0].status.code == StatusCode.BAD_PDU_LENGTH


def test_reader_message_errors_do_not_close() -> None:
    r = PduReader()
    out = r.feed(pdu_bytes(h("3f00 0004 00000063")) + pdu_bytes(KA))
    assert isinstance(out[0].messages[0], MessageError)
    assert out[1].messages == (KeepAlive(1),) and not r.closed


# ---------------------------------------------------------------- oracle: scapy


def _scapy_msgs(wire: bytes) -> list:
    from scapy.contrib.ldp import LDP

    pkt = LDP(wire)
    out = []
    layer = pkt.payload
    while layer and layer.name != "Raw" and layer.name != "NoPayload":
        out.append(layer)
        layer = layer.payload
    return pkt, out


def test_scapy_oracle() -> None:
    from scapy.contrib import ldp as sl

    msgs = [
        Hello(1, 15, targeted=True),
        Initialization(2, 180, LdpId(IPv4Address("10.0.0.2"), 0), downstream_on_demand=True,
                       path_vector_limit=3, max_pdu_length=4096),
        KeepAlive(3),
        Address(4, (IPv4Address("10.255.0.1"), IPv4Address("10.255.12.1"))),
        LabelMapping(5, (p4("10.255.0.1/32"), p4("10.1.128.0/17"), p4("0.0.0.0/0")), 16),
        LabelMapping(6, (p4("10.255.12.0/30"),), 3),
    ]  # fmt: skip
    wire = encode_pdu(Pdu(LdpId(IPv4Address("10.0.0.1"), 0), tuple(msgs)))
    pkt, layers = _scapy_msgs(wire)
    assert (pkt.version, pkt.len, pkt.id, pkt.space) == (1, len(wire) - 4, "10.0.0.1", 0)
    assert [type(x) for x in layers] == [
        sl.LDPHello,
        sl.LDPInit,
        sl.LDPKeepAlive,
        sl.LDPAddress,
        sl.LDPLabelMM,
        sl.LDPLabelMM,
    ]
    hello, init, ka, addr, m1, m2 = layers
    assert (hello.id, hello.params) == (1, [15, 1, 0])
    assert init.id == 2 and init.params == [180, 1, 0, 3, 4096, "10.0.0.2", 0]
    assert ka.id == 3
    assert addr.address == ["10.255.0.1", "10.255.12.1"]
    assert m1.fec == [("10.255.0.1", 32), ("10.1.128.0", 17), ("0.0.0.0", 0)] and m1.label == 16
    assert m2.fec == [("10.255.12.0", 30)] and m2.label == 3
    for layer, msg in zip(layers, msgs, strict=True):
        assert layer.len == len(encode_message(msg)) - 4


def test_scapy_oracle_notification() -> None:
    from scapy.contrib import ldp as sl

    n = Notification(9, Status.of(StatusCode.KEEPALIVE_TIMER_EXPIRED, 0, 0))
    _, layers = _scapy_msgs(encode_pdu(Pdu(LID, (n,))))
    assert isinstance(layers[0], sl.LDPNotification)
    assert layers[0].status == [1, 0, 0x14, 0, 0]


# ---------------------------------------------------------------- oracle: tshark

TSHARK = shutil.which("tshark")

# Wireshark 4.0's dissect_tlv_fec() reads 2 octets at FEC value offset + 8
# before looking at the elements; a FEC TLV whose value plus what follows it
# is shorter than 10 octets is reported as malformed. Every message below
# therefore has >= 10 octets from its FEC value to the end of the frame.
TSHARK_CASES: list[tuple[object, dict[str, list[str]]]] = [
    (
        Hello(1, 15, gtsm=True, transport_address=IPv4Address("10.0.0.1"), config_seq=7),
        {"ldp.msg.type": ["0x0100"], "ldp.msg.tlv.hello.hold": ["15"],
         "ldp.msg.tlv.hello.gtsm": ["1"], "ldp.msg.tlv.hello.targeted": ["0"],
         "ldp.msg.tlv.ipv4.taddr": ["10.0.0.1"], "ldp.msg.tlv.hello.cnf_seqno": ["7"]},
    ),
    (
        Initialization(2, 180, LdpId(IPv4Address("10.0.0.2"), 0),
                       unknown_tlvs=(UnknownTlv(0x0506, b"\x80", True, False),)),
        {"ldp.msg.type": ["0x0200"], "ldp.msg.tlv.sess.ka": ["180"], "ldp.msg.tlv.sess.ver": ["1"],
         "ldp.msg.tlv.sess.rxlsr": ["10.0.0.2"], "ldp.msg.tlv.sess.mxpdu": ["0"]},
    ),
    (KeepAlive(3), {"ldp.msg.type": ["0x0201"], "ldp.msg.id": ["0x00000003"]}),
    (
        Address(4, (IPv4Address("1.2.3.4"), IPv4Address("5.6.7.8"))),
        {"ldp.msg.type": ["0x0300"], "ldp.msg.tlv.addrl.addr_family": ["1"],
         "ldp.msg.tlv.addrl.addr": ["1.2.3.4", "5.6.7.8"]},
    ),
    (
        AddressWithdraw(5, (IPv6Address("2001:db8::1"),), AddressFamily.IPV6),
        {"ldp.msg.type": ["0x0301"], "ldp.msg.tlv.addrl.addr": ["2001:db8::1"]},
    ),
    (
        LabelMapping(6, (p4("10.1.128.0/17"),), 16, request_msg_id=3, hop_count=2,
                     path_vector=(IPv4Address("1.1.1.1"),)),
        {"ldp.msg.type": ["0x0400"], "ldp.msg.tlv.fec.len": ["17"],
         "ldp.msg.tlv.fec.pfval": ["10.1.128.0"], "ldp.msg.tlv.generic.label": ["16"],
         "ldp.msg.tlv.lbl_req_msg_id": ["0x00000003"], "ldp.msg.tlv.hc.value": ["2"],
         "ldp.msg.tlv.pv.lsrid": ["1.1.1.1"]},
    ),
    (
        LabelRequest(7, (p4("10.255.0.2/32"),), hop_count=1),
        {"ldp.msg.type": ["0x0401"], "ldp.msg.tlv.fec.pfval": ["10.255.0.2"],
         "ldp.msg.tlv.hc.value": ["1"]},
    ),
    (
        LabelWithdraw(8, (p4("10.255.0.2/32"),), 17),
        {"ldp.msg.type": ["0x0402"], "ldp.msg.tlv.fec.len": ["32"],
         "ldp.msg.tlv.generic.label": ["17"]},
    ),
    (
        LabelRelease(9, (p4("0.0.0.0/0"),), 3),
        {"ldp.msg.type": ["0x0403"], "ldp.msg.tlv.fec.len": ["0"],
         "ldp.msg.tlv.generic.label": ["3"]},
    ),
    (
        LabelAbortRequest(10, (p4("1.0.0.0/8"),), 7),
        {"ldp.msg.type": ["0x0404"], "ldp.msg.tlv.fec.pfval": ["1.0.0.0"],
         "ldp.msg.tlv.lbl_req_msg_id": ["0x00000007"]},
    ),
    (
        Notification(11, Status.of(StatusCode.SHUTDOWN, 3, 0x0400)),
        {"ldp.msg.type": ["0x0001"], "ldp.msg.tlv.status.ebit": ["1"],
         "ldp.msg.tlv.status.data": ["0x0000000a"], "ldp.msg.tlv.status.msg.id": ["0x00000003"],
         "ldp.msg.tlv.status.msg.type": ["0x0400"]},
    ),
]  # fmt: skip

_WARN = 0x600000  # Wireshark PI_WARN; PI_ERROR = 0x800000 (malformed)


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_tshark_oracle(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    frames = []
    for msg, _ in TSHARK_CASES:  # one PDU per UDP 646 datagram (no TCP analysis noise)
        raw = encode_pdu(Pdu(LID, (msg,)))
        frames.append(
            Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=646, dport=646) / Raw(raw)
        )
    # One TCP segment carrying several PDUs (Init + KeepAlive), like FRR's passive side.
    seg = encode_pdu(Pdu(LID, (TSHARK_CASES[1][0],))) + encode_pdu(Pdu(LID, (KeepAlive(3),)))
    frames.append(
        Ether() / IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=646, dport=40000, flags="PA")
        / Raw(seg)
    )  # fmt: skip
    pcap = tmp_path / "ldp.pcap"
    wrpcap(str(pcap), frames)
    res = subprocess.run(
        [TSHARK, "-r", str(pcap), "-T", "json", "--no-duplicate-keys"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    decoded = json.loads(res.stdout)
    assert len(decoded) == len(frames)

    def leaves(o, acc: dict[str, list[str]]) -> dict[str, list[str]]:
        if isinstance(o, dict):
            for k, v in o.items():
                if isinstance(v, str):
                    acc.setdefault(k, []).append(v)
                elif isinstance(v, list) and all(isinstance(x, str) for x in v):
                    acc.setdefault(k, []).extend(v)
                else:
                    leaves(v, acc)
        elif isinstance(o, list):
            for v in o:
                leaves(v, acc)
        return acc

    for frame, (msg, expected) in zip(decoded, TSHARK_CASES, strict=False):
        layers = frame["_source"]["layers"]
        f = leaves(layers, {})
        assert "_ws.malformed" not in f, (msg, f)
        assert f["ldp.hdr.version"] == ["1"] and f["ldp.hdr.ldpid.lsr"] == ["10.0.0.1"]
        assert f["ldp.hdr.pdu_len"] == [str(len(encode_message(msg)) + 6)]
        for key, want in expected.items():
            assert f.get(key) == want, (type(msg).__name__, key, f.get(key))
        sev = [int(s) for s in f.get("_ws.expert.severity", [])]
        assert all(s < _WARN for s in sev), (msg, f.get("_ws.expert.message"))
    tcp = leaves(decoded[-1]["_source"]["layers"], {})
    assert tcp["ldp.msg.type"] == ["0x0200", "0x0201"]

    # Expert summary of the whole capture: no warnings, errors or malformed packets.
    res = subprocess.run(
        [TSHARK, "-r", str(pcap), "-T", "fields", "-e", "_ws.malformed",
         "-e", "_ws.expert.severity"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    for line in res.stdout.splitlines():
        malformed, _, sev = line.partition("\t")
        assert not malformed, line
        assert all(int(s) < _WARN for s in sev.split(",") if s), line


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_tshark_sees_our_malformed_example(tmp_path: Path) -> None:
    """Sanity check that the malformed detection above can fail."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    bad = pdu_bytes(h("0400 0010 00000006 0100 0020 02000120"))  # FEC length runs past the end
    pcap = tmp_path / "bad.pcap"
    wrpcap(str(pcap), [Ether() / IP() / UDP(sport=646, dport=646) / Raw(bad)])
    res = subprocess.run(
        [TSHARK, "-r", str(pcap), "-T", "fields", "-e", "_ws.malformed", "-e", "_ws.expert.severity"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert any(
        int(s) >= _WARN for s in res.stdout.replace("\t", ",").split(",") if s.strip().isdigit()
    )
