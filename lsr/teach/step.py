"""`lsr sim trace --step`: the packet walk one hop at a time, headers and all.

The hop list is `forwarding.walk.walk()` (the same JSON as `lsr sim trace`);
to show the frames themselves the same walk is replayed with
`forwarding.plane.decide`, keeping every frame received and sent. Each hop
shows the frame as it arrived (Ethernet, every label stack entry with
label/TC/S/TTL, IPv4 src/dst/TTL or IPv6 src/dst/hop limit/traffic class/flow
label/next header, and the ICMP/ICMPv6/UDP/TCP header), the table row that
decided it (FTN, ILM, the IGP route for plain IP; for IPv6 the 6PE route or
label of RFC 4798, the VRF's IPv6 route or VPN label of RFC 4659) with the chosen
ECMP next hop marked (and the hash that chose it), why a router pops, and the
frame as it left, with the fields that changed highlighted. When a router drops
the packet with an ICMP error, the error's own walk follows, hop by hop, to the
packet's source; an error's RFC 4950 label stack (RFC 4884 extension) is shown.
"""

from __future__ import annotations

import struct
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from forwarding import ip6
from forwarding.labelops import LabelError, parse_stack
from forwarding.plane import Forward, decide, originate
from forwarding.tables import RouterTables
from lsr.core.fib6 import Fib6
from lsr.core.igp import Route
from lsr.core.ipv6 import text as text6
from lsr.core.topology import Topology
from lsr.teach.net import pop_reason
from lsr.teach.walktext import flow_text, icmp_name, icmp_title

IP_PROTOS = {1: "icmp", 6: "tcp", 17: "udp"}
IP6_PROTOS = {58: "icmpv6", 6: "tcp", 17: "udp"}
MAX_HOPS = 64
P_ROUTER6 = ("switches on the top label only: no IPv6 here, the IPv6 packet under the labels "
             "is never looked at (6PE: RFC 4798 §3; 6VPE: RFC 4659)")


@dataclass
class Headers:
    """The decoded headers of one frame (or of a bare IP packet: eth is None)."""

    eth: tuple[str, str, int] | None  # (dst MAC, src MAC, ethertype)
    labels: list[tuple[int, int, int, int]]  # (label, TC, S, TTL), top first
    ip: tuple[str, str, int, str] | None  # (src, dst, TTL or hop limit, protocol)
    version: int = 4  # of `ip`
    ip6: tuple[int, int, int] | None = None  # IPv6: (traffic class, flow label, next header)
    l4: str | None = None  # the ICMP / ICMPv6 / UDP / TCP header, in words
    ext_labels: list[tuple[int, int, int, int]] | None = None  # an ICMP error's RFC 4950 stack


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


ICMP_TYPES = {0: "echo reply", 3: "destination unreachable", 8: "echo request",
              11: "time exceeded"}
ICMP6_TYPES = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded",
               128: "echo request", 129: "echo reply", 135: "neighbor solicitation",
               136: "neighbor advertisement"}
TCP_FLAGS = "FSRPAU"


def _icmp_ext(b: bytes, l4: int, end: int, v6: bool) -> list[tuple[int, int, int, int]] | None:
    """The RFC 4950 label stack of an ICMP(v6) error in RFC 4884 form, else None: the
    length field (ICMPv6: octet 4, 64-bit words; ICMP: octet 5, 32-bit words) says where
    the original datagram ends and the extension structure (version 2) begins."""
    if end - l4 < 8 or b[l4] >= 128 or b[l4] in (0, 8):
        return None
    n = b[l4 + 4] * 8 if v6 else b[l4 + 5] * 4
    ext = l4 + 8 + n
    if not n or ext + 8 > end or b[ext] >> 4 != 2:
        return None
    off = ext + 4
    while off + 4 <= end:
        olen, cls, ctype = struct.unpack_from("!HBB", b, off)
        if olen < 4 or off + olen > end:
            return None
        if cls == 1 and ctype == 1:  # MPLS Label Stack Class (RFC 4950 §3)
            try:
                entries, _ = parse_stack(b[off + 4:off + olen], 0)
            except LabelError:
                return None
            return [(e.label, e.tc, e.s, e.ttl) for e in entries]
        off += olen
    return None


