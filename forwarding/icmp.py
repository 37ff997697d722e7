"""ICMP errors an LSR generates, with RFC 4884 / RFC 4950 MPLS extensions.

Time Exceeded (type 11 code 0) and Destination Unreachable / fragmentation
needed (type 3 code 4). When the offending packet arrived labelled, the
message carries an RFC 4884 extension structure holding an RFC 4950 MPLS
Label Stack object (class 1, C-type 1: the incoming stack, as received)::

    ICMP header: type | code | checksum | unused | length (32-bit words) | unused/MTU
    original datagram, zero-padded to 128 octets        (RFC 4884 §5.1)
    extension header: version 2 | reserved | checksum   (RFC 4884 §7)
    object header: length | class-num 1 | c-type 1      (RFC 4950 §3)
    label stack entries (label | TC | S | TTL), top first

Pure code on bytes; no scapy.
"""

from __future__ import annotations

import struct

from forwarding.labelops import checksum16

ICMP_PROTO = 1
ICMP_DEST_UNREACH = 3
ICMP_FRAG_NEEDED = 4
ICMP_TIME_EXCEEDED = 11
ICMP_ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
ORIG_LEN = 128  # RFC 4884 §5.1: original datagram padded to at least 128 octets
ICMP_TTL = 255

_IP = struct.Struct("!BBHHHBBHII")


def build_ipv4(src: int, dst: int, proto: int, payload: bytes, ttl: int = ICMP_TTL,
               tos: int = 0, ident: int = 0) -> bytes:
    """An IPv4 packet (no options, DF clear) with a correct header checksum."""
    hdr = bytearray(_IP.pack(0x45, tos, 20 + len(payload), ident, 0, ttl, proto, 0, src, dst))
    struct.pack_into("!H", hdr, 10, checksum16(hdr))
    return bytes(hdr) + payload


def may_send_error(orig: bytes | bytearray | memoryview) -> bool:
    """RFC 1812 §4.3.2.7: no ICMP error about an ICMP error, a non-first
    fragment, or a packet whose source is not a unicast address."""
    if len(orig) < 20 or orig[0] >> 4 != 4:
        return False
    ihl = (orig[0] & 0x0F) * 4
    frag = ((orig[6] << 8) | orig[7]) & 0x1FFF
    if frag:
        return False
    src = int.from_bytes(orig[12:16], "big")
    if src == 0 or src >> 28 == 0xE or src == 0xFFFFFFFF or src >> 24 == 127:
        return False
    dst = int.from_bytes(orig[16:20], "big")
    if dst >> 28 == 0xE or dst == 0xFFFFFFFF:
        return False
    return not (orig[9] == ICMP_PROTO and len(orig) > ihl and orig[ihl] in ICMP_ERROR_TYPES)


def mpls_extension(label_stack: bytes) -> bytes:
    """RFC 4884 extension structure holding one RFC 4950 MPLS Label Stack object."""
    obj = struct.pack("!HBB", 4 + len(label_stack), 1, 1) + label_stack
    hdr = bytearray(struct.pack("!BBH", 2 << 4, 0, 0))  # version 2, reserved, checksum
    ext = hdr + obj
    struct.pack_into("!H", ext, 2, checksum16(ext))
    return bytes(ext)


def icmp_error(icmp_type: int, code: int, orig: bytes | bytearray | memoryview, src: int,
               label_stack: bytes | None = None, mtu: int = 0) -> bytes:
    """The IPv4 packet of an ICMP error about `orig` (an IPv4 packet), from `src`.

    With `label_stack` (the entries as received), the RFC 4884 form: original
    datagram zero-padded/truncated to 128 octets, length field = 32 words,
    then the RFC 4950 extension. Without it, the classic form: the original
    datagram up to 128 octets, length field 0.
    """
    orig = bytes(orig)
    total = int.from_bytes(orig[2:4], "big") if len(orig) >= 4 else len(orig)
    orig = orig[:max(20, min(total, len(orig)))]
    word2 = mtu & 0xFFFF if icmp_type == ICMP_DEST_UNREACH else 0
    if label_stack:
        body = orig[:ORIG_LEN].ljust(ORIG_LEN, b"\x00") + mpls_extension(label_stack)
        length = ORIG_LEN // 4
    else:
        body = orig[:ORIG_LEN]
        length = 0
    icmp = bytearray(struct.pack("!BBHBBH", icmp_type, code, 0, 0, length, word2)) + body
    struct.pack_into("!H", icmp, 2, checksum16(icmp))
    dst = int.from_bytes(orig[12:16], "big")
    return build_ipv4(src, dst, ICMP_PROTO, bytes(icmp))


def time_exceeded(orig: bytes | bytearray | memoryview, src: int,
                  label_stack: bytes | None = None) -> bytes:
    """ICMP Time Exceeded, TTL exceeded in transit (type 11 code 0; RFC 792, RFC 3032 §2.3.2)."""
    return icmp_error(ICMP_TIME_EXCEEDED, 0, orig, src, label_stack)


def frag_needed(orig: bytes | bytearray | memoryview, src: int, mtu: int,
                label_stack: bytes | None = None) -> bytes:
    """ICMP Destination Unreachable, fragmentation needed (type 3 code 4; RFC 1191, RFC 3032 §3)."""
    return icmp_error(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, orig, src, label_stack, mtu)
