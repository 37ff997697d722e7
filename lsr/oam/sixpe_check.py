"""6PE invariants for `lsr validate` (RFC 4798): IPv6 customers across the IPv4 core.

Input: the topology, every router's LFIB, the IGP and every router's `Fib6` (BGP's
labelled IPv6 routes over LDP: the simulator's, or `reference_fib6s`). Two invariants,
checked when some customer link has IPv6 and BGP carries labelled IPv6:

* 6pe-routes: every 6PE router has a route for every IPv6 subnet of every other 6PE
  router, to that router's loopback, with the label it binds (its 6PE label or IPv6
  Explicit Null), pushed under LDP's label(s) for the loopback (the FTN's next hops);
* 6pe-reachability: an ICMPv6 echo from every IPv6 host to every other one, and the
  reply, are delivered by the forwarding plane (`forwarding.walk`), and no router
  without IPv6 (a P router) ever receives one unlabelled.

And `sixpe_lsp_ping_results` (the `sixpe-lsp-ping` row): an RFC 8029 LSP ping of every
6PE route (the BGP labeled IPv6 FEC, §3.2.14), answered 3 by the route's egress, over
the simulator's tables or a running lab (`lsr.oam.lspping`'s back ends).

Pure: no sockets, no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from bgp import sixpe
from bgp.config import from_topology as bgp_config
from lsr.core.fib6 import Fib6, compose, lsp_to
from lsr.core.igp import Igp
from lsr.core.labels import IMPLICIT_NULL
from lsr.core.lfib import Lfib
from lsr.core.topology import Topology
from lsr.oam.diagnose import bgp_cause
from lsr.oam.validate import CheckResult

if TYPE_CHECKING:
    from lsr.oam.lspping import LiveBackend
    from lsr.oam.trace import LfibNetwork

CHECKS = ("6pe-routes", "6pe-reachability")


def sixpe_routers(topo: Topology) -> dict[str, bool]:
    """The 6PE routers -> whether each binds IPv6 Explicit Null (bgp ipv6_explicit_null)."""
    out = {}
    for r in topo.routers:
        cfg = bgp_config(topo, r.name)
        if cfg is not None and sixpe.enabled(topo, r.name, cfg.families):
            out[r.name] = cfg.ipv6_explicit_null
    return out


def reference_fib6s(topo: Topology, lfibs: Mapping[str, Lfib],
                    down: Collection[int] = ()) -> dict[str, Fib6]:
    """What BGP gives once every 6PE router's routes reached every other (full mesh or
    reflected alike): each one's IPv6 subnets (of its ports whose link is not in `down`)
    with its label, over `lfibs`' FTN."""
    pes = sixpe_routers(topo)
    names = {topo.nodes[r].lsr_id: r for r in pes}
    out = {}
    for me, enull in pes.items():
        paths = [(p, topo.nodes[o].lsr_id, sixpe.advertised_label(topo, o, pes[o]))
                 for o in pes if o != me for p in sixpe.prefixes(topo, o, down)]
        own = sixpe.advertised_label(topo, me, enull)
        out[me] = compose([(p, nh, lb) for p, nh, lb in paths if lb is not None],
                          lfibs.get(me, Lfib()).ftn,
                          (own,) if own is not None and not enull else (), names)
    return out


def _missing(topo: Topology, me: str, o: str, f: Fib6, p: Any, igp: Igp | None,
             sessions: Mapping[tuple[str, str], str] | None) -> str:
    """Why router `me` has no 6PE route for `o`'s prefix `p`, in words."""
    lo = topo.nodes[o].lsr_id
    if p in f.unresolved:  # BGP has it, LDP has no LSP: never sent unlabelled (RFC 4798 §3)
        return f"BGP route from {o} unusable: {f.unresolved[p]} (RFC 4798 §3: no unlabelled IPv6 in the core)"
    cause = bgp_cause(topo, *sorted((me, o), key=lambda n: topo.nodes[n].index))
    if cause:  # the configs first (TCP MD5 keys), as for LDP
        return f"no BGP route: the BGP session {me}-{o} is not Established: {cause}"
    if igp is not None and not any(lo in q for q in igp.rib(me)):
        return (f"no BGP route: {o}'s loopback {lo} is unreachable (no IGP route), so the "
                f"BGP session {me}-{o} is down")
    state = (sessions or {}).get((me, o))
    if state is not None and state != "Established":
        return f"no BGP route: the BGP session {me}-{o} is {state}, not Established"
    return f"no BGP route from {o} (BGP session {me}-{o} down, or {o} does not advertise it)"


def _route_problems(topo: Topology, lfibs: Mapping[str, Lfib], fib6s: Mapping[str, Fib6],
                    pes: Mapping[str, bool], igp: Igp | None = None,
                    sessions: Mapping[tuple[str, str], str] | None = None
                    ) -> tuple[list[str], int]:
    bad: list[str] = []
    n = 0
    for me in sorted(pes):
        f = fib6s.get(me, Fib6())
        ftn = lfibs.get(me, Lfib()).ftn
        for o in sorted(pes):
            if o == me:
                continue
            lo = topo.nodes[o].lsr_id
            label = sixpe.advertised_label(topo, o, pes[o])
            for p in sixpe.prefixes(topo, o, igp.down if igp is not None else ()):
                n += 1
                r = f.routes.get(p)
                if r is None:
                    bad.append(f"{me} {p}: {_missing(topo, me, o, f, p, igp, sessions)}")
                    continue
                if r.next_hop != lo or r.label != label:
                    bad.append(f"{me} {p}: next hop {r.next_hop} label {r.label}, expected "
                               f"{lo} label {label} ({o})")
                    continue
                e = lsp_to(ftn, lo)
                bottom = () if label == IMPLICIT_NULL else (label,)
                want = {(x.interface, x.out_labels + bottom) for x in (e.nexthops if e else ())}
                have = {(x.interface, x.out_labels) for x in r.nexthops}
                if have != want:
                    bad.append(f"{me} {p}: pushes {sorted(have)}, the LSP to {o} gives "
                               f"{sorted(want)}")
    return bad, n