def _l4(b: bytes, l4: int, end: int, proto: int, v6: bool) -> str | None:
    """The upper-layer header at `l4` (ICMP/ICMPv6 type and code, echo id and sequence;
    UDP/TCP ports, TCP flags), or None if truncated or another protocol."""
    if proto in (1, 58) and end - l4 >= 4:
        t, c = b[l4], b[l4 + 1]
        name = (ICMP6_TYPES if v6 else ICMP_TYPES).get(t, "")
        txt = f"{'ICMPv6' if v6 else 'ICMP'} type {t} code {c}" + (f" {name}" if name else "")
        if end - l4 >= 8 and (t in (128, 129) if v6 else t in (0, 8)):
            ident, seq = struct.unpack_from("!HH", b, l4 + 4)
            txt += f"  id {ident} seq {seq}"
        elif v6 and t == 2 and end - l4 >= 8:
            txt += f"  MTU {struct.unpack_from('!I', b, l4 + 4)[0]}"
        return txt
    if proto == 17 and end - l4 >= 8:
        sp, dp, ln = struct.unpack_from("!HHH", b, l4)
        return f"UDP {sp} -> {dp}  length {ln}"
    if proto == 6 and end - l4 >= 14:
        sp, dp = struct.unpack_from("!HH", b, l4)
        flags = "".join(f for k, f in enumerate(TCP_FLAGS) if b[l4 + 13] >> k & 1)
        return f"TCP {sp} -> {dp}  flags {flags or '-'}"
    return None


def headers(frame: bytes, ethernet: bool = True) -> Headers:
    eth = None
    off = 0
    etype = 0x86DD if frame and frame[0] >> 4 == 6 else 0x0800
    if ethernet:
        etype = struct.unpack_from("!H", frame, 12)[0]
        eth = (_mac(frame[0:6]), _mac(frame[6:12]), etype)
        off = 14
    labels: list[tuple[int, int, int, int]] = []
    if etype == 0x8847:
        try:
            entries, off = parse_stack(frame, off)
        except LabelError:
            return Headers(eth, [], None)
        labels = [(e.label, e.tc, e.s, e.ttl) for e in entries]
    if len(frame) >= off + 40 and frame[off] >> 4 == 6:
        return _headers6(frame, off, eth, labels)
    ip = None
    l4 = ext = None
    if len(frame) >= off + 20 and frame[off] >> 4 == 4:
        proto = frame[off + 9]
        ip = (str(IPv4Address(frame[off + 12:off + 16])), str(IPv4Address(frame[off + 16:off + 20])),
              frame[off + 8], IP_PROTOS.get(proto, str(proto)))
        start = off + (frame[off] & 0x0F) * 4
        end = min(len(frame), off + struct.unpack_from("!H", frame, off + 2)[0])
        l4 = _l4(frame, start, end, proto, False)
        ext = _icmp_ext(frame, start, end, False) if proto == 1 else None
    return Headers(eth, labels, ip, l4=l4, ext_labels=ext)


def _headers6(frame: bytes, off: int, eth: tuple[str, str, int] | None,
              labels: list[tuple[int, int, int, int]]) -> Headers:
    """The IPv6 header at `off` (RFC 8200 §3) and the upper-layer header its extension
    header chain leads to (`forwarding.ip6.check`)."""
    vtf, _, nxt, hl = struct.unpack_from("!IHBB", frame, off)
    r = ip6.check(frame, off)
    proto = r.proto if isinstance(r, ip6.Parsed6) else nxt
    ip = (text6(IPv6Address(frame[off + 8:off + 24])), text6(IPv6Address(frame[off + 24:off + 40])),
          hl, IP6_PROTOS.get(proto, str(proto)))
    l4 = ext = None
    if isinstance(r, ip6.Parsed6) and not r.later_fragment:
        start, end = off + r.l4, off + r.total
        l4 = _l4(frame, start, end, proto, True)
        ext = _icmp_ext(frame, start, end, True) if proto == ip6.NH_ICMPV6 else None
    return Headers(eth, labels, ip, 6, ((vtf >> 20) & 0xFF, vtf & 0xFFFFF, nxt), l4, ext)


@dataclass
class StepHop:
    hop: dict[str, Any]  # the `lsr sim trace --json` hop
    received: Headers | None  # eth None: the router originated the packet
    sent: Headers | None  # None: delivered or dropped
    rule: list[tuple[str, bool]]  # (text, chosen) lines: the table row that decided
    rule_title: str
    icmp: Headers | None = None  # the ICMP error sent, if any
    why: str | None = None  # why the router pops ("pops: egress pe2 advertised implicit-null ...")
    ecmp: str | None = None  # the ECMP hash that chose the next hop
    leg: str = "packet"  # "packet", or "icmp": a hop of the ICMP error's walk back


