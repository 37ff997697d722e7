"""`lsr report`: one self-contained HTML page about a lab or a simulated topology.

The page follows one packet (`forwarding.walk`: by default the longest walk
between two hosts, `lsr.teach.packet.pick_walk`):

- a header: the topology file and its SHA-256, the lsr version, when the page
  was generated, where the tables come from, the validation summary;
- `#walk`, "This packet": the walk hop by hop and the table rows each hop
  used (FTN / ILM row, the LDP binding behind it, why it pops, the ECMP
  choice), each linked to the highlighted row in its router's tables;
- `#topology`: the picture (`lsr.teach.draw`) with the walk's LSP; a big
  topology is drawn compact (costs only on the links) so it stays readable
  when printed on one page;
- `#lfib`: FTN, ILM and LDP bindings of the routers on the walk, the rows the
  packet used highlighted;
- `#validation` (`lsr.oam.validate`) and `#links` (nodes and links);
- `#appendix`: the other routers' tables in a `<details>`, open when they are
  few; a big appendix is closed and left out of print.

Inline CSS with print rules (A4 landscape); no scripts, no external
resources. Sections are `SECTIONS` entries (id, title, builder): a new one
is one more entry.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lsr.teach.net import Network, lsp_hops, resolve_fec
from lsr.teach.packet import WALK_RULE, Choice, Used, anchor, has_ipv6, pick_walk, used_rows

# Off-path routers' tables are printed (and their <details> open) up to this many rows;
# above it they are in the HTML page only, so a big topology prints in a few pages.
APPENDIX_PRINT_ROWS = 400
COMPACT_ROUTERS = 8  # above this many routers the picture is drawn compact

CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #d5dbe5; --head: #eef2f8;
        --pass: #1a7f37; --fail: #c62828; --skip: #9a6700; --used: #fff1a8; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1400px; padding: 1.5em 2em; }
h1 { font-size: 1.7em; margin: 0 0 .2em; }
h2 { font-size: 1.3em; margin: 1.6em 0 .5em; border-bottom: 2px solid var(--line);
     padding-bottom: .2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .3em; }
p.meta, .muted { color: var(--muted); }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4em 1.2em; }
nav a, td a { color: #2b5d8a; text-decoration: none; }
table { border-collapse: collapse; margin: .3em 0 1em; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: .25em .6em; text-align: left;
         vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, td.mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
tr.used td { background: var(--used); font-weight: 600; }
tr.used td:first-child::before { content: "\\25B6 "; color: #b35900; }
.inuse { font-weight: 700; }
.used-label { background: var(--used); font-weight: 700; padding: 0 .2em; }
.figure { border: 1px solid var(--line); border-radius: 6px; padding: .5em; overflow-x: auto;
          background: #fff; margin: 0; }
.figure svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); margin-top: .4em; }
.router { margin-bottom: 1em; }
.lfib { display: flex; flex-wrap: wrap; gap: 0 1.5em; align-items: flex-start; }
.lfib .lib { flex: 1 1 0; min-width: 20em; }
.lib td:nth-child(-n+2) { white-space: nowrap; }
.status-pass { color: var(--pass); font-weight: 600; }
.status-fail { color: var(--fail); font-weight: 700; }
.status-skip { color: var(--skip); }
.op-push { color: #1a7f37; font-weight: 600; }
.op-swap { color: #9a6700; font-weight: 600; }
.op-pop, .op-untagged { color: #8250df; font-weight: 600; }
.op-drop { color: var(--fail); font-weight: 700; }
.summary { display: inline-block; padding: .2em .7em; border-radius: 4px; font-weight: 700; }
.summary.pass { background: #dafbe1; color: var(--pass); }
.summary.fail { background: #ffebe9; color: var(--fail); }
details > summary { cursor: pointer; font-weight: 600; margin: .5em 0; }
.print-only { display: none; }
@media print {
  body { max-width: none; padding: 0; font-size: 9.5pt; }
  nav { display: none; }
  h2 { break-after: avoid; margin-top: 1em; }
  h3 { break-after: avoid; }
  table { font-size: 8pt; margin-bottom: .6em; }
  code, td.mono { font-size: 7.5pt; }
  th, td { padding: .1em .4em; }
  tr { break-inside: avoid; }
  .figure { border: none; overflow: visible; padding: 0; }
  body.big #topology { break-before: page; break-after: page; }
  body.big #topology > h2 { display: none; }
  body.big #topology .figure svg { display: block; margin: 0 auto; width: auto; height: auto;
                          max-width: 100%; max-height: 176mm; }
  figcaption { font-size: 8pt; }
  .lfib { gap: 0 .8em; flex-wrap: nowrap; }
  .lfib .lib { min-width: 0; }
  .print-omit { display: none; }
  .print-only { display: block; }
  a { color: inherit; text-decoration: none; }
  tr.used td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .used-label { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  @page { size: A4 landscape; margin: 10mm; }
}
"""


