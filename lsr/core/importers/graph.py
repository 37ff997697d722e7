"""GML and GraphML graphs (Topology Zoo maps and the like) as our topologies.

Every node of the graph becomes an `lsr` router named after its `label` (else its id),
made a valid name ('New York' -> 'new-york'); every edge a link with interfaces `eth1`,
`eth2`, ... in edge order. Self-loops are left out; a graph in several pieces keeps its
largest (our routers must form one IGP domain); a directed graph's edges are taken as
undirected (one link per pair and direction pair). Costs: 10, or an edge attribute's
value (`cost_attr`, rounded, 1..65535), or OSPF-style from a bandwidth attribute in bit/s
(`bandwidth_attr`, e.g. Topology Zoo's `LinkSpeedRaw`: reference / bandwidth, 100 Gbit/s
by default: 10G -> 10, 1G -> 100); an edge without it gets 10, said in the notes.

Hosts (`hosts`): N hosts (default 2) on the routers farthest apart (the ends of the
graph's diameter by cost, then each next one farthest from those chosen), or one on every
leaf router (`"leaves"`), or none (0). Each is `ce-<router>` on its router's next
interface, so `lsr lab up Abilene.gml` gives a lab where ce-... pings ce-... across the
whole map.

Pure: reads the one file; networkx parses it (imported here only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx

from lsr.core.importers import LAB_MAX, dump, sanitize, unique

SUFFIXES = (".gml", ".graphml")
DEFAULT_COST = 10
REFERENCE_BW = 100_000_000_000  # bit/s: OSPF-style cost = reference / bandwidth
DEFAULT_HOSTS = 2


class GraphError(Exception):
    """The file is no graph we can use (one line)."""


def read_graph(path: str | Path) -> nx.MultiGraph:
    """The file's graph (GML or GraphML by suffix) as an undirected multigraph."""
    p = Path(path)
    suffix = p.suffix.lower()
    notes: list[str] = []
    try:
        if suffix == ".gml":
            g = _read_gml(p, notes)
        elif suffix == ".graphml":
            g = nx.read_graphml(p)
        else:
            raise GraphError(f"not a graph file (expected {' or '.join(SUFFIXES)})")
    except FileNotFoundError:
        raise GraphError("no such file") from None
    except GraphError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise GraphError(f"cannot read: {e}") from None
    except Exception as e:  # networkx raises NetworkXError, ValueError, ET.ParseError, ...
        kind = "GML" if suffix == ".gml" else "GraphML"
        raise GraphError(f"not a valid {kind} file: {' '.join(str(e).split())}") from None
    if g.is_directed():
        seen: set[frozenset[Any]] = set()
        und = nx.MultiGraph()
        und.graph.update(g.graph)
        und.add_nodes_from(g.nodes(data=True))
        for u, v, data in g.edges(data=True):
            pair = frozenset((u, v))
            if pair in seen and not g.is_multigraph():
                continue  # u->v and v->u: one link
            seen.add(pair)
            und.add_edge(u, v, **data)
        notes.append("directed graph: edges taken as undirected links")
        g = und
    else:
        g = nx.MultiGraph(g)
    g.graph["lsr_notes"] = notes
    return g


def _read_gml(p: Path, notes: list[str]) -> nx.Graph:
    """networkx's GML reader (labels may repeat: nodes by id), and for a file with an edge
    twice but no `multigraph 1` (several Topology Zoo maps), the edges as parallel links."""
    try:
        return nx.read_gml(p, label="id")
    except nx.NetworkXError as e:
        if "is duplicated" not in str(e):
            raise
    text = p.read_text()
    g = nx.parse_gml(text.replace("graph [", "graph [\n  multigraph 1", 1), label="id")
    notes.append("an edge appears twice: parallel links")
    return g


def _number(v: Any) -> float | None:
    if isinstance(v, list):  # GML repeats a key as a list
        v = v[0] if v else None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _lab_name(g: nx.MultiGraph, path: Path) -> str:
    for key in ("label", "Network", "name"):
        v = g.graph.get(key)
        if isinstance(v, str) and v.strip():
            return sanitize(v, LAB_MAX, "lab")
    return sanitize(path.stem, LAB_MAX, "lab")


def _costs(g: nx.MultiGraph, cost_attr: str | None, bandwidth_attr: str | None,
           reference_bw: int, notes: list[str]) -> dict[tuple[Any, Any, Any], int]:
    out: dict[tuple[Any, Any, Any], int] = {}
    missing = clamped = 0
    for u, v, k, data in g.edges(keys=True, data=True):
        cost = DEFAULT_COST
        if cost_attr or bandwidth_attr:
            x = _number(data.get(cost_attr or bandwidth_attr))
            if x is None or x <= 0:
                missing += 1
            else:
                raw = x if cost_attr else reference_bw / x
                cost = int(raw + 0.5)  # half up: 2.5 -> 3
                if not 1 <= cost <= 65535:
                    clamped += 1
                    cost = min(65535, max(1, cost))
        out[(u, v, k)] = cost
    attr = cost_attr or bandwidth_attr
    if missing:
        notes.append(f"{missing} of {g.number_of_edges()} edges have no usable '{attr}': "
                     f"cost {DEFAULT_COST}")
    if clamped:
        notes.append(f"{clamped} costs from '{attr}' clamped to 1..65535")
    if bandwidth_attr:
        notes.append(f"costs: {reference_bw / 1e9:g} Gbit/s / '{bandwidth_attr}' (bit/s)")
    elif cost_attr:
        notes.append(f"costs: edge attribute '{cost_attr}'")
    return out


