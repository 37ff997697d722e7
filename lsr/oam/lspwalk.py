"""One LSP walk over per-router LFIBs: every ECMP branch, hop by hop.

`walk(topo, lfibs, ingress, fec)` starts at the ingress's FTN entry for the
FEC, then at each next router looks the top label up in its ILM, over every
ECMP next hop (depth first, in table order), carrying the whole label stack.
Each branch ends at an egress of the FEC (a router the topology says
originates it) or with one `Problem`. Validation (`validate.walk_lsp`) and
the teaching views (`teach.net.lsp_hops`) read LSPs this way; the simulator's
RFC 8029 probe (`trace.LfibNetwork.probe`) moves one packet along one branch
with `step`, since it must carry a broken LSP on to where the responder sees
the break. Pure: `lsr.core` types only; neighbours are node names
(`validate.normalize_neighbors`).

Rules, and where they come from:

* An NHLFE's out labels less implicit-null (3) are what goes on the wire: 3 is
  signalled, never sent, and means "pop" (RFC 3032 §2.1). A swap writes them
  in place of the top label, the FTN pushes them (RFC 3031 §3.10, §3.13); an
  ILM entry with none pops, and the last pop hands the neighbour an IP packet
  (penultimate hop popping, RFC 3031 §3.16).
* Label continuity (RFC 3031 §3.1): the top label sent to neighbour N is N's
  incoming label for the FEC - N's ILM entry for that label is for the FEC. At
  an egress the whole stack is its binding: nothing when it advertised
  implicit-null, explicit-null 0 alone when it asked for that (it pops it,
  RFC 3032 §2.1).
* A label with no ILM entry is discarded (RFC 3031 §3.18); so is an IP packet
  at a router that is not an egress: an LSR never IP-forwards a packet it got
  from an LSP of this FEC half way.
* A branch revisiting a router is a loop; a branch longer than 255 hops
  cannot exist (the label TTL is 8 bits, RFC 3032 §2.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from lsr.core.labels import IMPLICIT_NULL, IPV4_EXPLICIT_NULL
from lsr.core.lfib import Lfib, Nhlfe
from lsr.core.topology import Topology

MAX_HOPS = 255  # RFC 3032 §2.4: no label TTL survives more
MAX_BRANCHES = 1024  # ended branches walked per (ingress, FEC): ECMP can multiply them

# Problem kinds (stable names).
NO_FTN = "no-ftn"  # the ingress has no FTN entry (or one with no next hop) for the FEC
LOOP = "loop"  # the branch comes back to a router it passed
MAX_HOPS_EXCEEDED = "max-hops"  # longer than max_hops
NOT_A_ROUTER = "not-a-router"  # the next hop is no router of the topology
EGRESS_LABEL = "egress-label"  # the egress gets a stack other than its null binding
EARLY_POP = "early-pop"  # a router that is not an egress gets the packet unlabelled
LABEL_DISCONTINUITY = "label-discontinuity"  # the label is the neighbour's, but not for the FEC
MISSING_ILM = "missing-ilm"  # the neighbour has no entry for the label nor any label for the FEC
BLACKHOLE = "blackhole"  # a non-egress router's ILM entry has no next hop
PROBLEMS = (NO_FTN, LOOP, MAX_HOPS_EXCEEDED, NOT_A_ROUTER, EGRESS_LABEL, EARLY_POP,
            LABEL_DISCONTINUITY, MISSING_ILM, BLACKHOLE)


def wire_labels(nh: Nhlfe) -> tuple[int, ...]:
    """The labels `nh` writes on the packet, top first (implicit-null is never sent)."""
    return tuple(lbl for lbl in nh.out_labels if lbl != IMPLICIT_NULL)


def egresses(topo: Topology, fec: IPv4Network) -> list[str]:
    """The routers that originate `fec` (its LSPs end there)."""
    return [r for r, _ in topo.prefixes().get(fec, [])]


def egress_binding(topo: Topology, router: str) -> tuple[int, ...]:
    """The stack an egress expects for its own FECs: () for implicit-null, (0,) for explicit-null."""
    return (IPV4_EXPLICIT_NULL,) if topo.nodes[router].ldp.explicit_null else ()


def local_label(lfib: Lfib | None, fec: IPv4Network) -> int | None:
    """The router's incoming label for `fec` (its first ILM entry for it), if any."""
    for e in lfib.ilm.values() if lfib is not None else ():
        if e.fec == fec:
            return e.in_label
    return None


@dataclass(frozen=True)
class Hop:
    """What one router does with the packet: `in_label` looked up (None: the
    ingress's FTN), `op` push | ip (FTN, no label) | swap | pop (labels left
    below) | php (the last label popped), `nhlfe` the entry used, `stack` the
    labels the neighbour receives, top first."""

    router: str
    in_label: int | None
    op: str
    nhlfe: Nhlfe
    stack: tuple[int, ...]

    @property
    def neighbor(self) -> str:
        return self.nhlfe.neighbor

    @property
    def interface(self) -> str:
        return self.nhlfe.interface

    @property
    def out_labels(self) -> tuple[int, ...]:
        return wire_labels(self.nhlfe)


