"""Why a lab did not converge, in one line: each LDP session, OSPF adjacency and BGP session
that is not up, named with its cause (`lsr lab up`'s error, `lsr lab link`'s wait).

The cause comes first from the two ends' configs (`lsr.oam.diagnose`: a TCP MD5 password
on one side only, different OSPF timers...), then from what the routers see: a session's
reason ("no TCP session (MD5 mismatch?): connect: TimeoutError") and the TCP segments each
namespace's kernel dropped for TCP MD5 (RFC 2385).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.lab import frr
from lsr.oam.diagnose import BGP, LDP, Stuck, config_findings

Query = Callable[..., Any]


def explain(name: str, topo: Topology, routers: Sequence[str], query: Query) -> str:
    """'pe1-p1: LDP session not established: TCP MD5 password on pe1 only (p1: no TCP
    session (MD5 mismatch?): connect: TimeoutError; pe1: 3 TCP segments dropped for MD5)',
    for every stuck session or adjacency of `routers`; '' when nothing is known."""
    pending = set(routers)
    found = [s for s in config_findings(topo) if s.a in pending or s.b in pending]
    seen: dict[frozenset[str], list[str]] = {}  # LDP pair -> what its ends report
    for r in routers:
        if frr.is_frr(topo, r):
            continue
        for peer, why in _reasons(name, topo, r, query):
            seen.setdefault(frozenset((r, peer)), []).append(f"{r}: {why}")
    for pair, what in seen.items():
        for r in sorted(pair):
            drops = frr.md5_drops(name, r)
            if drops:
                what.append(f"{r}: {drops} TCP segments dropped for MD5")
    out = []
    for s in found:  # the configs name the cause; of what the routers see, the MD5 drops
        extra = seen.pop(frozenset((s.a, s.b)), []) if s.kind == LDP else []
        extra = [x for x in extra if x.endswith("dropped for MD5")]
        if s.kind == BGP:  # TCP 179 between loopbacks: the ends' kernels drop alike
            extra = [f"{r}: {d} TCP segments dropped for MD5" for r in (s.a, s.b)
                     if (d := frr.md5_drops(name, r))]
        out.append(s.text() + (f" ({'; '.join(extra)})" if extra else ""))
    for pair, what in seen.items():
        a, b = sorted(pair, key=lambda n: topo.nodes[n].index)
        out.append(Stuck(LDP, a, b, "; ".join(what)).text())
    return "; ".join(out)


def _reasons(name: str, topo: Topology, router: str, query: Query) -> list[tuple[str, str]]:
    """(peer, reason) of the router's LDP sessions that are not OPERATIONAL."""
    names = {str(n.lsr_id): n.name for n in topo.routers}
    try:
        nbrs = query(name, router, "neighbors", timeout=2)
    except (OSError, LsrError):
        return []
    return [(names.get(str(n.get("lsr_id")), str(n.get("lsr_id"))), str(n["reason"]))
            for n in nbrs if n.get("reason") and str(n.get("state")) != "OPERATIONAL"]