def _e(x: object) -> str:
    return html.escape("" if x is None else str(x), quote=True)


Cell = Any  # a value, or ("html", markup)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Cell]],
           classes: Sequence[str] = (), row_attrs: Sequence[str] | None = None) -> str:
    """An HTML table; `row_attrs[k]` is extra markup for row k's <tr> (class, id)."""
    out = ["<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers)
           + "</tr></thead><tbody>"]
    n = 0
    for k, r in enumerate(rows):
        n += 1
        cells = []
        for j, v in enumerate(r):
            cls = classes[j] if j < len(classes) else ""
            body = v[1] if isinstance(v, tuple) and len(v) == 2 and v[0] == "html" else _e(v)
            cells.append(f"<td class=\"{cls}\">{body}</td>" if cls else f"<td>{body}</td>")
        attrs = row_attrs[k] if row_attrs is not None and k < len(row_attrs) else ""
        out.append(f"<tr{attrs}>" + "".join(cells) + "</tr>")
    if n == 0:
        out.append(f"<tr><td colspan=\"{len(headers)}\" class=\"muted\">(none)</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _labels(xs: Sequence[int]) -> str:
    return " ".join(str(x) for x in xs) if xs else "-"


def _op(op: str) -> tuple[str, str]:
    return ("html", f"<span class=\"op-{_e(op)}\">{_e(op)}</span>")


def _strip_ns(svg: str) -> str:
    """Inline SVG needs no namespace declarations in HTML; dropping them keeps
    the page free of any URL."""
    return re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)


def _used_attr(used: bool, ident: str) -> str:
    return f" class=\"used\" id=\"{_e(ident)}\"" if used else ""


# ---------------------------------------------------------------- what the page is about


@dataclass
class Ctx:
    """Everything the sections are built from."""

    net: Network
    choice: Choice | None
    walk: dict[str, Any] | None
    used: Used
    svg: str
    compact: bool
    overlay_title: str
    results: list[Any]
    summ: dict[str, Any]
    generated: datetime
    path_routers: list[str] = field(default_factory=list)
    other_routers: list[str] = field(default_factory=list)
    walk6: dict[str, Any] | None = None  # the same two ends over IPv6, when the walk is IPv4
    used6: Used = field(default_factory=Used)


