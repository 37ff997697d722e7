"""Hop-by-hop packet walk (teaching view): `decide` called router by router.

Inject one packet (ICMP echo, UDP or TCP with a given IP TTL) from a host or a
router, follow each `Forward` out of its interface to the peer, and record one
hop per router: what came in, what the router did, what went out. The walk
ends when the packet reaches the destination host, is delivered to a router,
is dropped, or leaves toward a host that is not the destination.

Hop JSON (docs/cli.md, `lsr sim trace --json`)::

    {"router", "in_interface" (null when the router originates the packet),
     "labels_in", "op" (push|swap|pop|forward|deliver|drop), "labels_out",
     "ttl_in", "ttl" (outgoing TTL: top label's, or IP's if unlabelled; for
     deliver/drop the TTL as processed), "out_interface", "neighbor",
     "reason" (drops), "icmp" (an ICMP error the router sent, or null)}
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from ipaddress import IPv4Address
from typing import Any

from forwarding.icmp import build_ipv4
from forwarding.labelops import LabelError, checksum16, parse_stack
from forwarding.plane import Deliver, Drop, Forward, decide, originate
from forwarding.tables import RouterTables
from lsr.core.topology import Topology

MAX_HOPS = 64
PROTOS = {"icmp": 1, "tcp": 6, "udp": 17}


def _l4(proto: str, src: int, dst: int, sport: int, dport: int) -> bytes:
    """A small ICMP echo / UDP / TCP SYN with valid checksums."""
    if proto == "icmp":
        h = bytearray(struct.pack("!BBHHH", 8, 0, 0, sport & 0xFFFF, 1) + b"lsr-walk")
        struct.pack_into("!H", h, 2, checksum16(h))
        return bytes(h)
    pseudo = struct.pack("!IIBB", src, dst, 0, PROTOS[proto])
    if proto == "udp":
        data = b"lsr-walk"
        h = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)
        c = checksum16(pseudo + struct.pack("!H", len(h)) + h)
        struct.pack_into("!H", h, 6, c or 0xFFFF)
        return bytes(h)
    h = bytearray(struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0))
    struct.pack_into("!H", h, 16, checksum16(pseudo + struct.pack("!H", len(h)) + h))
    return bytes(h)


def make_packet(src: IPv4Address, dst: IPv4Address, proto: str = "icmp", ttl: int = 64,
                sport: int = 49152, dport: int = 33434) -> bytes:
    """The IPv4 packet the walk injects."""
    if proto not in PROTOS:
        raise ValueError(f"proto must be one of {', '.join(PROTOS)}")
    s, d = int(src), int(dst)
    return build_ipv4(s, d, PROTOS[proto], _l4(proto, s, d, sport, dport), ttl, ident=1)


def resolve_endpoint(topo: Topology, who: str, vrf: str | None = None) -> tuple[str, IPv4Address]:
    """Node name or address -> (node, address): a walk's SRC or DST. An address is looked
    up in VRF `vrf` (the source's: VRFs reuse addresses); from a VRF, an address of no
    node of that VRF is allowed (node ""): the walk shows where the packet goes."""
    if who in topo.nodes:
        n = topo.nodes[who]
        if n.is_router:
            return who, n.lsr_id
        (i,) = n.interfaces.values()
        return who, i.address.ip
    try:
        a = IPv4Address(who)
    except ValueError:
        raise ValueError(f"'{who}' is neither a node of {topo.name} nor an IPv4 address") from None
    n = topo.node_of_address(a, vrf)
    if n is None:
        if vrf is not None:
            return "", a
        raise ValueError(f"{a} is not an address of {topo.name}")
    return n.name, a


def _stack(frame: bytes) -> tuple[tuple[int, ...], int]:
    """(labels, TTL as received) of a frame: top label TTL or IP TTL."""
    if frame[12:14] == b"\x88\x47":
        try:
            entries, _ = parse_stack(frame, 14)
        except LabelError:
            return (), 0
        return tuple(e.label for e in entries), entries[0].ttl
    return (), frame[22] if len(frame) > 22 else 0


def _icmp_json(f: Forward) -> dict[str, Any]:
    off = 14 + 4 * len(f.labels_out)
    ip = f.frame[off:]
    ihl = (ip[0] & 0x0F) * 4
    return {"type": ip[ihl], "code": ip[ihl + 1], "src": str(IPv4Address(ip[12:16])),
            "dst": str(IPv4Address(ip[16:20])), "out_interface": f.out_if,
            "labels_out": list(f.labels_out)}


def walk(topo: Topology, tables: Mapping[str, RouterTables], src: str, dst: str,
         proto: str = "icmp", ttl: int = 64, sport: int = 49152,
         dport: int = 33434) -> dict[str, Any]:
    """Walk one packet from SRC to DST (node names or addresses). See module docstring."""
    snode, saddr = resolve_endpoint(topo, src)
    dnode, daddr = resolve_endpoint(topo, dst, topo.vrf_of(snode))
    pkt = make_packet(saddr, daddr, proto, ttl, sport, dport)
    hops: list[dict[str, Any]] = []
    result = "loop"
    n = topo.nodes[snode]
    router: str
    in_if: str | None
    if n.is_router:
        t = tables[snode]
        fw = originate(t, pkt)
        if fw is None:
            own = int(daddr) in t.own
            hops.append(_hop(snode, None, (), "deliver" if own else "drop", (), ttl, ttl, None,
                             None, None if own else "no-route"))
            return _out(topo, saddr, daddr, proto, ttl, hops, "delivered" if own else "dropped")
        hops.append(_hop(snode, None, (), fw.op, fw.labels_out, ttl, fw.ttl, fw.out_if,
                         t.interfaces[fw.out_if].peer_node, None))
        frame, cur = fw.frame, t.interfaces[fw.out_if]
        router, in_if = cur.peer_node, cur.peer_interface
        if not topo.nodes[router].is_router:
            return _out(topo, saddr, daddr, proto, ttl, hops,
                        "delivered" if router == dnode else "misdelivered")
    else:
        (i,) = n.interfaces.values()
        router, in_if = i.peer_node, i.peer_interface
        rif = topo.interface(router, in_if)
        frame = bytes.fromhex(rif.mac.replace(":", "")) + bytes.fromhex(
            i.mac.replace(":", "")) + b"\x08\x00" + pkt
    for _ in range(MAX_HOPS):
        t = tables[router]
        labels_in, ttl_in = _stack(frame)
        r = decide(frame, in_if, t)
        if isinstance(r, Forward):
            oi = t.interfaces[r.out_if]
            hops.append(_hop(router, in_if, labels_in, r.op, r.labels_out, ttl_in, r.ttl,
                             r.out_if, oi.peer_node, None))
            frame, router, in_if = r.frame, oi.peer_node, oi.peer_interface
            if not topo.nodes[router].is_router:
                result = "delivered" if router == dnode else "misdelivered"
                break
            continue
        if isinstance(r, Deliver):
            hops.append(_hop(router, in_if, labels_in, "deliver", (), ttl_in, r.ttl, None, None,
                             None))
            result = "delivered" if router == dnode else "misdelivered"
        else:
            assert isinstance(r, Drop)
            h = _hop(router, in_if, labels_in, "drop", (), ttl_in, r.ttl, None, None,
                     r.reason.value)
            h["icmp"] = _icmp_json(r.replies[0]) if r.replies else None
            hops.append(h)
            result = "dropped"
        break
    return _out(topo, saddr, daddr, proto, ttl, hops, result)


def _hop(router: str, in_if: str | None, labels_in: tuple[int, ...], op: str,
         labels_out: tuple[int, ...], ttl_in: int, ttl: int, out_if: str | None,
         neighbor: str | None, reason: str | None) -> dict[str, Any]:
    return {"router": router, "in_interface": in_if, "labels_in": list(labels_in), "op": op,
            "labels_out": list(labels_out), "ttl_in": ttl_in, "ttl": ttl,
            "out_interface": out_if, "neighbor": neighbor, "reason": reason, "icmp": None}


def _out(topo: Topology, src: IPv4Address, dst: IPv4Address, proto: str, ttl: int,
         hops: list[dict[str, Any]], result: str) -> dict[str, Any]:
    return {"topology": topo.name, "src": str(src), "dst": str(dst), "proto": proto, "ttl": ttl,
            "result": result, "hops": hops}


def walk_json(topo: Topology, tables: Mapping[str, RouterTables], src: str, dst: str,
              proto: str = "icmp", ttl: int = 64) -> dict[str, Any]:
    """`{"hops": [...], "result": ..., ...}`: the JSON of `lsr sim trace --json`."""
    return walk(topo, tables, src, dst, proto, ttl)
