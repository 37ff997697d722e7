"""LSP ping / traceroute (RFC 8029) as `lsr lsp` reports them, over either back end.

Both back ends give the engines of `lsr.oam.trace` a `send(ttl, request[, dst])`:

* `trace.LfibNetwork` over a set of LFIBs (`lfib_network`; `lsr.sim.sim_network`
  builds it from the LDP simulator's converged LFIBs);
* a `LiveBackend`: real echo requests injected at the ingress router of a
  running lab (`lsr.lab.lsp.LabSender`, the edge driver).

`lsp_ping` / `lsp_traceroute` return the JSON documented in docs/cli.md
("lsr lsp"). Pure: no sockets, no clock (a live back end brings its own).

A FEC is an LDP one (a prefix) or a VPN one (`responder.VpnTarget`: a VRF of the
ingress PE and a prefix, `resolve_target`): the ingress's VRF route names the egress
PE and the route distinguisher, the requests carry the LDP FEC of the egress's
loopback over the VPN IPv4 FEC (RFC 8029 §3.2.5) and go out with the route's two
labels; `vpn` in the JSON says which route was probed. An IPv6 prefix of a VRF is
a VPN IPv6 FEC (§3.2.6, 6VPE). An IPv6 prefix of the global table is a 6PE FEC
(`responder.SixpeTarget`): the ingress's 6PE route names the egress PE and its label,
the requests carry the egress's LDP FEC over the BGP labeled IPv6 FEC (§3.2.14) and go
out with the route's two labels, as IPv6 packets (`lsr.oam.echo6`); `sixpe` in the
JSON says which route was probed, `fec_type` which FEC (the bottom of the stack).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_network
from typing import Any, Protocol

from lsr.core.fib6 import Fib6, fib6_from_json
from lsr.core.lfib import Lfib, VrfEntry
from lsr.core.topology import Node, Topology
from lsr.errors import LsrError
from lsr.oam.echo import BgpIpv6Fec, Ddmap, Fec, VpnIpv4Fec, VpnIpv6Fec
from lsr.oam.responder import (
    SixpeTarget,
    Target,
    VpnTarget,
    dataplane_ecmp,
    dataplane_ecmp6,
    sixpe_fecs,
    tables_from_topology,
    vpn_fecs,
)
from lsr.oam.trace import (
    DEFAULT_MULTIPATH_ADDRESSES,
    LfibNetwork,
    PingResult,
    Sender,
    TraceResult,
    ping,
    traceroute,
)
from lsr.oam.validate import CheckResult, normalize_neighbors

# Sender's Handles (RFC 8029 §3) unique per process, so two `lsr lsp` runs never
# take each other's replies.
_handles = itertools.count((os.getpid() & 0x7FFF) << 16)


class LiveBackend(Protocol):
    """What `lsp_ping` / `lsp_traceroute` need from a live back end (`lsr.lab.lsp.LabSender`)."""

    last_reason: str | None  # why the last probe got no reply (the router's word)
    clock: Callable[[], float]  # wall clock for the echo timestamps
    owners: Mapping[IPv4Address, tuple[str, str | None]]  # `address_owners` of the lab

    def sender(self, ingress: str, fec: Target) -> Sender: ...

    def first_ddmaps(self, ingress: str, fec: Target, multipath: bool,
                     destinations: int = DEFAULT_MULTIPATH_ADDRESSES) -> tuple[Ddmap, ...]: ...

    def has_ftn(self, ingress: str, fec: Target) -> bool: ...

    def no_lsp_hint(self, ingress: str, fec: IPv4Network | IPv6Network,
                    vpn: bool = False) -> str | None: ...

    def vrf_routes(self, ingress: str, vrf: str) -> Mapping[IPv4Network, VrfEntry]: ...

    def fib6(self, ingress: str) -> Fib6 | None: ...


def resolve_fec(topo: Topology, fec: str) -> IPv4Network:
    """A router name (its loopback /32), a host name (its subnet) or a prefix: an LDP FEC."""
    node = topo.nodes.get(fec)
    if node is not None:
        if node.is_router:
            return IPv4Network(f"{node.lsr_id}/32")
        vrf = topo.vrf_of(fec)
        if vrf is not None:
            raise LsrError(f"{fec} is a site of VPN {vrf}: its subnet is no LDP FEC but a VPN "
                           f"IPv4 FEC of VRF {vrf} (RFC 8029 §3.2.5)")
        for i in node.interfaces.values():
            return i.address.network
    try:
        return IPv4Network(fec, strict=False)
    except ValueError:
        raise LsrError(f"FEC '{fec}' is neither a node of {topo.name} nor an IPv4 prefix") from None


def _subnet6(topo: Topology, node: Node) -> IPv6Network:
    for i in node.interfaces.values():
        if i.address6 is not None:
            return i.address6.network
    raise LsrError(f"{node.name} has no IPv6 address (no subnet6 on its link in {topo.name})")


def resolve_sixpe(topo: Topology, fec: str) -> SixpeTarget:
    """A 6PE FEC: an IPv6 prefix or address, or a host of the global table (its subnet6)."""
    node = topo.nodes.get(fec)
    if node is not None:
        if node.is_router:
            raise LsrError(f"{fec} is a router: routers have no IPv6 loopback (the core is "
                           "IPv4, 6PE: RFC 4798); give an IPv6 prefix or a host")
        return SixpeTarget(_subnet6(topo, node))
    try:
        return SixpeTarget(IPv6Network(fec, strict=False))
    except ValueError:
        pass
    try:
        IPv4Network(fec, strict=False)
    except ValueError:
        raise LsrError(f"FEC '{fec}' is neither a node of {topo.name} nor an IPv6 prefix") from None
    raise LsrError(f"FEC '{fec}' is an IPv4 prefix: drop -6")


def resolve_target(topo: Topology, ingress: str, fec: str, vrf: str | None = None,
                   v6: bool = False) -> Target:
    """What `lsr lsp FROM FEC [--vrf VRF] [-6]` probes from router `ingress`: with `vrf`,
    the VPN IPv4 FEC of a prefix (or an address, or a host's subnet) in that VRF of the
    ingress (the VPN IPv6 FEC for an IPv6 prefix, or a host's subnet6 with `v6`);
    without, a VPN site (a host in a VRF: its subnet in the ingress's VRF of that name),
    a 6PE FEC (an IPv6 prefix, or a host's subnet6 with `v6`: `resolve_sixpe`) or else
    the LDP FEC of `resolve_fec`."""
    node = topo.nodes.get(fec)
    vrfs = topo.nodes[ingress].vrfs
    if vrf is None:
        site_vrf = topo.vrf_of(fec) if node is not None and not node.is_router else None
        if site_vrf is None:
            if v6 or (node is None and ":" in fec):
                return resolve_sixpe(topo, fec)
            return resolve_fec(topo, fec)
        if site_vrf not in vrfs:
            raise LsrError(f"{fec} is a site of VPN {site_vrf}, and {ingress} has no VRF "
                           f"{site_vrf}: probe it from a PE with that VRF, or name one of "
                           f"{ingress}'s with --vrf" if vrfs else
                           f"{fec} is a site of VPN {site_vrf}, and {ingress} has no VRFs: "
                           "probe it from a PE with that VRF")
        vrf = site_vrf
    if vrf not in vrfs:
        have = f"it has {', '.join(sorted(vrfs))}" if vrfs else "it has none"
        raise LsrError(f"{ingress} has no VRF named '{vrf}' ({have})")
    if node is not None:
        if node.is_router:
            raise LsrError(f"{fec} is a router: in VRF {vrf} give a prefix, an address or a site")
        if v6:
            return VpnTarget(vrf, _subnet6(topo, node))
        return VpnTarget(vrf, next(iter(node.interfaces.values())).address.network)
    try:
        prefix = ip_network(fec, strict=False)
    except ValueError:
        raise LsrError(f"FEC '{fec}' is neither a node of {topo.name} nor an IP prefix") from None
    if v6 and prefix.version != 6:
        raise LsrError(f"FEC '{fec}' is an IPv4 prefix: drop -6")
    return VpnTarget(vrf, prefix)


def check_router(topo: Topology, name: str) -> None:
    if name not in topo.nodes or not topo.nodes[name].is_router:
        raise LsrError(f"{topo.name}: no router named '{name}'")


def address_owners(topo: Topology) -> dict[IPv4Address, tuple[str, str | None]]:
    """Every router address -> (router, interface or None for the loopback)."""
    out: dict[IPv4Address, tuple[str, str | None]] = {}
    for r in topo.routers:
        out[r.lsr_id] = (r.name, None)
        for i in r.interfaces.values():
            if i.vrf is None:  # VRF addresses may repeat across PEs: not the router's own
                out[i.address.ip] = (r.name, i.name)
    return out


def _owner_names(backend: LiveBackend | LfibNetwork) -> dict[IPv4Address, str]:
    """Router address -> router name, to name the hop a DDMAP points at."""
    if isinstance(backend, LfibNetwork):
        return {a: name for name, t in backend.tables.items() for a in t.addresses()}
    return {a: r for a, (r, _i) in backend.owners.items()}


def _no_lsp(fec: Target, source: str, multipath: bool) -> TraceResult:
    res = TraceResult(fec, source, multipath)
    res.paths.append({"path": 0, "result": "no-lsp", "routers": []})
    return res


@dataclass(frozen=True)
class _Probe:
    """What is probed: the FEC (a VPN or 6PE one resolved to its route), the Target FEC
    Stack (None: the LDP FEC's own), the `vpn` / `sixpe` JSON, and why there is no LSP
    (None: there is)."""

    fec: Target
    fecs: tuple[Fec, ...] | None = None
    vpn: dict[str, Any] | None = None
    no_lsp: str | None = None
    sixpe: dict[str, Any] | None = None


def _sixpe_probe(backend: LiveBackend | LfibNetwork, source: str, t: SixpeTarget) -> _Probe:
    """The 6PE route a 6PE FEC names: its exact prefix, else the longest one holding it."""
    fib = backend.fib6(source) or Fib6()
    route = fib.routes.get(t.prefix)
    if route is None:
        holding = [p for p in fib.routes if p.version == 6 and t.prefix.subnet_of(p)]
        if holding:
            route = fib.routes[max(holding, key=lambda p: p.prefixlen)]
            t = SixpeTarget(route.prefix)
    info: dict[str, Any] = {"egress": None, "egress_address": None, "label": None}
    if route is None:
        why = fib.unresolved.get(t.prefix)
        hint = None if isinstance(backend, LfibNetwork) else backend.no_lsp_hint(source, t.prefix)
        return _Probe(t, None, None, f"{source} has no 6PE route to {t.prefix}"
                      + "".join(f": {w}" for w in (why, hint) if w), info)
    info.update(egress=route.egress or _owner_names(backend).get(route.next_hop),
                egress_address=str(route.next_hop), label=route.label)
    why = None if route.nexthops else f"{source} has no LSP to {route.next_hop} for {t.prefix}"
    return _Probe(t, sixpe_fecs(route), None, why, info)


def _vpn_probe(backend: LiveBackend | LfibNetwork, source: str, t: VpnTarget) -> _Probe:
    """The VRF route a VPN FEC names: its exact prefix, else the longest one holding it."""
    fib = backend.vrf_routes(source, t.vrf)
    route = fib.get(t.prefix)
    if route is None:
        # a VRF holds both families: only a prefix of the target's can hold it
        holding = [p for p in fib if p.version == t.prefix.version and t.prefix.subnet_of(p)]
        if holding:
            route = fib[max(holding, key=lambda p: p.prefixlen)]
            t = VpnTarget(t.vrf, route.prefix)
    vpn: dict[str, Any] = {"vrf": t.vrf, "rd": None, "egress": None, "egress_address": None,
                           "vpn_label": None, "source": None}
    if route is None:
        hint = None if isinstance(backend, LfibNetwork) else backend.no_lsp_hint(
            source, t.prefix, vpn=True)  # the remote PE stopped or cut off: BGP lost its route
        return _Probe(t, None, vpn, f"{source}'s VRF {t.vrf} has no route to {t.prefix}"
                      + (f": {hint}" if hint else ""))
    vpn["source"] = route.source
    if route.source != "vpn":
        how = f"leaked from its VRF {route.vrf}" if route.source == "leaked" else route.source
        return _Probe(t, None, vpn, f"{source}'s VRF {t.vrf} reaches {t.prefix} itself ({how}): "
                                    "no LSP to another PE")
    assert route.pe is not None
    vpn.update(rd=route.rd, egress=_owner_names(backend).get(route.pe),
               egress_address=str(route.pe), vpn_label=route.vpn_label)
    why = None if route.nexthops else f"{source} has no LSP to {route.pe} for VRF {t.vrf} {t.prefix}"
    return _Probe(t, vpn_fecs(route), vpn, why)


def _probe(backend: LiveBackend | LfibNetwork, source: str, fec: Target) -> _Probe:
    if isinstance(fec, VpnTarget):
        return _vpn_probe(backend, source, fec)
    if isinstance(fec, SixpeTarget):
        return _sixpe_probe(backend, source, fec)
    if not backend.has_ftn(source, fec):
        why = None if isinstance(backend, LfibNetwork) else backend.no_lsp_hint(source, fec)
        return _Probe(fec, no_lsp=f"{source} has no FTN entry (no LSP) for {fec}"
                      + (f": {why}" if why else ""))
    return _Probe(fec)


_FEC_TYPES = {VpnIpv4Fec: "vpn-ipv4", VpnIpv6Fec: "vpn-ipv6", BgpIpv6Fec: "bgp-ipv6"}


def _fec_type(p: _Probe) -> str:
    """The probed FEC's type (the bottom of the Target FEC Stack, RFC 8029 §3.2)."""
    if isinstance(p.fec, SixpeTarget):
        return "bgp-ipv6"
    if isinstance(p.fec, VpnTarget):
        return "vpn-ipv6" if p.fec.prefix.version == 6 else "vpn-ipv4"
    return _FEC_TYPES.get(type(p.fecs[-1]), "ldp-ipv4") if p.fecs else "ldp-ipv4"


def _with_vpn(out: dict[str, Any], p: _Probe) -> dict[str, Any]:
    """The JSON's `fec` (the prefix), `fec_type`, `vpn` (null but for a VPN FEC) and
    `sixpe` (null but for a 6PE FEC)."""
    out["fec"] = str(p.fec.prefix if isinstance(p.fec, (VpnTarget, SixpeTarget)) else p.fec)
    out["fec_type"] = _fec_type(p)
    out["vpn"] = p.vpn
    out["sixpe"] = p.sixpe
    return out


def lsp_traceroute(backend: LiveBackend | LfibNetwork, source: str, fec: Target, *,
                   multipath: bool = False, max_ttl: int = 30) -> dict[str, Any]:
    """LSP traceroute JSON (`TraceResult.to_json` + `reason`, `backend`, `vpn`)."""
    handle = next(_handles) & 0xFFFFFFFF
    live = not isinstance(backend, LfibNetwork)
    clock = backend.clock if not isinstance(backend, LfibNetwork) else None
    p = _probe(backend, source, fec)
    reason = p.no_lsp
    if reason:
        res = _no_lsp(p.fec, source, multipath)
    else:
        first = backend.first_ddmaps(source, p.fec, multipath)
        res = traceroute(backend.sender(source, p.fec), p.fec, source, multipath=multipath,
                         first_ddmaps=first, handle=handle, max_ttl=max_ttl, clock=clock,
                         name_of=_owner_names(backend).get, fecs=p.fecs)
    out = _with_vpn(res.to_json(), p)
    out["backend"] = "lab" if live else "sim"
    out["reason"] = reason
    if reason and out["broken_at"] is None:
        out["broken_at"] = {"ttl": 0, "path": 0, "router": source, "return_code": None,
                            "return_code_name": "no LSP at the ingress"}
    return out


def lsp_ping(backend: LiveBackend | LfibNetwork, source: str, fec: Target, *,
             count: int = 1) -> dict[str, Any]:
    """LSP ping JSON (`PingResult.to_json` + `backend`, `reason`, `vpn`)."""
    handle = next(_handles) & 0xFFFFFFFF
    # no FTN entry (or VRF / 6PE route): no request is sent (Cisco's 'Q'), the reason says why
    p = _probe(backend, source, fec)
    if p.no_lsp:
        res = PingResult(p.fec, source)
    else:
        res = ping(backend.sender(source, p.fec), p.fec, source, count=count, handle=handle,
                   fecs=p.fecs)
    out = _with_vpn(res.to_json(), p)
    if isinstance(backend, LfibNetwork):
        out["backend"], out["reason"] = "sim", p.no_lsp
    else:
        out["backend"] = "lab"
        out["reason"] = p.no_lsp or (backend.last_reason if out["result"] != "ok" else None)
    rtts = [r["rtt_ms"] for r in out["replies"] if r["rtt_ms"] is not None]
    out["rtt_ms"] = {"min": min(rtts), "avg": round(sum(rtts) / len(rtts), 3), "max": max(rtts)} \
        if rtts else None
    return out



def not_egress(out: dict[str, Any], egress: str | None) -> str | None:
    """None when the first reply of a ping (`lsp_ping`'s result) came from `egress` saying
    "egress"; else what went wrong, for a validation row."""
    rep = out["replies"][0] if out["replies"] else None
    if out["result"] == "ok" and rep is not None and rep["router"] == egress:
        return None
    if rep is None or rep["return_code"] is None:
        return out["reason"] or "no reply"
    return (f"{rep['router'] or '?'} answered {rep['return_code']} "
            f"({rep['return_code_name']}) at depth {rep['return_subcode']}")

def vpn_lsp_ping_results(topo: Topology, backend: LiveBackend | LfibNetwork,
                         lfibs: Mapping[str, Lfib], skip: Collection[str] = ()) -> list[CheckResult]:
    """The `vpn-lsp-ping` rows of `lsr validate` / `lsr lab validate`: from every PE (but
    `skip`), one LSP ping of each VPN route of its VRFs (another PE's; an IPv6 one with
    the VPN IPv6 FEC, 6VPE): the egress PE the route names answers 3, having found the
    route distinguisher, the prefix and the VPN label its own (RFC 8029 §4.4). One fail
    row per route that does not, else one pass row (none for a topology without VRFs)."""
    pes = [r.name for r in topo.routers if r.vrfs and r.name in lfibs and r.name not in skip]
    if not pes:
        return []
    bad: list[CheckResult] = []
    n = n6 = 0
    for pe in pes:
        for vrf, fib in sorted(lfibs[pe].vrfs.items()):
            for prefix in sorted(fib, key=lambda p: (p.version, int(p.network_address), p.prefixlen)):
                if fib[prefix].source != "vpn":
                    continue
                n += 1
                n6 += prefix.version == 6
                out = lsp_ping(backend, pe, VpnTarget(vrf, prefix))
                v = out["vpn"]
                what = not_egress(out, v["egress"])
                if what is None:
                    continue
                bad.append(CheckResult("vpn-lsp-ping", "fail",
                                       f"{pe} {vrf} {prefix} (RD {v['rd']}, egress "
                                       f"{v['egress'] or v['egress_address']}): {what}"))
    if bad:
        return bad
    if not n:
        return [CheckResult("vpn-lsp-ping", "skip", "no VPN route to another PE")]
    six = f" ({n6} IPv6)" if n6 else ""
    return [CheckResult("vpn-lsp-ping", "pass",
                        f"{n} VPN routes{six} of {len(pes)} PEs: the egress PE answers 3 (its RD, "
                        "prefix and VPN label)")]


def lfib_network(topo: Topology, lfibs: Mapping[str, Lfib],
                 fib6s: Mapping[str, Fib6] | None = None) -> LfibNetwork:
    """`LfibNetwork` over the given LFIBs (neighbours as LSR IDs or names) and 6PE routes
    (`fib6s`), hashing ECMP as the forwarding plane does (`responder.dataplane_ecmp`,
    `dataplane_ecmp6` for the IPv6 requests)."""
    lfibs = normalize_neighbors(topo, lfibs)
    fib6s = fib6s or {}
    tables = {r.name: tables_from_topology(topo, r.name, lfibs.get(r.name, Lfib()),
                                           fib6=fib6s.get(r.name))
              for r in topo.routers}
    # ECMP as the lab's dataplane hashes the probes: the same branches as in a lab
    return LfibNetwork.from_topology(topo, tables, dataplane_ecmp, dataplane_ecmp6)


def fib6s_from_json(doc: Any) -> dict[str, Fib6]:
    """Each router's 6PE routes from an lfib document's `ipv6` parts (`lsr sim lfib
    --json`, a lab router's `lfib` answer). Raises ValueError on a malformed one."""
    out = {}
    for r, d in doc.get("routers", {}).items():
        if isinstance(d, dict) and "ipv6" in d:
            try:
                out[r] = fib6_from_json(d["ipv6"])
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"lfib.routers.{r}.ipv6: {e}") from None
    return out


__all__ = [
    "LiveBackend", "address_owners", "check_router", "fib6s_from_json", "lfib_network",
    "lsp_ping", "lsp_traceroute", "resolve_fec", "resolve_sixpe", "resolve_target",
    "vpn_lsp_ping_results",
]
