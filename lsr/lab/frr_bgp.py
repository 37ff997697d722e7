"""FRR's bgpd in `kind: frr` nodes: its configuration from the topology's `bgp:` section,
and its state in our schema (`lsr lab bgp`, `lsr lab status`, convergence).

An FRR node named in `bgp.routers` runs bgpd next to zebra (bgpd waits for zebra's
next-hop tracking before it connects to a peer between loopbacks) with the
configuration our own router would run (`bgp.config.from_topology`): the same AS,
router ID, neighbours (update source: the loopback), hold and keepalive times,
ConnectRetryTime, TCP MD5 keys, passive ends, route-reflector clients and cluster ID,
`networks` as IPv4 unicast `network` statements and `vpn_networks` as static VPN-IPv4
routes (`network P rd RD label L route-map M`, the map setting the route targets: no
VRF, which FRR would need kernel VRF devices for, and this kernel has none). bgpd runs
with `-n` (no routes into the kernel): like our routers, it only exchanges routes.
6PE (family ipv6-labelled): the node's IPv6 customer subnets as `network` statements
of `address-family ipv6 unicast`, and its peers activated in `address-family ipv6
labeled-unicast` (FRR sends its IPv6 unicast table labelled to them; it binds
Implicit Null to prefixes it originates, RFC 4798's PHP case: docs/interop.md).
6VPE (family ipv6-vpn): peers activated in `address-family ipv6 vpn` (FRR reflects our
PEs' VPN-IPv6 routes; it originates none: no VRFs).

FRR facts these rest on (measured, docs/interop.md "BGP with FRR's bgpd"): a route-map
must be defined before the `network ... route-map` that names it, or the static route
is silently withdrawn; as a reflector FRR 8.4 keeps every VPN-IPv4 route whatever its
route targets; `show bgp ipv4 vpn json` has no labels or route targets, the per-prefix
`show bgp ipv4 vpn PREFIX json` has them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from ipaddress import IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any

from lsr.core.labels import IMPLICIT_NULL
from lsr.core.topology import Topology
from lsr.errors import LsrError

_AFI = {"ipv4-unicast": "ipv4Unicast", "ipv4-vpn": "ipv4Vpn",  # FRR's JSON keys
        "ipv6-labelled": "ipv6LabeledUnicast", "ipv6-vpn": "ipv6Vpn"}
_AF_CONF = {"ipv4-unicast": "ipv4 unicast", "ipv4-vpn": "ipv4 vpn",
            "ipv6-labelled": "ipv6 labeled-unicast", "ipv6-vpn": "ipv6 vpn"}
Vtysh = Callable[..., str]  # lsr.lab.frr.vtysh(lab, node, *commands): passed in (no cycle)
_STATE = {"Established": "Established", "Active": "Active", "Connect": "Connect",
          "OpenSent": "OpenSent", "OpenConfirm": "OpenConfirm", "Idle": "Idle"}


def config(topo: Topology, node: str) -> Any:
    """The node's `bgp.config.BgpConfig`, or None (no bgpd)."""
    if "bgp" not in topo.extra:
        return None
    from bgp.config import from_topology

    return from_topology(topo, node)


