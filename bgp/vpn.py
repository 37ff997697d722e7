"""RFC 4364 VPN policy over the speaker's hooks: VPN labels, export, import.

BGP's own part of BGP/MPLS IP VPNs, pure functions of the topology and the Loc-RIB:

* `allocate_labels`: the PE's VPN labels (§4.3.2), per VRF or per prefix as each VRF's
  `label_mode` says, from the VPN part of the router's label range
  (`Topology.label_ranges`, disjoint from LDP's), in `lsr.core.vpnfib.label_keys` order:
  the same file gives the same labels.
* `export_routes`: §4.3.1-4.3.2, each VRF route as a VPN-IPv4 route: the VRF's RD and the
  IPv4 prefix (§4.3.4), the VPN label, the VRF's export route targets (RFC 4360 extended
  communities), next hop our loopback (the speaker's local address). Handed to the
  speaker as `Originate` (and `WithdrawLocal` for what is gone: `export_diff`).
* `import_routes`: §4.3.3, every VPN-IPv4 best path of the Loc-RIB goes into each VRF
  that imports one of its route targets, without its RD, as a `lsr.core.vrf.VpnRoute`.
  Two routes for one IPv4 prefix (different RDs, say two sites of a multihomed customer)
  are ordered by LOCAL_PREF, then AS_PATH length, then the lower next hop and RD: the
  §9.1.2.2 steps that need no IGP cost.

IPv6 (6VPE, RFC 4659): a VRF's IPv6 subnets go out as VPN-IPv6 routes (AFI 2 / SAFI
128: label, RD, IPv6 prefix; §3.2) with the same RD, targets and label rules, the next
hop our IPv4 loopback, which the codec carries as RD 0 + ::ffff:a.b.c.d (§3.2.1.1:
the IPv4 core's LSPs reach it); import takes VPN-IPv6 best paths the same way. A path
whose next hop is no IPv4-mapped address has no IPv4 LSP and is not imported.

`lsr.core.vpnfib.compose` turns what `import_routes` returns, with LDP's FTN, into the
VRF FIBs; the drivers call one after the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from bgp.attrs import ExtCommunity
from bgp.events import LocalRoute
from bgp.nlri import IPV4_VPN, IPV6_VPN, VPN_FAMILIES, Family, Nlri, Rd
from bgp.rib import DEFAULT_LOCAL_PREF, Path
from lsr.core.topology import Topology
from lsr.core.vpnfib import LabelKey, Prefix, label_for, label_keys, local_routes
from lsr.core.vrf import VpnRoute, VrfLocal


def allocate_labels(topo: Topology, router: str) -> dict[LabelKey, int]:
    """(VRF, prefix or None) -> VPN label, from the bottom of the router's VPN range."""
    _, vpn = topo.label_ranges(router)
    if vpn is None:
        return {}
    return {key: vpn[0] + k for k, key in enumerate(label_keys(topo, router))}


def export_routes(topo: Topology, router: str, labels: Mapping[LabelKey, int],
                  local: Mapping[str, Iterable[VrfLocal]]) -> tuple[LocalRoute, ...]:
    """The VPN-IPv4 (and VPN-IPv6) routes `router` originates for its VRFs' `local`
    routes."""
    node = topo.nodes[router]
    out = []
    for name in sorted(local):
        vrf = node.vrfs[name]
        rd = Rd.parse(vrf.rd)
        rts = tuple(ExtCommunity.route_target(t) for t in vrf.export_rts)
        for r in local[name]:
            label = label_for(labels, name, r.prefix)
            if label is None or not rts:
                continue  # no export target: the VRF keeps its routes to itself
            fam = IPV4_VPN if r.prefix.version == 4 else IPV6_VPN
            out.append(LocalRoute(fam, Nlri(r.prefix, rd), label, ext_communities=rts))
    # One route per NLRI (a static route for a port's subnet adds nothing).
    return tuple({(r.family, r.nlri): r for r in out}.values())


ExportKey = tuple[Family, Nlri]


