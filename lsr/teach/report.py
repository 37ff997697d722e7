"""`lsr report`: one self-contained HTML page about a lab or a simulated topology.

Sections: the topology picture (inline SVG from `lsr.teach.draw`, with the
LSP the packet walk takes), nodes and links, every router's LFIB (FTN and
ILM), the LDP bindings, a packet walk between two hosts (`forwarding.walk`)
and the validation results (`lsr.oam.validate`). Inline CSS with print
rules; no scripts, no external resources.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

from lsr.teach.net import Network, lsp_hops, resolve_fec

CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #d5dbe5; --head: #eef2f8;
        --pass: #1a7f37; --fail: #c62828; --skip: #9a6700; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1200px; padding: 1.5em 2em; }
h1 { font-size: 1.7em; margin: 0 0 .2em; }
h2 { font-size: 1.3em; margin: 1.6em 0 .5em; border-bottom: 2px solid var(--line);
     padding-bottom: .2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .3em; }
p.meta, .muted { color: var(--muted); }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4em 1.2em; }
nav a { color: #2b5d8a; text-decoration: none; }
table { border-collapse: collapse; margin: .3em 0 1em; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: .25em .6em; text-align: left;
         vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, td.mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
.figure { border: 1px solid var(--line); border-radius: 6px; padding: .5em; overflow-x: auto;
          background: #fff; }
.figure svg { max-width: 100%; height: auto; }
.routers { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr));
           gap: 0 1.5em; }
.router { break-inside: avoid; }
.status-pass { color: var(--pass); font-weight: 600; }
.status-fail { color: var(--fail); font-weight: 700; }
.status-skip { color: var(--skip); }
.op-push { color: #1a7f37; font-weight: 600; }
.op-swap { color: #9a6700; font-weight: 600; }
.op-pop { color: #8250df; font-weight: 600; }
.op-drop { color: var(--fail); font-weight: 700; }
.summary { display: inline-block; padding: .2em .7em; border-radius: 4px; font-weight: 700; }
.summary.pass { background: #dafbe1; color: var(--pass); }
.summary.fail { background: #ffebe9; color: var(--fail); }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  nav { display: none; }
  h2 { break-after: avoid; }
  table, .router, .figure { break-inside: avoid; }
  .routers { display: block; }
  .figure { border: none; overflow: visible; }
  a { color: inherit; text-decoration: none; }
  @page { size: A4 landscape; margin: 12mm; }
}
"""

SECTIONS = [("topology", "Topology"), ("links", "Nodes and links"), ("lfib", "LFIBs"),
            ("bindings", "LDP bindings"), ("walk", "Packet walk"), ("validation", "Validation")]