def _lpm(rib: Mapping[IPv4Network, Route], dst: IPv4Address) -> Route | None:
    best = [r for p, r in rib.items() if dst in p]
    return max(best, key=lambda r: r.prefix.prefixlen) if best else None


def _labels(xs: tuple[int, ...] | list[int]) -> str:
    return " ".join(str(x) for x in xs) if xs else "-"


def decision(topo: Topology, rib: Mapping[IPv4Network, Route], lfib: Any, hop: dict[str, Any],
             rx: Headers | None, fib6: Fib6 | None = None) -> tuple[str, list[tuple[str, bool]]]:
    """(title, rows) of the FTN / ILM / RIB entry behind a hop (for IPv6: the 6PE route or
    label from `fib6`, the router's, or the VRF's IPv6 route); `chosen` marks the NHLFE
    (ECMP member) the packet took."""
    title, rows = _decision(topo, rib, lfib, hop, rx, fib6)
    if hop["op"] == "drop":
        rows = [(t, False) for t, _ in rows] + [(f"dropped: {hop['reason']}", True)]
    return title, rows


def _names(topo: Topology) -> dict[str, str]:
    return {str(n.lsr_id): n.name for n in topo.routers}


def _decision(topo: Topology, rib: Mapping[IPv4Network, Route], lfib: Any, hop: dict[str, Any],
              rx: Headers | None, fib6: Fib6 | None = None) -> tuple[str, list[tuple[str, bool]]]:
    out_if = hop["out_interface"]
    labelled = bool(rx and rx.labels)
    names = _names(topo)

    def nb(x: str) -> str:
        return names.get(str(x), str(x))

    if hop["op"] == "deliver":
        return "delivered", [("for this router (one of its addresses)", True)]
    ip = rx.ip if rx is not None and rx.ip else None
    dst = ip_address(ip[1]) if ip else None
    own6 = fib6.labels if fib6 is not None else ()
    if labelled and rx is not None and rx.labels[0][0] not in (0, 2):
        top = rx.labels[0][0]
        e = lfib.ilm.get(top) if lfib else None
        v = lfib.vpn_ilm.get(top) if lfib is not None and e is None else None
        if e is None and v is None and top in own6 and isinstance(dst, IPv6Address):
            # our 6PE label (RFC 4798 §3): pop, then the IPv6 lookup
            title, rows = _ip6_decision(topo, hop["router"], fib6, dst, out_if)
            return (f"6PE label {top}: pop, then {title}",
                    [(f"in {top}  our 6PE label  pop, look up {dst} in the IPv6 table",
                      False)] + rows)
        if v is not None:  # a VPN label this PE allocated (RFC 4364 §4.3.2)
            what = f"in {top}  VPN label of VRF {v.vrf}" + (f" {v.prefix}" if v.prefix else "")
            if v.nexthops:
                nh = v.nexthops[0]
                return f"VPN label {top}", [(f"{what}  pop, to {nb(nh.neighbor)} {nh.interface} "
                                             f"{nh.nexthop} (no lookup)", True)]
            title, rows = _vrf_decision(topo, hop["router"], lfib, v.vrf, dst, out_if)
            return (f"VPN label {top}: pop, then {title}",
                    [(f"{what}  pop, look up {dst} in {v.vrf}", False)] + rows)
        if e is None:
            return "ILM", [(f"no entry for label {top}", True)]
        rows = [(f"in {top}  FEC {e.fec}  {nh.op}"
                 + (f" {_labels(nh.out_labels)}" if nh.out_labels else "")
                 + f" via {nb(nh.neighbor)} {nh.interface} {nh.nexthop}", nh.interface == out_if)
                for nh in e.nexthops]
        return f"ILM entry for label {top}", rows
    pre = ""
    if labelled and rx is not None:
        pre = ("IPv6 explicit-null popped (RFC 4798 §3); " if rx.labels[0][0] == 2
               else "explicit-null popped; ")
    if dst is None:
        return "?", [("not IP", True)]
    in_if = hop.get("in_interface")
    vrf = topo.interface(hop["router"], in_if).vrf if in_if else None
    if vrf is not None:  # a VRF port: its VRF decides, never the global table
        return _vrf_decision(topo, hop["router"], lfib, vrf, dst, out_if)
    if isinstance(dst, IPv6Address):
        title, rows = _ip6_decision(topo, hop["router"], fib6, dst, out_if)
        return pre + title, rows
    route = _lpm(rib, dst)
    if route is None:
        return f"{pre}no route", [(f"no route to {dst}", True)]
    ftn = lfib.ftn.get(route.prefix) if lfib else None
    if ftn is not None and ftn.nexthops and any(nh.out_labels for nh in ftn.nexthops):
        rows = [(f"FEC {ftn.fec}  push {_labels(nh.out_labels)} via {nb(nh.neighbor)} {nh.interface} "
                 f"{nh.nexthop}", nh.interface == out_if) for nh in ftn.nexthops]
        return f"{pre}FTN entry (longest match for {dst})", rows
    if route.connected:
        return f"{pre}IGP route (longest match for {dst})", [
            (f"{route.prefix} connected, out {out_if}", True)]
    rows = [(f"{route.prefix} metric {route.metric} via {nh.neighbor} {nh.interface} "
             f"{nh.address}" + (" (FTN: no label, next hop is the egress)" if ftn else ""),
             nh.interface == out_if) for nh in route.nexthops]
    return f"{pre}IGP route (longest match for {dst})", rows