def file_digest(path: str) -> str | None:
    """SHA-256 (first 16 hex digits) of the topology file, None if it cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def generation_time(now: datetime | None = None) -> datetime:
    """`now`, else $SOURCE_DATE_EPOCH (reproducible builds), else the clock; UTC."""
    if now is not None:
        return now.astimezone(UTC)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC)


def build(net: Network, src: str | None = None, dst: str | None = None,
          engine: str | None = None, now: datetime | None = None, family: int = 4) -> str:
    """The HTML page (a str)."""
    return build_report(net, src, dst, engine, now, family)[0]


def build_report(net: Network, src: str | None = None, dst: str | None = None,
                 engine: str | None = None, now: datetime | None = None,
                 family: int = 4) -> tuple[str, Choice | None]:
    """The HTML page and the walk it follows (None: fewer than two nodes). `family` 6
    (or an IPv6 address as SRC or DST): the walk is IPv6; an IPv4 walk between two nodes
    that both have IPv6 addresses is followed by the same walk over IPv6."""
    from lsr.errors import LsrError
    from lsr.oam.validate import CheckResult, summary, validate, walk_ping, walk_trace
    from lsr.teach import draw

    topo = net.topo
    igp = net.igp
    tables = net.tables()
    if any(":" in x for x in (src or "", dst or "")):
        family = 6
    w6 = None
    try:
        choice = pick_walk(net, tables, src, dst, family)
        w = None
        if choice is not None:
            from forwarding.walk import walk

            w = walk(topo, tables, choice.src, choice.dst, family=family, down=net.down)
            if (family == 4 and all(x in topo.nodes and has_ipv6(topo, x)
                                    for x in (choice.src, choice.dst))):
                w6 = walk(topo, tables, choice.src, choice.dst, family=6, down=net.down)
    except ValueError as e:
        raise LsrError(f"{topo.source}: {e}") from None
    overlays = []
    if w is not None and w["hops"] and choice is not None:
        if (choice.src in topo.nodes and topo.vrf_of(choice.src) is not None) or ":" in w["dst"]:
            # a VPN or IPv6 packet: its whole label stack on each link (transport label over
            # the VPN or 6PE label)
            overlays.append(draw.walk_overlay(w, draw.COLORS[0],
                                              f"packet {choice.src} -> {choice.dst}"))
        else:
            fec = resolve_fec(topo, w["dst"])
            overlays.append(draw.lsp_overlay(net, lsp_hops(net, w["hops"][0]["router"], fec),
                                             draw.COLORS[0]))
    compact = len(topo.routers) > COMPACT_ROUTERS
    eng = engine or draw.choose_engine(topo)
    try:
        svg = _strip_ns(draw.svg_inline(draw.dot_source(net, overlays, eng, compact=compact),
                                        eng))
    except Exception as e:  # noqa: BLE001  (Graphviz missing or failing: the tables remain)
        svg = f"<p class=\"muted\">(no picture: {_e(e)})</p>"
    # what did not converge (named, with its cause) before the LSPs it breaks
    results = [CheckResult("invariant control-plane", "fail", p) for p in net.problems]
    trace = walk_trace(topo, net.lfibs, igp)
    results += validate(topo, net.lfibs, igp, ping=walk_ping(topo, net.lfibs, igp, trace),
                        trace=trace)
    if topo.has_ipv6:  # 6PE's IPv6 routes and reachability (lsr validate's)
        from lsr.oam.sixpe_check import sixpe_results

        results += sixpe_results(topo, net.lfibs, igp, net.fib6s)
    used = used_rows(net, w) if w is not None else Used()
    used6 = used_rows(net, w6) if w6 is not None else Used()
    used.merge(used6)
    path = [r for r in used.routers() if topo.nodes[r].is_router]
    path += [r for r in used6.routers() if topo.nodes[r].is_router and r not in path]
    ctx = Ctx(net, choice, w, used, svg, compact, overlays[0].title if overlays else "",
              results, summary(results), generation_time(now), path,
              [r.name for r in topo.routers if r.name not in path], w6, used6)
    h = [_head(ctx), "<nav><ul>" + "".join(f"<li><a href=\"#{k}\">{_e(t)}</a></li>"
                                           for k, t, _ in sections(topo)) + "</ul></nav>"]
    for ident, title, builder in sections(topo):
        h.append(f"<section id=\"{ident}\"><h2>{_e(title)}</h2>{builder(ctx)}</section>")
    h.append("<footer class=\"muted\"><p>Generated by <code>lsr report</code>.</p></footer>")
    h.append("</body></html>\n")
    return "\n".join(h), choice


def _head(ctx: Ctx) -> str:
    import lsr

    topo, net, summ = ctx.net.topo, ctx.net, ctx.summ
    digest = file_digest(topo.source)
    down = ", ".join(topo.link_name(topo.links[i]) for i in sorted(net.down))
    when = ctx.generated.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>lsr report: {_e(topo.name)}</title><style>{CSS}</style></head>"
        + ("<body class=\"big\">" if ctx.compact else "<body>")
        + f"<header><h1>MPLS lab report: {_e(topo.name)}</h1>"
        f"<p class=\"meta\">topology file: <code>{_e(topo.source)}</code> (sha256 "
        f"<code>{_e(digest or 'unreadable')}</code>) · generated {_e(when)} by lsr "
        f"{_e(lsr.__version__)} · tables from: {_e(net.source)} · "
        f"{len(topo.routers)} routers, {len(topo.hosts)} hosts, {len(topo.links)} links"
        + (f" · links down: {_e(down)}" if down else "")
        + " · validation: <span class=\"summary "
        f"{'fail' if summ['failed'] else 'pass'}\">{_e(summ['result'])}</span></p></header>")


# ---------------------------------------------------------------- sections


def _walk_section(ctx: Ctx) -> str:
    w, c = ctx.walk, ctx.choice
    if w is None or c is None:
        return "<p class=\"muted\">(fewer than two nodes to walk between)</p>"
    v6 = ":" in w["src"]
    what = "An ICMPv6 echo" if v6 else "An ICMP echo"
    h = [f"<p>{what} from <b>{_e(c.src)}</b> ({_e(w['src'])}) to <b>{_e(c.dst)}</b> "
         f"({_e(w['dst'])}), {'hop limit' if v6 else 'TTL'} {_e(w['ttl'])}, walked through the "
         "forwarding plane router by "
         f"router: <span class=\"summary {'pass' if w['result'] == 'delivered' else 'fail'}\">"
         f"{_e(w['result'])}</span>. Why this packet: {_e(c.why)} (default rule: {_e(WALK_RULE)};"
         " <code>--from</code>/<code>--to</code> pick another, <code>-6</code> an IPv6 one)."
         "</p>"]
    h.append(_hops_table(w))
    h.append("<h3>The table rows this packet used</h3><p>Each hop's FTN or ILM row (highlighted "
             "in the router's tables below: follow the link) and the LDP binding it came from: "
             "the label a router pushes or swaps in is the one its next hop advertised."
             + (" IPv6 crosses the IPv4 core labelled: the ingress's 6PE or VRF route pushes "
                "LDP's label over the egress's 6PE or VPN label (RFC 4798, RFC 4659)."
                if v6 else "") + "</p>")
    h.append(_used_table([r for r in ctx.used.rows if r.leg == "packet"]))
    icmp = [r for r in ctx.used.rows if r.leg == "icmp"]
    if icmp:
        h.append("<h3>The ICMP error, back to the source</h3>")
        h.append(_used_table(icmp))
    w6 = ctx.walk6
    if w6 is not None:
        h.append(f"<h3 id=\"walk6\">The same two nodes over IPv6</h3><p>An ICMPv6 echo from "
                 f"{_e(w6['src'])} to {_e(w6['dst'])}, hop limit {_e(w6['ttl'])}: "
                 f"<span class=\"summary {'pass' if w6['result'] == 'delivered' else 'fail'}\">"
                 f"{_e(w6['result'])}</span>. It crosses the IPv4 core labelled: the ingress "
                 "pushes LDP's label over the egress's 6PE or VPN label (RFC 4798, RFC 4659); "
                 "P routers switch on the top label and never look at IPv6.</p>")
        h.append(_hops_table(w6))
        h.append(_used_table([r for r in ctx.used6.rows if r.leg == "packet"]))
    return "".join(h)


def _hops_table(w: dict[str, Any]) -> str:
    rows = [(k, hp["router"], hp["in_interface"] or "(local)", _labels(hp["labels_in"]),
             _op(hp["op"]), _labels(hp["labels_out"]), f"{hp['ttl_in']} → {hp['ttl']}",
             hp["out_interface"] or "", hp["neighbor"] or "", hp["reason"] or "")
            for k, hp in enumerate(w["hops"], 1)]
    return _table(["hop", "router", "in", "labels in", "op", "labels out",
                   "hop limit" if ":" in w["src"] else "TTL", "out", "to", "drop reason"], rows,
                  ["num", "", "mono", "mono", "", "mono", "mono", "mono", "", ""])


def _used_table(rows: Sequence[Any]) -> str:
    names = {"ftn": "FTN", "ilm": "ILM", "rib": "IP route", "vrf": "VRF route",
             "vpn": "VPN label", None: ""}
    six = {True: "6PE route", False: "6PE label"}

    def entry(r: Any) -> Cell:
        name = six[":" in r.key] if r.table == "6pe" else names[r.table]
        txt = f"{name} {r.key}".strip() + (
            f" (FEC {r.fec})" if r.table == "ilm" and r.fec else "")
        return ("html", f"<a href=\"#{_e(r.anchor)}\">{_e(txt)}</a>") if r.anchor else txt

    return _table(["hop", "router", "table row", "action", "LDP binding", "why"],
                  [(r.hop, r.router, entry(r), r.action, r.binding, r.why) for r in rows],
                  ["num", "", "mono", "mono", "mono", ""])


def _topology_section(ctx: Ctx) -> str:
    cap = ""
    if ctx.overlay_title:
        what = ("Links show their IGP cost (subnets and interfaces: see Nodes and links)"
                if ctx.compact else "Each link shows its subnet, IGP cost and both ends")
        cap = (f"<figcaption>Highlighted: the LSP of the packet in This packet "
               f"({_e(ctx.overlay_title)}). {what}; LSP links show the hop number and the "
               "label operation of the router sending on it.</figcaption>")
    return f"<figure class=\"figure\">{ctx.svg}{cap}</figure>"


def _router_tables(ctx: Ctx, r: str) -> tuple[str, int]:
    """FTN and ILM side by side, then the LIB; (markup, number of rows)."""
    net, used = ctx.net, ctx.used
    node = net.topo.nodes[r]
    d = net.lfib_json["routers"].get(r, {"ftn": [], "ilm": [], "lsr_id": node.lsr_id})
    ftn, attrs = [], []
    for e in d["ftn"]:
        for k, nh in enumerate(e["nexthops"]):
            u = (r, e["fec"], nh["neighbor"]) in used.ftn
            ftn.append((e["fec"] if k == 0 else "", _op("push") if nh["out_labels"] else "-",
                        _labels(nh["out_labels"]), nh["neighbor"], nh["interface"],
                        nh["nexthop"]))
            attrs.append(_used_attr(u, anchor("ftn", r, e["fec"])))
    ilm, iattrs = [], []
    for e in d["ilm"]:
        for k, nh in enumerate(e["nexthops"]):
            u = (r, e["in_label"], nh["neighbor"]) in used.ilm
            ilm.append((e["in_label"] if k == 0 else "", e["fec"] if k == 0 else "",
                        _op(nh.get("op", "swap")), _labels(nh["out_labels"]), nh["neighbor"],
                        nh["interface"], nh["nexthop"]))
            iattrs.append(_used_attr(u, anchor("ilm", r, e["in_label"])))
    # which neighbours' labels the FTN uses (the IGP next hops): in use, the rest retained
    nexthops: dict[str, set[str]] = {}
    for e in d["ftn"]:
        nexthops[e["fec"]] = {nh["neighbor"] for nh in e["nexthops"]}
    lib, lattrs = [], []
    for e in net.bindings.get(r, []):
        cells = []
        row_used = False
        for rm in e.get("remote") or []:
            txt = f"{_e(rm['neighbor'])} {_e(_label(rm['label']))}"
            if (r, e["fec"], rm["neighbor"]) in used.lib:
                row_used = True
                txt = f"<span class=\"used-label\">{txt}</span>"
            elif rm["neighbor"] in nexthops.get(e["fec"], ()):
                txt = f"<span class=\"inuse\">{txt}</span>"
            cells.append(txt)
        lib.append((e["fec"], _label(e.get("local_label")), ("html", " · ".join(cells) or "-")))
        lattrs.append(_used_attr(row_used, anchor("lib", r, e["fec"])))
    h = [f"<div class=\"router\" id=\"lfib-{_e(r)}\"><h3>{_e(r)} "
         f"<span class=\"muted\">({_e(d.get('lsr_id', node.lsr_id))})</span></h3>"
         "<div class=\"lfib\"><div><div class=\"muted\">FTN</div>",
         _table(["FEC", "op", "push", "via", "interface", "next hop"], ftn,
                ["mono", "", "mono num", "", "mono", "mono"], attrs),
         "</div><div><div class=\"muted\">ILM</div>",
         _table(["in", "FEC", "op", "out", "via", "interface", "next hop"], ilm,
                ["mono num", "mono", "", "mono num", "", "mono", "mono"], iattrs),
         "</div><div class=\"lib\"><div class=\"muted\">LDP bindings (LIB)</div>",
         _table(["FEC", "local", "remote labels (neighbour label)"], lib,
                ["mono", "mono num", "mono"], lattrs), "</div></div></div>"]
    return "".join(h), len(ftn) + len(ilm) + len(lib)


def _label(x: int | None) -> str:
    if x is None:
        return "-"
    return {3: "imp-null", 0: "exp-null"}.get(x, str(x))


LFIB_HELP = ("<p>FTN: FEC &rarr; label pushed at the ingress ('-': unlabelled, the next hop is "
             "the egress). ILM: incoming label &rarr; swap, pop (PHP: the next hop is the egress "
             "and advertised implicit-null) or untagged (no label from the next hop yet: pop "
             "and route). One row per ECMP next hop. LDP bindings: the router's own label per "
             "FEC and every label its neighbours advertised (liberal retention keeps them all); "
             "<b>bold</b>: from an IGP next hop, so in the FTN/ILM. Rows the packet used are "
             "<span class=\"used-label\">highlighted</span>.</p>")


def _lfib_section(ctx: Ctx) -> str:
    if not ctx.path_routers:
        return "<p class=\"muted\">(no router on the walk)</p>"
    return LFIB_HELP + "".join(_router_tables(ctx, r)[0] for r in ctx.path_routers)


def _validation_section(ctx: Ctx) -> str:
    summ = ctx.summ
    rows = [(r.check, ("html", f"<span class=\"status-{_e(r.status)}\">{_e(r.status)}</span>"),
             r.detail) for r in ctx.results]
    return (f"<p>{summ['passed']} passed, {summ['failed']} failed, {summ['skipped']} skipped "
            "(the file's <code>expect:</code> assertions and the built-in LSP invariants, "
            "<code>lsr validate</code>).</p>"
            + _table(["check", "status", "detail"], rows, ["", "", ""]))


def _links_section(ctx: Ctx) -> str:
    topo, net = ctx.net.topo, ctx.net
    rows = []
    for n in topo.nodes.values():
        ifs = ", ".join(f"{i.name} {i.address}" for i in n.interfaces.values())
        rows.append((n.name, n.kind, n.loopback or "", ifs))
    h = _table(["node", "kind", "loopback", "interfaces"], rows, ["", "", "mono", "mono"])
    rows = [(f"{lk.a[0]}:{lk.a[1]}", f"{lk.b[0]}:{lk.b[1]}", lk.subnet, lk.cost, lk.mtu,
             "down" if lk.index in net.down else "up") for lk in topo.links]
    return h + _table(["end A", "end B", "subnet", "cost", "MTU", "state"], rows,
                      ["mono", "mono", "mono", "num", "num", ""])


def _vrf_section(ctx: Ctx) -> str:
    """Each PE's VRFs: every route with where it goes and the stack it pushes (transport
    label over VPN label), and the VPN labels it allocated (RFC 4364)."""
    net = ctx.net
    h = ["<p>Each PE's VRF tables: a customer route "
         "goes out a port (connected, static) or to the egress PE over an LSP, pushing the "
         "LDP label of the egress PE's loopback and, under it, the VPN label the egress "
         "allocated (none of the LDP label when the egress is a neighbour: implicit-null). "
         "VPN labels: what this PE does with its own.</p><div class=\"routers\">"]
    for r in net.topo.routers:
        d = net.lfib_json["routers"].get(r.name, {})
        for name, fib in sorted(d.get("vrfs", {}).items()):
            v = r.vrfs.get(name)
            meta = f"RD {v.rd}, import {' '.join(v.import_rts)}, export {' '.join(v.export_rts)}" \
                if v else ""
            h.append(f"<div class=\"router\"><h3>{_e(r.name)} VRF {_e(name)} "
                     f"<span class=\"muted\">({_e(meta)})</span></h3>")
            rows, attrs = [], []
            for e in fib:
                u = _used_attr((r.name, name, e["prefix"]) in ctx.used.vrf,
                               anchor("vrf", r.name, f"{name}-{e['prefix']}"))
                if e["source"] == "vpn":
                    for k, nh in enumerate(e["nexthops"]):
                        rows.append((e["prefix"] if k == 0 else "", f"bgp {e.get('rd', '')}",
                                     _op("push"), _labels(nh["out_labels"]), nh["neighbor"],
                                     nh["interface"]))
                        attrs.append(u if k == 0 else u.replace(" id=", " data-id="))
                else:
                    where = e.get("interface") or ", ".join(n["nexthop"] for n in e["nexthops"])
                    rows.append((e["prefix"], e["source"], "-", "-", e.get("vrf", ""), where))
                    attrs.append(u)
            h.append(_table(["prefix", "source", "op", "push", "via", "interface"], rows,
                            ["mono", "mono", "", "mono num", "", "mono"], attrs))
            labs = [x for x in d.get("vpn_ilm", []) if x["vrf"] == name]
            rows = [(x["in_label"], x["prefix"] or "(VRF)",
                     f"pop, to {x['nexthops'][0]['neighbor']}" if x["nexthops"]
                     else f"pop, lookup in {name}") for x in labs]
            attrs = [_used_attr((r.name, x["in_label"]) in ctx.used.vpn,
                                anchor("vpn", r.name, x["in_label"])) for x in labs]
            h.append("<div class=\"muted\">VPN labels</div>")
            h.append(_table(["in", "prefix", "action"], rows, ["mono num", "mono", ""], attrs))
            h.append("</div>")
    h.append("</div>")
    return "".join(h)


def _sixpe_section(ctx: Ctx) -> str:
    """Each 6PE router's IPv6 routes (RFC 4798: BGP's labelled IPv6 routes over LDP) and
    the labels it pops; the rows the IPv6 walk used highlighted."""
    net, used = ctx.net, ctx.used
    fib6s = net.fib6s
    h = ["<p>6PE (RFC 4798): IPv6 customers across the IPv4 core. A PE learns each other "
         "PE's IPv6 subnets over BGP (labelled IPv6, next hop the egress's loopback as "
         "::ffff:a.b.c.d) and pushes LDP's label for that loopback over the label the egress "
         "bound (its 6PE label, or 2: IPv6 explicit-null). The P routers need no IPv6. "
         "6VPE's IPv6 routes are in the VRFs.</p>"]
    for r in net.topo.routers:
        f = fib6s.get(r.name)
        if f is None:
            continue
        rows, attrs = [], []
        for p in sorted(f.routes, key=lambda x: (int(x.network_address), x.prefixlen)):
            e = f.routes[p]
            for k, nh in enumerate(e.nexthops):
                rows.append((str(p) if k == 0 else "", e.egress or "", f"::ffff:{e.next_hop}",
                             _label6(e.label), _op("push"), _labels(nh.out_labels),
                             nh.neighbor, nh.interface))
                u = _used_attr((r.name, str(p)) in used.six, anchor("6pe", r.name, p))
                attrs.append(u if k == 0 else u.replace(" id=", " data-id="))
        for p, why in sorted(f.unresolved.items(), key=lambda x: str(x[0])):
            rows.append((str(p), "", "", "", _op("drop"), "-", why, ""))
            attrs.append("")
        h.append(f"<div class=\"router\" id=\"ipv6-{_e(r.name)}\"><h3>{_e(r.name)}</h3>")
        h.append(_table(["IPv6 prefix", "egress", "BGP next hop", "label bound", "op", "push",
                         "via", "interface"], rows,
                        ["mono", "", "mono", "mono num", "", "mono num", "", "mono"], attrs))
        labs = [(x, "pop, IPv6 lookup") for x in f.labels]
        h.append("<div class=\"muted\">6PE labels (pop, then the IPv6 table)</div>")
        h.append(_table(["in", "action"], labs, ["mono num", ""],
                        [_used_attr((r.name, x) in used.six_labels, anchor("6pelabel", r.name, x))
                         for x, _ in labs]))
        h.append("</div>")
    return "".join(h)


def _label6(x: int) -> str:
    return {2: "2 (IPv6 exp-null)", 3: "imp-null"}.get(x, str(x))


def _appendix_section(ctx: Ctx) -> str:
    if not ctx.other_routers:
        return "<p class=\"muted\">(every router is on the walk)</p>"
    parts = [_router_tables(ctx, r) for r in ctx.other_routers]
    rows = sum(n for _, n in parts)
    small = rows <= APPENDIX_PRINT_ROWS
    names = ", ".join(ctx.other_routers)
    attrs = " open" if small else ' class="print-omit"'
    h = [f"<details{attrs}>"
         f"<summary>FTN, ILM and LDP bindings of the {len(ctx.other_routers)} routers off the "
         f"walk ({_e(names)}; {rows} rows)</summary>", LFIB_HELP]
    h += [m for m, _ in parts]
    h.append("</details>")
    if not small:
        h.append(f"<p class=\"print-only muted\">Not printed: {rows} rows of {_e(names)} — "
                 "open the HTML page, or <code>lsr sim lfib FILE --router R</code> and "
                 "<code>lsr sim bindings FILE --router R</code>.</p>")
    return "".join(h)


Builder = Callable[[Ctx], str]
SECTIONS: list[tuple[str, str, Builder]] = [
    ("walk", "This packet", _walk_section),
    ("topology", "Topology", _topology_section),
    ("lfib", "Routers on the walk: FTN, ILM and LDP bindings", _lfib_section),
    ("validation", "Validation", _validation_section),
    ("links", "Nodes and links", _links_section),
    ("appendix", "Other routers", _appendix_section),
]


def sections(topo: Any) -> list[tuple[str, str, Builder]]:
    """SECTIONS, with the PEs' VRF tables after the routers' when the topology has VRFs."""
    out = list(SECTIONS)
    if any(r.vrfs for r in topo.routers):
        out.insert(3, ("vrfs", "VRFs", _vrf_section))
    if any(i.address6 is not None and i.vrf is None
           for r in topo.routers for i in r.interfaces.values()):
        out.insert(3, ("ipv6", "IPv6: 6PE routes and labels", _sixpe_section))
    return out
