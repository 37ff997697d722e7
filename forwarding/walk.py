"""Hop-by-hop packet walk (teaching view): `decide` called router by router.

Inject one packet (ICMP echo, UDP or TCP with a given IP TTL and ports) from a
host or a router, follow each `Forward` out of its interface to the peer, and
record one hop per router: what came in, which table entry decided, what the
router did, what went out. The walk ends when the packet reaches the
destination host, is delivered to a router, is dropped, or leaves toward a
host that is not the destination. When a router drops the packet and sends an
ICMP error (TTL expired, fragmentation needed), the error is walked too, from
that router to the packet's source: about a labelled packet it goes on along
the LSP to the egress, which routes it back (RFC 3032 §2.3.2).

IPv6 (`family=6`, or IPv6 addresses as SRC/DST): an ICMPv6 echo, UDP or TCP over
IPv6 from a host's IPv6 address (`subnet6`) to another's, across 6PE; `ttl` is the
hop limit, and the 6PE hops name `table` "6pe" (the ingress's BGP route, the egress
popping its 6PE label or IPv6 Explicit Null) with the IPv6 prefix as `fec`.

Hop JSON (docs/cli.md, `lsr sim trace --json`)::

    {"router", "in_interface" (null when the router originates the packet),
     "labels_in", "op" (push|swap|pop|forward|deliver|drop), "labels_out",
     "ttl_in", "ttl" (outgoing TTL: top label's, or IP's if unlabelled; for
     deliver/drop the TTL as processed), "out_interface", "neighbor",
     "reason" (drops), "table" (ilm|ftn|rib|vrf|vpn or null: what decided; vrf: a
     VRF port's lookup, vpn: a VPN label), "fec" (the ILM entry's FEC, the prefix the
     IP or VRF lookup matched, a per-prefix VPN label's prefix), "ecmp" (null, or
     {"hash", "index", "choices"} when the entry had several next hops),
     "icmp" (an ICMP error the router sent, with its own "hops" and "result",
     or null)}
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from forwarding import ip6
from forwarding.icmp import build_ipv4
from forwarding.labelops import LabelError, checksum16, parse_stack
from forwarding.plane import Deliver, Drop, Forward, decide, flow_hash, labelled_hash, originate
from forwarding.plane6 import originate6
from forwarding.tables import A_LOCAL, A_NHLFE, CNhlfe, RouterTables, VrfTable
from lsr.core.ipv6 import text as text6
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


def make_packet(src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address,
                proto: str = "icmp", ttl: int = 64, sport: int = 49152,
                dport: int = 33434) -> bytes:
    """The IPv4 or IPv6 packet the walk injects."""
    if proto not in PROTOS:
        raise ValueError(f"proto must be one of {', '.join(PROTOS)}")
    if isinstance(src, IPv6Address):
        return _packet6(src, IPv6Address(dst), proto, ttl, sport, dport)
    s, d = int(src), int(dst)
    return build_ipv4(s, d, PROTOS[proto], _l4(proto, s, d, sport, dport), ttl, ident=1)


def _packet6(src: IPv6Address, dst: IPv6Address, proto: str, hl: int, sport: int,
             dport: int) -> bytes:
    """ICMPv6 echo (type 128), UDP or TCP SYN over IPv6 with valid checksums."""
    s, d = src.packed, dst.packed
    if proto == "icmp":
        return ip6.packet(s, d, ip6.NH_ICMPV6, struct.pack("!BBHHH", 128, 0, 0, sport & 0xFFFF, 1)
                          + b"lsr-walk", hl, csum_at=2)
    if proto == "udp":
        data = b"lsr-walk"
        return ip6.packet(s, d, ip6.NH_UDP, struct.pack("!HHHH", sport, dport, 8 + len(data), 0)
                          + data, hl, csum_at=6)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
    return ip6.packet(s, d, ip6.NH_TCP, tcp, hl, csum_at=16)


def resolve_endpoint(topo: Topology, who: str, family: int = 4, vrf: str | None = None
                     ) -> tuple[str, IPv4Address | IPv6Address]:
    """Node name or address -> (node, address): a walk's SRC or DST. A node name gives
    its IPv4 address (a router: its loopback), or with `family=6` its IPv6 address (a
    router: that of its first IPv6 interface). An address is looked up in VRF `vrf`
    (the source's: VRFs reuse addresses); from a VRF, an address of no node of that VRF
    is allowed (node ""): the walk shows where the packet goes."""
    if who in topo.nodes:
        n = topo.nodes[who]
        if family == 6:
            a6 = [i.address6.ip for i in n.interfaces.values() if i.address6 is not None]
            if not a6:
                raise ValueError(f"{who} has no IPv6 address (no subnet6 on its links)")
            return who, a6[0]
        if n.is_router:
            return who, n.lsr_id
        (i,) = n.interfaces.values()
        return who, i.address.ip
    try:
        a = ip_address(who)
    except ValueError:
        raise ValueError(f"'{who}' is neither a node of {topo.name} nor an IP address") from None
    node = topo.node_of_address(a, vrf) if isinstance(a, IPv4Address) \
        else topo.node_of_address6(a, vrf)
    if node is None:
        if vrf is not None:
            return "", a
        raise ValueError(f"{a} is not an address of {topo.name}")
    return node.name, a


def _stack(frame: bytes) -> tuple[tuple[int, ...], int]:
    """(labels, TTL as received) of a frame: top label TTL, IPv4 TTL or IPv6 hop limit."""
    if frame[12:14] == b"\x88\x47":
        try:
            entries, _ = parse_stack(frame, 14)
        except LabelError:
            return (), 0
        return tuple(e.label for e in entries), entries[0].ttl
    if frame[12:14] == b"\x86\xdd":
        return (), frame[21] if len(frame) > 21 else 0
    return (), frame[22] if len(frame) > 22 else 0


Entry = tuple[str | None, str | None, dict[str, Any] | None]  # (table, fec, ecmp)
NO_ENTRY: Entry = (None, None, None)


def _ecmp(t: RouterTables, nhs: tuple[CNhlfe, ...], h: int) -> dict[str, Any]:
    """The ECMP choice `plane._pick` makes: next hop number hash % n (plane docstring)."""
    return {"hash": h, "index": h % len(nhs),
            "choices": [t.interfaces[nh.out_if].peer_node for nh in nhs]}


def _ip6_entry(t: RouterTables, buf: bytes, off: int, vrf: VrfTable | None = None) -> Entry:
    """The IPv6 lookup: a 6PE route ("6pe") or a connected subnet ("rib"); in a VRF
    (6VPE) its table's route or subnet."""
    if len(buf) < off + 40:
        return NO_ENTRY
    v6 = t.v6 if vrf is None else vrf.v6
    dst = bytes(buf[off + 24:off + 40])
    a = v6.lookup(dst)
    if a is None or dst in v6.own:
        return NO_ENTRY
    if a.kind != A_NHLFE:
        return "rib", str(a.prefix), None
    ecmp = _ecmp(t, a.nhs, ip6.flow_hash6(buf, off, t.seed)) if len(a.nhs) > 1 else None
    return "6pe", str(a.prefix), ecmp


def _ip_entry(t: RouterTables | VrfTable, buf: bytes, off: int,
              router: RouterTables | None = None) -> Entry:
    """The LPM entry the plane uses for the IP packet at `off` (FTN or RIB) in `t`,
    the router's tables or one of its VRFs (`router` then: the router's tables)."""
    rt = router if router is not None else t
    assert isinstance(rt, RouterTables)
    if len(buf) > off and buf[off] >> 4 == 6:
        return _ip6_entry(rt, buf, off, t if isinstance(t, VrfTable) else None)
    if len(buf) < off + 20:
        return NO_ENTRY
    dst = int.from_bytes(buf[off + 16:off + 20], "big")
    a = t.lookup(dst)
    if a is None or a.kind == A_LOCAL or dst in t.own:
        return NO_ENTRY
    if a.kind != A_NHLFE:  # a connected subnet
        return "rib", str(a.prefix), None
    ecmp = _ecmp(rt, a.nhs, flow_hash(buf, off, rt.seed)) if len(a.nhs) > 1 else None
    return ("ftn" if a.ftn else "rib"), str(a.prefix), ecmp


def entry(t: RouterTables, frame: bytes, in_if: str | None = None) -> Entry:
    """(table, FEC, ECMP choice) behind the plane's decision on an Ethernet frame
    received on `in_if` (a VRF port: its VRF's table, "vrf")."""
    if frame[12:14] != b"\x88\x47":
        v = t.port_vrf.get(in_if) if in_if is not None else None
        if v is not None:
            table, fec, ecmp = _ip_entry(v, frame, 14, t)
            return ("vrf" if table else None), fec, ecmp
        return _ip_entry(t, frame, 14)
    try:
        entries, poff = parse_stack(frame, 14)
    except LabelError:
        return NO_ENTRY
    for e in entries:
        if e.label >= 16:
            if e.label not in t.ilm and e.label in t.v6.labels:  # our 6PE label: IPv6 lookup
                table, fec, ecmp = _ip6_entry(t, frame, poff)
                return ("6pe" if table else None), fec, ecmp
            ilm = t.ilm.get(e.label)
            if ilm is not None and ilm.vrf is not None:  # a VPN label (RFC 4364)
                e = ilm.entry
                return "vpn", None if e.prefix is None else str(e.prefix), None
            if ilm is None or not ilm.nhs:
                return NO_ENTRY
            h = labelled_hash(frame, 14, t.seed) if len(ilm.nhs) > 1 else None
            return "ilm", str(ilm.entry.fec), None if h is None else _ecmp(t, ilm.nhs, h)
        if e.label not in (0, 2) or e.s:  # explicit null at the bottom: IP under it
            break
    if entries and entries[-1].label == 0:
        return _ip_entry(t, frame, poff)
    if entries and entries[-1].label == 2:  # IPv6 Explicit Null: the 6PE egress's lookup
        table, fec, ecmp = _ip6_entry(t, frame, poff)
        return ("6pe" if table else None), fec, ecmp
    return NO_ENTRY


def _icmp_json(f: Forward) -> dict[str, Any]:
    off = 14 + 4 * len(f.labels_out)
    ip = f.frame[off:]
    if ip[0] >> 4 == 6:  # ICMPv6 (what we send has no extension headers)
        return {"type": ip[40], "code": ip[41], "src": text6(IPv6Address(ip[8:24])),
                "dst": text6(IPv6Address(ip[24:40])), "out_interface": f.out_if,
                "labels_out": list(f.labels_out)}
    ihl = (ip[0] & 0x0F) * 4
    return {"type": ip[ihl], "code": ip[ihl + 1], "src": str(IPv4Address(ip[12:16])),
            "dst": str(IPv4Address(ip[16:20])), "out_interface": f.out_if,
            "labels_out": list(f.labels_out)}


def walk(topo: Topology, tables: Mapping[str, RouterTables], src: str, dst: str,
         proto: str = "icmp", ttl: int = 64, sport: int = 49152,
         dport: int = 33434, family: int = 4, *, down: Collection[int] = ()) -> dict[str, Any]:
    """Walk one packet from SRC to DST (node names or addresses). See module docstring.

    For UDP and TCP, `sport`/`dport` are the ports (ECMP hash inputs); ICMP
    echoes are not hashed on them. `family` 6 (or an IPv6 address as SRC or DST): IPv6.
    `down`: links down (indexes); the routers' tables already route around them, but a
    host's own link down is for the walk to see: nothing leaves a host whose link is
    down, and nothing reaches one."""
    if any(":" in x for x in (src, dst)):
        family = 6
    snode, saddr = resolve_endpoint(topo, src, family)
    dnode, daddr = resolve_endpoint(topo, dst, family, topo.vrf_of(snode))
    if saddr.version != daddr.version:
        raise ValueError(f"{saddr} and {daddr} are not of one address family")
    pkt = make_packet(saddr, daddr, proto, ttl, sport, dport)
    hops: list[dict[str, Any]] = []
    n = topo.nodes[snode]
    cut = _host_link_down(topo, down, snode)
    if cut is not None:
        hops.append(_hop(snode, None, (), "drop", (), ttl, ttl, None, None, f"link {cut} down"))
        result = "dropped"
    elif n.is_router:
        result = _originate(topo, tables, snode, pkt, dnode, hops, snode)
    else:
        (i,) = n.interfaces.values()
        rif = topo.interface(i.peer_node, i.peer_interface)
        frame = bytes.fromhex(rif.mac.replace(":", "")) + bytes.fromhex(
            i.mac.replace(":", "")) + (b"\x86\xdd" if saddr.version == 6 else b"\x08\x00") + pkt
        result = _follow(topo, tables, frame, i.peer_node, i.peer_interface, dnode, hops, snode)
    cut = _host_link_down(topo, down, dnode) if result == "delivered" else None
    if cut is not None and hops:  # the last router's way out to the host is down
        hops[-1].update(op="drop", labels_out=[], out_interface=None, neighbor=None,
                        reason=f"link {cut} down")
        result = "dropped"
    out = _out(topo, saddr, daddr, proto, ttl, hops, result)
    ports = proto in ("udp", "tcp")
    out["sport"], out["dport"] = (sport, dport) if ports else (None, None)
    return out


def _host_link_down(topo: Topology, down: Collection[int], node: str | None) -> str | None:
    """The name of host `node`'s link if it is down, else None (a router: None)."""
    if not down or node is None or topo.nodes[node].is_router:
        return None
    (i,) = topo.nodes[node].interfaces.values()
    return topo.link_name(topo.links[i.link]) if i.link in down else None


def _originate(topo: Topology, tables: Mapping[str, RouterTables], router: str, pkt: bytes,
               dnode: str | None, hops: list[dict[str, Any]],
               origin: str | None = None) -> str:
    """A router sends `pkt` itself (no TTL decrement), then the walk goes on."""
    t = tables[router]
    v6 = pkt[0] >> 4 == 6
    ttl = pkt[7] if v6 else pkt[8]
    fw = originate6(t, pkt) if v6 else originate(t, pkt)
    if fw is None:
        own = bytes(pkt[24:40]) in t.v6.own if v6 else int.from_bytes(pkt[16:20], "big") in t.own
        hops.append(_hop(router, None, (), "deliver" if own else "drop", (), ttl, ttl, None,
                         None, None if own else "no-route"))
        return "delivered" if own and router == dnode else ("misdelivered" if own else "dropped")
    h = _hop(router, None, (), fw.op, fw.labels_out, ttl, fw.ttl, fw.out_if,
             t.interfaces[fw.out_if].peer_node, None)
    h["table"], h["fec"], h["ecmp"] = _ip_entry(t, pkt, 0)
    hops.append(h)
    oi = t.interfaces[fw.out_if]
    return _next(topo, tables, fw.frame, oi.peer_node, oi.peer_interface, dnode, hops, origin)


def _next(topo: Topology, tables: Mapping[str, RouterTables], frame: bytes, node: str,
          in_if: str, dnode: str | None, hops: list[dict[str, Any]],
          origin: str | None) -> str:
    if not topo.nodes[node].is_router:  # out to a host: the walk ends
        return "delivered" if node == dnode else "misdelivered"
    return _follow(topo, tables, frame, node, in_if, dnode, hops, origin)


def _follow(topo: Topology, tables: Mapping[str, RouterTables], frame: bytes, router: str,
            in_if: str, dnode: str | None, hops: list[dict[str, Any]],
            origin: str | None = None) -> str:
    """Hand `frame` to `router` on `in_if` and follow it; hops appended, result returned.
    `origin`: the walk's source node, to which an ICMP error a router sends is walked
    (None for the walk of an ICMP error: no error about an error)."""
    for _ in range(MAX_HOPS):
        t = tables[router]
        labels_in, ttl_in = _stack(frame)
        table, fec, ecmp = entry(t, frame, in_if)
        r = decide(frame, in_if, t)
        if isinstance(r, Forward):
            oi = t.interfaces[r.out_if]
            h = _hop(router, in_if, labels_in, r.op, r.labels_out, ttl_in, r.ttl, r.out_if,
                     oi.peer_node, None)
            h["table"], h["fec"], h["ecmp"] = table, fec, ecmp
            hops.append(h)
            frame, router, in_if = r.frame, oi.peer_node, oi.peer_interface
            if not topo.nodes[router].is_router:
                return "delivered" if router == dnode else "misdelivered"
            continue
        if isinstance(r, Deliver):
            hops.append(_hop(router, in_if, labels_in, "deliver", (), ttl_in, r.ttl, None, None,
                             None))
            return "delivered" if router == dnode else "misdelivered"
        assert isinstance(r, Drop)
        h = _hop(router, in_if, labels_in, "drop", (), ttl_in, r.ttl, None, None,
                 r.reason.value)
        h["table"], h["fec"], h["ecmp"] = table, fec, ecmp
        if r.replies and origin is not None:
            h["icmp"] = _icmp_walk(topo, tables, router, r.replies[0], h, origin)
        elif r.replies:
            h["icmp"] = _icmp_json(r.replies[0])
        hops.append(h)
        return "dropped"
    return "loop"


def _onward(t: RouterTables, dropped: dict[str, Any], fw: Forward) -> bool:
    """Whether the ICMP error went on along the dropped packet's LSP: out of its
    ILM next hop with that next hop's labels (plane `_onward`), not routed by IP."""
    if dropped["table"] != "ilm" or not fw.labels_out:
        return False
    k = next(i for i, x in enumerate(dropped["labels_in"]) if x >= 16)
    ilm = t.ilm[dropped["labels_in"][k]]
    nh = ilm.nhs[dropped["ecmp"]["index"] if dropped["ecmp"] else 0]
    rest = tuple(dropped["labels_in"][k + 1:])
    return fw.out_if == nh.out_if and tuple(fw.labels_out) == nh.out_labels + rest


def _icmp_walk(topo: Topology, tables: Mapping[str, RouterTables], router: str, fw: Forward,
               dropped: dict[str, Any], origin: str) -> dict[str, Any]:
    """The ICMP error `router` sent (`fw`), walked to the dropped packet's source
    (`origin`: a VPN site's address may be another VRF's too).

    About a labelled packet with an onward label it goes on along the LSP (RFC 3032
    §2.3.2: `onward`), so its first hop is the ILM entry of the dropped packet; else it
    is routed like any packet the router originates."""
    t = tables[router]
    d = _icmp_json(fw)
    off = 14 + 4 * len(fw.labels_out)
    ip = fw.frame[off:]
    if ip[0] >> 4 == 6:
        dst6 = IPv6Address(ip[24:40])
        owner = origin if _has_address(topo, origin, dst6) else None
        if owner is None:
            n6 = topo.node_of_address6(dst6)
            owner = n6.name if n6 is not None else None
        ttl_in = ip[7]
    else:
        dst = IPv4Address(ip[16:20])
        owner = origin if _has_address(topo, origin, dst) else None
        if owner is None:
            n = topo.node_of_address(dst)
            owner = n.name if n is not None else None
        ttl_in = ip[8]
    table, fec, ecmp = _ip_entry(t, ip, 0)
    onward = _onward(t, dropped, fw)
    if onward:
        table, fec, ecmp = dropped["table"], dropped["fec"], dropped["ecmp"]
    h = _hop(router, None, (), fw.op, fw.labels_out, ttl_in, fw.ttl, fw.out_if,
             t.interfaces[fw.out_if].peer_node, None)
    h["table"], h["fec"], h["ecmp"] = table, fec, ecmp
    hops = [h]
    oi = t.interfaces[fw.out_if]
    result = _next(topo, tables, fw.frame, oi.peer_node, oi.peer_interface,
                   owner, hops, None)
    d.update(onward=onward, hops=hops, result=result)
    return d


def _has_address(topo: Topology, node: str, addr: IPv4Address | IPv6Address) -> bool:
    n = topo.nodes[node]
    if isinstance(addr, IPv6Address):
        return any(i.address6 is not None and i.address6.ip == addr
                   for i in n.interfaces.values())
    return n.loopback == addr or any(i.address.ip == addr for i in n.interfaces.values())


def _hop(router: str, in_if: str | None, labels_in: tuple[int, ...], op: str,
         labels_out: tuple[int, ...], ttl_in: int, ttl: int, out_if: str | None,
         neighbor: str | None, reason: str | None) -> dict[str, Any]:
    return {"router": router, "in_interface": in_if, "labels_in": list(labels_in), "op": op,
            "labels_out": list(labels_out), "ttl_in": ttl_in, "ttl": ttl,
            "out_interface": out_if, "neighbor": neighbor, "reason": reason, "table": None,
            "fec": None, "ecmp": None, "icmp": None}


def _out(topo: Topology, src: IPv4Address | IPv6Address, dst: IPv4Address | IPv6Address,
         proto: str, ttl: int,
         hops: list[dict[str, Any]], result: str) -> dict[str, Any]:
    return {"topology": topo.name, "src": str(src), "dst": str(dst), "proto": proto, "ttl": ttl,
            "result": result, "hops": hops}


def walk_json(topo: Topology, tables: Mapping[str, RouterTables], src: str, dst: str,
              proto: str = "icmp", ttl: int = 64, sport: int = 49152,
              dport: int = 33434, family: int = 4) -> dict[str, Any]:
    """`{"hops": [...], "result": ..., ...}`: the JSON of `lsr sim trace --json`."""
    return walk(topo, tables, src, dst, proto, ttl, sport, dport, family)