def _ip6_decision(topo: Topology, router: str, fib6: Fib6 | None, dst: IPv6Address,
                  out_if: str | None) -> tuple[str, list[tuple[str, bool]]]:
    """The router's IPv6 route that decided, longest match: a connected subnet (a
    customer port) or a 6PE route (RFC 4798: BGP's labelled IPv6 route over LDP)."""
    node = topo.nodes[router]
    names = _names(topo)
    ports = {i.address6.network: i.name for i in node.interfaces.values()
             if i.address6 is not None and i.vrf is None}
    routes = fib6.routes if fib6 is not None else {}
    unresolved = fib6.unresolved if fib6 is not None else {}
    cands = [p for p in (*ports, *routes, *unresolved) if dst in p]
    if not cands:
        return "no IPv6 route", [(f"no route to {dst} in the IPv6 table", True)]
    p = max(cands, key=lambda n: n.prefixlen)
    title = f"IPv6 route (longest match for {dst})"
    if p in ports:
        return title, [(f"{p} connected, out {ports[p]}", True)]
    r = routes.get(p)
    if r is None:
        return title, [(f"{p} from BGP, unresolved: {unresolved[p]}", True)]
    egress = r.egress or names.get(str(r.next_hop), str(r.next_hop))
    what = {2: "IPv6 explicit-null", 3: "implicit-null"}.get(r.label, f"6PE label {r.label}")
    return f"6PE route (longest match for {dst})", [
        (f"{p} from {egress} (next hop ::ffff:{r.next_hop}, {what})  push "
         f"{_labels(tuple(x for x in nh.out_labels if x != 3))} via "
         f"{names.get(str(nh.neighbor), nh.neighbor)} {nh.interface} {nh.nexthop}",
         nh.interface == out_if) for nh in r.nexthops]


def _vrf_decision(topo: Topology, router: str, lfib: Any, vrf: str,
                  dst: IPv4Address | IPv6Address | None,
                  out_if: str | None) -> tuple[str, list[tuple[str, bool]]]:
    """The VRF route (FIB entry or a port's subnet) that decided, longest match; for an
    IPv6 destination the VRF's IPv6 routes and ports (6VPE, RFC 4659)."""
    node = topo.nodes[router]
    names = _names(topo)
    fib = dict(lfib.vrfs.get(vrf, {})) if lfib is not None else {}
    ports: dict[IPv4Network | IPv6Network, str] = {}
    if vrf in node.vrfs:
        for i in node.vrfs[vrf].interfaces:
            ifc = node.interfaces[i]
            ports[ifc.address.network] = i
            if ifc.address6 is not None:
                ports[ifc.address6.network] = i
    cands = [p for p in (*fib, *ports) if dst is not None and dst in p]
    if not cands:
        return f"VRF {vrf}", [(f"no route to {dst} in VRF {vrf}", True)]
    p = max(cands, key=lambda n: n.prefixlen)
    e = fib.get(p)
    title = f"VRF {vrf} {'IPv6 ' if p.version == 6 else ''}route (longest match for {dst})"
    if e is None or e.interface:
        port = e.interface if e is not None else ports[p]
        src = f" (VRF {e.vrf})" if e is not None and e.vrf else ""
        return title, [(f"{p} connected{src}, out {port}", True)]
    if e.source == "vpn":
        pe = {n.lsr_id: n.name for n in topo.routers}.get(e.pe, str(e.pe)) if e.pe else "?"
        return title, [(f"{p} from {pe} (RD {e.rd}, VPN label {e.vpn_label})  push "
                        f"{_labels(tuple(x for x in nh.out_labels if x != 3))} via "
                        f"{names.get(str(nh.neighbor), nh.neighbor)} {nh.interface}",
                        nh.interface == out_if)
                       for nh in e.nexthops]
    return title, [(f"{p} {e.source} via {nh.nexthop} ({nh.neighbor}) {nh.interface}",
                    nh.interface == out_if) for nh in e.nexthops]


