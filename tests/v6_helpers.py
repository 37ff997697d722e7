"""Test helpers for IPv6 and 6PE in the forwarding plane.

`v6_tables(topo)`: every router's tables from the IGP and LDP-like LFIBs
(`tests.fwd_helpers.igp_lfibs`), with the 6PE routes BGP would give (every IPv6 host
subnet of another PE, with that PE's 6PE label or IPv6 Explicit Null) composed over
the FTN, as the simulator does with real BGP.
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

from forwarding import ip6
from forwarding.tables import RouterTables
from lsr.core.fib6 import compose
from lsr.core.igp import Igp
from lsr.core.ipv6 import sixpe_label
from lsr.core.topology import Topology, parse_topology
from tests.fwd_helpers import eth, igp_lfibs

LINE4_6 = """
name: line46
topology:
  nodes:
    ce1: {kind: host}
    ce3: {kind: host}
    pe1: {loopback: 10.255.0.1}
    p1: {loopback: 10.255.0.2}
    p2: {loopback: 10.255.0.3}
    pe2: {loopback: 10.255.0.4}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet: 192.168.1.0/24
      subnet6: 2001:db8:1::/64
    - endpoints: [ce3:eth0, pe1:eth3]
      subnet6: 2001:db8:3::/64
      mtu: MTU3
    - endpoints: [pe1:eth2, p1:eth1]
      mtu: MTU1
    - endpoints: [p1:eth2, p2:eth1]
    - endpoints: [p2:eth2, pe2:eth2]
    - endpoints: [pe2:eth1, ce2:eth0]
      subnet: 192.168.2.0/24
      subnet6: 2001:db8:2::/64
"""

CE1, CE2, CE3 = "2001:db8:1::1", "2001:db8:2::2", "2001:db8:3::1"
PE1_6, PE2_6 = "2001:db8:1::2", "2001:db8:2::1"


def line4_6(mtu1: int = 1500, mtu3: int = 1500, **node_opts: str) -> Topology:
    """ce1, ce3 - pe1 - p1 - p2 - pe2 - ce2, IPv6 on the host links."""
    text = LINE4_6.replace("MTU1", str(mtu1)).replace("MTU3", str(mtu3))
    for name, opts in node_opts.items():
        text = text.replace(f"    {name}: {{", f"    {name}: {{{opts}, ")
    return parse_topology(text, "line46")


def v6_tables(topo: Topology, explicit_null: tuple[str, ...] = ()) -> dict[str, RouterTables]:
    """Tables with 6PE routes: each PE learns the others' IPv6 subnets."""
    igp = Igp(topo)
    lf = igp_lfibs(topo, igp)
    out = {r.name: RouterTables.build(topo, r.name, igp.rib(r.name), lf[r.name])
           for r in topo.routers}
    pes = [r for r in topo.routers if sixpe_label(r) is not None]
    for me in pes:
        paths = []
        for o in pes:
            if o.name == me.name:
                continue
            label = 2 if o.name in explicit_null else sixpe_label(o)
            for i in o.interfaces.values():
                if i.address6 is not None:
                    paths.append((i.address6.network, o.loopback, label))
        own = () if me.name in explicit_null else (sixpe_label(me),)
        out[me.name].v6.set_fib(compose(paths, lf[me.name].ftn, own))  # type: ignore[arg-type]
    return out


def a6(s: str) -> bytes:
    return IPv6Address(s).packed


def udp6(src: str, dst: str, sport: int = 40000, dport: int = 33434, hl: int = 64,
         data: bytes = b"hello", flow: int = 0) -> bytes:
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    p = bytearray(ip6.packet(a6(src), a6(dst), ip6.NH_UDP, u, hl, csum_at=6))
    p[1] |= (flow >> 16) & 0x0F
    p[2:4] = (flow & 0xFFFF).to_bytes(2, "big")
    return bytes(p)


def icmp6(src: str, dst: str, typ: int, body: bytes, hl: int = 64) -> bytes:
    m = bytes((typ, 0, 0, 0)) + body
    return ip6.packet(a6(src), a6(dst), ip6.NH_ICMPV6, m, hl, csum_at=2)


def echo6(src: str, dst: str, hl: int = 64, ident: int = 7, seq: int = 1) -> bytes:
    return icmp6(src, dst, 128, struct.pack("!HH", ident, seq) + b"ping6", hl)


def frame6(t: RouterTables, in_if: str, packet: bytes, dst_mac: bytes | None = None) -> bytes:
    """An IPv6 frame from the peer of `in_if` to router `t`."""
    i = t.interfaces[in_if]
    return eth(dst_mac or i.mac, i.peer_mac, 0x86DD, packet)
