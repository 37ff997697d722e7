"""VPN checks of `lsr validate` (RFC 4364): invariants over the PEs' VRF FIBs and VPN
labels (`Lfib.vrfs`, `Lfib.vpn_ilm`) and packet walks between customer sites.

A VPN here is the set of VRFs with one name: the sites (hosts) of VRF `red` on every PE
are meant to reach each other, whatever the route targets say (a wrong target is what
the check is for). The targets decide what else a VRF may hold (extranet, hub and
spoke): a route is a leak when no target of it is imported.

* vpn-reachability: every site of a VPN reaches every other one (request and reply, over
  the forwarding plane: `trace`).
* vpn-isolation: every route a VRF holds came from a VRF whose export targets it imports,
  with one of those targets, for a prefix that VRF has; and a site never reaches a site of
  another VPN whose routes its VRF does not import (a walk to that site's address ends
  elsewhere: at the own VPN's host with that address, or nowhere).
* vpn-label-continuity: the VPN label a route pushes is one the egress PE allocated for
  that VRF (and prefix, per-prefix), and the transport labels under it are LDP's FTN for
  the egress PE's loopback.

6VPE (RFC 4659): where both sites of a pair have IPv6 (`subnet6` on their links), the
walks are made over IPv6 too (to the other site's IPv6 address), and a VRF's IPv6
subnets are prefixes of it like its IPv4 ones.

Pure: `trace(src, dst)` is a packet walk (`forwarding.walk` JSON) the caller provides.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from lsr.core.lfib import Lfib
from lsr.core.topology import Topology
from lsr.core.vrf import Vrf, prefix_key

VPN_INVARIANTS = ("vpn-reachability", "vpn-isolation", "vpn-label-continuity")
Trace = Callable[[str, str], dict[str, Any]]


@dataclass(frozen=True)
class Row:
    check: str
    status: str  # pass | fail | skip
    detail: str


def sites(topo: Topology) -> dict[str, list[str]]:
    """VPN (VRF name) -> its sites (hosts in a VRF of that name), in file order."""
    out: dict[str, list[str]] = {}
    for h in topo.hosts:
        v = topo.vrf_of(h.name)
        if v is not None:
            out.setdefault(v, []).append(h.name)
    return out


def site_vrf(topo: Topology, host: str) -> Vrf:
    v = topo.vrf_of(host)
    assert v is not None
    return topo.nodes[topo.pe_of(host)].vrfs[v]


def imports_from(topo: Topology, a: str, b: str) -> bool:
    """Does site a's VRF import what site b's VRF exports (so a may reach b)?"""
    va, vb = site_vrf(topo, a), site_vrf(topo, b)
    return bool(set(va.import_rts) & set(vb.export_rts))


def reached(w: dict[str, Any]) -> str | None:
    """Where a walk ended: the node it was delivered to, or None (dropped)."""
    if w["result"] not in ("delivered", "misdelivered") or not w["hops"]:
        return None
    last = w["hops"][-1]
    return last["router"] if last["op"] == "deliver" else last["neighbor"]


def _path(w: dict[str, Any]) -> str:
    parts = []
    for h in w["hops"]:
        lab = "/".join(str(x) for x in h["labels_out"])
        parts.append(f"{h['router']}[{h['op']}{' ' + lab if lab else ''}]")
    end = reached(w)
    return " -> ".join(parts) + (f" -> {end}" if end and end != w["hops"][-1]["router"] else "")


def _outcome(w: dict[str, Any]) -> str:
    last = w["hops"][-1] if w["hops"] else None
    if w["result"] == "dropped" and last is not None:
        return f"dropped at {last['router']} ({last['reason']})"
    if w["result"] == "misdelivered":
        return f"reached {reached(w)}"
    return w["result"]


def address6(topo: Topology, host: str) -> str | None:
    """A site's IPv6 address (6VPE), or None."""
    a = next((i.address6 for i in topo.nodes[host].interfaces.values()
              if i.address6 is not None), None)
    return None if a is None else str(a.ip)


def _v6(topo: Topology | None, host: str) -> str:
    """The walk's DST for `host`: its name (IPv4), or its IPv6 address (`topo` given)."""
    if topo is None:
        return host
    a = address6(topo, host)
    assert a is not None
    return a


def ping(trace: Trace, a: str, b: str, topo6: Topology | None = None) -> tuple[bool, str]:
    """Request a -> b and reply b -> a delivered; the detail shows both paths. With
    `topo6`: over IPv6 (to the other site's IPv6 address)."""
    ok, parts = True, []
    for x, y, what in ((a, b, "request"), (b, a, "reply")):
        w = trace(x, _v6(topo6, y))
        good = w["result"] == "delivered"
        ok = ok and good
        parts.append(f"{what} {_outcome(w)}: {_path(w)}")
    return ok, "; ".join(parts)