def _pick_hosts(g: nx.MultiGraph, cost: dict[tuple[Any, Any, Any], int], hosts: int | str,
                order: list[Any]) -> list[Any]:
    """The routers that get a host: see the module docstring."""
    if hosts == "leaves":
        return [n for n in order if g.degree(n) == 1]
    n_hosts = int(hosts)
    if n_hosts <= 0:
        return []
    if n_hosts > len(order):
        raise GraphError(f"{n_hosts} hosts asked, the graph has {len(order)} routers")
    w = nx.Graph()
    w.add_nodes_from(order)
    for (u, v, _k), c in cost.items():
        if not w.has_edge(u, v) or w[u][v]["cost"] > c:
            w.add_edge(u, v, cost=c)
    rank = {n: i for i, n in enumerate(order)}
    dist = dict(nx.all_pairs_dijkstra_path_length(w, weight="cost"))
    a, b = max(((u, v) for u in order for v in order if rank[u] < rank[v]),
               key=lambda p: (dist[p[0]][p[1]], -rank[p[0]], -rank[p[1]]),
               default=(order[0], order[0]))
    chosen = [a] if a == b else [a, b]
    while len(chosen) < n_hosts:
        nxt = max((n for n in order if n not in chosen),
                  key=lambda n: (min(dist[n][c] for c in chosen), -rank[n]))
        chosen.append(nxt)
    return chosen[:n_hosts]


def graph_document(g: nx.MultiGraph, path: Path, cost_attr: str | None = None,
                   bandwidth_attr: str | None = None, reference_bw: int = REFERENCE_BW,
                   hosts: int | str = DEFAULT_HOSTS) -> tuple[dict[str, Any], list[str]]:
    """Our topology document for graph `g` (read from `path`), and notes."""
    notes = list(g.graph.get("lsr_notes", []))
    g = nx.MultiGraph(g)
    loops = list(nx.selfloop_edges(g, keys=True))
    if loops:
        g.remove_edges_from(loops)
        notes.append(f"{len(loops)} self-loop edge(s) left out")
    if g.number_of_nodes() == 0:
        raise GraphError("the graph has no nodes")
    parts = sorted(nx.connected_components(g), key=len, reverse=True)
    if len(parts) > 1:
        order_all = list(g.nodes)
        keep = max(parts, key=lambda c: (len(c), -min(order_all.index(n) for n in c)))
        left = [n for n in order_all if n not in keep]
        labels = [str(g.nodes[n].get("label", n)) for n in left]
        notes.append(f"the graph is in {len(parts)} pieces: kept the largest ({len(keep)} "
                     f"nodes), left out {len(left)}: {', '.join(labels[:6])}"
                     + (", ..." if len(labels) > 6 else ""))
        g = g.subgraph(keep).copy()
    order = list(g.nodes)
    taken: set[str] = set()
    names: dict[Any, str] = {}
    for n in order:
        label = g.nodes[n].get("label", n)
        if isinstance(label, list):
            label = label[0]
        names[n] = unique(sanitize(label, fallback="r"), taken)
    renamed = [f"{g.nodes[n].get('label', n)!s} -> {names[n]}" for n in order
               if str(g.nodes[n].get("label", n)) != names[n]]
    if renamed:
        notes.append("routers: " + ", ".join(renamed[:8]) + (", ..." if len(renamed) > 8 else ""))
    cost = _costs(g, cost_attr, bandwidth_attr, reference_bw, notes)
    nodes: dict[str, dict[str, Any]] = {names[n]: {} for n in order}
    next_if = dict.fromkeys(order, 1)
    links: list[dict[str, Any]] = []
    for (u, v, _k), c in cost.items():
        a, b = f"{names[u]}:eth{next_if[u]}", f"{names[v]}:eth{next_if[v]}"
        next_if[u] += 1
        next_if[v] += 1
        link: dict[str, Any] = {"endpoints": [a, b]}
        if c != DEFAULT_COST:
            link["cost"] = c
        links.append(link)
    hosted = _pick_hosts(g, cost, hosts, order)
    for r in hosted:
        h = unique(sanitize(f"ce-{names[r]}"), taken)
        nodes[h] = {"kind": "host"}
        links.append({"endpoints": [f"{h}:eth0", f"{names[r]}:eth{next_if[r]}"]})
        next_if[r] += 1
    if hosted:
        notes.append("hosts on " + ", ".join(names[r] for r in hosted))
    elif hosts == "leaves":
        notes.append("no leaf router (degree 1): no hosts")
    return {"name": _lab_name(g, path), "topology": {"nodes": nodes, "links": links}}, notes


def to_yaml(path: str | Path, name: str | None = None, **options: Any) -> tuple[str, list[str]]:
    """The graph file as our topology YAML (what `lsr topo import` writes) and notes;
    `name`: the lab's instead of the graph's."""
    p = Path(path)
    doc, notes = graph_document(read_graph(p), p, **options)
    if name is not None:
        doc["name"] = name
    header = [f"Imported by `lsr topo import` from {p.name} (a {p.suffix[1:].upper()} graph).",
              *notes]
    return dump(doc, header), notes