def _why(lfib: Any, hop: dict[str, Any], rx: Headers | None) -> str | None:
    """Why the ILM next hop the packet took pops (net.pop_reason), from the LFIB row."""
    if rx is None or not rx.labels or hop["op"] not in ("pop", "swap"):
        return None
    e = lfib.ilm.get(rx.labels[0][0]) if lfib else None
    if e is None:
        return None
    for nh in e.nexthops:
        if nh.interface == hop["out_interface"]:
            return pop_reason(nh.op, hop["neighbor"], nh.out_labels)
    return None


def _replay(tables: Mapping[str, RouterTables], frame: bytes, router: str, in_if: str,
            n: int, frames: list[tuple[bytes | None, Forward | None, Any]]) -> None:
    """`decide` again along the walk, keeping every frame, until `frames` has n entries."""
    while len(frames) < n and len(frames) < MAX_HOPS:
        r = decide(frame, in_if, tables[router])
        if isinstance(r, Forward):
            frames.append((frame, r, r))
            oi = tables[router].interfaces[r.out_if]
            frame, router, in_if = r.frame, oi.peer_node, oi.peer_interface
        else:
            frames.append((frame, None, r))
            return


def _steps(topo: Topology, tables: Mapping[str, RouterTables], hops: list[dict[str, Any]],
           frames: list[tuple[bytes | None, Forward | None, Any]], first: Headers,
           flow: str, leg: str, first_rx: Headers | None = None) -> list[StepHop]:
    """StepHops of one leg; `first` is what the first router sends from (a bare IP
    packet), `first_rx` the headers its decision is explained with (default: `first`)."""
    steps = []
    for h, (rx, fw, res) in zip(hops, frames, strict=False):
        rxh = headers(rx) if rx is not None else first
        t = tables[h["router"]]
        basis = rxh if rx is not None else (first_rx or first)
        title, rows = decision(topo, t.rib, t.lfib, h, basis, t.v6.fib)
        if rx is None and first_rx is not None:
            title = f"sent on along the LSP (RFC 3032 §2.3.2), {title}"
        icmp = None
        replies = getattr(res, "replies", ())
        if replies:
            icmp = headers(replies[0].frame)
        ecmp = None
        if h.get("ecmp"):
            e = h["ecmp"]
            ecmp = (f"ECMP: hash 0x{e['hash']:08x} of ({flow}) mod {len(e['choices'])} = "
                    f"{e['index']} -> {e['choices'][e['index']]}")
        why = _why(t.lfib, h, basis)
        if h["table"] == "ilm" and basis.version == 6 and basis.labels and not t.v6.ifs:
            why = "\n".join(x for x in (why, P_ROUTER6) if x)
        steps.append(StepHop(h, rxh, headers(fw.frame) if fw is not None else None, rows,
                             title, icmp, why, ecmp, leg))
    return steps


