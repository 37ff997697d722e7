"""A PE's VRF FIBs and VPN ILM, composed from plain data (RFC 4364 §4.3.2, §4.3.3, §5).

Inputs: the topology (the PE's VRFs, their ports and static routes), the VPN routes
each VRF imports (`VpnRoute`, which the BGP VPN layer `bgp.vpn` takes from the Loc-RIB),
the PE's LDP FTN (`lsr.core.lfib`) and the VPN labels it allocated. Output: one FIB
per VRF and the VPN ILM entries, the `Lfib.vrfs` / `Lfib.vpn_ilm` contract the
dataplane compiles (`forwarding.tables`). No protocol package is imported: the
drivers (the simulator, a lab router) call `compose` with what BGP and LDP hold.

Rules:

* A VRF's own routes win: connected (a port's subnet, while its link is up), then
  static; an imported route for the same prefix is not used.
* A route from another PE is usable only while LDP has an LSP to its next hop, the
  PE's loopback /32 (§5: "an LSP ... to the BGP next hop"): its next hops are the
  FTN's, each pushing the FTN's transport label(s) and then the VPN label (the
  transport label is implicit-null, so not pushed, when the PE is a neighbour).
  Without one it is left out and listed in `rejected`.
* A route another VRF of this PE exported ("leaked", extranet) goes where that VRF's
  own route goes: out its port, or to its CE.
* VPN labels: per-vrf, one label whose ILM entry pops and looks up in the VRF; per-prefix,
  one per local prefix: a static route's pops and sends to its CE without a lookup (an
  IPv6 one's pops and looks up: the VRF's route sends it to the CE), a connected subnet's
  pops and looks up (the station is found by the lookup).
* IPv6 (6VPE, RFC 4659): a port's `subnet6` is a connected route of its VRF like its
  IPv4 subnet, exported as VPN-IPv6; imported VPN-IPv6 routes ride the same IPv4 LSPs
  to the egress PE (its loopback, carried IPv4-mapped). A per-VRF label serves both
  families (the egress looks up what the IP version under it says); per-prefix, the
  IPv6 subnet has a label of its own. IPv6 static routes (an IPv6 next hop, the CE on a
  port's `subnet6`) are exported as VPN-IPv6 routes too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from lsr.core.lfib import FtnEntry, Lfib, Nhlfe, VpnIlmEntry, VrfEntry
from lsr.core.topology import Topology
from lsr.core.vrf import VpnRoute, VrfLocal, prefix_key

Prefix = IPv4Network | IPv6Network
LabelKey = tuple[str, Prefix | None]  # (VRF, prefix); prefix None: the VRF's label


def local_routes(topo: Topology, router: str, down: Iterable[int] = ()
                 ) -> dict[str, tuple[VrfLocal, ...]]:
    """Each VRF's own routes on `router`: its ports' subnets (IPv4, and IPv6 where the
    link has `subnet6`) and its static routes, those whose port's link is up (`down`:
    link indexes down)."""
    node = topo.nodes[router]
    off = set(down)
    out: dict[str, tuple[VrfLocal, ...]] = {}
    for name, vrf in node.vrfs.items():
        routes: list[VrfLocal] = []
        for ifn in vrf.interfaces:
            i = node.interfaces[ifn]
            if i.link not in off:
                routes.append(VrfLocal(i.address.network, "connected", ifn, None, i.peer_node))
                if i.address6 is not None:
                    routes.append(VrfLocal(i.address6.network, "connected", ifn, None,
                                           i.peer_node))
        for r in vrf.routes:
            i = node.interfaces[r.interface]
            if i.link not in off:
                routes.append(VrfLocal(r.prefix, "static", r.interface, r.via, i.peer_node))
        out[name] = tuple(sorted(routes, key=VrfLocal.sort_key))
    return out


def label_keys(topo: Topology, router: str) -> list[LabelKey]:
    """What needs a VPN label on `router`, in allocation order: per VRF (by name), its
    one label (per-vrf) or one per configured local prefix in prefix order (per-prefix).
    Configured, not only up: a label does not change when a customer link flaps."""
    node = topo.nodes[router]
    keys: list[LabelKey] = []
    for name in sorted(node.vrfs):
        vrf = node.vrfs[name]
        if vrf.label_mode == "per-vrf":
            keys.append((name, None))
            continue
        prefixes: set[Prefix] = {node.interfaces[i].address.network for i in vrf.interfaces}
        prefixes |= {r.prefix for r in vrf.routes if r.prefix.version == 4}
        # IPv6 subnets and static routes after every IPv4 one: an IPv4-only file keeps its labels
        prefixes6: set[Prefix] = {a.network for i in vrf.interfaces
                                  if (a := node.interfaces[i].address6) is not None}
        prefixes6 |= {r.prefix for r in vrf.routes if r.prefix.version == 6}
        keys += [(name, p) for p in sorted(prefixes, key=prefix_key)]
        keys += [(name, p) for p in sorted(prefixes6, key=prefix_key)]
    return keys


def label_for(labels: Mapping[LabelKey, int], vrf: str, prefix: Prefix) -> int | None:
    """The VPN label a local prefix is exported with: its own, else its VRF's."""
    lbl = labels.get((vrf, prefix))
    return labels.get((vrf, None)) if lbl is None else lbl


