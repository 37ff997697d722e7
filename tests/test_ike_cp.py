"""The IKEv2 Configuration payload (RFC 7296 §3.15): byte vectors, round trips, bad input."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ike.codec import (
    CfgAttr,
    CfgAttribute,
    CfgType,
    CpPayload,
    DecodeError,
    PayloadType,
    decode_payload,
    decode_payloads,
    encode_payloads,
)

# CFG_REQUEST with an empty INTERNAL_IP4_ADDRESS and INTERNAL_IP4_DNS, as strongSwan sends it
REQUEST = bytes.fromhex("01000000" "00010000" "00030000")
# CFG_REPLY: address 10.99.0.1, netmask 255.255.255.240, DNS 192.168.2.2
REPLY = bytes.fromhex("02000000" "000100040a630001" "00020004fffffff0" "00030004c0a80202")


def test_request_bytes_both_ways() -> None:
    p = CpPayload(CfgType.CFG_REQUEST, (CfgAttribute(CfgAttr.INTERNAL_IP4_ADDRESS),
                                        CfgAttribute(CfgAttr.INTERNAL_IP4_DNS)))
    assert p.value() == REQUEST
    assert CpPayload.from_value(REQUEST, PayloadType.CP, 0) == p


def test_reply_bytes_both_ways() -> None:
    p = CpPayload(CfgType.CFG_REPLY, (
        CfgAttribute(CfgAttr.INTERNAL_IP4_ADDRESS, IPv4Address("10.99.0.1").packed),
        CfgAttribute(CfgAttr.INTERNAL_IP4_NETMASK, IPv4Address("255.255.255.240").packed),
        CfgAttribute(CfgAttr.INTERNAL_IP4_DNS, IPv4Address("192.168.2.2").packed)))
    assert p.value() == REPLY
    got = CpPayload.from_value(REPLY, PayloadType.CP, 0)
    assert got == p
    assert got.get(CfgAttr.INTERNAL_IP4_ADDRESS)[0].address == IPv4Address("10.99.0.1")
    assert got.get(CfgAttr.INTERNAL_IP4_DNS)[0].address == IPv4Address("192.168.2.2")


def test_in_a_payload_chain_with_its_generic_header() -> None:
    p = CpPayload(CfgType.CFG_REQUEST, (CfgAttribute(CfgAttr.INTERNAL_IP4_ADDRESS),))
    first, chain = encode_payloads([p])
    assert first == 47 and chain == bytes.fromhex("0000000c" "01000000" "00010000")
    assert decode_payloads(first, chain) == (p,)


def test_reserved_bit_is_ignored_on_receipt_and_unknown_attributes_kept() -> None:
    # §3.15.1: R "MUST be ignored on receipt"; an attribute type we do not know is kept
    body = bytes.fromhex("01000000" "80010000" "40000003616263")
    p = CpPayload.from_value(body, PayloadType.CP, 0)
    assert p.attributes == (CfgAttribute(1), CfgAttribute(0x4000, b"abc"))
    assert p.value() == bytes.fromhex("01000000" "00010000" "40000003616263")  # R sent as 0


@pytest.mark.parametrize("body,why", [
    (b"", "truncated CP"),
    (b"\x01\0\0", "truncated CP"),
    (bytes.fromhex("01000000" "0001"), "truncated configuration attribute"),
    (bytes.fromhex("01000000" "00010004" "0a63"), "runs past the payload"),
    (bytes.fromhex("02000000" "00010001" "0a"), "length 1"),  # an address is 0 or 4 octets
    (bytes.fromhex("02000000" "00030005" "0a6300010a"), "length 5"),
    (bytes.fromhex("02000000" "000d0004" "0a630000"), "length 4"),  # IP4_SUBNET: 0 or 8
], ids=["empty", "short-header", "short-attribute", "past-end", "addr-1", "dns-5", "subnet-4"])
def test_malformed_is_a_decode_error(body: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        CpPayload.from_value(body, PayloadType.CP, 0)


attrs = st.builds(CfgAttribute, st.sampled_from([int(a) for a in CfgAttr] + [16383, 20000]),
                  st.binary(max_size=20)).filter(
    lambda a: a.type not in (int(t) for t in CfgAttr) or len(a.value) in
    {CfgAttr.INTERNAL_IP4_ADDRESS: (0, 4), CfgAttr.INTERNAL_IP4_NETMASK: (0, 4),
     CfgAttr.INTERNAL_IP4_DNS: (0, 4), CfgAttr.INTERNAL_IP4_NBNS: (0, 4),
     CfgAttr.INTERNAL_IP4_DHCP: (0, 4), CfgAttr.INTERNAL_IP6_ADDRESS: (0, 17),
     CfgAttr.INTERNAL_IP6_DNS: (0, 16), CfgAttr.INTERNAL_IP6_DHCP: (0, 16),
     CfgAttr.INTERNAL_IP4_SUBNET: (0, 8), CfgAttr.INTERNAL_IP6_SUBNET: (0, 17)}.get(a.type, (len(a.value),)))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.lists(attrs, max_size=6))
def test_round_trip(cfg_type: int, attributes: list[CfgAttribute]) -> None:
    p = CpPayload(cfg_type, tuple(attributes))
    assert decode_payload(PayloadType.CP, p.value(), 0) == p


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=60))
def test_random_bodies_raise_only_decode_error(body: bytes) -> None:
    try:
        p = CpPayload.from_value(body, PayloadType.CP, 0)
    except DecodeError:
        return
    assert CpPayload.from_value(p.value(), PayloadType.CP, 0) == p


def test_attribute_lengths_and_bad_reply_address() -> None:
    a = CfgAttribute(CfgAttr.INTERNAL_IP4_ADDRESS)
    assert a.encode() == struct.pack("!HH", 1, 0) and a.address is None