def step_walk(topo: Topology, tables: Mapping[str, RouterTables], src: str, dst: str,
              proto: str = "icmp", ttl: int = 64, sport: int = 49152,
              dport: int = 33434, family: int = 4) -> tuple[dict[str, Any], list[StepHop]]:
    """The walk JSON and, per hop, the headers received/sent and the deciding row;
    then the hops of the ICMP error a router sent, if any (leg "icmp"). `family` 6
    (or an IPv6 address as SRC or DST): IPv6, as `forwarding.walk.walk`."""
    from forwarding.walk import make_packet, resolve_endpoint, walk

    if ":" in src or ":" in dst:
        family = 6
    w = walk(topo, tables, src, dst, proto, ttl, sport, dport, family)
    snode, saddr = resolve_endpoint(topo, src, family)
    _, daddr = resolve_endpoint(topo, dst, family, vrf=topo.vrf_of(snode))
    pkt = make_packet(saddr, daddr, proto, ttl, sport, dport)
    frames: list[tuple[bytes | None, Forward | None, Any]] = []  # (received, forward, result)
    n = topo.nodes[snode]
    if n.is_router:
        fw = originate(tables[snode], pkt)
        frames.append((None, fw, fw))
        if fw is not None:
            oi = tables[snode].interfaces[fw.out_if]
            _replay(tables, fw.frame, oi.peer_node, oi.peer_interface, len(w["hops"]), frames)
    else:
        (i,) = n.interfaces.values()
        router, in_if = i.peer_node, i.peer_interface
        rif = topo.interface(router, in_if)
        frame = (bytes.fromhex(rif.mac.replace(":", "")) + bytes.fromhex(i.mac.replace(":", ""))
                 + (b"\x86\xdd" if family == 6 else b"\x08\x00") + pkt)
        _replay(tables, frame, router, in_if, len(w["hops"]), frames)
    flow = flow_text(w)
    steps = _steps(topo, tables, w["hops"], frames, headers(pkt, ethernet=False), flow, "packet")
    last = w["hops"][-1] if w["hops"] else None
    replies = getattr(frames[-1][2], "replies", ()) if frames else ()
    if last is not None and last["icmp"] and last["icmp"].get("hops") and replies:
        ic = last["icmp"]
        rfw = replies[0]
        ip = rfw.frame[14 + 4 * len(rfw.labels_out):]
        iframes: list[tuple[bytes | None, Forward | None, Any]] = [(None, rfw, rfw)]
        oi = tables[last["router"]].interfaces[rfw.out_if]
        if topo.nodes[oi.peer_node].is_router:
            _replay(tables, rfw.frame, oi.peer_node, oi.peer_interface, len(ic["hops"]), iframes)
        # sent on along the LSP: explained by the dropped packet's ILM entry
        basis = steps[-1].received if ic.get("onward") else None
        steps += _steps(topo, tables, ic["hops"], iframes, headers(ip, ethernet=False),
                        f"{ic['src']} -> {ic['dst']}, {'icmpv6' if family == 6 else 'icmp'}",
                        "icmp", basis)
    return w, steps


# ---------------------------------------------------------------- rendering


def _headers_table(h: Headers, before: Headers | None = None) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    if h.eth:
        et = {0x8847: "MPLS unicast", 0x0800: "IPv4", 0x86DD: "IPv6"}.get(h.eth[2], "")
        t.add_row("Ethernet", f"{h.eth[1]} -> {h.eth[0]}  type 0x{h.eth[2]:04x} {et}")
    old = before.labels if before else None
    for k, (lbl, tc, s, ttl) in enumerate(h.labels):
        changed = old is None or k >= len(old) or old[k][0] != lbl
        txt = Text()
        txt.append(f"label {lbl}", style="bold yellow" if changed and before else "bold")
        txt.append(f"  TC {tc}  S {s}  TTL {ttl}")
        if lbl == 2:
            txt.append("  (IPv6 explicit-null)")
        t.add_row(f"MPLS [{k}]" if len(h.labels) > 1 else "MPLS", txt)
    if h.ip:
        txt = Text(f"{h.ip[0]} -> {h.ip[1]}  ")
        ttl_changed = before is not None and before.ip is not None and before.ip[2] != h.ip[2]
        txt.append(f"{'hop limit' if h.version == 6 else 'TTL'} {h.ip[2]}",
                   style="bold yellow" if ttl_changed else "")
        if h.ip6 is not None:
            tc, flow, nxt = h.ip6
            txt.append(f"  traffic class {tc}  flow label 0x{flow:05x}  next header {nxt}"
                       f" ({h.ip[3]})")
        else:
            txt.append(f"  {h.ip[3]}")
        t.add_row("IPv6" if h.version == 6 else "IPv4", txt)
    if h.l4:
        t.add_row(h.l4.split(" ", 1)[0], h.l4.split(" ", 1)[1])
    if h.ext_labels:
        t.add_row("RFC 4950", "label stack received: " + " ".join(
            f"{lbl} (TTL {ttl})" for lbl, _, _, ttl in h.ext_labels))
    return t


