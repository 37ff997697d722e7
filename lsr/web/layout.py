"""Where the page draws each node: the layout of `lsr draw` (Graphviz), scaled to the page.

The positions come from Graphviz laying out `lsr.teach.draw.dot_source` (the same
engine and spacing as `lsr draw`: `dot` left to right for small labs, `neato` for
meshes), read back as `-Tjson`. Without Graphviz, networkx's spring layout
(seeded: the same picture every time).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import networkx as nx

from lsr.core.topology import Topology
from lsr.teach.draw import choose_engine, dot_source

WIDTH = 1000.0  # the page's drawing is WIDTH wide; its height follows the layout
MIN_HEIGHT_RATIO = 0.3  # a flat (one-rank) layout is stretched up to this height / width
MAX_STRETCH = 2.5
MARGIN = 60.0


def graphviz_positions(topo: Topology) -> dict[str, tuple[float, float]] | None:
    """Node centres from Graphviz (y grows upwards), or None without Graphviz."""
    engine = choose_engine(topo)
    exe = shutil.which(engine)
    if exe is None:
        return None
    try:
        p = subprocess.run([exe, "-Tjson"], input=dot_source(topo, engine=engine).encode(),
                           capture_output=True, timeout=60)
        doc = json.loads(p.stdout) if p.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    out = {}
    for o in doc.get("objects", []):
        if o.get("name") in topo.nodes and "pos" in o:
            x, y = (float(v) for v in o["pos"].split(",")[:2])
            out[o["name"]] = (x, y)
    return out if len(out) == len(topo.nodes) else None


def spring_positions(topo: Topology) -> dict[str, tuple[float, float]]:
    g = nx.Graph()
    g.add_nodes_from(topo.nodes)
    g.add_edges_from(link.nodes for link in topo.links)
    pos = nx.spring_layout(g, seed=1)
    return {n: (float(x), float(y)) for n, (x, y) in pos.items()}


def fit(raw: dict[str, tuple[float, float]], width: float = WIDTH,
        margin: float = MARGIN) -> tuple[dict[str, tuple[float, float]], float]:
    """Scale raw positions (y up) into a drawing `width` wide with y growing downwards;
    returns (positions, height)."""
    xs = [p[0] for p in raw.values()]
    ys = [p[1] for p in raw.values()]
    w = max(xs) - min(xs) or 1.0
    h = max(ys) - min(ys)
    sx = (width - 2 * margin) / w
    sy = sx
    if h and h * sy < MIN_HEIGHT_RATIO * width:  # a flat picture: room between ranks
        sy = min(sx * MAX_STRETCH, MIN_HEIGHT_RATIO * width / h)
    height = h * sy + 2 * margin
    return ({n: (round(margin + (x - min(xs)) * sx, 1), round(margin + (max(ys) - y) * sy, 1))
             for n, (x, y) in raw.items()}, round(height, 1))


def positions(topo: Topology) -> tuple[dict[str, tuple[float, float]], float]:
    """Every node's centre in a WIDTH-wide drawing, and the drawing's height."""
    return fit(graphviz_positions(topo) or spring_positions(topo))
