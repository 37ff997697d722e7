"""Label stack entry encoding and stack operations (RFC 3032 §2.1)."""

from __future__ import annotations

import struct

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import bind_layers

from forwarding.labelops import (
    MAX_LABEL,
    LabelEntry,
    LabelError,
    checksum16,
    decode_entry,
    encode_entry,
    encode_stack,
    ip_checksum,
    ip_set_ttl,
    pack_entry,
    parse_stack,
    pop,
    push,
    stack_labels,
    swap,
)
from tests.fwd_helpers import udp

bind_layers(Ether, MPLS, type=0x8847)


@pytest.mark.parametrize("label", [0, 1, 16, 1000, MAX_LABEL])
def test_entry_round_trip(label):
    for tc, s, ttl in ((0, 0, 0), (7, 1, 255), (5, 0, 64)):
        w = encode_entry(label, tc, s, ttl)
        assert decode_entry(w) == LabelEntry(label, tc, s, ttl)


def test_entry_bit_layout():
    # label 20 bits | TC 3 | S 1 | TTL 8
    assert pack_entry(1, 0, 1, 255) == bytes.fromhex("000011ff")
    assert pack_entry(MAX_LABEL, 7, 0, 0) == bytes.fromhex("fffffe00")
    assert pack_entry(0x12345, 5, 1, 0x40) == bytes.fromhex("12345b40")


@pytest.mark.parametrize("args", [(MAX_LABEL + 1,), (-1,), (16, 8), (16, 0, 2), (16, 0, 1, 256)])
def test_entry_rejects_out_of_range(args):
    with pytest.raises(LabelError):
        encode_entry(*args)


def test_encode_stack_one_s_bit_on_bottom():
    st = encode_stack((100, 200, 300), tc=3, ttl=9)
    entries, off = parse_stack(st)
    assert off == 12
    assert [e.s for e in entries] == [0, 0, 1]
    assert [e.label for e in entries] == [100, 200, 300]
    assert all(e.tc == 3 and e.ttl == 9 for e in entries)
    assert [e.s for e in parse_stack(encode_stack((1, 2), bottom=False) + pack_entry(3))[0]] == [0, 0, 1]


def test_parse_stack_without_bottom_is_malformed():
    with pytest.raises(LabelError):
        parse_stack(encode_stack((100, 200), bottom=False))
    with pytest.raises(LabelError):
        parse_stack(b"\x00\x01")
    assert stack_labels(b"\x00\x00") == ()


def test_push_on_ip_then_pop_restores():
    frame = b"\x02" * 12 + b"\x08\x00" + udp("10.0.0.1", "10.0.0.2")
    pushed = push(frame, 14, (1000, 2000), tc=2, ttl=63)
    entries, off = parse_stack(pushed, 14)
    assert [(e.label, e.s, e.tc, e.ttl) for e in entries] == [(1000, 0, 2, 63), (2000, 1, 2, 63)]
    assert pushed[off:] == frame[14:]
    e1, b1 = pop(pushed, 14)
    e2, b2 = pop(b1, 14)
    assert (e1.label, e2.label) == (1000, 2000)
    assert bytes(b2) == frame


def test_push_onto_existing_stack_keeps_single_s_bit():
    base = encode_stack((500,), ttl=10) + b"payload"
    out = push(base, 0, (600, 700), ttl=255, onto_stack=True)
    entries, _ = parse_stack(out)
    assert [e.label for e in entries] == [600, 700, 500]
    assert [e.s for e in entries] == [0, 0, 1]


def test_swap_keeps_tc_and_s():
    buf = bytearray(encode_stack((100, 200), tc=5, ttl=20))
    swap(buf, 0, 4242, 19)
    entries, _ = parse_stack(buf)
    assert entries[0] == LabelEntry(4242, 5, 0, 19)
    assert entries[1] == LabelEntry(200, 5, 1, 20)
    swap(buf, 4, 77, 1)
    assert parse_stack(buf)[0][1] == LabelEntry(77, 5, 1, 1)
    with pytest.raises(LabelError):
        swap(buf, 0, MAX_LABEL + 1, 1)


def test_scapy_decodes_pushed_stack():
    frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + udp("10.0.0.1", "10.0.0.2")
    out = bytearray(push(frame, 14, (16, MAX_LABEL), tc=1, ttl=7))
    out[12:14] = b"\x88\x47"
    p = Ether(bytes(out))
    m1 = p[MPLS]
    m2 = m1.payload
    assert (m1.label, m1.cos, m1.s, m1.ttl) == (16, 1, 0, 7)
    assert (m2.label, m2.cos, m2.s, m2.ttl) == (MAX_LABEL, 1, 1, 7)
    assert p[IP].dst == "10.0.0.2" and p[UDP].dport == 5678


def test_ip_set_ttl_incremental_checksum_matches_recompute():
    pkt = bytearray(udp("192.0.2.1", "198.51.100.7", ttl=64))
    for new in (63, 1, 0, 255, 128, 64):
        ip_set_ttl(pkt, 0, new)
        assert pkt[8] == new
        assert checksum16(pkt[:20]) == 0
        ref = bytearray(pkt)
        ip_checksum(ref, 0)
        assert ref[10:12] == pkt[10:12]


def test_checksum16_odd_length():
    assert checksum16(b"\x01") == (~0x0100) & 0xFFFF
    assert checksum16(struct.pack("!H", 0xFFFF)) == 0
