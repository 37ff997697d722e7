"""A network snapshot for the teaching views: topology + converged tables.

`from_file` runs the LDP simulator (optionally with links down; what did not
converge is named in `stuck` / `problems` and the tables hold what did);
`from_lab` reads a running lab's tables through the lab library. Both give
the same shapes: `lfib_json` as `lsr sim lfib --json`, `bindings` per router
as `lsr sim bindings --json`, and `lfibs` as `lsr.core.lfib.Lfib` objects.

LSP tracing: `lsp_hops` is the LSP walk of `lsr.oam.lspwalk` (every ECMP
branch, each hop's label operation) in the shapes the drawings use;
`fec_hops` lists every router's FTN and ILM decisions for a FEC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from lsr.core.fib6 import Fib6, fib6_from_json
from lsr.core.igp import Igp
from lsr.core.labels import IPV4_EXPLICIT_NULL as EXPLICIT_NULL
from lsr.core.lfib import Lfib
from lsr.core.topology import Topology, load_topology
from lsr.errors import LsrError
from lsr.oam.diagnose import Stuck
from lsr.oam.lspwalk import (
    EGRESS_LABEL,
    LABEL_DISCONTINUITY,
    LOOP,
    MAX_HOPS,
    MAX_HOPS_EXCEEDED,
    Problem,
    walk,
    wire_labels,
)
from lsr.oam.lspwalk import egresses as egresses  # re-exported: lsr.teach.draw uses it


@dataclass
class Network:
    topo: Topology
    lfib_json: dict[str, Any]  # {"routers": {r: {"lsr_id", "ftn", "ilm"}}}
    bindings: dict[str, list[dict[str, Any]]]  # router -> LIB rows
    source: str  # "sim" or "lab NAME"
    down: set[int] = field(default_factory=set)  # link indexes down
    lfibs: dict[str, Lfib] = field(default_factory=dict)
    stuck: list[Stuck] = field(default_factory=list)  # sessions / adjacencies not up, and why
    problems: list[str] = field(default_factory=list)  # one line each; [] when converged

    @property
    def igp(self) -> Igp:
        return Igp(self.topo, self.down)

    @property
    def fib6s(self) -> dict[str, Fib6]:
        """Each router's 6PE routes and labels (RFC 4798): the `ipv6` part of its lfib
        document (`lsr sim lfib --json`, a lab's `lfib`), where it has one."""
        out = {}
        for r, d in self.lfib_json.get("routers", {}).items():
            if isinstance(d, dict) and d.get("ipv6"):
                try:
                    out[r] = fib6_from_json(d["ipv6"])
                except (KeyError, TypeError, ValueError) as e:
                    raise LsrError(f"{self.source}: {r}'s IPv6 routes: {e}") from None
        return out

    def tables(self) -> dict[str, Any]:
        """Every router's `forwarding.tables.RouterTables` (IGP routes, LFIB, VRFs, 6PE
        routes): what `forwarding.walk` walks a packet through."""
        from forwarding.tables import build_all

        return build_all(self.topo, self.igp.ribs(), self.lfibs, self.fib6s)


def parse_link(topo: Topology, spec: str) -> int:
    """'A-B' (node names, which may contain '-') -> the index of the A-B link."""
    from lsr.sim import parse_link as parse

    return parse(topo, spec)


def _lfibs(doc: dict[str, Any]) -> dict[str, Lfib]:
    from lsr.oam.validate import lfibs_from_json

    return lfibs_from_json(doc)


def from_topology(topo: Topology, down: list[str] | tuple[str, ...] = ()) -> Network:
    """Converge the LDP simulation of `topo`, then take the links in `down` down. What did
    not converge is in `stuck` (the tables hold what did)."""
    from lsr.sim import converge

    o = converge(topo, down)
    doc = o.sim.lfib_json()
    binds = {r.name: o.sim.bindings_json(r.name)["bindings"] for r in topo.routers}
    return Network(topo, doc, binds, "sim", set(o.down), _lfibs(doc), o.stuck, o.problems())


def from_file(path: str, down: list[str] | tuple[str, ...] = ()) -> Network:
    return from_topology(load_topology(path), down)


def from_lab(name: str) -> Network:
    """A running lab's topology, LFIBs and bindings (needs root)."""
    from lsr import lab

    topo = lab.topology(name)
    doc = lab.lfib(name)
    binds = {r.name: lab.ldp(name, r.name, "bindings")["bindings"] for r in topo.routers}
    try:
        down = set(lab.status(name).get("down_links", []))
    except LsrError:
        down = set()
    return Network(topo, doc, binds, f"lab {name}", down, _lfibs(doc))


# ---------------------------------------------------------------- FECs and LSPs


def resolve_fec(topo: Topology, spec: str) -> IPv4Network:
    """A router (its loopback /32), a host (its subnet), a prefix or an address
    (the longest prefix of the topology that holds it) -> the FEC."""
    if spec in topo.nodes:
        n = topo.nodes[spec]
        if n.is_router:
            return IPv4Network(f"{n.lsr_id}/32")
        (i,) = n.interfaces.values()
        return i.address.network
    prefixes = topo.prefixes()
    try:
        if "/" in spec:
            net = IPv4Network(spec, strict=False)
            if net in prefixes:
                return net
            raise LsrError(f"{topo.source}: {net} is not a prefix of {topo.name}")
        a = IPv4Address(spec)
    except ValueError:
        raise LsrError(f"'{spec}' is neither a node of {topo.name}, a prefix nor an address") from None
    best = [p for p in prefixes if a in p]
    if not best:
        raise LsrError(f"{topo.source}: no prefix of {topo.name} holds {a}")
    return max(best, key=lambda p: p.prefixlen)


@dataclass(frozen=True)
class Hop:
    """One router's decision for a FEC: it sends toward `neighbor`."""

    router: str
    neighbor: str
    interface: str
    op: str  # push | swap | pop | ip (unlabelled FTN)
    in_label: int | None
    out_labels: tuple[int, ...]

    @property
    def text(self) -> str:
        return op_text(self.op, self.in_label, self.out_labels)


def op_text(op: str, in_label: int | None, out: tuple[int, ...]) -> str:
    """'push 24', 'swap 24->31', 'pop 24', 'swap 24->0 (explicit-null)', 'IP (no label)',
    'pop 24 (untagged)' (no label from the next hop: pop and route, ldp.lde)."""
    lbl = " ".join(str(x) for x in out)
    if op == "push":
        return f"push {lbl}" if out else "IP (no label)"
    if op == "untagged":
        return f"pop {in_label} (untagged)"
    if op == "pop" or (op == "swap" and not out):
        return f"pop {in_label}"
    return f"swap {in_label}->{lbl}" + (" (explicit-null)" if out == (EXPLICIT_NULL,) else "")


@dataclass
class LspTrace:
    ingress: str
    fec: IPv4Network
    hops: list[tuple[int, Hop]] = field(default_factory=list)  # (depth from 1, hop), DFS order
    branches: list[tuple[str, ...]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    branch_hops: list[tuple[Hop, ...]] = field(default_factory=list)  # per complete branch

    def edges(self) -> dict[tuple[str, str, str], tuple[list[int], Hop]]:
        """(router, interface, neighbour) -> (depths, hop): one per link used, ECMP merged."""
        out: dict[tuple[str, str, str], tuple[list[int], Hop]] = {}
        for d, h in self.hops:
            key = (h.router, h.interface, h.neighbor)
            if key not in out:
                out[key] = ([], h)
            if d not in out[key][0]:
                out[key][0].append(d)
        return out


def lsp_hops(net: Network, ingress: str, fec: IPv4Network, max_hops: int = MAX_HOPS) -> LspTrace:
    """Every ECMP branch of the LSP for `fec` from `ingress`, hop by hop (`lsr.oam.lspwalk`)."""
    topo = net.topo
    if ingress not in topo.nodes or not topo.nodes[ingress].is_router:
        raise LsrError(f"{topo.source}: no router named '{ingress}'")
    wk = walk(topo, net.lfibs, ingress, fec, max_hops=max_hops)
    tr = LspTrace(ingress, fec, problems=[_problem_text(net, p) for p in wk.problems])
    seen: set[tuple[int, str, str, tuple[int, ...]]] = set()
    for b in wk.branches:  # depth first: first sight of each hop is the walk's order
        hops = tuple(Hop(h.router, h.neighbor, h.interface, _op(net, h.router, h.in_label,
                                                              h.interface, h.out_labels),
                         h.in_label, h.out_labels) for h in b.hops)
        for depth, h in enumerate(hops, 1):
            key = (depth, h.router, h.neighbor, h.out_labels)
            if key not in seen:
                seen.add(key)
                tr.hops.append((depth, h))
        if b.problem is None:
            tr.branches.append(b.routers)
            tr.branch_hops.append(hops)
    return tr


def _op(net: Network, router: str, in_label: int | None, interface: str,
        out_labels: tuple[int, ...]) -> str:
    """push (FTN), swap, pop, or untagged: a pop because the next hop gave no label."""
    if in_label is None:
        return "push"
    if out_labels:
        return "swap"
    lf = net.lfibs.get(router)
    e = lf.ilm.get(in_label) if lf is not None else None
    if e is not None and any(nh.op == "untagged" and nh.interface == interface
                             for nh in e.nexthops):
        return "untagged"
    return "pop"


def _problem_text(net: Network, p: Problem) -> str:
    """The teaching view's words for a walk problem: its own short ones where
    it always saw a break, the walk's detail for the rest."""
    h = p.hop
    if h is None or p.kind in (LOOP, MAX_HOPS_EXCEEDED, EGRESS_LABEL):
        return p.detail
    if not h.stack:  # popped towards a router that is not an egress (or no router at all)
        return f"{h.router} -> {h.neighbor}: unlabelled before the egress"
    lf = net.lfibs.get(h.neighbor)
    if p.kind == LABEL_DISCONTINUITY and lf is not None and h.stack[0] in lf.ilm:
        return p.detail  # the label of another FEC
    return f"{h.neighbor} has no ILM entry for label {h.stack[0]}"


def branch_lines(net: Network, tr: LspTrace) -> list[str]:
    """One line per ECMP branch: 'pe1 [push 20] -> p1 [pop 20] -> pe2 [IP lookup]'."""
    out = []
    for hops in tr.branch_hops:
        parts = [f"{h.router} [{h.text}]" for h in hops]
        last = hops[-1].neighbor
        parts.append(f"{last} [{egress_text(net, last)}]")
        out.append(" -> ".join(parts))
    return out + [f"BROKEN: {p}" for p in tr.problems]


def pop_reason(op: str, neighbor: str, out_labels: tuple[int, ...] | list[int]) -> str | None:
    """Why an ILM next hop pops (or swaps to explicit-null), for a student: `op` is the
    NHLFE's (`pop`, `swap`, `untagged`), `neighbor` the node it sends to."""
    if op == "untagged":
        return "pops: no label from the next hop yet (untagged)"
    if not out_labels:
        return f"pops: egress {neighbor} advertised implicit-null (RFC 3032 §2.1, PHP)"
    if tuple(out_labels)[:1] == (EXPLICIT_NULL,):
        return f"swaps to explicit-null: egress {neighbor} advertised label 0 (RFC 3032 §2.1)"
    return None


def egress_text(net: Network, router: str) -> str:
    """What the egress does with the packet of an LSP."""
    if net.topo.nodes[router].ldp.explicit_null:
        return "pop 0, IP lookup"
    return "IP lookup"


def fec_hops(net: Network, fec: IPv4Network) -> list[Hop]:
    """Every router's FTN and ILM decisions for `fec` (the whole LSP tree to the egress)."""
    out: list[Hop] = []
    for r in net.topo.routers:
        lf = net.lfibs.get(r.name)
        if lf is None:
            continue
        ftn = lf.ftn.get(fec)
        if ftn is not None:
            for nh in ftn.nexthops:
                out.append(Hop(r.name, nh.neighbor, nh.interface, "push", None, wire_labels(nh)))
        for e in (e for e in lf.ilm.values() if e.fec == fec):
            for nh in e.nexthops:
                lab = wire_labels(nh)
                op = "swap" if lab else ("untagged" if nh.op == "untagged" else "pop")
                out.append(Hop(r.name, nh.neighbor, nh.interface, op, e.in_label, lab))
    return out
