"""BGP/MPLS IP VPNs (RFC 4364) inside a lab PE's runtime (`lsr.lab.node`).

The simulator's VPN layer, driven by a real router: the same pure functions in the same
order (`bgp.vpn` for labels, export and import by route target, `lsr.core.vpnfib.compose`
for the VRF FIBs), fed by the router's own BGP speaker (`lsr.lab.node_bgp`) and LDP.

* Export (§4.3.1-4.3.2): each VRF's connected subnets and static routes, those whose
  customer link has carrier, originated as VPN-IPv4 routes (IPv6 subnets as VPN-IPv6,
  6VPE RFC 4659) with the VRF's RD, export
  targets and VPN label; recomputed when a link of ours changes.
* Import (§4.3.3) and the FIBs: whenever a VPN-IPv4 best path changes or LDP's FTN
  changes (a transport LSP to an egress PE comes or goes, §5), the VRF FIBs and the
  VPN ILM are composed again and swapped into the forwarding tables
  (`RouterTables.set_vpn`). Changes are coalesced: one recomposition per turn of the
  event loop, however many paths an UPDATE carried.

The kernel has no VRFs (and no MPLS): a customer port's packets are looked up in its
VRF by our dataplane only (`forwarding.tables.VrfTable`), never by the kernel.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from bgp import events as bev
from bgp import vpn as bgp_vpn
from bgp.nlri import VPN_FAMILIES
from lsr.core.vpnfib import LabelKey, VpnTables, compose, local_routes, vrf_json

log = logging.getLogger("lsr.node.vpn")


class NodeVpn:
    """The VPN layer of one PE: its labels, what it exported, its composed tables."""

    def __init__(self, router: Any, bgp: Any) -> None:
        self.r = router
        self.bgp = bgp
        self.labels: dict[LabelKey, int] = bgp_vpn.allocate_labels(router.topo, router.name)
        self.exported: dict[bgp_vpn.ExportKey, bev.LocalRoute] = {}
        self.tables = VpnTables()
        self.pending = False
        self.composed = 0  # recompositions (counter)
        self.names = {str(n.lsr_id): n.name for n in router.topo.routers}
        if bgp is not None:
            bgp.listeners.append(self._best_changed)

    @classmethod
    def maybe(cls, router: Any) -> NodeVpn | None:
        """The PE's VPN layer: a router with VRFs, else None. Without BGP (not in the
        `bgp:` section) its VRFs have their own routes only."""
        if not router.node.vrfs:
            return None
        return cls(router, router.bgp)

    # ------------------------------------------------------------ inputs

    def start(self) -> None:
        """After BGP's ManualStart: export, then the first FIBs (the VRFs' own routes)."""
        self.export()
        self.compose_now()

    def export(self) -> None:
        """Originate the VRFs' routes as they are now, withdrawing what is gone."""
        if self.bgp is None:
            return
        local = local_routes(self.r.topo, self.r.name, self.r.down_links)
        routes = bgp_vpn.export_routes(self.r.topo, self.r.name, self.labels, local)
        self.exported, gone, new = bgp_vpn.export_diff(self.exported, routes)
        for fam, nlris in gone.items():
            self.bgp.withdraw(fam, nlris)
        if new:
            self.bgp.originate(new)

    def links_changed(self) -> None:
        """A link of ours went down or came up: a customer port's routes follow it."""
        self.export()
        self.schedule()

    def ftn_changed(self) -> None:
        """LDP changed the FTN: the transport labels under the VPN labels may differ."""
        self.schedule()

    def _best_changed(self, a: bev.BestPathChanged) -> None:
        if a.family in VPN_FAMILIES:
            self.schedule()

    # ------------------------------------------------------------ the FIBs

    def schedule(self) -> None:
        """Recompose once, after the event being handled (and every other queued one)."""
        if not self.pending:
            self.pending = True
            self.r.loop.call_soon(self._run)

    def _run(self) -> None:
        self.pending = False
        self.compose_now()

    def compose_now(self) -> None:
        """Import from the Loc-RIB, compose over LDP's FTN, swap into the dataplane."""
        r = self.r
        try:
            imported = (bgp_vpn.import_routes(r.topo, r.name, self.bgp.inst.loc_rib)
                        if self.bgp is not None else {})
            vt = compose(r.topo, r.name, imported, r.lfib.ftn, self.labels, r.down_links)
        except Exception:  # an engine bug must not stop the router: old tables stay
            r.counters["vpn_errors"] += 1
            log.error("composing the VRF tables failed:\n%s", traceback.format_exc())
            return
        if vt == self.tables:
            return
        self.tables = vt
        self.composed += 1
        r.lfib.vrfs, r.lfib.vpn_ilm = vt.vrfs, vt.ilm
        if r.tables is not None:
            r.tables.set_vpn(vt.vrfs, vt.ilm)
        r.oam.events.append({"t": time.time(), "event": "vpn",
                             "text": f"VRF tables: {sum(len(f) for f in vt.vrfs.values())} "
                                     f"routes, {len(vt.rejected)} without an LSP"})

    # ------------------------------------------------------------ views (management)

    def answer(self, req: dict[str, Any]) -> Any:
        """The `vrf` management request: `lsr lab vrf`'s JSON for this PE (`vrf`: one)."""
        vrf = req.get("vrf")
        if vrf is not None and vrf not in self.r.node.vrfs:
            raise ValueError(f"{self.r.name} has no VRF named {vrf!r}")
        return vrf_json(self.r.topo, self.r.name, self.tables, self.names, vrf)
