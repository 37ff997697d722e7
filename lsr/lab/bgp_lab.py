"""BGP across a running lab: what each router should have (from the simulator, which
runs the same speaker), what it still lacks, and `lsr lab bgp` views in one schema
for our routers (their management socket) and FRR's (vtysh, `lsr.lab.frr_bgp`).

Convergence for BGP: every configured session between two running routers is
Established, and each of our routers' Loc-RIB holds the destinations the simulator's
does, with the same next hops and labels (`keys`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lsr.core.topology import Topology
from lsr.errors import LsrError

VIEWS = ("summary", "vpn", "unicast", "ipv6", "vpn6")
Query = Callable[..., Any]


def route_key(r: dict[str, Any]) -> tuple:
    """What must agree between two routers' views of one best path."""
    return (r.get("rd"), r["prefix"], r["next_hop"], r.get("label"))


def expected(sim: Any, stopped: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """Per BGP router of a converged `lsr.sim.Simulation`: the peer addresses it must be
    Established with and its Loc-RIB keys per view (`vpn`, `unicast`)."""
    from bgp import views

    out: dict[str, Any] = {}
    # the sessions the simulation has Established: both ends running, one of them not
    # passive, and a route between their loopbacks (a partition keeps the others down)
    up = {(r, pc.name) for r, inst in sim.bgp.items() for pc in inst.cfg.peers
          if (p := inst.peers.get(pc.address)) is not None and p.state.value == "Established"}
    # and those the configs keep down (TCP MD5 keys that differ): the lab has not
    # converged without them, as for LDP; `lab up` names them (`lsr.lab.diagnose`)
    up |= {x for s in sim.bgp_blocked() for x in ((s.a, s.b), (s.b, s.a))}
    for r, inst in sim.bgp.items():
        if r in stopped:
            continue
        peers = sorted(str(p.address) for p in inst.cfg.peers
                       if p.name not in stopped and (r, p.name) in up)
        ribs = {v: sorted(route_key(x) for x in views.routes(inst, fam))
                for v, fam in views.VIEWS.items() if fam in inst.cfg.families}
        out[r] = {"peers": peers, "routes": ribs}
    return out


def missing(lab: str, router: str, exp: dict[str, Any], status: dict[str, Any],
            routes: Callable[[str], list[dict[str, Any]]], names: dict[str, str]) -> str | None:
    """What `router` still lacks against `expected(...)[router]` (None: converged).
    `status`: its `status` answer (`bgp`: peer address -> state); `routes(view)`: its
    Loc-RIB entries of one view."""
    sessions = status.get("bgp", {})
    bad = [p for p in exp["peers"] if sessions.get(p) != "Established"]
    if bad:
        return (f"{router}: BGP session with {', '.join(names.get(p, p) for p in bad)} not "
                f"Established ({', '.join(str(sessions.get(p, 'none')) for p in bad)})")
    for view, want in exp["routes"].items():
        have = sorted(route_key(x) for x in routes(view))
        if have != [tuple(k) for k in want]:
            lack = [k for k in want if tuple(k) not in set(have)]
            extra = [k for k in have if k not in {tuple(w) for w in want}]
            what = lack or extra
            shown = ", ".join(f"{k[0] + ' ' if k[0] else ''}{k[1]}" for k in what[:3])
            return (f"{router}: BGP {view} routes {'missing' if lack else 'not expected'}: "
                    f"{shown}" + (f" (+{len(what) - 3} more)" if len(what) > 3 else ""))
    return None


def frr_missing(lab: str, topo: Topology, node: str, exp: dict[str, Any]) -> str | None:
    import lsr.lab.frr as frr
    import lsr.lab.frr_bgp as frr_bgp

    return frr_bgp.missing(frr.vtysh, lab, topo, node, exp)


def frr_sessions(lab: str, topo: Topology, node: str) -> dict[str, str] | None:
    """An FRR node's BGP sessions (peer address -> state), None when it runs no bgpd."""
    import lsr.lab.frr as frr
    import lsr.lab.frr_bgp as frr_bgp

    if frr_bgp.config(topo, node) is None:
        return None
    return frr_bgp.sessions(frr.vtysh, lab, node)


def view(lab: str, topo: Topology, router: str, what: str, query: Query) -> dict[str, Any]:
    """`lsr lab bgp NAME R summary|vpn|unicast --json`: {"routers": {R: ...}}."""
    import lsr.lab.frr as frr

    if what not in VIEWS:
        raise LsrError(f"unknown BGP view '{what}' ({', '.join(VIEWS)})")
    node = topo.nodes.get(router)
    if node is None or not node.is_router:
        raise LsrError(f"lab '{lab}' has no router '{router}'")
    if frr.is_frr(topo, router):
        import lsr.lab.frr_bgp as frr_bgp

        data = frr_bgp.view(frr.vtysh, lab, topo, router, what)
    else:
        data = query(lab, router, "bgp", what=what)
    return {"routers": {router: data}}


def session_problems(lab: str, topo: Topology, routers: dict[str, Any], query: Query,
                     stopped: set[str] | frozenset[str] = frozenset()) -> tuple[int, list[str]]:
    """The BGP sessions of a running lab: (how many are Established, one line for each
    one that is not), from `lsr.lab.status`'s `routers` (each running router's `bgp`:
    peer address -> state), named by both ends with each end's state and last error:
    'pe1-rr: BGP session not Established (pe1: Idle, hold timer expired; rr: Active)'.
    A session with a stopped end says so; one both ends wait for (passive) is left out."""
    names = {str(n.lsr_id): n.name for n in topo.routers}
    rank = {n: node.index for n, node in topo.nodes.items()}
    pairs: dict[tuple[str, str], dict[str, str]] = {}
    for r, info in routers.items():
        for addr, state in (info.get("bgp") or {}).items():
            peer = names.get(addr, addr)
            key = tuple(sorted((r, peer), key=lambda n: rank.get(n, 1 << 30)))
            pairs.setdefault(key, {})[r] = str(state)  # type: ignore[index]
    from bgp.config import from_topology

    def passive(r: str, peer: str) -> bool:
        cfg = from_topology(topo, r) if r in topo.nodes else None
        return any(p.name == peer and p.passive for p in (cfg.peers if cfg else ()))

    up, out = 0, []
    for (a, b), states in sorted(pairs.items(), key=lambda kv: (rank.get(kv[0][0], 0),
                                                                  rank.get(kv[0][1], 0))):
        if set(states.values()) == {"Established"} and len(states) == 2:
            up += 1
            continue
        if passive(a, b) and passive(b, a):
            continue  # neither end ever connects: never expected up (`Simulation.bgp_sessions`)
        ends = []
        for r in (a, b):
            if r in stopped or r not in states:
                ends.append(f"{r} is stopped" if r in stopped else f"{r}: no BGP state")
                continue
            why = ""
            if states[r] != "Established":
                try:
                    nbrs = view(lab, topo, r, "summary", query)["routers"][r]["neighbors"]
                    n = next((n for n in nbrs if n["neighbor"] == (b if r == a else a)), {})
                    why = ", ".join(x for x in (n.get("last_error"), n.get("connect_error"))
                                    if x)
                except (OSError, LsrError, KeyError, ValueError):
                    pass
            ends.append(f"{r}: {states[r]}" + (f", {why}" if why else ""))
        out.append(f"{a}-{b}: BGP session not Established ({'; '.join(ends)})")
    return up, out
