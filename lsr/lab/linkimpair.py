"""Link impairments of a running lab: `lsr lab link NAME A B set|clear|show`.

The impairment in force on each link is the topology file's, or the last one set at run
time, recorded in the lab's state (`impairments`: link index -> parameters, null when
cleared) so that a router started again (`lsr lab node ... start`) applies it too. Each
`lsr` router at an end of the link applies it (lsr.lab.node_impair says which direction
each one takes); a link with no `lsr` router at either end cannot be impaired.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lsr.core.impair import Impairment, update
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.lab import netns
from lsr.lab.state import LabState

Query = Callable[..., Any]  # lsr.lab.query(name, router, op, **params)


def in_force(topo: Topology, state: dict[str, Any], idx: int) -> Impairment | None:
    """The impairment link `idx` has now: set at run time, else the file's."""
    runtime = state.get("impairments", {})
    if str(idx) in runtime:
        raw = runtime[str(idx)]
        return Impairment.from_json(raw) if raw else None
    imp = topo.links[idx].impair
    return imp if imp is not None and imp.active else None


def _ends(topo: Topology, idx: int) -> list[str]:
    """The routers that apply link idx's impairment (ours: kind lsr)."""
    return [n for n in topo.links[idx].nodes if topo.nodes[n].kind == "lsr"]


def set_impairment(name: str, topo: Topology, a: str, b: str, values: dict[str, str] | None,
                   query: Query) -> int:
    """Merge `values` (raw, as typed: {"delay": "20ms"}) into the a-b link's impairment, or
    with None clear it, in both directions; returns the link's index."""
    idx = netns.find_link(topo, a, b)
    ends = _ends(topo, idx)
    if not ends:
        raise LsrError(f"link {a}-{b}: impairments are applied by an lsr router's dataplane, "
                       "and neither end is a node of kind lsr")
    state = LabState(name)
    with state.update() as st:
        try:
            new = None if values is None else update(in_force(topo, st, idx), values)
        except ValueError as e:
            raise LsrError(f"link {a}-{b}: {e}") from None
        raw = new.to_json() if new is not None and new.active else None
        st.setdefault("impairments", {})[str(idx)] = raw
    for r in ends:
        try:
            query(name, r, "impair", link=idx, impair=raw)
        except LsrError:
            if (state.dir / f"{r}.sock").exists():
                raise
            # a stopped router (no management socket) applies the lab's impairments at start
    return idx


def link_view(name: str, topo: Topology, idx: int, down: bool, query: Query) -> dict[str, Any]:
    """Link idx: state, impairment in force, and per applying router and direction its
    counters (`impair-loss`, `impair-queue-full`, `impair-passed`, `held`)."""
    imp = in_force(topo, LabState(name).read(), idx)
    ln = topo.links[idx]
    out: dict[str, Any] = {
        "link": idx, "name": topo.link_name(ln),
        "endpoints": [f"{n}:{i}" for n, i in (ln.a, ln.b)],
        "down": down,
        "impair": imp.to_json() if imp else None,
        "describe": imp.describe() if imp else "none",
        "applied_by": {},
    }
    for r in _ends(topo, idx):
        try:
            c = query(name, r, "counters").get("impair", {})
        except LsrError as e:
            out["applied_by"][r] = {"error": str(e)}
            continue
        out["applied_by"][r] = {k: v for k, v in c.items() if v["link"] == idx}
    return out


def status_rows(name: str, topo: Topology, state: dict[str, Any],
                query: Query) -> list[dict[str, Any]]:
    """Every impaired link with its drop counters summed over its ends (`lsr lab status`)."""
    rows = []
    counters: dict[str, dict[str, Any]] = {}
    for ln in topo.links:
        imp = in_force(topo, state, ln.index)
        if imp is None:
            continue
        row: dict[str, Any] = {"link": ln.index, "name": topo.link_name(ln),
                               "impair": imp.to_json(), "describe": imp.describe(),
                               "impair-loss": 0, "impair-queue-full": 0}
        for r in _ends(topo, ln.index):
            if r not in counters:
                try:
                    counters[r] = query(name, r, "counters", timeout=2).get("impair", {})
                except (LsrError, OSError):
                    counters[r] = {}
            for v in counters[r].values():
                if v["link"] == ln.index:
                    row["impair-loss"] += v["impair-loss"]
                    row["impair-queue-full"] += v["impair-queue-full"]
        rows.append(row)
    return rows