def _e(x: object) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
           classes: Sequence[str] = ()) -> str:
    out = ["<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers)
           + "</tr></thead><tbody>"]
    n = 0
    for r in rows:
        n += 1
        cells = []
        for k, v in enumerate(r):
            cls = classes[k] if k < len(classes) else ""
            if isinstance(v, tuple) and len(v) == 2 and v[0] == "html":
                body = v[1]
            else:
                body = _e(v)
            cells.append(f"<td class=\"{cls}\">{body}</td>" if cls else f"<td>{body}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    if n == 0:
        out.append(f"<tr><td colspan=\"{len(headers)}\" class=\"muted\">(none)</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _labels(xs: Sequence[int]) -> str:
    return " ".join(str(x) for x in xs) if xs else "-"


def _vrf_section(net: Network) -> list[str]:
    """Each PE's VRFs: every route with where it goes and the stack it pushes (transport
    label over VPN label), and the VPN labels it allocated (RFC 4364)."""
    h = ["<section id=\"vrfs\"><h2>VRFs</h2><p>Each PE's VRF tables: a customer route "
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
            rows = []
            for e in fib:
                if e["source"] == "vpn":
                    for k, nh in enumerate(e["nexthops"]):
                        rows.append((e["prefix"] if k == 0 else "", f"bgp {e.get('rd', '')}",
                                     _op("push"), _labels(nh["out_labels"]), nh["neighbor"],
                                     nh["interface"]))
                else:
                    where = e.get("interface") or ", ".join(n["nexthop"] for n in e["nexthops"])
                    rows.append((e["prefix"], e["source"], "-", "-", e.get("vrf", ""), where))
            h.append(_table(["prefix", "source", "op", "push", "via", "interface"], rows,
                            ["mono", "mono", "", "mono num", "", "mono"]))
            labs = [x for x in d.get("vpn_ilm", []) if x["vrf"] == name]
            rows = [(x["in_label"], x["prefix"] or "(VRF)",
                     f"pop, to {x['nexthops'][0]['neighbor']}" if x["nexthops"]
                     else f"pop, lookup in {name}") for x in labs]
            h.append("<div class=\"muted\">VPN labels</div>")
            h.append(_table(["in", "prefix", "action"], rows, ["mono num", "mono", ""]))
            h.append("</div>")
    h.append("</div></section>")
    return h


def _op(op: str) -> tuple[str, str]:
    return ("html", f"<span class=\"op-{_e(op)}\">{_e(op)}</span>")


def _strip_ns(svg: str) -> str:
    """Inline SVG needs no namespace declarations in HTML; dropping them keeps
    the page free of any URL."""
    return re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)


def pick_hosts(net: Network, src: str | None, dst: str | None) -> tuple[str, str] | None:
    hosts = [h.name for h in net.topo.hosts]
    if src and dst:
        return src, dst
    if len(hosts) >= 2:
        a = src or hosts[0]
        if dst is None and a in net.topo.nodes and net.topo.vrf_of(a) is not None:
            # a VPN site: walk to another site of its VPN on another PE
            vrf, pe = net.topo.vrf_of(a), net.topo.pe_of(a)
            same = [h for h in hosts if h != a and net.topo.vrf_of(h) == vrf]
            other = [h for h in same if net.topo.pe_of(h) != pe]
            if other or same:
                return a, (other or same)[0]
        return a, dst or next(h for h in hosts if h != a)
    routers = [r.name for r in net.topo.routers]
    if len(routers) >= 2:
        return src or routers[0], dst or routers[-1]
    return None


def build(net: Network, src: str | None = None, dst: str | None = None,
          engine: str | None = None) -> str:
    """The HTML page (a str)."""
    from forwarding.tables import build_all
    from forwarding.walk import walk
    from lsr.oam.validate import summary, validate, walk_ping, walk_trace
    from lsr.teach import draw

    topo = net.topo
    igp = net.igp
    ribs = igp.ribs()
    pair = pick_hosts(net, src, dst)
    walk_json: dict[str, Any] | None = None
    overlays = []
    if pair is not None:
        tables = build_all(topo, ribs, net.lfibs)
        try:
            walk_json = walk(topo, tables, pair[0], pair[1])
        except ValueError as e:
            from lsr.errors import LsrError

            raise LsrError(f"{topo.source}: {e}") from None
        first = walk_json["hops"][0]["router"] if walk_json["hops"] else None
        if pair[0] in topo.nodes and topo.vrf_of(pair[0]) is not None:  # a VPN packet
            overlays.append(draw.walk_overlay(walk_json, draw.COLORS[0],
                                              f"packet {pair[0]} -> {pair[1]}"))
        elif first is not None:
            fec = resolve_fec(topo, walk_json["dst"])
            overlays.append(draw.lsp_overlay(net, lsp_hops(net, first, fec), draw.COLORS[0]))
    eng = engine or draw.choose_engine(topo)
    try:
        svg = _strip_ns(draw.svg_inline(draw.dot_source(net, overlays, eng), eng))
    except Exception as e:  # Graphviz missing or failing: the page still has the tables
        svg = f"<p class=\"muted\">(no picture: {_e(e)})</p>"
    trace = walk_trace(topo, net.lfibs, igp)
    results = validate(topo, net.lfibs, igp, ping=walk_ping(topo, net.lfibs, igp, trace),
                       trace=trace)
    summ = summary(results)

    h: list[str] = []
    h.append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">")
    h.append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
    h.append(f"<title>lsr report: {_e(topo.name)}</title><style>{CSS}</style></head><body>")
    h.append(f"<header><h1>MPLS lab report: {_e(topo.name)}</h1>")
    down = ", ".join("-".join(topo.links[i].nodes) for i in sorted(net.down))
    h.append(f"<p class=\"meta\">source: {_e(topo.source)} · tables from: {_e(net.source)} · "
             f"{len(topo.routers)} routers, {len(topo.hosts)} hosts, {len(topo.links)} links"
             + (f" · links down: {_e(down)}" if down else "")
             + " · validation: <span class=\"summary "
             f"{'fail' if summ['failed'] else 'pass'}\">"
             f"{_e(summ['result'])}</span></p></header>")
    secs = list(SECTIONS)
    if any(r.vrfs for r in topo.routers):
        secs.insert(3, ("vrfs", "VRFs"))
    h.append("<nav><ul>" + "".join(f"<li><a href=\"#{k}\">{_e(t)}</a></li>" for k, t in secs)
             + "</ul></nav>")

    h.append("<section id=\"topology\"><h2>Topology</h2>")
    if overlays:
        h.append(f"<p>Highlighted: the LSP taken by the packet walk below ({_e(overlays[0].title)})"
                 ". Each link shows its subnet, IGP cost and both ends; LSP links show the "
                 "hop number and the label operation of the router sending on it.</p>")
    h.append(f"<div class=\"figure\">{svg}</div></section>")

    h.append("<section id=\"links\"><h2>Nodes and links</h2>")
    rows = []
    for n in topo.nodes.values():
        ifs = ", ".join(f"{i.name} {i.address}" for i in n.interfaces.values())
        rows.append((n.name, n.kind, n.loopback or "", ifs))
    h.append(_table(["node", "kind", "loopback", "interfaces"], rows, ["", "", "mono", "mono"]))
    rows = [(f"{lk.a[0]}:{lk.a[1]}", f"{lk.b[0]}:{lk.b[1]}", lk.subnet, lk.cost, lk.mtu,
             "down" if lk.index in net.down else "up") for lk in topo.links]
    h.append(_table(["end A", "end B", "subnet", "cost", "MTU", "state"], rows,
                    ["mono", "mono", "mono", "num", "num", ""]))
    h.append("</section>")

    h.append("<section id=\"lfib\"><h2>LFIBs</h2><p>FTN: FEC &rarr; label pushed at the "
             "ingress ('-': unlabelled, the next hop is the egress). ILM: incoming label &rarr; "
             "swap or pop (PHP). One row per ECMP next hop.</p><div class=\"routers\">")
    for r in topo.routers:
        d = net.lfib_json["routers"].get(r.name, {"ftn": [], "ilm": [], "lsr_id": r.lsr_id})
        h.append(f"<div class=\"router\" id=\"lfib-{_e(r.name)}\"><h3>{_e(r.name)} "
                 f"<span class=\"muted\">({_e(d.get('lsr_id', r.lsr_id))})</span></h3>")
        rows = [(e["fec"] if k == 0 else "", _op("push") if nh["out_labels"] else "-",
                 _labels(nh["out_labels"]), nh["neighbor"], nh["interface"], nh["nexthop"])
                for e in d["ftn"] for k, nh in enumerate(e["nexthops"])]
        h.append("<div class=\"muted\">FTN</div>")
        h.append(_table(["FEC", "op", "push", "via", "interface", "next hop"], rows,
                        ["mono", "", "mono num", "", "mono", "mono"]))
        rows = [(e["in_label"] if k == 0 else "", e["fec"] if k == 0 else "", _op(nh["op"]),
                 _labels(nh["out_labels"]), nh["neighbor"], nh["interface"], nh["nexthop"])
                for e in d["ilm"] for k, nh in enumerate(e["nexthops"])]
        h.append("<div class=\"muted\">ILM</div>")
        h.append(_table(["in", "FEC", "op", "out", "via", "interface", "next hop"], rows,
                        ["mono num", "mono", "", "mono num", "", "mono", "mono"]))
        h.append("</div>")
    h.append("</div></section>")

    if any(r.vrfs for r in topo.routers):
        h += _vrf_section(net)

    h.append("<section id=\"bindings\"><h2>LDP bindings</h2><p>The LIB of each router: its "
             "local label per FEC (3 = implicit-null, 0 = explicit-null) and every label its "
             "neighbours advertised (liberal retention keeps them all).</p>"
             "<div class=\"routers\">")
    for r in topo.routers:
        rows = []
        for e in net.bindings.get(r.name, []):
            remote = e.get("remote") or [None]
            for k, rm in enumerate(remote):
                rows.append((e["fec"] if k == 0 else "",
                             ("-" if e["local_label"] is None else e["local_label"]) if k == 0
                             else "", rm["neighbor"] if rm else "-", rm["label"] if rm else "-"))
        h.append(f"<div class=\"router\"><h3>{_e(r.name)}</h3>")
        h.append(_table(["FEC", "local", "neighbour", "remote label"], rows,
                        ["mono", "mono num", "", "mono num"]))
        h.append("</div>")
    h.append("</div></section>")

    h.append("<section id=\"walk\"><h2>Packet walk</h2>")
    if walk_json is None:
        h.append("<p class=\"muted\">(fewer than two nodes to walk between)</p>")
    else:
        w = walk_json
        h.append(f"<p>An ICMP echo from <b>{_e(pair[0] if pair else '')}</b> ({_e(w['src'])}) to "
                 f"<b>{_e(pair[1] if pair else '')}</b> ({_e(w['dst'])}), TTL {_e(w['ttl'])}, "
                 f"walked through the forwarding plane router by router: "
                 f"<span class=\"summary {'pass' if w['result'] == 'delivered' else 'fail'}\">"
                 f"{_e(w['result'])}</span></p>")
        rows = [(k, hp["router"], hp["in_interface"] or "(local)", _labels(hp["labels_in"]),
                 _op(hp["op"]), _labels(hp["labels_out"]), f"{hp['ttl_in']} → {hp['ttl']}",
                 hp["out_interface"] or "", hp["neighbor"] or "", hp["reason"] or "")
                for k, hp in enumerate(w["hops"], 1)]
        h.append(_table(["hop", "router", "in", "labels in", "op", "labels out", "TTL", "out",
                         "to", "drop reason"], rows,
                        ["num", "", "mono", "mono", "", "mono", "mono", "mono", "", ""]))
    h.append("</section>")

    h.append("<section id=\"validation\"><h2>Validation</h2>")
    h.append(f"<p>{summ['passed']} passed, {summ['failed']} failed, {summ['skipped']} skipped "
             f"(the file's <code>expect:</code> assertions and the built-in LSP invariants, "
             f"<code>lsr validate</code>).</p>")
    rows = [(r.check, ("html", f"<span class=\"status-{_e(r.status)}\">{_e(r.status)}</span>"),
             r.detail) for r in results]
    h.append(_table(["check", "status", "detail"], rows, ["", "", ""]))
    h.append("</section>")
    h.append("<footer class=\"muted\"><p>Generated by <code>lsr report</code>.</p></footer>")
    h.append("</body></html>\n")
    return "\n".join(h)
