"""ICMPv6 messages a router sends (RFC 4443), with RFC 4884 / RFC 4950 MPLS extensions,
and the Neighbor Discovery answers of an edge router (RFC 4861).

Errors: Destination Unreachable (type 1: code 0 no route, code 4 port unreachable),
Packet Too Big (type 2, the MTU in the second word), Time Exceeded (type 3 code 0, hop
limit exceeded in transit). Without a label stack an error carries as much of the
invoking packet as fits in the IPv6 minimum MTU (RFC 4443 §2.4 c). When the invoking
packet arrived labelled, a Destination Unreachable or Time Exceeded message has the
RFC 4884 form (§4.5 for ICMPv6)::

    type | code | checksum
    length (8 bits, in 64-bit words) | unused (24 bits)
    original datagram, zero-padded to 128 octets         (RFC 4884 §5.1)
    extension header: version 2 | reserved | checksum    (RFC 4884 §7)
    object header: length | class-num 1 | c-type 1      (RFC 4950 §3)
    label stack entries, as received, top first

(Packet Too Big has no length field, RFC 4884 §4.5: it never carries the extension.)
The error's source is an address of the router; an LSR without IPv6 (a P router of an
IPv4 core, RFC 4798) uses the IPv4-mapped IPv6 address of its incoming interface,
::ffff:a.b.c.d, as 6PE P routers do.

No error is sent (RFC 4443 §2.4 e) about an ICMPv6 error or a Redirect, about a packet
to a multicast address or in a link-layer group frame (but for Packet Too Big), or
about one whose source is unspecified, multicast or not parseable.

Pure code on bytes.
"""

from __future__ import annotations

import struct

from forwarding.icmp import ORIG_LEN, mpls_extension
from forwarding.ip6 import HDR, NH_ICMPV6, Parsed6, check, l4_checksum, packet

ICMP6_DEST_UNREACH, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED, ICMP6_PARAM_PROB = 1, 2, 3, 4
ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129
ND_ROUTER_SOLICIT, ND_ROUTER_ADVERT = 133, 134
ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT, ND_REDIRECT = 135, 136, 137
UNREACH_NO_ROUTE, UNREACH_PORT = 0, 4
MIN_MTU = 1280  # RFC 8200 §5
ND_HOP_LIMIT = 255  # RFC 4861 §7.1: ND messages are sent and accepted only with 255
OPT_SLLA, OPT_TLLA = 1, 2  # source / target link-layer address options (RFC 4861 §4.6.1)
NA_ROUTER, NA_SOLICITED, NA_OVERRIDE = 0x80000000, 0x40000000, 0x20000000


def is_error_or_redirect(b: bytes | bytearray | memoryview, off: int, p: Parsed6) -> bool:
    """The packet at `off` is an ICMPv6 error message (type < 128) or a Redirect."""
    if p.proto != NH_ICMPV6 or p.later_fragment or off + p.l4 >= off + p.total:
        return False
    t = b[off + p.l4]
    return t < 128 or t == ND_REDIRECT


def may_send_error6(b: bytes | bytearray | memoryview, off: int = 0, group: bool = False,
                    too_big: bool = False) -> bool:
    """RFC 4443 §2.4 e: may a router send an ICMPv6 error about the packet at `off`?"""
    r = check(b, off)
    if not isinstance(r, Parsed6):
        return False
    src = bytes(b[off + 8:off + 24])
    if src[0] == 0xFF or src == bytes(16):
        return False
    if (b[off + 24] == 0xFF or group) and not too_big:
        return False
    return not is_error_or_redirect(b, off, r)