def render_step(s: StepHop, k: int, total: int) -> Panel:
    h = s.hop
    op = h["op"]
    color = {"push": "green", "swap": "yellow", "pop": "magenta", "forward": "blue",
             "deliver": "green", "drop": "red"}.get(op, "white")
    parts: list[Any] = []
    arrived = f"arrived on {h['in_interface']}" if h["in_interface"] else "originated here"
    parts.append(Text(f"in: {arrived}", style="dim"))
    if s.received is not None:
        parts.append(_headers_table(s.received))
    rule = Table.grid(padding=(0, 1))
    rule.add_column(no_wrap=True)
    rule.add_column()
    for text, chosen in s.rule:
        rule.add_row("=>" if chosen else "  ", Text(text, style="bold reverse" if chosen else "dim"))
    parts.append(Text(f"decided by: {s.rule_title}", style="dim"))
    parts.append(rule)
    if s.ecmp:
        parts.append(Text(s.ecmp, style="cyan"))
    if s.why:
        parts.append(Text(s.why, style="magenta"))
    if s.sent is not None:
        parts.append(Text(f"out: {h['out_interface']} -> {h['neighbor']}", style="dim"))
        parts.append(_headers_table(s.sent, s.received or Headers(None, [], None)))
    if s.icmp is not None:
        i = h["icmp"]
        parts.append(Text(f"sent {icmp_name(i)} {i['type']}/{i['code']} {i['src']} -> {i['dst']} "
                          f"via {i['out_interface']}", style="red"))
        parts.append(_headers_table(s.icmp))
    leg = "ICMP hop" if s.leg == "icmp" else "hop"
    title = Text.assemble((f"{leg} {k}/{total}  ", "bold"), (h["router"], "bold"), "  ",
                          (op.upper(), f"bold {color}"),
                          f"  {_labels(h['labels_in'])} -> {_labels(h['labels_out'])}"
                          if op in ("push", "swap", "pop") else "",
                          f"  ({h['reason']})" if h["reason"] else "")
    return Panel(Group(*parts), title=title, title_align="left", border_style=color)


def _wait_key(console: Console) -> bool:
    """Wait for a key on an interactive stdin; False when the user pressed q."""
    import click

    console.print("[dim](any key: next hop, q: quit)[/]", end="")
    ch = click.getchar()
    console.print()
    return ch not in ("q", "Q", "\x03", "\x1b")


def run_steps(steps: list[StepHop], walk_json: dict[str, Any], console: Console,
              delay: float | None = None, interactive: bool | None = None,
              sleep: Callable[[float], None] = time.sleep) -> None:
    """Print the hops one by one: a key press between hops on a terminal, or
    `delay` seconds; non-interactive stdin never waits for keys."""
    if interactive is None:
        interactive = sys.stdin.isatty()
    w = walk_json
    legs = [[s for s in steps if s.leg == "packet"], [s for s in steps if s.leg == "icmp"]]
    what = f"{w['proto']}v6, hop limit" if ":" in w["src"] else f"{w['proto']}, TTL"
    console.print(f"[bold]{w['src']} -> {w['dst']}[/] ({what} {w['ttl']}) "
                  f"on {w['topology']}: {len(legs[0])} hops")
    shown = 0
    for leg in legs:
        if leg and leg[0].leg == "icmp":
            dropped = legs[0][-1].hop
            console.print(Text(f"then the {icmp_title(dropped)}: {len(leg)} hops",
                               style="bold red"))
        for k, s in enumerate(leg, 1):
            console.print(render_step(s, k, len(leg)))
            shown += 1
            if shown == len(steps):
                break
            if delay is not None:
                sleep(delay)
            elif interactive and not _wait_key(console):
                return
    if legs[1]:
        console.print(f"ICMP error: [bold]{legs[0][-1].hop['icmp']['result']}[/]")
    console.print(f"result: [bold]{w['result']}[/]")


def show_trace(topo: Topology, tables: Mapping[str, RouterTables], src: str, dst: str,
               proto: str = "icmp", ttl: int = 64, delay: float | None = None,
               console: Console | None = None, sport: int = 49152, dport: int = 33434,
               family: int = 4) -> None:
    """`lsr sim trace --step [--delay S]` (`family` 6: `-6`)."""
    from lsr import render

    w, steps = step_walk(topo, tables, src, dst, proto, ttl, sport, dport, family)
    run_steps(steps, w, console or render.console, delay)
