"""The IPv6/UDP packet around an MPLS echo request (RFC 8029 §4.3) of an IPv6 FEC.

An echo request for an IPv6 FEC (a 6PE route's BGP labelled IPv6 prefix, §3.2.14, or a
6VPE route's VPN IPv6 prefix, §3.2.6) travels under labels whose egress pops the bottom
one and expects IPv6 under it (RFC 4798 §3, RFC 4659 §3.2.1). §4.3 for IPv6: the
destination is drawn from ::ffff:127.0.0.0/104 (so a broken LSP never IP-forwards it:
an IPv4-mapped address is no routable IPv6 destination), the hop limit is 1 and the
packet carries the IPv6 Router Alert option (RFC 2711) with value 69, "MPLS OAM"
(RFC 7506), in a Hop-by-Hop Options header::

    | Next Hdr 17 | Hdr Ext Len 0 | Opt 5 | Opt Len 2 | Value 69 (16) | PadN 1 | 0 |

The source: §4.3 asks for "a routable address of the sender". A 6PE / 6VPE PE's only
routable address in the core is IPv4 (the core runs no IPv6, RFC 4798 §1), and the
ingress names itself in IPv6 the way 6PE names a PE, by its loopback as an IPv4-mapped
address ::ffff:a.b.c.d (RFC 4798 §2, RFC 4291 §2.5.5.2: the address of an IPv4 node).
Every replier - a P router has no IPv6 at all - sends its reply (§4.5: to the request's
source address and port) as IPv4 UDP to that embedded IPv4 address: the reply path of
an IPv4 FEC, over the IPv4 core (`reply_address`).

Pure code on bytes (struct only, and `forwarding.ip6`'s header walk).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from forwarding.ip6 import NH_HOPOPTS, NH_UDP, Bad6, check, l4_checksum
from lsr.oam.echo import LOCALHOST6, LOOPBACK_NET6, UDP_PORT, DecodeError, EchoMessage

ROUTER_ALERT_MPLS_OAM = 69  # RFC 7506: IPv6 Router Alert value "MPLS OAM"
_OPT_ROUTER_ALERT = 5  # RFC 2711 option type
# Hop-by-Hop Options: next header UDP, 8 octets: Router Alert (69), then PadN of 2
_HBH_RA = bytes((NH_UDP, 0, _OPT_ROUTER_ALERT, 2)) + struct.pack("!H", ROUTER_ALERT_MPLS_OAM) \
    + b"\x01\x00"


def mapped(a: IPv4Address) -> IPv6Address:
    """The IPv4-mapped IPv6 address ::ffff:a.b.c.d (RFC 4291 §2.5.5.2)."""
    return IPv6Address(b"\0" * 10 + b"\xff\xff" + a.packed)


def reply_address(src: IPv6Address) -> IPv4Address | None:
    """Where an echo reply to a request from `src` goes over IPv4 (module docstring): the
    embedded address of an IPv4-mapped source, else None (no IPv4 reply path)."""
    return src.ipv4_mapped


def build_udp_ipv6(payload: bytes, src: IPv6Address, dst: IPv6Address, sport: int, dport: int,
                   hop_limit: int = 64, tc: int = 0, router_alert: bool = False) -> bytes:
    """An IPv6 + UDP packet with its checksum (mandatory in IPv6, RFC 8200 §8.1),
    optionally with the MPLS OAM Router Alert in a Hop-by-Hop header."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    csum = l4_checksum(src.packed, dst.packed, NH_UDP, udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    ext = _HBH_RA if router_alert else b""
    nh = NH_HOPOPTS if router_alert else NH_UDP
    hdr = struct.pack("!IHBB16s16s", (6 << 28) | (tc << 20), len(ext) + len(udp), nh, hop_limit,
                      src.packed, dst.packed)
    return hdr + ext + udp


def build_echo_request_packet6(request: EchoMessage, src: IPv6Address, sport: int,
                               dst: IPv6Address = LOCALHOST6, tc: int = 0) -> bytes:
    """§4.3 for IPv6: UDP to port 3503, destination in ::ffff:127.0.0.0/104, hop limit 1,
    Router Alert (RFC 7506)."""
    if dst not in LOOPBACK_NET6:
        raise ValueError(f"echo request destination {dst} is not in {LOOPBACK_NET6} "
                         "(RFC 8029 §4.3)")
    return build_udp_ipv6(request.encode(), src, dst, sport, UDP_PORT, hop_limit=1, tc=tc,
                          router_alert=True)


@dataclass(frozen=True)
class UdpIpv6:
    """What `parse_udp_ipv6` extracts (the fields of `echo.UdpIpv4`: `ttl` is the hop
    limit, `tos` the traffic class)."""

    src: IPv6Address
    dst: IPv6Address
    sport: int
    dport: int
    ttl: int
    tos: int
    router_alert: bool
    payload: bytes


def _router_alert(opts: bytes) -> bool:
    """Whether Hop-by-Hop options hold a Router Alert (RFC 2711); DecodeError if they overrun."""
    i = 0
    while i < len(opts):
        if opts[i] == 0:  # Pad1
            i += 1
            continue
        if i + 2 > len(opts) or i + 2 + opts[i + 1] > len(opts):
            raise DecodeError("Hop-by-Hop option runs past its header", 40 + i)
        if opts[i] == _OPT_ROUTER_ALERT:
            return True
        i += 2 + opts[i + 1]
    return False


def parse_udp_ipv6(packet: bytes) -> UdpIpv6:
    """Parse an IPv6/UDP packet (extension headers walked by `forwarding.ip6.check`) and
    check the UDP checksum; raises DecodeError."""
    r = check(packet, 0)
    if isinstance(r, Bad6):
        raise DecodeError(f"IPv6: {r.detail}", 0)
    if r.proto != NH_UDP or r.later_fragment:
        raise DecodeError(f"IPv6 upper-layer protocol {r.proto} is not UDP", 6)
    ra = False
    if packet[6] == NH_HOPOPTS:
        ra = _router_alert(packet[42:40 + (packet[41] + 1) * 8])
    udp = packet[r.l4:r.total]
    if len(udp) < 8:
        raise DecodeError("UDP header truncated", r.l4)
    sport, dport, ulen, csum = struct.unpack("!HHHH", udp[:8])
    if ulen < 8 or ulen > len(udp):
        raise DecodeError(f"UDP length {ulen} is inconsistent", r.l4 + 4)
    udp = udp[:ulen]
    src, dst = packet[8:24], packet[24:40]
    # RFC 8200 §8.1: a zero UDP checksum is invalid over IPv6
    if csum == 0 or csum != (l4_checksum(src, dst, NH_UDP, udp[:6] + b"\0\0" + udp[8:]) or 0xFFFF):
        raise DecodeError("bad UDP checksum", r.l4 + 6)
    tc = ((packet[0] & 0x0F) << 4) | (packet[1] >> 4)
    return UdpIpv6(IPv6Address(src), IPv6Address(dst), sport, dport, packet[7], tc, ra, udp[8:])


__all__ = ["ROUTER_ALERT_MPLS_OAM", "UdpIpv6", "build_echo_request_packet6", "build_udp_ipv6",
           "mapped", "parse_udp_ipv6", "reply_address"]