@dataclass
class VpnTables:
    """`compose`'s result: every VRF's FIB, the VPN ILM, and the imported routes left
    out (VRF, prefix, why)."""

    vrfs: dict[str, dict[Prefix, VrfEntry]] = field(default_factory=dict)
    ilm: dict[int, VpnIlmEntry] = field(default_factory=dict)
    rejected: list[tuple[str, Prefix, str]] = field(default_factory=list)


def _local_entry(r: VrfLocal, vrf: str = "") -> VrfEntry:
    if r.kind == "connected":
        return VrfEntry(r.prefix, "leaked" if vrf else "connected", interface=r.interface,
                        vrf=vrf)
    assert r.via is not None
    return VrfEntry(r.prefix, "leaked" if vrf else "static",
                    (Nhlfe(r.neighbor, r.interface, r.via, (), "push"),), vrf=vrf)


def compose(topo: Topology, router: str, imported: Mapping[str, Mapping[Prefix, VpnRoute]],
            ftn: Mapping[IPv4Network, FtnEntry], labels: Mapping[LabelKey, int],
            down: Iterable[int] = ()) -> VpnTables:
    """The VRF FIBs and VPN ILM of `router` (see the module docstring)."""
    node = topo.nodes[router]
    local = local_routes(topo, router, down)
    by_rd = {v.rd: name for name, v in node.vrfs.items()}
    hosts: dict[object, IPv4Network] = {}  # next hop -> its /32 (FTN key), made once
    out = VpnTables()
    for name in node.vrfs:
        fib: dict[Prefix, VrfEntry] = {}
        for r in local[name]:
            if r.prefix not in fib or fib[r.prefix].source != "connected":
                fib[r.prefix] = _local_entry(r)
        for prefix, vr in sorted(imported.get(name, {}).items(), key=lambda kv: prefix_key(kv[0])):
            if prefix in fib:
                continue  # a VRF's own route wins
            if vr.local:
                src = by_rd.get(vr.rd)
                hit = [r for r in local.get(src, ()) if r.prefix == prefix] if src else []
                if src is None or src == name or not hit:
                    continue
                e = _local_entry(hit[0], src)
                fib[prefix] = VrfEntry(prefix, "leaked", e.nexthops, e.interface, vr.rd,
                                       None, vr.label, vr.route_targets, src)
                continue
            host = hosts.get(vr.next_hop)
            if host is None:
                host = hosts[vr.next_hop] = IPv4Network((vr.next_hop, 32))
            lsp = ftn.get(host)
            if lsp is None or not lsp.nexthops:
                out.rejected.append((name, prefix, f"no LSP to {vr.next_hop} (RFC 4364 §5)"))
                continue
            nhs = tuple(Nhlfe(n.neighbor, n.interface, n.nexthop, n.out_labels + (vr.label,),
                              "push") for n in lsp.nexthops)
            fib[prefix] = VrfEntry(prefix, "vpn", nhs, "", vr.rd, vr.next_hop, vr.label,
                                   vr.route_targets)
        out.vrfs[name] = fib
    statics = {(name, r.prefix): r for name, rs in local.items() for r in rs if r.kind == "static"}
    for (name, prefix), label in labels.items():
        st = statics.get((name, prefix)) if prefix is not None else None
        # an IPv6 static route's label pops and looks up in the VRF, where the route sends
        # it to the CE (the label switching paths forward IPv4 only without a lookup)
        nhs = (() if st is None or st.via is None or st.via.version == 6 else
               (Nhlfe(st.neighbor, st.interface, st.via, (), "pop"),))
        out.ilm[label] = VpnIlmEntry(label, name, prefix, nhs)
    return out


def vrf_json(topo: Topology, router: str, vt: VpnTables, names: Mapping[str, str],
             vrf: str | None = None) -> dict:
    """One PE's entry of `lsr sim vrf --json` / `lsr lab vrf --json` (docs/cli.md) from
    its `VpnTables`: per VRF (all, or `vrf`) its configuration, VPN labels, FIB and the
    imported routes left out; neighbours and PEs named by `names` (LSR ID -> node)."""
    node = topo.nodes[router]
    doc = Lfib(vrfs=vt.vrfs, vpn_ilm=vt.ilm).to_json()
    vrfs = {}
    for name, v in sorted(node.vrfs.items()):
        if vrf is not None and name != vrf:
            continue
        routes = doc.get("vrfs", {}).get(name, [])
        for e in routes:
            for nh in e["nexthops"]:
                nh["neighbor"] = names.get(nh["neighbor"], nh["neighbor"])
            if "pe" in e:
                e["pe_name"] = names.get(e["pe"], e["pe"])
        vrfs[name] = {
            **{k: x for k, x in v.to_json().items() if k != "name"},
            "vpn_labels": [e for e in doc.get("vpn_ilm", []) if e["vrf"] == name],
            "fib": routes,
            "rejected": [{"prefix": str(p), "reason": why} for n, p, why in vt.rejected
                         if n == name],
        }
    return {"lsr_id": str(node.lsr_id), "vrfs": vrfs}
