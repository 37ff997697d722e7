"""Diagrams of a topology and of its LSPs, as Graphviz DOT text.

`dot_source()` writes the DOT; `render()` runs the Graphviz binary (`dot` for
small topologies drawn left to right, `neato` for bigger meshes) by
subprocess. Routers are blue rounded boxes with their loopback, hosts yellow
boxes with their address; every link shows its subnet and IGP cost in the
middle and, at each end, the interface name and the host part of its
address ("eth2 .1"). An LSP colours the links it uses, arrows point
downstream, and each link carries the hop number(s) and the label
operation of the router sending on it ("2: swap 17->24"); all ECMP branches
are drawn. Down links are dashed grey; a link whose OSPF adjacency or LDP
session did not come up is dashed red with the cause written on it. A packet walk
(`walk_overlay`) shows the whole label stack on each link, so a VPN packet's two
labels are visible hop by hop; a VRF's ports and hosts are marked with the VRF's name.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from lsr.core.topology import Link, Topology
from lsr.errors import LsrError
from lsr.oam.diagnose import BGP, LDP, OSPF, Stuck
from lsr.teach.net import Hop, LspTrace, Network, egress_text, egresses, op_text

STUCK_COLOR = "#c62828"  # a session or adjacency that did not come up
COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
FORMATS = ("svg", "png", "pdf", "dot")


@dataclass
class Overlay:
    """One LSP or FEC tree drawn over the topology."""

    title: str
    color: str
    # (router, out interface, neighbour) -> text lines (hop numbers and operations)
    edges: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    nodes: dict[str, list[str]] = field(default_factory=dict)  # node -> note lines


def lsp_overlay(net: Network, tr: LspTrace, color: str) -> Overlay:
    ov = Overlay(f"LSP {tr.ingress} -> {tr.fec}", color)
    for (depths, hop) in tr.edges().values():
        ov.edges[(hop.router, hop.interface, hop.neighbor)] = [f"{','.join(map(str, sorted(depths)))}: {hop.text}"]
    ov.nodes[tr.ingress] = ["ingress"]
    for r in egresses(net.topo, tr.fec):
        if any(br[-1] == r for br in tr.branches):
            ov.nodes.setdefault(r, []).append(f"egress: {egress_text(net, r)}")
    if tr.problems:
        ov.title += " BROKEN: " + "; ".join(tr.problems[:2])
    return ov


def fec_overlay(net: Network, fec: IPv4Network, hops: Sequence[Hop], color: str) -> Overlay:
    ov = Overlay(f"every LSP to {fec}", color)
    for h in hops:
        lines = ov.edges.setdefault((h.router, h.interface, h.neighbor), [])
        t = h.text if h.op != "push" else op_text("push", None, h.out_labels)
        if t not in lines:
            lines.append(t)
    for r in egresses(net.topo, fec):
        ov.nodes.setdefault(r, []).append(f"egress: {egress_text(net, r)}")
    return ov


def walk_overlay(walk: dict, color: str, title: str = "") -> Overlay:
    """A packet walk (`forwarding.walk` JSON) drawn hop by hop: each link the packet is
    sent on carries the hop number and what the sender did, with the whole label stack
    ("1: push 2005/5101" for a VPN packet: transport label over the VPN label)."""
    ov = Overlay(f"{title or 'packet ' + walk['src'] + ' -> ' + walk['dst']}: {walk['result']}",
                 color)
    for k, h in enumerate(walk["hops"], 1):
        if h["out_interface"] and h["neighbor"]:
            stack = "/".join(str(x) for x in (h["labels_out"] or h["labels_in"]))
            op = h["op"] + (f" {stack}" if stack and h["op"] != "forward" else "")
            ov.edges.setdefault((h["router"], h["out_interface"], h["neighbor"]), []).append(
                f"{k}: {op}")
        elif h["op"] == "drop":
            ov.nodes.setdefault(h["router"], []).append(f"{k}: drop ({h['reason']})")
    return ov


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def choose_engine(topo: Topology) -> str:
    """`dot` (layered, left to right) for small labs, `neato` for meshes."""
    return "dot" if len(topo.routers) <= 8 else "neato"


def _host_part(addr: object, net: IPv4Network) -> str:
    a = str(addr).split("/")[0]
    # the octets that differ from the network address, e.g. ".1" or ".0.6"
    na = str(net.network_address).split(".")
    aa = a.split(".")
    k = 0
    while k < 3 and aa[k] == na[k]:
        k += 1
    return "." + ".".join(aa[k:])


def dot_source(net: Network | Topology, overlays: Sequence[Overlay] = (),
               engine: str | None = None, title: str | None = None,
               compact: bool = False) -> str:
    """The DOT text of the topology (a Network adds down links) with overlays.

    `compact` (the report of a big topology, printed on one page): links show only
    their IGP cost and the LSP's operations (subnets and interfaces are in the
    report's tables), fonts are bigger and the layout tighter, so the text stays
    readable when the picture is shrunk to the page."""
    topo = net.topo if isinstance(net, Network) else net
    down = net.down if isinstance(net, Network) else set()
    stuck = net.stuck if isinstance(net, Network) else []
    engine = engine or choose_engine(topo)
    big = len(topo.routers) > 8
    lines = [f"digraph {_q(topo.name)} {{"]
    g = ['fontname="Helvetica"', f"fontsize={24 if compact else 14}", 'labelloc="t"',
         "outputorder=edgesfirst", 'bgcolor="white"', "pad=0.3"]
    if engine == "dot":
        g += ["rankdir=LR", "nodesep=0.6", "ranksep=1.3", "splines=true"]
    else:
        g += ["overlap=false", "splines=true", 'sep="+1"' if compact else 'sep="+20"',
              'esep="+1"' if compact else 'esep="+6"', "mode=major",
              "start=1", "epsilon=0.0001", "maxiter=5000"]
    head = title or f"{topo.name}"
    sub = [f"<font color='{o.color}'>{_e(o.title)}</font>" for o in overlays]
    if stuck:
        sub.append(f"<font color='{STUCK_COLOR}'>{_e(_stuck_title(stuck))}</font>")
        # a BGP session runs between loopbacks, on no one link: named under the title
        sub += [f"<font color='{STUCK_COLOR}'>{_e(s.text())}</font>" for s in stuck if s.kind == BGP]
    g.append("label=<<b>" + _e(head) + "</b>" + "".join("<br/>" + s for s in sub)
             + ("<br/><font point-size='18'>link: IGP cost" if compact else
                "<br/><font point-size='10'>link: subnet / IGP cost; node:interface .address")
             + ("; arrows: LSP hop n: label operation" if overlays else "") + "</font>>")
    lines.append("  graph [" + ", ".join(g) + "];")
    nf = 24 if compact else 11
    lines.append(f'  node [fontname="Helvetica", fontsize={nf}, margin="0.12,0.06"];')
    ef = 20 if compact else 9 if big else 10
    lines.append(f'  edge [fontname="Helvetica", fontsize={ef}, dir=none, color="#555555"];')
    sf = 17 if compact else 9  # second line of a node's label
    notes: dict[str, list[tuple[str, str]]] = {}
    for o in overlays:
        for n, ls in o.nodes.items():
            notes.setdefault(n, []).extend((o.color, x) for x in ls)
    for n in topo.nodes.values():
        extra = "".join(f"<br/><font color='{c}' point-size='{sf}'>{_e(x)}</font>"
                        for c, x in notes.get(n.name, []))
        if n.is_router:
            vrfs = "".join(f"<br/><font point-size='{sf}'>VRF {_e(v.name)} RD {_e(v.rd)}</font>"
                           for v in n.vrfs.values())
            lbl = (f"<<b>{_e(n.name)}</b><br/><font point-size='{sf}'>{_e(n.lsr_id)}</font>"
                   f"{vrfs}{extra}>")
            attrs = ['shape=box', 'style="rounded,filled"', 'fillcolor="#dbe9f6"',
                     'color="#2b5d8a"']
        else:
            addr = ", ".join(str(i.address) + (f", {i.address6}" if i.address6 else "")
                             for i in n.interfaces.values())  # IPv6 too (subnet6)
            vrf = topo.vrf_of(n.name)
            if vrf is not None:
                addr += f" (VRF {vrf})"
            lbl = f"<<b>{_e(n.name)}</b><br/><font point-size='{sf}'>{_e(addr)}</font>{extra}>"
            attrs = ["shape=box", 'style="filled"', 'fillcolor="#fff4c2"', 'color="#a08000"']
        lines.append(f"  {_q(n.name)} [label={lbl}, {', '.join(attrs)}];")
    for link in topo.links:
        lines += _link(topo, link, overlays, down, engine, ef, stuck, compact)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _stuck_title(stuck: Sequence[Stuck]) -> str:
    n = len(stuck)
    where = " (red dashes)" if any(s.kind != BGP for s in stuck) else ""
    return f"NOT converged: {n} session{'s' if n > 1 else ''} / adjacenc{'ies' if n > 1 else 'y'} " \
        f"down{where}"


def _stuck_on(link: Link, stuck: Sequence[Stuck]) -> list[str]:
    """What is stuck on this link: its OSPF adjacency, the LDP session of its two routers."""
    out = []
    for s in stuck:
        if s.kind == OSPF and s.link == link.index:
            out.append(f"OSPF not Full: {s.cause}")
        elif s.kind == LDP and {s.a, s.b} == set(link.nodes):
            out.append(f"LDP session down: {s.cause}")
    return out


def _link(topo: Topology, link: Link, overlays: Sequence[Overlay], down: set[int], engine: str,
          ef: int, stuck: Sequence[Stuck] = (), compact: bool = False) -> list[str]:
    """DOT lines of one link. Its label names the subnet, the cost and both ends
    (node:interface .address), then the LSP operations sent on it. (Interface
    labels at the edge ends collide with each other and with the middle label,
    so the middle label carries them.) With neato the label is a plaintext node
    of its own, which overlap removal keeps clear of everything else."""
    (a, ai), (b, bi) = link.a, link.b
    ia, ib = topo.interface(a, ai), topo.interface(b, bi)
    both_routers = topo.nodes[a].is_router and topo.nodes[b].is_router
    mid = f"{link.subnet}" + (f" / {link.cost}" if both_routers else "") \
        + (f", {link.subnet6}" if link.subnet6 is not None else "")
    ends = (f"{a}:{ai} {_host_part(ia.address, link.subnet)} \u2014 "
            f"{b}:{bi} {_host_part(ib.address, link.subnet)}")
    if compact:
        label = [f"<font color='#444444'>{link.cost}</font>"] if both_routers else []
    else:
        label = [f"<font point-size='{ef - 1}' color='#444444'>{_e(mid)}<br/>{_e(ends)}</font>"]
    colors: list[str] = []
    fwd = back = False
    for o in overlays:
        for (x, xi, y), txt in o.edges.items():
            if (x, xi) not in (link.a, link.b) or y not in (a, b):
                continue
            colors.append(o.color)
            fwd = fwd or x == a
            back = back or x == b
            for t in txt:
                label.append(f"<font color='{o.color}'><b>{_e(t)}</b></font>")
    style: list[str] = []
    if link.index in down:
        style += ['style="dashed"', 'color="#aaaaaa"']
        label.append("<font color='#aa0000'><b>DOWN</b></font>")
    elif (why := _stuck_on(link, stuck)):
        style += ['style="dashed"', "penwidth=2"] + ([] if colors else [f'color="{STUCK_COLOR}"'])
        label += [f"<font color='{STUCK_COLOR}'><b>{_e(w)}</b></font>" for w in why]
    if colors:
        style += [f'color="{":".join(dict.fromkeys(colors))}"', "penwidth=2.5", "arrowsize=0.8"]
    lbl = "<" + "<br/>".join(label) + ">"
    if engine != "neato":
        d = "both" if fwd and back else ("forward" if fwd else ("back" if back else "none"))
        return [f"  {_q(a)} -> {_q(b)} [" + ", ".join([f"label={lbl}", f"dir={d}", *style])
                + "];"]
    m = _q(f"_link{link.index}")
    ln = 0.8 + min(link.cost, 100) / 80 if both_routers else 0.6
    if compact:
        ln = 0.5 if both_routers else 0.3
    extra = "".join(", " + x for x in style)
    return [
        f'  {m} [shape=plaintext, label={lbl}, margin="0.04,0.02", width=0, height=0];',
        f"  {_q(a)} -> {m} [len={ln:.2f}, dir={'back' if back else 'none'}{extra}];",
        f"  {m} -> {_q(b)} [len={ln:.2f}, dir={'forward' if fwd else 'none'}{extra}];",
    ]


def render(dot: str, fmt: str, engine: str = "dot", dpi: int = 96) -> bytes:
    """Run Graphviz: DOT text -> svg/png/pdf bytes."""
    if fmt == "dot":
        return dot.encode()
    if fmt not in FORMATS:
        raise LsrError(f"unknown output format '{fmt}' ({', '.join(FORMATS)})")
    exe = shutil.which(engine)
    if exe is None:
        raise LsrError(f"Graphviz '{engine}' is not installed (Debian: apt-get install graphviz)")
    args = [exe, f"-T{fmt}"]
    if fmt == "png":
        args.append(f"-Gdpi={dpi}")
    p = subprocess.run(args, input=dot.encode(), capture_output=True, timeout=120)
    if p.returncode != 0:
        raise LsrError(f"{engine} failed: {p.stderr.decode(errors='replace').strip()[:300]}")
    return p.stdout


def svg_inline(dot: str, engine: str) -> str:
    """SVG text without the XML prolog/doctype, for embedding in HTML."""
    svg = render(dot, "svg", engine).decode()
    k = svg.find("<svg")
    return svg[k:] if k >= 0 else svg
