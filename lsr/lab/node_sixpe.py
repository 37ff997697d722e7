"""6PE in a lab router's runtime (`lsr.lab.node`): the I/O around `bgp.sixpe`.

A router whose BGP carries labelled IPv6 and that has IPv6 customer links
(`bgp.sixpe.enabled`) originates its IPv6 subnets once BGP has started
(`NodeBgp.originate`), and withdraws or originates a port's subnet when its link goes
down or comes up (carrier, `lsr lab link`), and keeps its dataplane's IPv6 routes (`RouterTables.v6`) equal to
`bgp.sixpe.fib6` of its Loc-RIB and its LDP FTN: recomputed (once per loop turn, however
many changes came) after a labelled IPv6 best path changed (`NodeBgp.listeners`) or the
FTN did (`changed`, from `apply_lfib`). The same code the simulator runs gives the
same routes and labels.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from bgp import events as bev
from bgp import sixpe
from bgp.nlri import IPV6_LABELLED

log = logging.getLogger("lsr.node.sixpe")


class NodeSixpe:
    def __init__(self, router: Any) -> None:
        self.r = router
        self.cfg = router.bgp.inst.cfg
        self.pending = False
        self.fib: Any = None
        self.exported: frozenset = frozenset()  # the NLRIs we originate
        router.bgp.listeners.append(self._best_path)

    @classmethod
    def maybe(cls, router: Any) -> NodeSixpe | None:
        """The router's 6PE, or None when it is no 6PE router."""
        bgp = router.bgp
        if bgp is None or not sixpe.enabled(router.topo, router.name, bgp.inst.cfg.families):
            return None
        return cls(router)

    def start(self) -> None:
        """After BGP's Start: our IPv6 subnets into BGP, labelled (RFC 4798 §3)."""
        self.export()
        self.changed()

    def export(self) -> None:
        """Originate the subnets of our ports that are up; withdraw those gone down."""
        routes = sixpe.export_routes(self.r.topo, self.r.name, self.cfg.ipv6_explicit_null,
                                     self.r.down_links)
        self.exported, gone, new = sixpe.export_diff(self.exported, routes)
        if gone:
            self.r.bgp.withdraw(IPV6_LABELLED, gone)
        if new:
            self.r.bgp.originate(new)

    def links_changed(self) -> None:
        """A link of ours went down or came up: a customer port's subnet follows it."""
        self.export()

    def _best_path(self, a: bev.BestPathChanged) -> None:
        if a.family == IPV6_LABELLED:
            self.changed()

    def changed(self) -> None:
        """Something the Fib6 depends on changed: recompute it on the next loop turn."""
        if not self.pending:
            self.pending = True
            self.r.loop.call_soon(self._recompose)

    def _recompose(self) -> None:
        self.pending = False
        try:
            self.fib = sixpe.fib6(self.r.topo, self.r.name, self.r.bgp.inst.loc_rib,
                                  self.r.lfib.ftn, self.cfg.ipv6_explicit_null)
            if self.r.tables is not None:
                self.r.tables.v6.set_fib(self.fib)
        except Exception:
            self.r.counters["sixpe_errors"] += 1
            log.error("6PE routes failed:\n%s", traceback.format_exc())

    def json(self) -> dict[str, Any] | None:
        """The `ipv6` part of the `lfib` answer (as `lsr sim lfib --json`), or None."""
        f = self.fib
        if f is None or not (f.routes or f.labels or f.unresolved):
            return None
        names = {str(n.lsr_id): n.name for n in self.r.topo.routers}
        j = f.to_json()
        for e in j["routes"]:
            for nh in e["nexthops"]:
                nh["neighbor"] = names.get(nh["neighbor"], nh["neighbor"])
        return j