def export_diff(have: Mapping[ExportKey, LocalRoute], routes: Iterable[LocalRoute]
                ) -> tuple[dict[ExportKey, LocalRoute], dict[Family, tuple[Nlri, ...]],
                           tuple[LocalRoute, ...]]:
    """What a driver hands its speaker when a PE's exported routes become `routes`:
    (the new exported set, NLRIs to withdraw by family, routes to originate: new or
    changed). The simulator and a lab router call it with what they exported before."""
    want = {(r.family, r.nlri): r for r in routes}
    gone: dict[Family, tuple[Nlri, ...]] = {}
    for fam, nlri in have:
        if (fam, nlri) not in want:
            gone[fam] = gone.get(fam, ()) + (nlri,)
    new = tuple(r for k, r in want.items() if have.get(k) != r)
    return want, gone, new


def route_targets(p: Path) -> tuple[str, ...]:
    """The route targets of a path, as ADMIN:NUMBER text."""
    return tuple(str(c.admin_number()) for c in p.attrs.ext_communities if c.is_route_target)


def _rank(p: Path) -> tuple:
    a = p.attrs
    pref = a.local_pref if a.local_pref is not None else DEFAULT_LOCAL_PREF
    nh = int(p.next_hop) if isinstance(p.next_hop, IPv4Address) else 0
    return (-pref, a.as_path.length, nh, p.nlri.rd)


def import_routes(topo: Topology, router: str,
                  loc_rib: Mapping[tuple[Family, Nlri], Path]
                  ) -> dict[str, dict[Prefix, VpnRoute]]:
    """VRF -> prefix -> the VPN route it imports (§4.3.3; VPN-IPv6: RFC 4659 §3.2),
    from the Loc-RIB."""
    vrfs = topo.nodes[router].vrfs
    best: dict[str, dict[Prefix, Path]] = {name: {} for name in vrfs}
    # Paths of one UPDATE share their attributes: targets and importing VRFs once each.
    into: dict[int, tuple[object, tuple[str, ...], list[str]]] = {}
    for (family, nlri), p in loc_rib.items():
        if family not in VPN_FAMILIES or p.label is None \
                or not isinstance(nlri.prefix, IPv4Network if family == IPV4_VPN else IPv6Network) \
                or not isinstance(p.next_hop, IPv4Address):  # 6VPE: only over the IPv4 LSPs
            continue
        hit = into.get(id(p.attrs))
        if hit is None or hit[0] is not p.attrs:  # (ids of dead objects are reused)
            rts = route_targets(p)
            hit = into[id(p.attrs)] = (p.attrs, rts, [n for n, v in vrfs.items() if v.imports(rts)])
        for name in hit[2]:
            have = best[name].get(nlri.prefix)
            if have is None or _rank(p) < _rank(have):
                best[name][nlri.prefix] = p
    out: dict[str, dict[Prefix, VpnRoute]] = {}
    text: dict[object, str] = {}
    for name, routes in best.items():
        out[name] = {}
        for prefix, p in routes.items():
            assert p.label is not None and isinstance(p.next_hop, IPv4Address)
            rd = text.get(p.nlri.rd)
            if rd is None:
                rd = text[p.nlri.rd] = str(p.nlri.rd)
            out[name][prefix] = VpnRoute(prefix, rd, p.next_hop, p.label,
                                         into[id(p.attrs)][1], p.local)
    return out


def reference_imports(topo: Topology, router: str) -> dict[str, dict[Prefix, VpnRoute]]:
    """What `import_routes` gives once BGP has carried every PE's exported routes
    everywhere (the oracle of `lsr validate --reference` and of tests): from the topology
    alone, every local route of every VRF (links up), by targets, the same tie-breaks."""
    vrfs = topo.nodes[router].vrfs
    cands: dict[str, dict[Prefix, tuple]] = {name: {} for name in vrfs}
    for pe in topo.routers:
        if not pe.vrfs:
            continue
        labels = allocate_labels(topo, pe.name)
        for oname, routes in local_routes(topo, pe.name).items():
            ov = pe.vrfs[oname]
            if not ov.export_rts:
                continue
            for r in routes:
                label = label_for(labels, oname, r.prefix)
                assert label is not None
                vr = VpnRoute(r.prefix, ov.rd, pe.lsr_id, label, ov.export_rts, pe.name == router)
                rank = (int(pe.lsr_id), Rd.parse(ov.rd))
                for name, v in vrfs.items():
                    have = cands[name].get(r.prefix)
                    if v.imports(ov.export_rts) and (have is None or rank < have[0]):
                        cands[name][r.prefix] = (rank, vr)
    return {name: {p: vr for p, (_, vr) in c.items()} for name, c in cands.items()}