def isolated(trace: Trace, topo: Topology, a: str, b: str, v6: bool = False) -> tuple[bool, str]:
    """a's packets to b's address (`v6`: its IPv6 address) never reach b."""
    w = trace(a, _v6(topo if v6 else None, b))
    end = reached(w)
    ok = end != b
    where = f"reaches {b}" if not ok else (f"ends at {end}" if end else _outcome(w))
    return ok, f"{a} -> {b} ({w['dst']}) {where}: {_path(w)}"


def both6(topo: Topology, a: str, b: str) -> bool:
    return address6(topo, a) is not None and address6(topo, b) is not None


def expect_vpn(trace: Trace, topo: Topology, a: str, b: str, reach: bool) -> tuple[bool, str]:
    """An `expect: - vpn:` entry: a reaches b (ping) or never does (isolated), over IPv4
    and, where both sites have IPv6, over IPv6 too."""
    one = ping if reach else None
    ok, detail = one(trace, a, b) if one else isolated(trace, topo, a, b)
    if both6(topo, a, b):
        ok6, d6 = ping(trace, a, b, topo) if reach else isolated(trace, topo, a, b, True)
        ok, detail = ok and ok6, f"{detail}; IPv6: {d6}"
    return ok, detail


# ---------------------------------------------------------------- control plane


def _local_prefixes(topo: Topology, router: str, vrf: Vrf) -> set[IPv4Network | IPv6Network]:
    node = topo.nodes[router]
    v6 = {a.network for i in vrf.interfaces if (a := node.interfaces[i].address6) is not None}
    return {node.interfaces[i].address.network for i in vrf.interfaces} | {
        r.prefix for r in vrf.routes} | v6


def _origin(topo: Topology, router: str, e: Any) -> tuple[str, str, Vrf] | None:
    """(PE, VRF name, VRF) a FIB route came from, by its next hop and RD."""
    if e.source == "vpn":
        n = topo.node_of_address(e.pe) if e.pe is not None else None
    else:
        n = topo.nodes[router]
    if n is None:
        return None
    for name, v in n.vrfs.items():
        if (e.rd and v.rd == e.rd) or (not e.rd and name == e.vrf):
            return n.name, name, v
    return None


def leak_problems(topo: Topology, lfibs: Mapping[str, Lfib]) -> list[str]:
    """Every route of a VRF that its targets do not let in (vpn-isolation)."""
    out = []
    for r in sorted(lfibs):
        node = topo.nodes.get(r)
        if node is None:
            continue
        for vname, fib in sorted(lfibs[r].vrfs.items()):
            v = node.vrfs.get(vname)
            if v is None:
                out.append(f"{r} has a FIB for VRF {vname}, which it does not have")
                continue
            for p, e in sorted(fib.items(), key=lambda kv: prefix_key(kv[0])):
                if e.source in ("connected", "static"):
                    if p not in _local_prefixes(topo, r, v):
                        out.append(f"{r} {vname} {p}: {e.source}, but not a prefix of {vname}")
                    continue
                org = _origin(topo, r, e)
                if org is None:
                    out.append(f"{r} {vname} {p}: from RD {e.rd or '?'} via {e.pe or r}, a VRF "
                               "no PE has")
                    continue
                pe, oname, ov = org
                what = f"{r} {vname} {p} from {pe} {oname}"
                if not v.imports(e.route_targets):
                    out.append(f"{what}: targets {', '.join(e.route_targets) or 'none'}, but "
                               f"{vname} imports {', '.join(v.import_rts) or 'nothing'}")
                elif not set(ov.export_rts) & set(v.import_rts):
                    out.append(f"{what}: {oname} exports {', '.join(ov.export_rts) or 'nothing'}"
                               f", {vname} imports {', '.join(v.import_rts) or 'nothing'}")
                elif p not in _local_prefixes(topo, pe, ov):
                    out.append(f"{what}: {p} is not a prefix of {pe} {oname}")
    return out


