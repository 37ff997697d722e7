"""IPv6 on customer links: the address plan of `subnet6` (topology link key).

The core stays IPv4 (LDP, OSPFv2): IPv6 is only on host (customer) links, and
crosses the core labelled (6PE, RFC 4798). A link's `subnet6` is either a prefix
given in the file or `auto`:

* `auto` takes a /64 from the lab's Unique Local Address block (RFC 4193):
  ``fdXX:XXXX:XXXX::/48`` whose 40-bit Global ID is the first 5 octets of
  SHA-256("lsr:" + lab name). RFC 4193 §3.2.2 asks for a random Global ID; ours is
  derived so that a file always gives the same addresses (goldens, a lab equal to
  its simulation). The Subnet ID (16 bits) is the link's index in the file, so
  link 0 is ``fdXX:XXXX:XXXX:0::/64``.
* The first endpoint of the link gets host address ::1 of the subnet, the second
  ::2 (as IPv4 gives the first endpoint the first host address).

A subnet must be unicast: not multicast (ff00::/8), not link-local (fe80::/10,
never forwarded, RFC 4291 §2.5.6), not loopback or unspecified, not IPv4-mapped
(::ffff:0:0/96, the 6PE next-hop form), at least /48 and at most /127 (RFC 6164).
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv6Address, IPv6Interface, IPv6Network
from typing import Any

MIN_MTU = 1280  # RFC 8200 §5: every link carrying IPv6
ULA = IPv6Network("fd00::/8")  # RFC 4193 §3.1, L bit set
_V4MAPPED = IPv6Network("::ffff:0:0/96")


def ula_block(lab: str) -> IPv6Network:
    """The lab's ULA /48: fd00::/8 + a Global ID derived from the lab name (above)."""
    gid = hashlib.sha256(f"lsr:{lab}".encode()).digest()[:5]
    return IPv6Network((int.from_bytes(b"\xfd" + gid + bytes(10), "big"), 48))


def auto_subnet(lab: str, link_index: int) -> IPv6Network:
    """The /64 of link `link_index` (the Subnet ID) in the lab's ULA block."""
    base = int(ula_block(lab).network_address)
    return IPv6Network((base | ((link_index & 0xFFFF) << 64), 64))


def subnet_problem(net: IPv6Network) -> str | None:
    """Why `net` cannot be a link's IPv6 subnet, or None."""
    a = net.network_address
    if a.is_multicast:
        return f"{net} is multicast"
    if a.is_link_local:
        return f"{net} is link-local (fe80::/10 is on every link already and never forwarded)"
    if a.is_loopback or a.is_unspecified or net.overlaps(_V4MAPPED):
        return f"{net} is not a usable unicast subnet"
    if not 48 <= net.prefixlen <= 127:
        return f"{net}: a link's IPv6 subnet is /48 to /127"
    return None


def host_interface(net: IPv6Network, k: int) -> IPv6Interface:
    """Endpoint k (0 = the link's first) of `net`: host address ::1 or ::2."""
    return IPv6Interface((int(net.network_address) + 1 + k, net.prefixlen))


def mapped(v4: IPv4Address) -> IPv6Address:
    """The IPv4-mapped IPv6 address ::ffff:a.b.c.d (RFC 4291 §2.5.5.2): a 6PE next hop
    (RFC 4798 §2) and the ICMPv6 source of an IPv4-only LSR."""
    return IPv6Address((0xFFFF << 32) | int(v4))


def sixpe_label(node: Any) -> int | None:
    """The 6PE label of an `lsr` router with an IPv6 customer link in the global table:
    the first label of its range (`labels`, default 1000*k), bound to every IPv6 prefix
    it originates into BGP (RFC 4798 §3: pop it, look the IPv6 packet up). None for other
    nodes. LDP and VPN labels share the rest (`Topology.label_ranges`), so with the
    default blocks pe2's 6PE label is 3000 and its LDP labels 3001 up."""
    if node.kind != "lsr" or not any(i.address6 is not None and i.vrf is None
                                     for i in node.interfaces.values()):
        return None
    return max(node.labels[0], 16)


def text(a: IPv6Address) -> str:
    """An IPv6 address as tools print it: an IPv4-mapped one as ::ffff:a.b.c.d."""
    v4 = a.ipv4_mapped
    return f"::ffff:{v4}" if v4 is not None else str(a)
