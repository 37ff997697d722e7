"""Which node of a lab runs on which machine, and the links that cross machines.

A lab over several machines (lsr.lab.multihost, docs/multihost.md) gives every node a
machine: pinned in the topology's `placement:` section or on the command line, the
rest by `partition`, which balances routers over the machines and cuts few router
links (each cut link becomes a VXLAN tunnel over the machines' own network). A host
goes where its router goes: cutting a host link buys no balance.

Pure: no I/O, no Ray. The section validator is an entry point (`lsr.sections`).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from lsr.core.topology import NAME_RE, Topology
from lsr.errors import LsrError

SECTION = "placement"
VXLAN_PORT = 4789  # IANA (RFC 7348 §5); Linux's own default is 8472
MAX_VNI = (1 << 24) - 1  # 24-bit VXLAN Network Identifier (RFC 7348 §5)
MAX_MACHINE_NAME = 32
_TOP_KEYS = ("machines", "vxlan_port", "vni_base")
_MACHINE_KEYS = ("nodes", "underlay")


@dataclass(frozen=True)
class MachineSpec:
    """One machine of the `placement:` section."""

    name: str
    nodes: tuple[str, ...] = ()  # pinned here; the rest are placed by `partition`
    underlay: IPv4Address | None = None  # its VXLAN address; default: what its agent reports


@dataclass(frozen=True)
class PlacementSection:
    machines: dict[str, MachineSpec] = field(default_factory=dict)
    vxlan_port: int = VXLAN_PORT
    vni_base: int | None = None  # None: derived from the lab name (vni_base_for)

    def pinned(self) -> dict[str, str]:
        return {n: m.name for m in self.machines.values() for n in m.nodes}


@dataclass(frozen=True)
class Crossing:
    """A link whose two ends run on different machines: one VXLAN segment, one VNI."""

    link: int
    vni: int
    a: tuple[str, str, str]  # (node, interface, machine)
    b: tuple[str, str, str]

    def ends(self) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
        return (self.a, self.b)


# ---------------------------------------------------------------- the section


def validate(ctx: Any, raw: Any, topo: Topology) -> PlacementSection:
    """Validator of the `placement:` section (entry point in the `lsr.sections` group)."""
    base: tuple = (SECTION,)
    if not isinstance(raw, dict):
        raise ctx.fail(base, "expected a mapping with machines")
    for k in raw:
        if k not in _TOP_KEYS:
            raise ctx.fail(base + (k,), f"unknown key '{k}' (allowed: {', '.join(_TOP_KEYS)})")
    port = _int(ctx, raw.get("vxlan_port", VXLAN_PORT), base + ("vxlan_port",), 1, 65535)
    vni_base = None
    if "vni_base" in raw:
        hi = MAX_VNI - len(topo.links) + 1
        vni_base = _int(ctx, raw["vni_base"], base + ("vni_base",), 1, hi)
    mp = base + ("machines",)
    machines_raw = raw.get("machines")
    if not isinstance(machines_raw, dict) or not machines_raw:
        raise ctx.fail(mp, "expected a mapping of machine name -> nodes (a list) or "
                           "{nodes, underlay}")
    machines: dict[str, MachineSpec] = {}
    seen: dict[str, str] = {}
    for name, spec in machines_raw.items():
        p = mp + (name,)
        if not isinstance(name, str) or not NAME_RE.fullmatch(name) \
                or len(name) > MAX_MACHINE_NAME:
            raise ctx.fail(p, f"machine name {name!r}: lowercase letters, digits and '-', "
                              f"starting with a letter, at most {MAX_MACHINE_NAME} characters")
        if spec is None:
            spec = {}
        npath = p + ("nodes",)
        if isinstance(spec, list):
            spec, npath = {"nodes": spec}, p
        if not isinstance(spec, dict):
            raise ctx.fail(p, "expected a list of nodes or a mapping {nodes, underlay}")
        for k in spec:
            if k not in _MACHINE_KEYS:
                raise ctx.fail(p + (k,), f"unknown key '{k}' (allowed: "
                                         f"{', '.join(_MACHINE_KEYS)})")
        nodes = spec.get("nodes") or []
        if not isinstance(nodes, list):
            raise ctx.fail(npath, "expected a list of node names")
        for i, n in enumerate(nodes):
            if not isinstance(n, str) or n not in topo.nodes:
                raise ctx.fail(npath + (i,), f"unknown node {n!r}")
            if n in seen:
                raise ctx.fail(npath + (i,), f"{n} is already placed on {seen[n]}")
            seen[n] = name
        under = None
        if "underlay" in spec:
            try:
                under = IPv4Address(str(spec["underlay"]))
            except ValueError:
                raise ctx.fail(p + ("underlay",), f"{spec['underlay']!r} is not an IPv4 "
                                                  "address") from None
        machines[name] = MachineSpec(name, tuple(nodes), under)
    return PlacementSection(machines, port, vni_base)


def _int(ctx: Any, v: Any, path: tuple, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ctx.fail(path, f"expected a whole number from {lo} to {hi}, got {v!r}")
    return v


def section(topo: Topology) -> PlacementSection | None:
    return topo.extra.get(SECTION)


def vni_base_for(lab: str, links: int) -> int:
    """The first VNI of a lab that does not set `vni_base`: a multiple of 4096 taken from
    the lab's name, so two labs over the same machines rarely share a VNI (the kernel
    refuses a second device with a VNI and port in use; `vni_base` then picks another)."""
    span = max(4096, -(-links // 4096) * 4096)
    slots = (MAX_VNI + 1) // span - 1
    return span * (1 + zlib.crc32(lab.encode()) % slots)


# ---------------------------------------------------------------- partition


def partition(topo: Topology, machines: Sequence[str],
              pinned: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every node -> one of `machines`: routers spread evenly (pinned ones count), few
    router links cut; a host with its router unless pinned. Deterministic."""
    pinned = dict(pinned or {})
    if not machines:
        raise LsrError("no machines to place the lab on")
    for n, m in pinned.items():
        if n not in topo.nodes:
            raise LsrError(f"placement: unknown node '{n}'")
        if m not in machines:
            raise LsrError(f"placement: {n} is pinned to '{m}', which is not one of the "
                           f"machines ({', '.join(machines)})")
    routers = sorted(r.name for r in topo.routers)
    adj: dict[str, dict[str, int]] = {r: {} for r in routers}
    for link in topo.links:
        a, b = link.nodes
        if a in adj and b in adj and a != b:
            adj[a][b] = adj[a].get(b, 0) + 1
            adj[b][a] = adj[b].get(a, 0) + 1
    where = {r: pinned[r] for r in routers if r in pinned}
    _grow(routers, adj, list(machines), where)
    _refine(routers, adj, list(machines), where, set(pinned))
    out = dict(where)
    for h in topo.hosts:
        if h.name in pinned:
            out[h.name] = pinned[h.name]
        else:
            (iface,) = h.interfaces.values()
            out[h.name] = out[iface.peer_node]
    return {n: out[n] for n in topo.nodes}


