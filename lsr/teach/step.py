"""`lsr sim trace --step`: the packet walk one hop at a time, headers and all.

The hop list is `forwarding.walk.walk()` (the same JSON as `lsr sim trace`);
to show the frames themselves the same walk is replayed with
`forwarding.plane.decide`, keeping every frame received and sent. Each hop
shows the frame as it arrived (Ethernet, every label stack entry with
label/TC/S/TTL, IPv4 src/dst/TTL), the table row that decided it (FTN, ILM,
or the IGP route for plain IP) with the chosen ECMP next hop marked (and the
hash that chose it), why a router pops, and the frame as it left, with the
fields that changed highlighted. When a router drops the packet with an ICMP
error, the error's own walk follows, hop by hop, to the packet's source.
"""

from __future__ import annotations

import struct
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from forwarding.labelops import LabelError, parse_stack
from forwarding.plane import Forward, decide, originate
from forwarding.tables import RouterTables
from lsr.core.igp import Route
from lsr.core.topology import Topology
from lsr.teach.net import pop_reason
from lsr.teach.walktext import flow_text, icmp_title

IP_PROTOS = {1: "icmp", 6: "tcp", 17: "udp"}
MAX_HOPS = 64


@dataclass
class Headers:
    """The decoded headers of one frame (or of a bare IP packet: eth is None)."""

    eth: tuple[str, str, int] | None  # (dst MAC, src MAC, ethertype)
    labels: list[tuple[int, int, int, int]]  # (label, TC, S, TTL), top first
    ip: tuple[str, str, int, str] | None  # (src, dst, TTL, protocol)


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def headers(frame: bytes, ethernet: bool = True) -> Headers:
    eth = None
    off = 0
    etype = 0x0800
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
    ip = None
    if len(frame) >= off + 20 and frame[off] >> 4 == 4:
        ip = (str(IPv4Address(frame[off + 12:off + 16])), str(IPv4Address(frame[off + 16:off + 20])),
              frame[off + 8], IP_PROTOS.get(frame[off + 9], str(frame[off + 9])))
    return Headers(eth, labels, ip)


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
             rx: Headers | None) -> tuple[str, list[tuple[str, bool]]]:
    """(title, rows) of the FTN / ILM / RIB entry behind a hop; `chosen` marks
    the NHLFE (ECMP member) the packet took."""
    title, rows = _decision(topo, rib, lfib, hop, rx)
    if hop["op"] == "drop":
        rows = [(t, False) for t, _ in rows] + [(f"dropped: {hop['reason']}", True)]
    return title, rows


def _decision(topo: Topology, rib: Mapping[IPv4Network, Route], lfib: Any, hop: dict[str, Any],
              rx: Headers | None) -> tuple[str, list[tuple[str, bool]]]:
    out_if = hop["out_interface"]
    labelled = bool(rx and rx.labels)
    names = {str(n.lsr_id): n.name for n in topo.routers}

    def nb(x: str) -> str:
        return names.get(str(x), str(x))

    if hop["op"] == "deliver":
        return "delivered", [("for this router (one of its addresses)", True)]
    if labelled and rx is not None and rx.labels[0][0] != 0:
        top = rx.labels[0][0]
        e = lfib.ilm.get(top) if lfib else None
        if e is None:
            return "ILM", [(f"no entry for label {top}", True)]
        rows = [(f"in {top}  FEC {e.fec}  {nh.op}"
                 + (f" {_labels(nh.out_labels)}" if nh.out_labels else "")
                 + f" via {nb(nh.neighbor)} {nh.interface} {nh.nexthop}", nh.interface == out_if)
                for nh in e.nexthops]
        return f"ILM entry for label {top}", rows
    ip = rx.ip if rx is not None and rx.ip else None
    dst = IPv4Address(ip[1]) if ip else None
    pre = "explicit-null popped; " if labelled else ""
    if dst is None:
        return "?", [("not IPv4", True)]
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
        title, rows = decision(topo, t.rib, t.lfib, h, basis)
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
        steps.append(StepHop(h, rxh, headers(fw.frame) if fw is not None else None, rows,
                             title, icmp, _why(t.lfib, h, basis), ecmp, leg))
    return steps


def step_walk(topo: Topology, tables: Mapping[str, RouterTables], src: str, dst: str,
              proto: str = "icmp", ttl: int = 64, sport: int = 49152,
              dport: int = 33434) -> tuple[dict[str, Any], list[StepHop]]:
    """The walk JSON and, per hop, the headers received/sent and the deciding row;
    then the hops of the ICMP error a router sent, if any (leg "icmp")."""
    from forwarding.walk import make_packet, resolve_endpoint, walk

    w = walk(topo, tables, src, dst, proto, ttl, sport, dport)
    snode, saddr = resolve_endpoint(topo, src)
    _, daddr = resolve_endpoint(topo, dst)
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
                 + b"\x08\x00" + pkt)
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
                        f"{ic['src']} -> {ic['dst']}, icmp", "icmp", basis)
    return w, steps


# ---------------------------------------------------------------- rendering


def _headers_table(h: Headers, before: Headers | None = None) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    if h.eth:
        et = {0x8847: "MPLS unicast", 0x0800: "IPv4"}.get(h.eth[2], "")
        t.add_row("Ethernet", f"{h.eth[1]} -> {h.eth[0]}  type 0x{h.eth[2]:04x} {et}")
    old = before.labels if before else None
    for k, (lbl, tc, s, ttl) in enumerate(h.labels):
        changed = old is None or k >= len(old) or old[k][0] != lbl
        txt = Text()
        txt.append(f"label {lbl}", style="bold yellow" if changed and before else "bold")
        txt.append(f"  TC {tc}  S {s}  TTL {ttl}")
        t.add_row(f"MPLS [{k}]" if len(h.labels) > 1 else "MPLS", txt)
    if h.ip:
        txt = Text(f"{h.ip[0]} -> {h.ip[1]}  ")
        ttl_changed = before is not None and before.ip is not None and before.ip[2] != h.ip[2]
        txt.append(f"TTL {h.ip[2]}", style="bold yellow" if ttl_changed else "")
        txt.append(f"  {h.ip[3]}")
        t.add_row("IPv4", txt)
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
        parts.append(Text(f"sent ICMP {i['type']}/{i['code']} {i['src']} -> {i['dst']} "
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
    console.print(f"[bold]{w['src']} -> {w['dst']}[/] ({w['proto']}, TTL {w['ttl']}) "
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
               console: Console | None = None, sport: int = 49152, dport: int = 33434) -> None:
    """`lsr sim trace --step [--delay S]`."""
    from lsr import render

    w, steps = step_walk(topo, tables, src, dst, proto, ttl, sport, dport)
    run_steps(steps, w, console or render.console, delay)