def render_bgpd(topo: Topology, node: str, d: Path) -> str | None:
    """bgpd.conf for an FRR node in `bgp.routers`, else None."""
    from bgp.nlri import family_name

    cfg = config(topo, node)
    if cfg is None:
        return None
    fams = [family_name(f) for f in cfg.families if family_name(f) in _AF_CONF]
    lines = [f"hostname {node}", f"log file {d}/bgpd.log", "log timestamp precision 6",
             "debug bgp neighbor-events", "debug bgp updates", "!"]
    # Route-maps first: a `network ... route-map M` read before M exists is withdrawn.
    maps: list[str] = []
    for i, v in enumerate(cfg.vpn_networks):
        m = f"LSR-VPN-{i}"
        maps.append(m)
        lines.append(f"route-map {m} permit 10")
        if v.route_targets:
            lines.append(f" set extcommunity rt {' '.join(v.route_targets)}")
        lines += ["exit", "!"]
    ka = cfg.keepalive if cfg.keepalive is not None else cfg.hold_time // 3
    lines += [f"router bgp {cfg.asn}", f" bgp router-id {cfg.router_id}",
              " no bgp default ipv4-unicast",
              " no bgp ebgp-requires-policy",  # we apply no policy either
              " no bgp network import-check",  # `networks` are originated as they are
              f" timers bgp {ka} {cfg.hold_time}"]
    if cfg.route_reflector and cfg.cluster_id is not None:
        lines.append(f" bgp cluster-id {cfg.cluster_id}")
    for p in cfg.peers:
        a = p.address
        lines += [f" neighbor {a} remote-as {p.asn}", f" neighbor {a} update-source {cfg.local_address}",
                  f" neighbor {a} timers connect {int(cfg.connect_retry)}"]
        if p.password:
            lines.append(f" neighbor {a} password {p.password}")
        if p.passive:
            lines.append(f" neighbor {a} passive")
        if p.asn != cfg.asn:  # eBGP between loopbacks: not on a connected subnet
            lines.append(f" neighbor {a} ttl-security hops 1" if p.ttl_security
                         else f" neighbor {a} disable-connected-check")
    if "ipv6-labelled" in fams:  # 6PE: our IPv6 subnets, sent labelled (RFC 4798)
        from bgp.sixpe import prefixes

        lines.append(" address-family ipv6 unicast")
        lines += [f"  network {p}" for p in prefixes(topo, node)]
        lines.append(" exit-address-family")
    for fam in fams:
        lines.append(f" address-family {_AF_CONF[fam]}")
        for p in cfg.peers:
            lines.append(f"  neighbor {p.address} activate")
            if p.rr_client:
                lines.append(f"  neighbor {p.address} route-reflector-client")
        if fam == "ipv4-unicast":
            lines += [f"  network {n}" for n in cfg.networks]
        elif fam in ("ipv6-labelled", "ipv6-vpn"):
            pass  # 6PE: FRR sends its IPv6 unicast table labelled (above); 6VPE: reflects
        else:
            lines += [f"  network {v.prefix} rd {v.rd} label {v.label} route-map {m}"
                      for v, m in zip(cfg.vpn_networks, maps, strict=True)]
        lines.append(" exit-address-family")
    lines += ["exit", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- state in our schema


def _vtysh_docs(vtysh: Vtysh, lab: str, node: str, *commands: str) -> list[Any]:
    """One vtysh run of several `... json` commands: their JSON documents in order."""
    text = vtysh(lab, node, *commands)
    dec, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        try:
            doc, i = dec.raw_decode(text, i)
        except ValueError:
            raise LsrError(f"{node}: vtysh gave no JSON: {text[i:i + 80]!r}") from None
        out.append(doc)
    return out


def sessions(vtysh: Vtysh, lab: str, node: str) -> dict[str, str]:
    """peer address -> FRR's BGP state (our state names)."""
    (nbrs,) = _vtysh_docs(vtysh, lab, node, "show bgp neighbors json")
    return {a: _STATE.get(str(e.get("bgpState")), str(e.get("bgpState")))
            for a, e in sorted(nbrs.items()) if isinstance(e, dict)}


def _families(e: dict[str, Any]) -> list[str]:
    caps = e.get("neighborCapabilities", {}).get("multiprotocolExtensions", {})
    return [f for f, k in _AFI.items() if caps.get(k, {}).get("advertisedAndReceived")]


def summary(vtysh: Vtysh, lab: str, topo: Topology, node: str) -> dict[str, Any]:
    """Like `bgp.views.summary` of one of our routers (FRR has no per-type counts of the
    messages it received: those come from its `messageStats` totals)."""
    cfg = config(topo, node)
    names = {str(n.lsr_id): n.name for n in topo.routers}
    (nbrs,) = _vtysh_docs(vtysh, lab, node, "show bgp neighbors json")
    out = []
    sent: dict[str, int] = {}
    rcvd: dict[str, int] = {}
    for addr, e in sorted(nbrs.items(), key=lambda kv: tuple(map(int, kv[0].split(".")))):
        if not isinstance(e, dict):
            continue
        st = _STATE.get(str(e.get("bgpState")), str(e.get("bgpState")))
        afi = e.get("addressFamilyInfo", {})
        up = st == "Established"
        stats = e.get("messageStats", {})
        for ours, k in (("OPEN", "opens"), ("UPDATE", "updates"), ("KEEPALIVE", "keepalives"),
                        ("NOTIFICATION", "notifications"), ("ROUTE_REFRESH", "routeRefresh")):
            sent[ours] = sent.get(ours, 0) + int(stats.get(f"{k}Sent", 0))
            rcvd[ours] = rcvd.get(ours, 0) + int(stats.get(f"{k}Recv", 0))
        pc = next((p for p in cfg.peers if str(p.address) == addr), None) if cfg else None
        out.append({
            "neighbor": names.get(addr, addr),
            "address": addr,
            "asn": int(e.get("remoteAs", 0)),
            "type": "ibgp" if e.get("remoteAs") == e.get("localAs") else "ebgp",
            "rr_client": any(v.get("routeReflectorClient") for v in afi.values()
                             if isinstance(v, dict)),
            "passive": bool(pc and pc.passive),
            "md5": bool(pc and pc.password),
            "state": st,
            "bgp_id": e.get("remoteRouterId") if up else None,
            "uptime": round(int(e.get("bgpTimerUpMsec", 0)) / 1000, 3) if up else None,
            "families": _families(e) if up else [],
            "received": sum(int(v.get("acceptedPrefixCounter", 0)) for v in afi.values()
                            if isinstance(v, dict)),
            "sent": sum(int(v.get("sentPrefixCounter", 0)) for v in afi.values()
                        if isinstance(v, dict)),
            "established": int(e.get("connectionsEstablished", 0)),
            "treated_as_withdraw": None,  # FRR does not count these
            "attributes_discarded": None,
            "last_error": str(e.get("lastNotificationReason") or e.get("lastResetDueTo") or "")
            if not up else "",
            "connect_error": None,  # FRR's JSON does not say why a connect failed
        })
    return {"router_id": str(cfg.router_id) if cfg else None, "asn": cfg.asn if cfg else None,
            "route_reflector": bool(cfg and cfg.route_reflector), "neighbors": out,
            "messages": {"sent": {k: v for k, v in sorted(sent.items()) if v},
                         "received": {k: v for k, v in sorted(rcvd.items()) if v}},
            "notifications": {"sent": {}, "received": {}}}


def _path_json(prefix: str, rd: str | None, p: dict[str, Any], names: dict[str, str],
               local: bool) -> dict[str, Any]:
    nh = next((h.get("ip") for h in p.get("nexthops", []) if h.get("ip")), None)
    peer = p.get("peer", {})
    ext = str(p.get("extendedCommunity", {}).get("string", ""))
    asp = p.get("aspath", {})
    out: dict[str, Any] = {"prefix": prefix}
    if rd is not None:
        out["rd"] = rd
    out["next_hop"] = nh
    if "remoteLabel" in p:
        out["label"] = int(p["remoteLabel"])
    elif "localLabel" in p:
        out["label"] = int(p["localLabel"])
    out["route_targets"] = [x[3:] for x in ext.split() if x.startswith("RT:")]
    pid = str(peer.get("peerId", ""))
    out["from"] = "local" if local else names.get(pid, pid)
    out["origin"] = str(p.get("origin", "")).lower()
    out["as_path"] = "" if asp.get("string") == "Local" else str(asp.get("string", ""))
    out["local_pref"] = p.get("locPrf") if not local else None
    out["med"] = p.get("metric")
    out["originator_id"] = p.get("originatorId")
    out["cluster_list"] = list(p.get("clusterList", {}).get("list", []))
    return out


def routes(vtysh: Vtysh, lab: str, topo: Topology, node: str,
           view: str) -> list[dict[str, Any]]:
    """FRR's best paths of `view` (vpn | unicast | ipv6 | vpn6) as `bgp.views.routes`
    entries."""
    names = {str(n.lsr_id): n.name for n in topo.routers}
    cfg = config(topo, node)
    if view == "ipv6":
        return _routes6(vtysh, lab, node, names, cfg)
    vpn = view in ("vpn", "vpn6")
    afi = {"vpn": "ipv4 vpn", "vpn6": "ipv6 vpn"}.get(view, "ipv4 unicast")
    (table,) = _vtysh_docs(vtysh, lab, node, f"show bgp {afi} json")
    rts = table.get("routes", {})
    if vpn:
        by_rd = rts.get("routeDistinguishers", {})
        keys = sorted({p for rd in by_rd.values() for p in rd})
    else:
        keys = sorted(rts)
    keys.sort(key=lambda p: (int(ip_network(p).network_address), ip_network(p).prefixlen))
    if not keys:
        return []
    details = _vtysh_docs(vtysh, lab, node, *(f"show bgp {afi} {p} json" for p in keys))
    local_labels: dict[tuple[str, str], int] | None = None
    out = []
    for prefix, d in zip(keys, details, strict=True):
        entries = d.items() if vpn else [(None, d)]
        for rd, e in entries:
            if not isinstance(e, dict):
                continue
            for p in e.get("paths", []):
                best = p.get("bestpath", {})
                if isinstance(best, dict) and best.get("overall"):
                    local = p.get("peer", {}).get("type") == "static" or \
                        str(p.get("peer", {}).get("peerId")) == "0.0.0.0"
                    r = _path_json(prefix, rd, p, names, local)
                    if local and cfg is not None:
                        r["next_hop"] = str(cfg.local_address)  # FRR says 0.0.0.0
                    if view == "vpn6":  # the next hop as we write it: ::ffff:a.b.c.d
                        r["next_hop"] = _mapped_text(r["next_hop"])
                    if vpn and "label" not in r:
                        # FRR's JSON has no label for its own static VPN routes; its
                        # text table does
                        if local_labels is None:
                            local_labels = text_labels(vtysh(lab, node, f"show bgp {afi}"))
                        if (rd, prefix) in local_labels:
                            r["label"] = local_labels[(rd, prefix)]
                    out.append(r)
    from bgp.nlri import Rd

    def order(r: dict[str, Any]) -> tuple:
        rd = Rd.parse(r["rd"]) if r.get("rd") else None
        n = ip_network(r["prefix"])
        return ((rd.type, rd.admin, rd.number) if rd else (), int(n.network_address),
                n.prefixlen)
    return sorted(out, key=order)


def _routes6(vtysh: Vtysh, lab: str, node: str, names: dict[str, str],
             cfg: Any) -> list[dict[str, Any]]:
    """FRR's labelled IPv6 (6PE) best paths. FRR shows an IPv4-mapped next hop in hex
    (::ffff:aff:1); we write ::ffff:10.255.0.1. Its own routes: next hop :: (our
    loopback, mapped), label Implicit Null (what it sends; its JSON has none)."""
    (table,) = _vtysh_docs(vtysh, lab, node, "show bgp ipv6 labeled-unicast json")
    keys = sorted(table.get("routes", {}), key=lambda p: (int(IPv6Network(p).network_address),
                                                          IPv6Network(p).prefixlen))
    if not keys:
        return []
    details = _vtysh_docs(vtysh, lab, node,
                          *(f"show bgp ipv6 labeled-unicast {p} json" for p in keys))
    out = []
    for prefix, d in zip(keys, details, strict=True):
        for p in d.get("paths", []) if isinstance(d, dict) else []:
            best = p.get("bestpath", {})
            if not (isinstance(best, dict) and best.get("overall")):
                continue
            local = bool(p.get("local")) or str(p.get("peer", {}).get("peerId")) in ("::", "0.0.0.0")
            r = _path_json(prefix, None, p, names, local)
            if local and cfg is not None:
                r["next_hop"], r["label"] = str(cfg.local_address), IMPLICIT_NULL
            r["next_hop"] = _mapped_text(r["next_hop"])
            out.append(r)
    return out


def _mapped_text(a: str | None) -> str | None:
    """An IPv4 address or an IPv4-mapped IPv6 one as ::ffff:a.b.c.d."""
    if a is None:
        return None
    ip = ip_address(a)
    v4 = ip if ip.version == 4 else ip.ipv4_mapped
    return f"::ffff:{v4}" if v4 is not None else str(ip)


def text_labels(text: str) -> dict[tuple[str, str], int]:
    """(RD, prefix) -> label of the best paths in FRR's `show bgp ipv4 vpn` text:

        Route Distinguisher: 65000:4
        *> 10.3.0.0/16      0.0.0.0                  0         32768 i
            UN=0.0.0.0 EC{65000:1} label=3001 type=bgp, subtype=1
    """
    out: dict[tuple[str, str], int] = {}
    rd = prefix = None
    for line in text.splitlines():
        if line.startswith("Route Distinguisher:"):
            rd, prefix = line.split(":", 1)[1].strip(), None
        elif line[:3].strip("*>= i") == "" and line.startswith("*>"):
            words = line[3:].split()
            prefix = words[0] if words and "/" in words[0] else None
        elif "label=" in line and rd and prefix:
            try:
                out[(rd, prefix)] = int(line.split("label=", 1)[1].split()[0])
            except ValueError:
                pass
            prefix = None
    return out


def view(vtysh: Vtysh, lab: str, topo: Topology, node: str, what: str) -> dict[str, Any]:
    if config(topo, node) is None:
        raise LsrError(f"{node} runs no BGP (not in the topology's bgp: section)")
    if what == "summary":
        return summary(vtysh, lab, topo, node)
    return {"routes": routes(vtysh, lab, topo, node, what)}


def missing(vtysh: Vtysh, lab: str, topo: Topology, node: str,
            exp: dict[str, Any]) -> str | None:
    """What an FRR node still lacks for BGP: its sessions Established (its routes are
    FRR's business; ours are checked against the simulator)."""
    names = {str(n.lsr_id): n.name for n in topo.routers}
    sess = sessions(vtysh, lab, node)
    bad = [p for p in exp["peers"] if sess.get(p) != "Established"]
    if bad:
        return (f"{node}: BGP session with {', '.join(names.get(p, p) for p in bad)} not "
                f"Established ({', '.join(sess.get(p, 'none') for p in bad)})")
    return None