def _targets(n: int, machines: list[str], where: Mapping[str, str]) -> dict[str, int]:
    """How many routers each machine gets: n/k each, the first n%k one more, and never
    fewer than are pinned to it (the others then get fewer)."""
    k = len(machines)
    want = {m: n // k + (1 if i < n % k else 0) for i, m in enumerate(machines)}
    pins = {m: sum(1 for v in where.values() if v == m) for m in machines}
    over = sum(max(0, pins[m] - want[m]) for m in machines)
    for m in machines:
        want[m] = max(want[m], pins[m])
    for m in reversed(machines):  # take the excess back from the unpinned room
        cut = min(over, want[m] - pins[m])
        want[m] -= cut
        over -= cut
    return want


def _grow(routers: list[str], adj: dict[str, dict[str, int]], machines: list[str],
          where: dict[str, str]) -> None:
    """Greedy graph growing: each machine in turn takes, while below its target, the free
    router with the most links into it (less its links to other free routers)."""
    target = _targets(len(routers), machines, where)
    for m in machines:
        size = sum(1 for v in where.values() if v == m)
        while size < target[m]:
            free = [r for r in routers if r not in where]
            if not free:
                break
            inside = {r for r, v in where.items() if v == m}
            front = [r for r in free if any(nb in inside for nb in adj[r])]
            if front:
                pick = min(front, key=lambda r: _grow_score(r, adj, inside, where))
            else:
                pick = _seed(free, adj, where)
            where[pick] = m
            size += 1
    for r in routers:  # anything left (only when targets were all met: none)
        where.setdefault(r, machines[-1])


def _grow_score(r: str, adj: dict[str, dict[str, int]], inside: set[str],
                where: Mapping[str, str]) -> tuple[int, str]:
    into = sum(c for nb, c in adj[r].items() if nb in inside)
    loose = sum(c for nb, c in adj[r].items() if nb not in where)
    return (-(into - loose), r)


def _seed(free: list[str], adj: dict[str, dict[str, int]], where: Mapping[str, str]) -> str:
    """Where a new part starts: the free router farthest from everything placed (or, on an
    empty map, a most peripheral one: fewest links, then name)."""
    placed = [r for r in where]
    if not placed:
        return min(free, key=lambda r: (sum(adj[r].values()), r))
    dist = {r: 0 for r in placed}
    queue = list(placed)
    for r in queue:
        for nb in sorted(adj[r]):
            if nb not in dist:
                dist[nb] = dist[r] + 1
                queue.append(nb)
    far = len(adj) + 1  # unreachable from the placed part: farthest of all
    return min(free, key=lambda r: (-dist.get(r, far), r))


def _gain(r: str, to: str, adj: dict[str, dict[str, int]], where: Mapping[str, str]) -> int:
    """Cut links saved by moving r to machine `to`."""
    return sum(c for nb, c in adj[r].items() if where[nb] == to) - \
        sum(c for nb, c in adj[r].items() if where[nb] == where[r])


def _refine(routers: list[str], adj: dict[str, dict[str, int]], machines: list[str],
            where: dict[str, str], fixed: set[str]) -> None:
    """Improve the cut by single moves (within the balance) and pairwise swaps, best gain
    first, until none gains (Kernighan-Lin / Fiduccia-Mattheyses style, hill climbing)."""
    target = _targets(len(routers), machines, where)
    size = {m: sum(1 for v in where.values() if v == m) for m in machines}
    for _ in range(20 * len(routers) + 20):
        edge = [r for r in routers if r not in fixed and any(where[nb] != where[r] for nb in adj[r])]
        best: tuple[int, tuple[str, ...], tuple[str, ...]] | None = None
        for r in edge:
            for m in sorted({where[nb] for nb in adj[r]} - {where[r]}):
                if size[m] < target[m]:
                    g = _gain(r, m, adj, where)
                    if g > 0 and (best is None or g > best[0]):
                        best = (g, (r,), (m,))
        for i, u in enumerate(edge):
            for v in edge[i + 1:]:
                mu, mv = where[u], where[v]
                if mu == mv:
                    continue
                g = _gain(u, mv, adj, where) + _gain(v, mu, adj, where) - 2 * adj[u].get(v, 0)
                if g > 0 and (best is None or g > best[0]):
                    best = (g, (u, v), (mv, mu))
        if best is None:
            return
        for r, m in zip(best[1], best[2], strict=True):
            size[where[r]] -= 1
            size[m] += 1
            where[r] = m


def cut(topo: Topology, where: Mapping[str, str]) -> int:
    """Links whose ends are on different machines."""
    return sum(1 for link in topo.links if where[link.a[0]] != where[link.b[0]])


def crossings(topo: Topology, where: Mapping[str, str], vni_base: int) -> list[Crossing]:
    """The links between machines, each with its VNI (vni_base + link index: the same on
    both machines, computed from the topology alone)."""
    out = []
    for link in topo.links:
        (an, ai), (bn, bi) = link.a, link.b
        if where[an] != where[bn]:
            out.append(Crossing(link.index, vni_base + link.index, (an, ai, where[an]),
                                (bn, bi, where[bn])))
    return out