def step(router: str, stack: tuple[int, ...] | None, nh: Nhlfe) -> Hop:
    """`router` sends along `nh` a packet that arrived with `stack` (None: IP at the ingress)."""
    out = wire_labels(nh)
    if stack is None:
        return Hop(router, None, "push" if out else "ip", nh, out)
    below = stack[1:]
    op = "swap" if out else ("pop" if below else "php")
    return Hop(router, stack[0], op, nh, out + below)


@dataclass(frozen=True)
class Problem:
    """Why a branch (or the whole walk, for no-ftn) stops: `kind` (one of
    PROBLEMS), the router whose entry is at fault, the last hop of the branch
    (None for no-ftn) and a one-line `detail`."""

    kind: str
    router: str
    hop: Hop | None
    detail: str


@dataclass(frozen=True)
class Branch:
    """One ECMP branch: the nodes the packet goes through (the last one where
    it ends: an egress, or where it is lost) and the hops between them;
    `problem` None when it reached an egress."""

    routers: tuple[str, ...]
    hops: tuple[Hop, ...]
    problem: Problem | None = None


@dataclass
class Walk:
    ingress: str
    fec: IPv4Network
    branches: list[Branch] = field(default_factory=list)  # depth first, in table order
    problems: list[Problem] = field(default_factory=list)  # in the order found
    truncated: bool = False  # stopped at max_branches

    @property
    def complete(self) -> list[Branch]:
        return [b for b in self.branches if b.problem is None]

    @property
    def ok(self) -> bool:
        return bool(self.branches) and not self.problems


def walk(topo: Topology, lfibs: Mapping[str, Lfib], ingress: str, fec: IPv4Network, *,
         max_hops: int = MAX_HOPS, max_branches: int = MAX_BRANCHES) -> Walk:
    """Every ECMP branch of the LSP for `fec` from `ingress` (see the module docstring)."""
    w = Walk(ingress, fec)
    eg = set(egresses(topo, fec))
    if ingress in eg:  # nothing to switch: the packet is at its egress
        w.branches.append(Branch((ingress,), ()))
        return w
    lf = lfibs.get(ingress)
    ftn = lf.ftn.get(fec) if lf else None
    if ftn is None or not ftn.nexthops:
        w.problems.append(Problem(NO_FTN, ingress, None, f"{ingress} has no FTN entry for {fec}"))
        return w

    def end(path: tuple[str, ...], hops: tuple[Hop, ...], p: Problem | None) -> None:
        w.branches.append(Branch(path, hops, p))
        if p is not None:
            w.problems.append(p)

    def visit(path: tuple[str, ...], hops: tuple[Hop, ...], h: Hop) -> None:
        if len(w.branches) >= max_branches:
            w.truncated = True
            return
        router, nxt, stack = h.router, h.neighbor, h.stack
        hops += (h,)
        where = f"{router} -> {nxt}"

        def fail(kind: str, detail: str, at: str = router) -> None:
            end(path + (nxt,), hops, Problem(kind, at, h, detail))

        if nxt in path:
            return fail(LOOP, f"loop: {' -> '.join(path + (nxt,))}")
        if len(hops) > max_hops:
            return fail(MAX_HOPS_EXCEEDED, f"more than {max_hops} hops: {' -> '.join(path + (nxt,))}")
        if nxt not in topo.nodes or not topo.nodes[nxt].is_router:
            return fail(NOT_A_ROUTER, f"{where}: next hop {nxt} is not a router of the topology")
        if nxt in eg:
            want = egress_binding(topo, nxt)
            if stack == want:
                return end(path + (nxt,), hops, None)
            if not want:
                return fail(EGRESS_LABEL, f"{where}: missing PHP, sends label {list(stack)} to the "
                                          f"egress (expected pop)")
            return fail(EGRESS_LABEL, f"{where}: sends {list(stack) or 'unlabelled'} to the egress, "
                                      f"which asked for explicit-null")
        if not stack:
            return fail(EARLY_POP, f"{where}: pops before the egress ({nxt} is not an egress of {fec})")
        top = stack[0]
        nlf = lfibs.get(nxt)
        ilm = nlf.ilm.get(top) if nlf else None
        if ilm is None:
            theirs = local_label(nlf, fec)
            if theirs is not None:
                return fail(LABEL_DISCONTINUITY,
                            f"{where}: out label {top} but {nxt}'s label for {fec} is {theirs}")
            return fail(MISSING_ILM,
                        f"{where}: {nxt} has no ILM entry for label {top} (nor any label for {fec})")
        if ilm.fec != fec:
            return fail(LABEL_DISCONTINUITY,
                        f"{where}: out label {top} is {nxt}'s label for {ilm.fec}, not {fec}")
        if not ilm.nexthops:
            return fail(BLACKHOLE, f"{nxt}: ILM entry for label {top} has no next hop", nxt)
        for nh in ilm.nexthops:
            visit(path + (nxt,), hops, step(nxt, stack, nh))

    for nh in ftn.nexthops:
        visit((ingress,), (), step(ingress, None, nh))
    return w
