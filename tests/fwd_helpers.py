"""Test helpers for the forwarding plane: LDP-like LFIBs straight from the IGP, frames.

`igp_lfibs(topo)` fills FTN and ILM the way LDP (downstream unsolicited,
liberal retention, every IGP prefix a FEC) converges: each router allocates
one label per FEC it is not the egress of; the egress advertises implicit
null (or explicit null 0 when `ldp.explicit_null`); a transit router swaps to
its next hop's label, the penultimate hop pops.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv4Network

from forwarding.icmp import build_ipv4
from forwarding.labelops import checksum16, encode_stack
from forwarding.tables import RouterTables, mac_bytes
from lsr.core.igp import Igp
from lsr.core.lfib import FtnEntry, IlmEntry, Lfib, Nhlfe
from lsr.core.topology import Topology, parse_topology

IMP_NULL = 3


def label_plan(topo: Topology, igp: Igp) -> dict[str, dict[IPv4Network, int]]:
    """router -> FEC -> the label it advertises (3 = implicit null, 0 = explicit null)."""
    plan: dict[str, dict[IPv4Network, int]] = {}
    for r in topo.routers:
        rib = igp.rib(r.name)
        nxt = 1000 * (r.index + 1)
        plan[r.name] = {}
        for prefix, route in rib.items():
            if route.connected:
                plan[r.name][prefix] = 0 if r.ldp.explicit_null else IMP_NULL
            else:
                plan[r.name][prefix] = nxt
                nxt += 1
    return plan


def igp_lfibs(topo: Topology, igp: Igp | None = None) -> dict[str, Lfib]:
    igp = igp or Igp(topo)
    plan = label_plan(topo, igp)
    out: dict[str, Lfib] = {}
    for r in topo.routers:
        lf = Lfib()
        for prefix, route in igp.rib(r.name).items():
            if route.connected:
                continue

            def nhl(nh, op: str, prefix=prefix) -> Nhlfe:
                lbl = plan[nh.neighbor][prefix]
                return Nhlfe(nh.neighbor, nh.interface, nh.address,
                             () if lbl == IMP_NULL else (lbl,), op)

            lf.ftn[prefix] = FtnEntry(prefix, tuple(nhl(nh, "push") for nh in route.nexthops))
            local = plan[r.name][prefix]
            nhs = []
            for nh in route.nexthops:
                n = nhl(nh, "swap")
                nhs.append(n if n.out_labels else Nhlfe(n.neighbor, n.interface, n.nexthop, (), "pop"))
            lf.ilm[local] = IlmEntry(local, prefix, tuple(nhs))
        out[r.name] = lf
    return out


def all_tables(topo: Topology, lfibs: dict[str, Lfib] | None = None) -> dict[str, RouterTables]:
    igp = Igp(topo)
    lfibs = lfibs if lfibs is not None else igp_lfibs(topo, igp)
    return {r.name: RouterTables.build(topo, r.name, igp.rib(r.name), lfibs[r.name])
            for r in topo.routers}


# ---------------------------------------------------------------- frames


def ip(src: str, dst: str, ttl: int = 64, proto: int = 17, payload: bytes = b"", df: bool = False,
       tos: int = 0, ident: int = 1) -> bytes:
    p = bytearray(build_ipv4(int(IPv4Address(src)), int(IPv4Address(dst)), proto, payload, ttl,
                             tos, ident))
    if df:
        p[6] |= 0x40
        p[10] = p[11] = 0
        struct.pack_into("!H", p, 10, checksum16(p[:20]))
    return bytes(p)


def udp(src: str, dst: str, sport: int = 1234, dport: int = 5678, ttl: int = 64,
        data: bytes = b"hello", df: bool = False, tos: int = 0) -> bytes:
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return ip(src, dst, ttl, 17, u, df, tos)


def icmp_echo(src: str, dst: str, ttl: int = 64, data: bytes = b"ping") -> bytes:
    h = bytearray(struct.pack("!BBHHH", 8, 0, 0, 1, 1) + data)
    struct.pack_into("!H", h, 2, checksum16(h))
    return ip(src, dst, ttl, 1, bytes(h))


def eth(dst: str | bytes, src: str | bytes, etype: int, payload: bytes) -> bytes:
    d = mac_bytes(dst) if isinstance(dst, str) else dst
    s = mac_bytes(src) if isinstance(src, str) else src
    return d + s + etype.to_bytes(2, "big") + payload


def mpls_frame(t: RouterTables, in_if: str, labels: tuple[int, ...], payload: bytes,
               ttl: int = 64, tc: int = 0, ttls: tuple[int, ...] | None = None) -> bytes:
    """A frame arriving at router `t` on `in_if` from its peer, with a label stack."""
    i = t.interfaces[in_if]
    if ttls is None:
        stack = encode_stack(labels, tc, ttl)
    else:
        stack = b"".join(
            struct.pack("!I", (lbl << 12) | (tc << 9) | ((1 if k == len(labels) - 1 else 0) << 8) | tt)
            for k, (lbl, tt) in enumerate(zip(labels, ttls, strict=True)))
    return eth(i.mac, i.peer_mac, 0x8847, stack + payload)


def ip_frame(t: RouterTables, in_if: str, packet: bytes) -> bytes:
    i = t.interfaces[in_if]
    return eth(i.mac, i.peer_mac, 0x0800, packet)


LINE3 = """
name: line3
topology:
  nodes:
    ce1: {kind: host}
    pe1: {loopback: 10.255.0.1}
    p1: {loopback: 10.255.0.2}
    pe2: {loopback: 10.255.0.3}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet: 192.168.1.0/24
    - endpoints: [pe1:eth2, p1:eth1]
    - endpoints: [p1:eth2, pe2:eth2]
    - endpoints: [pe2:eth1, ce2:eth0]
      subnet: 192.168.2.0/24
"""


def line3(**node_opts: str) -> Topology:
    text = LINE3
    for name, opts in node_opts.items():
        text = text.replace(f"    {name}: {{", f"    {name}: {{{opts}, ")
    return parse_topology(text, "line3")


LINE4 = """
name: line4
topology:
  nodes:
    ce1: {kind: host}
    pe1: {loopback: 10.255.0.1}
    p1: {loopback: 10.255.0.2}
    p2: {loopback: 10.255.0.3}
    pe2: {loopback: 10.255.0.4}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet: 192.168.1.0/24
    - endpoints: [pe1:eth2, p1:eth1]
      mtu: MTU1
    - endpoints: [p1:eth2, p2:eth1]
      mtu: MTU2
    - endpoints: [p2:eth2, pe2:eth2]
    - endpoints: [pe2:eth1, ce2:eth0]
      subnet: 192.168.2.0/24
"""


def line4(mtu1: int = 1500, mtu2: int = 1500, **node_opts: str) -> Topology:
    """ce1 - pe1 - p1 - p2 - pe2 - ce2: pe1 pushes, p1 swaps, p2 pops (PHP)."""
    text = LINE4.replace("MTU1", str(mtu1)).replace("MTU2", str(mtu2))
    for name, opts in node_opts.items():
        text = text.replace(f"    {name}: {{", f"    {name}: {{{opts}, ")
    return parse_topology(text, "line4")


def ilm_label(t: RouterTables, fec: str) -> int:
    """The local label router `t` allocated for `fec`."""
    (lbl,) = [k for k, e in t.ilm.items() if str(e.entry.fec) == fec]
    return lbl
