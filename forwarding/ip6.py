"""IPv6 headers on bytes: validation, the extension header chain, the ECMP flow hash.

The fixed header (RFC 8200 §3)::

    version (4) | traffic class (8) | flow label (20)
    payload length (16) | next header (8) | hop limit (8)
    source address (128) | destination address (128)

`check(b, off)` validates the packet at `off` and walks its extension header chain
(RFC 8200 §4) to the upper-layer header, returning a `Parsed6` or a `Bad6` naming the
drop reason (`forwarding.results.DropReason`) and why. A router forwards without
processing extension headers (RFC 8200 §4: only Hop-by-Hop, and that only when
configured), but it walks the chain to hash the flow (ECMP), to know whether a packet
is an ICMPv6 error (no error about an error, RFC 4443 §2.4 e) and to answer what is
addressed to it. Chains it cannot walk are dropped:

* IPV6_MALFORMED: fewer than 40 octets, version not 6, payload length past the end;
* IPV6_EXT_CHAIN: a header that runs past the payload, Hop-by-Hop anywhere but right
  after the fixed header (RFC 8200 §4.1), or a first fragment that does not hold the
  whole chain up to the upper-layer header (RFC 7112 §5);
* IPV6_CHAIN_TOO_LONG: more than MAX_EXT_HEADERS extension headers or more than
  MAX_CHAIN_BYTES octets of them (a bounded walk: a hostile chain costs no more than
  this; RFC 8504 §5.3 asks hosts for such limits too).

ESP (50) and No Next Header (59) end the walk (what follows is opaque). A non-first
fragment ends it at the Fragment header (its upper-layer header is in the first).

The ECMP hash of an IPv6 packet (`flow_hash6`) is CRC-32 over source | destination |
flow label (20 bits, RFC 6438) | upper-layer protocol | the first 4 octets of the
upper-layer header (ports) for TCP, UDP and SCTP when the packet is not a non-first
fragment: the 5-tuple and the flow label, so a flow keeps one path.

Pure code on bytes (struct only).
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

from forwarding.ecmphash import mix32
from forwarding.labelops import checksum16

HDR = 40
NH_HOPOPTS, NH_TCP, NH_UDP, NH_ROUTING, NH_FRAGMENT = 0, 6, 17, 43, 44
NH_ESP, NH_AH, NH_ICMPV6, NH_NONE, NH_DSTOPTS, NH_SCTP = 50, 51, 58, 59, 60, 132
# RFC 8200 §4 and the IANA "IPv6 Extension Header Types" registry (RFC 7045): Mobility 135,
# HIP 139, Shim6 140, experimental 253/254. Each of these carries Next Header + Hdr Ext Len.
EXT_HEADERS = frozenset({NH_HOPOPTS, NH_ROUTING, NH_FRAGMENT, NH_AH, NH_DSTOPTS, 135, 139,
                         140, 253, 254})
MAX_EXT_HEADERS = 8  # at most this many extension headers in one packet
MAX_CHAIN_BYTES = 512  # and at most this many octets of them
_L4_PORTS = (NH_TCP, NH_UDP, NH_SCTP)

_HDR = struct.Struct("!IHBB16s16s")  # vtc+flow, payload length, next header, hop limit, src, dst


class Parsed6(NamedTuple):
    """A valid packet: its total length (40 + payload length), the upper-layer protocol
    (or NH_NONE / NH_ESP / the Fragment's next header of a non-first fragment), the offset
    of the upper-layer header from the start of the packet, whether it is a non-first
    fragment, and how many extension headers it has."""

    total: int
    proto: int
    l4: int
    later_fragment: bool
    ext: int


class Bad6(NamedTuple):
    reason: str  # a DropReason value
    detail: str


def check(b: bytes | bytearray | memoryview, off: int = 0) -> Parsed6 | Bad6:
    """Validate the IPv6 packet at `off` and walk its extension headers (module docstring).
    Never raises on bad input."""
    n = len(b) - off
    if n < HDR:
        return Bad6("ipv6-malformed", "truncated IPv6 header")
    if b[off] >> 4 != 6:
        return Bad6("ipv6-malformed", "not IPv6")
    total = HDR + ((b[off + 4] << 8) | b[off + 5])
    if total > n:
        return Bad6("ipv6-malformed", f"payload length {total - HDR} past the end ({n - HDR})")
    nh = b[off + 6]
    pos = HDR
    count = 0
    first_fragment = False
    while nh in EXT_HEADERS:
        if nh == NH_HOPOPTS and count:
            return Bad6("ipv6-ext-chain", "Hop-by-Hop Options not right after the IPv6 header "
                        "(RFC 8200 §4.1)")
        count += 1
        if count > MAX_EXT_HEADERS:
            return Bad6("ipv6-chain-too-long", f"more than {MAX_EXT_HEADERS} extension headers")
        if pos + 8 > total:
            return Bad6("ipv6-ext-chain", f"extension header {nh} truncated")
        nxt = b[off + pos]
        if nh == NH_FRAGMENT:
            size = 8
            frag = ((b[off + pos + 2] << 8) | b[off + pos + 3]) & 0xFFF8
            if frag:  # a later fragment: the rest is payload (its headers are in the first)
                return Parsed6(total, nxt, pos + size, True, count)
            first_fragment = True
        elif nh == NH_AH:
            size = (b[off + pos + 1] + 2) * 4  # RFC 4302 §2.2: in 4-octet units, minus 2
        else:
            size = (b[off + pos + 1] + 1) * 8
        if pos + size > total:
            return Bad6("ipv6-ext-chain", f"extension header {nh} of {size} octets runs past "
                        "the payload")
        pos += size
        if pos - HDR > MAX_CHAIN_BYTES:
            return Bad6("ipv6-chain-too-long", f"extension headers longer than "
                        f"{MAX_CHAIN_BYTES} octets")
        nh = nxt
    if first_fragment and nh not in (NH_NONE, NH_ESP) and pos >= total:
        return Bad6("ipv6-ext-chain", "first fragment without the upper-layer header "
                    "(RFC 7112 §5)")
    return Parsed6(total, nh, pos, False, count)


def flow_hash6(b: bytes | bytearray | memoryview, off: int, seed: int = 0,
               p: Parsed6 | None = None) -> int:
    """The ECMP hash of the IPv6 flow at `off`: CRC-32 of addresses, flow label,
    protocol, ports, with the router's `seed` mixed in (forwarding.ecmphash)."""
    if p is None:
        r = check(b, off)
        p = r if isinstance(r, Parsed6) else None
    key = bytes(b[off + 8:off + 40]) + bytes((b[off + 1] & 0x0F,)) + bytes(b[off + 2:off + 4])
    if p is None:
        return mix32(zlib.crc32(key), seed)
    key += bytes((p.proto,))
    if p.proto in _L4_PORTS and not p.later_fragment and p.l4 + 4 <= p.total:
        key += bytes(b[off + p.l4:off + p.l4 + 4])
    return mix32(zlib.crc32(key), seed)


def header(src: bytes, dst: bytes, nh: int, payload_len: int, hop_limit: int = 255,
           tc: int = 0, flow: int = 0) -> bytes:
    """A fixed IPv6 header (addresses as 16-octet bytes)."""
    return _HDR.pack((6 << 28) | (tc << 20) | flow, payload_len, nh, hop_limit, src, dst)


def l4_checksum(src: bytes, dst: bytes, nh: int, data: bytes | bytearray) -> int:
    """The upper-layer checksum over the RFC 8200 §8.1 pseudo-header and `data` (whose
    checksum field is zero): ICMPv6 (RFC 4443 §2.3), UDP, TCP."""
    return checksum16(src + dst + struct.pack("!IxxxB", len(data), nh) + bytes(data))


def packet(src: bytes, dst: bytes, nh: int, payload: bytes, hop_limit: int = 255,
           csum_at: int | None = None) -> bytes:
    """An IPv6 packet; with `csum_at`, the upper-layer checksum (at that offset of the
    payload) is filled in."""
    if csum_at is not None:
        p = bytearray(payload)
        p[csum_at:csum_at + 2] = b"\0\0"
        c = l4_checksum(src, dst, nh, p)
        if nh == NH_UDP and c == 0:
            c = 0xFFFF  # RFC 8200 §8.1: a UDP checksum of zero is sent as all ones
        struct.pack_into("!H", p, csum_at, c)
        payload = bytes(p)
    return header(src, dst, nh, len(payload), hop_limit) + payload


# ---------------------------------------------------------------- addresses (as bytes)


def is_multicast(a: bytes | bytearray | memoryview) -> bool:
    return a[0] == 0xFF


def is_link_local(a: bytes | bytearray | memoryview) -> bool:
    return a[0] == 0xFE and a[1] & 0xC0 == 0x80


_UNSPEC = bytes(16)
_LOOP = bytes(15) + b"\x01"


def martian_source6(a: bytes) -> str | None:
    """Why a router must not forward a packet from `a` (RFC 4291 §2.5.2, §2.5.3, §2.5.6,
    §2.7: unspecified, loopback, link-local, multicast), or None."""
    if a[0] == 0xFF:
        return "multicast source"
    if a == _UNSPEC:
        return "unspecified source"
    if a == _LOOP:
        return "loopback source"
    if is_link_local(a):
        return "link-local source"
    return None


def martian_destination6(a: bytes) -> str | None:
    """Why a router must not forward a packet to unicast `a` (unspecified, loopback,
    link-local), or None."""
    if a == _UNSPEC:
        return "unspecified destination"
    if a == _LOOP:
        return "loopback destination"
    if is_link_local(a):
        return "link-local destination"
    return None


def solicited_node(a: bytes) -> bytes:
    """The solicited-node multicast address ff02::1:ffXX:XXXX of `a` (RFC 4291 §2.7.1)."""
    return b"\xff\x02" + bytes(9) + b"\x01\xff" + bytes(a[13:16])


def multicast_mac(a: bytes) -> bytes:
    """The Ethernet address of IPv6 multicast `a`: 33:33 + its last 32 bits (RFC 2464 §7)."""
    return b"\x33\x33" + bytes(a[12:16])
