"""Topologies from where people have them: containerlab files and GML/GraphML graphs.

* `containerlab`: a containerlab topology (`kinds:`, `groups:`, `image:`, `kind: linux`,
  vendor kinds, `mgmt:`) converted to ours before validation; `load_topology` does it for
  any file it recognises (the hook in `lsr.core.topology`), `lsr topo import` writes the
  result out.
* `graph`: a GML or GraphML graph (Topology Zoo maps): every node a router, hosts
  attached to chosen routers, costs from an edge attribute.

Both are pure: they read the file they are given and nothing else. What they map, rename
or ignore is said in `notes` (one line each), printed by the CLI. Shared here: the name
rules and the YAML writer of `lsr topo import`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

NAME_MAX = 15  # node names (lsr.core.topology.MAX_NODE_NAME)
LAB_MAX = 12  # lab names (lsr.core.topology.MAX_LAB_NAME)


def sanitize(name: Any, maxlen: int = NAME_MAX, fallback: str = "n") -> str:
    """A name made valid for us: lowercase letters, digits and '-', starting with a letter,
    at most `maxlen` characters ('New York' -> 'new-york', 'PC1' -> 'pc1')."""
    s = re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")
    if not s or not s[0].isalpha():
        s = f"{fallback}-{s}" if s else fallback
    return s[:maxlen].rstrip("-")


def unique(name: str, taken: set[str], maxlen: int = NAME_MAX) -> str:
    """`name`, or `name-2`, `name-3`, ... (shortened to fit) if taken; recorded in `taken`."""
    out, k = name, 1
    while out in taken:
        k += 1
        tail = f"-{k}"
        out = name[:maxlen - len(tail)].rstrip("-") + tail
    taken.add(out)
    return out


def _flow(v: Any) -> str:
    """One YAML value on one line (flow style)."""
    text = yaml.safe_dump(v, default_flow_style=True, width=1 << 30, sort_keys=False)
    return text.removesuffix("\n...\n").strip()


_PLAIN_EP = re.compile(r"^[a-z][a-z0-9-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _endpoints(v: Any) -> str:
    """`[pe1:eth2, p1:eth1]` as in our files (PyYAML would quote each)."""
    if isinstance(v, list) and all(isinstance(e, str) and _PLAIN_EP.match(e) for e in v):
        return "[" + ", ".join(v) + "]"
    return _flow(v)


def dump(doc: dict[str, Any], header: list[str]) -> str:
    """Our topology document as YAML a person can read: a comment header, one line per node
    and per link key; other sections in block style."""
    out = [f"# {h}".rstrip() for h in header]
    out.append(f"name: {_flow(doc['name'])}")
    topo = doc["topology"]
    out.append("topology:")
    if topo.get("defaults"):
        out.append(f"  defaults: {_flow(topo['defaults'])}")
    out.append("  nodes:")
    for n, cfg in topo["nodes"].items():
        out.append(f"    {_flow(n)}: {_flow(cfg or {})}")
    if topo.get("links"):
        out.append("  links:")
        for link in topo["links"]:
            first = True
            for k, v in link.items():
                val = _endpoints(v) if k == "endpoints" else _flow(v)
                out.append(f"    {'- ' if first else '  '}{k}: {val}")
                first = False
    rest = {k: v for k, v in doc.items() if k not in ("name", "topology")}
    if rest:
        out.append(yaml.safe_dump(rest, default_flow_style=False, sort_keys=False).rstrip())
    return "\n".join(out) + "\n"