def icmp6_error(icmp_type: int, code: int, orig: bytes | bytearray | memoryview, src: bytes,
                label_stack: bytes | None = None, mtu: int = 0) -> bytes:
    """The IPv6 packet of an ICMPv6 error about `orig` (an IPv6 packet), from `src`."""
    orig = bytes(orig)
    total = HDR + int.from_bytes(orig[4:6], "big") if len(orig) >= 6 else len(orig)
    orig = orig[:min(total, len(orig))]
    dst = orig[8:24]
    if icmp_type == ICMP6_PACKET_TOO_BIG:
        word2 = mtu & 0xFFFFFFFF
        label_stack = None  # RFC 4884 §4.5: no length field, no extension
    else:
        word2 = 0
    if label_stack:
        body = orig[:ORIG_LEN].ljust(ORIG_LEN, b"\x00") + mpls_extension(label_stack)
        word2 = (ORIG_LEN // 8) << 24  # RFC 4884 §4.5: the length in 64-bit words
    else:
        room = MIN_MTU - HDR - 8  # RFC 4443 §2.4 c: the whole error fits the minimum MTU
        body = orig[:room]
    icmp = struct.pack("!BBHI", icmp_type, code, 0, word2) + body
    return packet(src, dst, NH_ICMPV6, icmp, 255, csum_at=2)


def time_exceeded6(orig: bytes | bytearray | memoryview, src: bytes,
                   label_stack: bytes | None = None) -> bytes:
    """Time Exceeded, hop limit exceeded in transit (RFC 4443 §3.3; RFC 3032 §2.3.2)."""
    return icmp6_error(ICMP6_TIME_EXCEEDED, 0, orig, src, label_stack)


def unreachable6(orig: bytes | bytearray | memoryview, src: bytes, code: int = UNREACH_NO_ROUTE,
                 label_stack: bytes | None = None) -> bytes:
    """Destination Unreachable (RFC 4443 §3.1): no route (0), port unreachable (4)."""
    return icmp6_error(ICMP6_DEST_UNREACH, code, orig, src, label_stack)


def packet_too_big6(orig: bytes | bytearray | memoryview, src: bytes, mtu: int) -> bytes:
    """Packet Too Big with the next-hop MTU (RFC 4443 §3.2; RFC 3032 §3 with labels)."""
    return icmp6_error(ICMP6_PACKET_TOO_BIG, 0, orig, src, None, mtu)


def echo_reply6(req: bytes | bytearray | memoryview, p: Parsed6, src: bytes) -> bytes:
    """The Echo Reply to the Echo Request `req` (RFC 4443 §4.2: identifier, sequence
    number and data returned), from `src` (the address it was sent to)."""
    body = bytearray(req[p.l4:p.total])
    body[0] = ICMP6_ECHO_REPLY
    return packet(src, bytes(req[8:24]), NH_ICMPV6, bytes(body), 64, csum_at=2)


def icmp6_ok(b: bytes | bytearray | memoryview, off: int, p: Parsed6) -> str | None:
    """Why the ICMPv6 message of the packet at `off` is unusable (truncated, bad
    checksum, RFC 4443 §2.3), or None."""
    if p.later_fragment:
        return "ICMPv6 in a fragment"
    if p.total - p.l4 < 4:
        return "truncated ICMPv6 header"
    msg = bytes(b[off + p.l4:off + p.total])
    if l4_checksum(bytes(b[off + 8:off + 24]), bytes(b[off + 24:off + 40]), NH_ICMPV6, msg) != 0:
        return "bad ICMPv6 checksum"
    return None


def parse_ns(b: bytes | bytearray | memoryview, off: int, p: Parsed6
             ) -> tuple[bytes, bytes | None] | str:
    """A Neighbor Solicitation's (target address, source link-layer address or None),
    validated as RFC 4861 §7.1.1 says, or why it is invalid."""
    if b[off + 7] != ND_HOP_LIMIT:
        return f"hop limit {b[off + 7]}, not 255"
    m = bytes(b[off + p.l4:off + p.total])
    if m[1] != 0:
        return f"code {m[1]}, not 0"
    if len(m) < 24:
        return f"{len(m)} octets, fewer than 24"
    target = m[8:24]
    if target[0] == 0xFF:
        return "multicast target"
    src = bytes(b[off + 8:off + 24])
    slla = None
    i = 24
    while i < len(m):
        if i + 2 > len(m) or m[i + 1] == 0 or i + 8 * m[i + 1] > len(m):
            return "bad option length"
        if m[i] == OPT_SLLA and m[i + 1] == 1:
            slla = m[i + 2:i + 8]
        i += 8 * m[i + 1]
    if src == bytes(16):
        if b[off + 24:off + 37] != b"\xff\x02" + bytes(9) + b"\x01\xff":
            return "unspecified source to a non-solicited-node address"
        if slla is not None:
            return "unspecified source with a source link-layer address option"
    return target, slla


def neighbor_advert(target: bytes, dst: bytes, mac: bytes, solicited: bool) -> bytes:
    """A Neighbor Advertisement for our `target` (RFC 4861 §4.4, §7.2.4): Router flag
    (we are one), Solicited when answering a solicitation from a unicast source, Override,
    and our link-layer address (Target Link-Layer Address option)."""
    flags = NA_ROUTER | NA_OVERRIDE | (NA_SOLICITED if solicited else 0)
    body = struct.pack("!BBHI", ND_NEIGHBOR_ADVERT, 0, 0, flags) + target \
        + bytes((OPT_TLLA, 1)) + mac
    return packet(target, dst, NH_ICMPV6, body, ND_HOP_LIMIT, csum_at=2)