def _hosts6(topo: Topology) -> list[str]:
    """The IPv6 hosts of the global table (a VRF's are 6VPE sites: `lsr.oam.vpncheck`)."""
    return [h.name for h in topo.hosts if topo.vrf_of(h.name) is None
            and any(i.address6 is not None for i in h.interfaces.values())]


def cut_off(topo: Topology, hosts: list[str], down: Collection[int]) -> dict[str, str]:
    """The hosts whose link to their router is down -> the link's name: they are
    expected to reach no one (their PE withdrew their subnet)."""
    return {h: topo.link_name(topo.links[i.link]) for h in hosts
            for i in topo.nodes[h].interfaces.values() if i.link in down}


def sixpe_results(topo: Topology, lfibs: Mapping[str, Lfib], igp: Igp,
                  fib6s: Mapping[str, Fib6], ribs: Mapping[str, Mapping[Any, Any]] | None = None,
                  sessions: Mapping[tuple[str, str], str] | None = None) -> list[CheckResult]:
    """The 6PE invariants (module docstring); [] when the topology runs no 6PE.
    `sessions`: (router, peer) -> BGP state, where known, to say why a route is missing."""
    from forwarding.tables import build_all
    from forwarding.walk import walk

    pes = sixpe_routers(topo)
    if not pes:
        return []
    out: list[CheckResult] = []
    bad, n = _route_problems(topo, lfibs, fib6s, pes, igp, sessions)
    if bad:
        out += [CheckResult("invariant 6pe-routes", "fail", b) for b in bad]
    else:
        out.append(CheckResult("invariant 6pe-routes", "pass",
                               f"{n} IPv6 routes on {len(pes)} 6PE routers, labels as bound"))
    ribs = ribs or {r.name: igp.rib(r.name) for r in topo.routers}
    tables = build_all(topo, ribs, lfibs, fib6s)
    cut = cut_off(topo, _hosts6(topo), igp.down)
    hosts = [h for h in _hosts6(topo) if h not in cut]
    v4only = {r.name for r in topo.routers if not tables[r.name].v6.ifs}
    fails: list[str] = []
    pairs = 0
    for a in hosts:
        for b in hosts:
            if a == b:
                continue
            pairs += 1
            w = walk(topo, tables, a, b, family=6)
            bare = [h["router"] for h in w["hops"] if h["router"] in v4only and not h["labels_in"]]
            if w["result"] != "delivered":
                path = " -> ".join(f"{h['router']}[{h['op']}]" for h in w["hops"])
                drop = next((h for h in w["hops"] if h["reason"]), None)
                at = f" at {drop['router']} ({drop['reason']})" if drop else ""
                fails.append(f"{a} -> {b} (IPv6, {w['dst']}): {w['result']}{at}: {path}")
            elif bare:
                fails.append(f"{a} -> {b} (IPv6): unlabelled IPv6 at {', '.join(bare)}")
    if fails:
        out += [CheckResult("invariant 6pe-reachability", "fail", f) for f in fails]
    else:
        out.append(CheckResult("invariant 6pe-reachability", "pass",
                               f"{pairs} IPv6 host pairs delivered, every P router hop labelled"
                               + "".join(f"; {h} cut off (link {ln} down)"
                                         for h, ln in sorted(cut.items()))))
    return out


def sixpe_lsp_ping_results(topo: Topology, backend: LiveBackend | LfibNetwork,
                           skip: Collection[str] = (), down: Collection[int] = ()
                           ) -> list[CheckResult]:
    """The `sixpe-lsp-ping` rows of `lsr validate` / `lsr lab validate`: from every 6PE
    router (but `skip`), one LSP ping of each IPv6 prefix another 6PE router originates
    (its 6PE route: [LDP label, 6PE label or IPv6 Explicit Null], RFC 4798 §3): the
    originator answers 3, having found the prefix its own and the label the one it bound
    (RFC 8029 §4.4). One fail row per prefix that does not, else one pass row (none
    without 6PE). `backend`: an `lsr.oam.lspping` back end (LfibNetwork, LabSender)."""
    from lsr.oam.lspping import lsp_ping, not_egress
    from lsr.oam.responder import SixpeTarget

    pes = sixpe_routers(topo)
    froms = [r for r in sorted(pes) if r not in skip]
    if not froms:
        return []
    bad: list[CheckResult] = []
    n = 0
    for me in froms:
        for o in sorted(pes):
            if o == me:
                continue
            for p in sixpe.prefixes(topo, o, down):  # a port down: its subnet withdrawn
                n += 1
                what = not_egress(lsp_ping(backend, me, SixpeTarget(p)), o)
                if what is None:
                    continue
                bad.append(CheckResult("sixpe-lsp-ping", "fail", f"{me} {p} (egress {o}): {what}"))
    if bad:
        return bad
    if not n:
        return [CheckResult("sixpe-lsp-ping", "skip", "no IPv6 prefix of another 6PE router")]
    return [CheckResult("sixpe-lsp-ping", "pass",
                        f"{n} 6PE routes of {len(froms)} routers: the egress answers 3 (its "
                        "IPv6 prefix and 6PE label)")]