def label_problems(topo: Topology, lfibs: Mapping[str, Lfib]) -> list[str]:
    """VPN labels that no egress allocated for the route, and transport labels that are
    not LDP's for the egress (vpn-label-continuity)."""
    out = []
    for r in sorted(lfibs):
        for vname, fib in sorted(lfibs[r].vrfs.items()):
            for p, e in sorted(fib.items(), key=lambda kv: prefix_key(kv[0])):
                if e.source != "vpn":
                    continue
                org = _origin(topo, r, e)
                what = f"{r} {vname} {p}"
                if org is None:
                    out.append(f"{what}: egress {e.pe} has no VRF with RD {e.rd}")
                    continue
                pe, oname, _ = org
                ilm = lfibs.get(pe, Lfib()).vpn_ilm.get(e.vpn_label) \
                    if e.vpn_label is not None else None
                if ilm is None:
                    out.append(f"{what}: pushes VPN label {e.vpn_label}, which {pe} has not "
                               "allocated")
                elif ilm.vrf != oname or (ilm.prefix is not None and ilm.prefix != p):
                    out.append(f"{what}: VPN label {e.vpn_label} is {pe}'s for {ilm.vrf}"
                               + (f" {ilm.prefix}" if ilm.prefix else "") + f", not {oname} {p}")
                ftn = lfibs[r].ftn.get(IPv4Network(f"{e.pe}/32"))
                want = {(n.interface, n.out_labels) for n in ftn.nexthops} if ftn else set()
                have = {(n.interface, n.out_labels[:-1]) for n in e.nexthops}
                if not e.nexthops or any(n.out_labels[-1:] != (e.vpn_label,) for n in e.nexthops):
                    out.append(f"{what}: the stack does not end with the VPN label {e.vpn_label}")
                elif have != want:
                    fmt = ", ".join(f"{i} {list(x)}" for i, x in sorted(have))
                    out.append(f"{what}: transport labels {fmt} are not LDP's for {e.pe}/32 ("
                               + (", ".join(f"{i} {list(x)}" for i, x in sorted(want)) or "none")
                               + ")")
    return out


# ---------------------------------------------------------------- the rows


def invariant_rows(topo: Topology, lfibs: Mapping[str, Lfib], trace: Trace | None,
                   down: Collection[int] = ()) -> list[Row]:
    """One pass row per VPN invariant, or one fail row per problem. A site whose link to
    its PE is down (`down`: link indexes) is cut off: it is expected to reach no one, and
    the pass row says so."""
    vpns = sites(topo)
    rows: list[Row] = []
    # vpn-reachability
    cut = {h: topo.link_name(topo.links[i.link]) for hs in vpns.values() for h in hs
           for i in topo.nodes[h].interfaces.values() if i.link in down}
    pairs = [(a, b) for hs in vpns.values() for a in hs for b in hs if a < b
             and a not in cut and b not in cut]
    pairs6 = [(a, b) for a, b in pairs if both6(topo, a, b)]
    if trace is None:
        rows.append(Row("invariant vpn-reachability", "skip", "no data-plane walker given"))
    else:
        bad = []
        for a, b in pairs:
            ok, detail = ping(trace, a, b)
            if not ok:
                bad.append(f"{a} <-> {b} ({topo.vrf_of(a)}): {detail}")
        for a, b in pairs6:
            ok, detail = ping(trace, a, b, topo)
            if not ok:
                bad.append(f"{a} <-> {b} ({topo.vrf_of(a)}, IPv6): {detail}")
        rows += [Row("invariant vpn-reachability", "fail", d) for d in bad] or [
            Row("invariant vpn-reachability", "pass",
                f"{len(pairs)} site pairs in {len(vpns)} VPNs ({', '.join(vpns)})"
                + (f"; {len(pairs6)} over IPv6 too" if pairs6 else "")
                + "".join(f"; {h} cut off (link {ln} down)" for h, ln in sorted(cut.items())))]
    # vpn-isolation
    leaks = leak_problems(topo, lfibs)
    apart = [(a, b) for va, ha in vpns.items() for vb, hb in vpns.items() if va != vb
             for a in ha for b in hb if not imports_from(topo, a, b)]
    if trace is not None:
        for a, b in apart:
            ok, detail = isolated(trace, topo, a, b)
            if not ok:
                leaks.append(detail)
            if both6(topo, a, b):
                ok, detail = isolated(trace, topo, a, b, True)
                if not ok:
                    leaks.append(f"IPv6: {detail}")
    nroutes = sum(len(f) for lf in lfibs.values() for f in lf.vrfs.values())
    rows += [Row("invariant vpn-isolation", "fail", d) for d in leaks] or [
        Row("invariant vpn-isolation", "pass",
            f"{nroutes} VRF routes allowed by their targets"
            + (f"; {len(apart)} site pairs kept apart" if trace is not None else ""))]
    # vpn-label-continuity
    labs = label_problems(topo, lfibs)
    nvpn = sum(1 for lf in lfibs.values() for f in lf.vrfs.values() for e in f.values()
               if e.source == "vpn")
    rows += [Row("invariant vpn-label-continuity", "fail", d) for d in labs] or [
        Row("invariant vpn-label-continuity", "pass",
            f"{nvpn} VPN routes: VPN labels of their egress, transport labels of LDP")]
    return rows
