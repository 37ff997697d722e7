"""Paths and the decision process (RFC 4271 §9.1, with RFC 4456 §9 for reflection).

A `Path` is one route to one destination: from a peer's Adj-RIB-In, or local
(`peer` None). `select` is Phase 2 (§9.1.2): it drops ineligible paths (next hop
unresolvable, AS loop, reflection loop) and applies the §9.1.2.2 tie-breaking
rules in order. The degree of preference (Phase 1, §9.1.1) is LOCAL_PREF for
iBGP-learned routes and, as local policy, the configured default for eBGP-learned
and local ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from bgp.attrs import PathAttrs
from bgp.nlri import Family, Nlri

DEFAULT_LOCAL_PREF = 100
_ZERO = IPv4Address(0)


@dataclass(frozen=True)
class Path:
    family: Family
    nlri: Nlri
    attrs: PathAttrs
    next_hop: IPv4Address | IPv6Address
    label: int | None = None
    peer: IPv4Address | None = None  # None: originated here
    peer_id: IPv4Address = _ZERO  # the BGP Identifier of the peer (ours for local paths)
    peer_asn: int = 0
    ebgp: bool = False

    @property
    def local(self) -> bool:
        return self.peer is None

    def to_json(self) -> dict:
        a = self.attrs
        return {
            "nlri": str(self.nlri.prefix),
            **({"rd": str(self.nlri.rd)} if self.nlri.rd is not None else {}),
            "next_hop": str(self.next_hop),
            **({"label": self.label} if self.label is not None else {}),
            "from": "local" if self.peer is None else str(self.peer),
            "origin": ("igp", "egp", "incomplete")[a.origin],
            "as_path": str(a.as_path),
            **({"med": a.med} if a.med is not None else {}),
            **({"local_pref": a.local_pref} if a.local_pref is not None else {}),
            **({"communities": [f"{c >> 16}:{c & 0xFFFF}" for c in a.communities]}
               if a.communities else {}),
            **({"ext_communities": [str(c) for c in a.ext_communities]}
               if a.ext_communities else {}),
            **({"originator_id": str(a.originator_id)} if a.originator_id else {}),
            **({"cluster_list": [str(c) for c in a.cluster_list]} if a.cluster_list else {}),
        }


def preference(p: Path, default: int = DEFAULT_LOCAL_PREF) -> int:
    """§9.1.1: LOCAL_PREF of an iBGP route; local policy (the default) for an eBGP one
    (RFC 7606 §7.5: a LOCAL_PREF from an eBGP peer is discarded anyway)."""
    if p.ebgp or p.attrs.local_pref is None:
        return default
    return p.attrs.local_pref


def neighbor_as(p: Path, local_as: int) -> int:
    """§9.1.2.2 c): the first AS of a leading AS_SEQUENCE, else the local AS."""
    first = p.attrs.as_path.first_as
    return local_as if first is None else first


def select(paths: Iterable[Path], cost: Callable[[Path], int | None], local_as: int,
           router_id: IPv4Address, cluster_id: IPv4Address,
           default_pref: int = DEFAULT_LOCAL_PREF) -> Path | None:
    """Phase 2 (§9.1.2): the best eligible path, or None. `cost(p)` is the IGP cost to
    p's next hop, None when it cannot be resolved (§9.1.2.1)."""
    cands: list[tuple[Path, int]] = []
    for p in paths:
        c = 0 if p.local else cost(p)
        if c is None:
            continue  # §9.1.2: an unresolvable NEXT_HOP excludes the route
        a = p.attrs
        if not p.local and a.as_path.contains(local_as):
            continue  # §9.1.2: AS loop
        if a.originator_id == router_id or cluster_id in a.cluster_list:
            continue  # RFC 4456 §8: our own route reflected back, or a cluster loop
        cands.append((p, c))
    if not cands:
        return None
    # Degree of preference (§9.1.2 a): the highest wins.
    top = max(preference(p, default_pref) for p, _ in cands)
    cands = [(p, c) for p, c in cands if preference(p, default_pref) == top]
    # §9.1.2.2 a) fewest AS numbers in AS_PATH (an AS_SET counts 1).
    n = min(p.attrs.as_path.length for p, _ in cands)
    cands = [(p, c) for p, c in cands if p.attrs.as_path.length == n]
    # b) lowest ORIGIN.
    o = min(p.attrs.origin for p, _ in cands)
    cands = [(p, c) for p, c in cands if p.attrs.origin == o]
    # c) per neighbouring AS, only the lowest MED survives (no MED = 0, the lowest).
    best_med: dict[int, int] = {}
    for p, _ in cands:
        nas = neighbor_as(p, local_as)
        m = p.attrs.med or 0
        best_med[nas] = min(best_med.get(nas, m), m)
    cands = [(p, c) for p, c in cands if (p.attrs.med or 0) == best_med[neighbor_as(p, local_as)]]
    # d) eBGP-learned over iBGP-learned.
    if any(p.ebgp for p, _ in cands):
        cands = [(p, c) for p, c in cands if p.ebgp or p.local]
    # e) lowest interior cost to the NEXT_HOP.
    lc = min(c for _, c in cands)
    cands = [(p, c) for p, c in cands if c == lc]
    # f) lowest BGP Identifier; RFC 4456 §9: the ORIGINATOR_ID stands for it.
    def ident(p: Path) -> int:
        if p.local:
            return int(router_id)
        return int(p.attrs.originator_id or p.peer_id)
    i = min(ident(p) for p, _ in cands)
    cands = [(p, c) for p, c in cands if ident(p) == i]
    # RFC 4456 §9, between f) and g): the shorter CLUSTER_LIST.
    cl = min(len(p.attrs.cluster_list) for p, _ in cands)
    cands = [(p, c) for p, c in cands if len(p.attrs.cluster_list) == cl]
    # g) lowest peer address (a local path: 0).
    return min(cands, key=lambda pc: int(pc[0].peer or _ZERO))[0]
