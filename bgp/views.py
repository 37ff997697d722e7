"""What `lsr sim bgp` and `lsr lab bgp` show of one speaker: the JSON of docs/cli.md
("BGP"), built here once so that the simulator and a lab router print the same thing.

`summary(inst, now)`: the router and its neighbours (state, uptime, families, prefixes
received and sent, errors), message and NOTIFICATION counters. `routes(inst, family)`:
the Loc-RIB of one family, best paths only (RFC 4271 §3.2): `unicast` (IPv4), `vpn`
(VPN-IPv4), `ipv6` (labelled IPv6, 6PE), `vpn6` (VPN-IPv6, 6VPE). Neighbours are node names
where the configuration knows them (`BgpConfig.names`), else addresses.
"""

from __future__ import annotations

from typing import Any

from bgp.instance import BgpInstance
from bgp.nlri import IPV4_UNICAST, IPV4_VPN, IPV6_LABELLED, IPV6_VPN, Family, family_name
from bgp.rib import Path

VIEWS: dict[str, Family] = {"unicast": IPV4_UNICAST, "vpn": IPV4_VPN, "ipv6": IPV6_LABELLED,
                            "vpn6": IPV6_VPN}


def summary(inst: BgpInstance, now: float) -> dict[str, Any]:
    """One router's BGP summary at `now` (the driver's clock, as given to `handle`)."""
    names = inst.cfg.names
    nbrs = []
    for addr in sorted(inst.peers):
        p = inst.peers[addr]
        nbrs.append({
            "neighbor": names.get(str(addr), str(addr)),
            "address": str(addr),
            "asn": p.cfg.asn,
            "type": "ebgp" if p.ebgp else "ibgp",
            "rr_client": p.cfg.rr_client,
            "passive": p.cfg.passive,
            "md5": p.cfg.password is not None,
            "state": p.state.value,
            "bgp_id": str(p.remote_id) if p.session is not None and p.remote_id else None,
            "uptime": None if p.up_since is None else round(max(0.0, now - p.up_since), 3),
            "families": [family_name(f) for f in sorted(p.families)],
            "received": len(p.adj_in),
            "sent": len(p.adj_out),
            "established": p.established_count,
            "treated_as_withdraw": p.treated_as_withdraw,
            "attributes_discarded": p.attributes_discarded,
            "last_error": p.last_error,
            "connect_error": p.connect_error,
        })
    c = inst.counters()
    return {
        "router_id": str(inst.router_id),
        "asn": inst.cfg.asn,
        "route_reflector": inst.cfg.route_reflector,
        "neighbors": nbrs,
        "messages": {"sent": c["sent"], "received": c["received"]},
        "notifications": {"sent": c["notifications_sent"],
                          "received": c["notifications_received"]},
    }


def route_json(p: Path, names: dict[str, str]) -> dict[str, Any]:
    """One best path: the fields `lsr ... bgp ... vpn|unicast --json` lists."""
    a = p.attrs
    out: dict[str, Any] = {"prefix": str(p.nlri.prefix)}
    if p.nlri.rd is not None:
        out["rd"] = str(p.nlri.rd)
    # 6PE, 6VPE: the next hop as carried, ::ffff:<the egress's IPv4 loopback> (RFC 4798
    # §2, RFC 4659 §3.2.1.1)
    out["next_hop"] = f"::ffff:{p.next_hop}" if p.family in (IPV6_LABELLED, IPV6_VPN) and \
        p.next_hop.version == 4 else str(p.next_hop)
    if p.label is not None:
        out["label"] = p.label
    out["route_targets"] = list(a.route_targets())
    out["from"] = "local" if p.peer is None else names.get(str(p.peer), str(p.peer))
    out["origin"] = ("igp", "egp", "incomplete")[a.origin]
    out["as_path"] = str(a.as_path)
    out["local_pref"] = a.local_pref
    out["med"] = a.med
    out["originator_id"] = str(a.originator_id) if a.originator_id else None
    out["cluster_list"] = [str(c) for c in a.cluster_list]
    return out


def routes(inst: BgpInstance, family: Family) -> list[dict[str, Any]]:
    """The Loc-RIB entries of `family`, in (RD, prefix) order."""
    names = inst.cfg.names
    keys = sorted((k for k in inst.loc_rib if k[0] == family), key=_order)
    return [route_json(inst.loc_rib[k], names) for k in keys]


def _order(key: tuple) -> tuple:
    _, n = key
    rd = (n.rd.type, n.rd.admin, n.rd.number) if n.rd is not None else ()
    return (rd, int(n.prefix.network_address), n.prefix.prefixlen)
