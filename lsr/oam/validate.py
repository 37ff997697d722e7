"""Path validation: `expect:` assertions of topology files and LSP invariants.

Input is the topology, every router's `Lfib` (from the simulator, or loaded
from a live lab's `lfib` JSON with `lfibs_from_json`) and the IGP; output a
list of `CheckResult` (check, status pass / fail / skip, detail naming what
failed and where). Pure: no sockets, no clock.

The `expect:` section (registered with the topology loader, so mistakes are
load errors naming file, line and key)::

    expect:
      - lsp: {from: pe1, to: pe2}                   # an LSP from pe1 reaches pe2's loopback FEC
      - lsp: {from: pe1, to: pe2, via: [p1]}        # every ECMP branch passes through p1
      - lsp: {from: pe1, to: pe2, via_any: [p2]}    # at least one branch passes through p2
      - lsp: {from: pe1, to: 10.255.0.9/32, hops: 3}  # every branch is 3 links long
      - ping: {from: ce1, to: ce2}                  # data plane: request and reply delivered
      - vpn: {from: red1, to: red2}                 # VPN sites (hosts in VRFs) reach each other
      - vpn: {from: red1, to: blue2, reach: false}  # red1's packets never reach blue2

`to` is a router (its loopback /32) or a prefix of the topology.

Built-in invariants, checked for every FEC from every router that should
have an LSP for it (its `ldp.fecs` option covers the FEC and its IGP route is
not connected):

* lsp-coverage: the router has an FTN entry for the FEC;
* igp-shortest-path: each FTN / ILM entry's next hops equal the IGP ECMP set;
* label-continuity: the out label is the next router's in label for the FEC;
* php: the penultimate hop pops (or sends explicit-null when the egress asked
  for it) and nobody pops before the egress;
* no-loops, no-black-holes: walking the LFIBs from every ingress over every
  ECMP branch never revisits a router and never reaches a router with no
  entry for the label.

With VRFs (RFC 4364), also vpn-reachability, vpn-isolation and
vpn-label-continuity (`lsr.oam.vpncheck`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

from lsr.core.igp import Igp
from lsr.core.lfib import FtnEntry, IlmEntry, Lfib, Nhlfe, VpnIlmEntry, VrfEntry
from lsr.core.topology import Topology
from lsr.oam import lspwalk, vpncheck

INVARIANTS = (
    "lsp-coverage",
    "igp-shortest-path",
    "label-continuity",
    "php",
    "no-loops",
    "no-black-holes",
)
MAX_PATHS = lspwalk.MAX_BRANCHES  # ECMP branches walked per (ingress, FEC)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: str  # "pass" | "fail" | "skip"
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail}


# ---------------------------------------------------------------- expect: section


@dataclass(frozen=True)
class Expectation:
    """One `expect:` item, with where it came from."""

    index: int
    line: int | None
    kind: str  # "lsp" | "ping" | "vpn"
    src: str
    dst: str
    fec: IPv4Network | None = None  # lsp only
    via: tuple[str, ...] = ()
    via_any: tuple[str, ...] = ()
    hops: int | None = None
    reach: bool = True  # vpn only: False = src must never reach dst

    @property
    def label(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        extra = "" if self.reach else " reach false"
        if self.via:
            extra += f" via {','.join(self.via)}"
        if self.via_any:
            extra += f" via_any {','.join(self.via_any)}"
        if self.hops is not None:
            extra += f" hops {self.hops}"
        return f"expect[{self.index}] {self.kind} {self.src} -> {self.dst}{extra}{where}"


_LSP_KEYS = ("from", "to", "via", "via_any", "hops")
_PING_KEYS = ("from", "to")
_VPN_KEYS = ("from", "to", "reach")
_KEYS = {"lsp": _LSP_KEYS, "ping": _PING_KEYS, "vpn": _VPN_KEYS}


def _site(ctx: Any, topo: Topology, value: Any, path: tuple) -> str:
    if not isinstance(value, str) or value not in topo.nodes:
        raise ctx.fail(path, f"unknown node {value!r}")
    if topo.nodes[value].is_router or topo.vrf_of(value) is None:
        raise ctx.fail(path, f"'{value}' is not a VPN site (a host on a VRF interface)")
    return value


def _router_name(ctx: Any, topo: Topology, value: Any, path: tuple) -> str:
    if not isinstance(value, str) or value not in topo.nodes:
        raise ctx.fail(path, f"unknown node {value!r}")
    if not topo.nodes[value].is_router:
        raise ctx.fail(path, f"'{value}' is a {topo.nodes[value].kind}, not a router")
    return value


def _lsp_target(ctx: Any, topo: Topology, value: Any, path: tuple) -> IPv4Network:
    if isinstance(value, str) and value in topo.nodes:
        return IPv4Network(f"{topo.nodes[_router_name(ctx, topo, value, path)].lsr_id}/32")
    try:
        net = IPv4Network(str(value), strict=True)
    except ValueError:
        if isinstance(value, str) and "/" not in value and not value[:1].isdigit():
            raise ctx.fail(path, f"unknown node {value!r}") from None
        raise ctx.fail(path, f"{value!r} is neither a router nor an IPv4 prefix") from None
    if net not in topo.prefixes():
        raise ctx.fail(path, f"no router of {topo.name} originates {net}")
    return net


def _endpoint(ctx: Any, topo: Topology, value: Any, path: tuple) -> str:
    if isinstance(value, str) and value in topo.nodes:
        return value
    try:
        addr = IPv4Address(str(value))
    except ValueError:
        raise ctx.fail(path, f"unknown node {value!r}") from None
    if topo.node_of_address(addr) is None:
        raise ctx.fail(path, f"{addr} is not an address of {topo.name}")
    return str(addr)


def _router_list(ctx: Any, topo: Topology, value: Any, path: tuple) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ctx.fail(path, "expected a non-empty list of router names")
    return tuple(_router_name(ctx, topo, v, path + (i,)) for i, v in enumerate(value))


def parse_expect(ctx: Any, raw: Any, topo: Topology) -> list[Expectation]:
    """Validator of the `expect:` section (lsr.core.topology.register_section)."""
    base: tuple = ("expect",)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ctx.fail(base, "expected a list of assertions (- lsp: {...} or - ping: {...})")
    out: list[Expectation] = []
    for i, item in enumerate(raw):
        p = base + (i,)
        if not isinstance(item, dict) or len(item) != 1:
            raise ctx.fail(p, "each assertion is a mapping with one key: lsp, ping or vpn")
        ((kind, body),) = item.items()
        if kind not in _KEYS:
            raise ctx.fail(p + (kind,), f"unknown assertion '{kind}' (allowed: lsp, ping, vpn)")
        bp = p + (kind,)
        keys = _KEYS[kind]
        if not isinstance(body, dict):
            raise ctx.fail(bp, "expected a mapping like {from: pe1, to: pe2}")
        for k in body:
            if k not in keys:
                raise ctx.fail(bp + (k,), f"unknown key '{k}' (allowed: {', '.join(keys)})")
        for k in ("from", "to"):
            if k not in body:
                raise ctx.fail(bp, f"missing '{k}'")
        line = ctx.located.line(p)
        if kind == "vpn":
            src = _site(ctx, topo, body["from"], bp + ("from",))
            dst = _site(ctx, topo, body["to"], bp + ("to",))
            if src == dst:
                raise ctx.fail(bp + ("to",), "from and to are the same site")
            reach = body.get("reach", True)
            if not isinstance(reach, bool):
                raise ctx.fail(bp + ("reach",), f"reach must be true or false, got {reach!r}")
            out.append(Expectation(i, line, kind, src, dst, reach=reach))
            continue
        if kind == "ping":
            src = _endpoint(ctx, topo, body["from"], bp + ("from",))
            dst = _endpoint(ctx, topo, body["to"], bp + ("to",))
            out.append(Expectation(i, line, kind, src, dst))
            continue
        src = _router_name(ctx, topo, body["from"], bp + ("from",))
        fec = _lsp_target(ctx, topo, body["to"], bp + ("to",))
        via = _router_list(ctx, topo, body["via"], bp + ("via",)) if "via" in body else ()
        via_any = _router_list(ctx, topo, body["via_any"], bp + ("via_any",)) if "via_any" in body else ()
        hops = None
        if "hops" in body:
            h = body["hops"]
            if isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 255:
                raise ctx.fail(bp + ("hops",), f"hops must be an integer 1..255, got {h!r}")
            hops = h
        if src in _egresses(topo, fec):
            raise ctx.fail(bp + ("from",), f"{src} is the egress of {fec}: no LSP to check")
        out.append(Expectation(i, line, kind, src, str(body["to"]), fec, via, via_any, hops))
    return out




# ---------------------------------------------------------------- LFIB JSON loader


def lfibs_from_json(doc: Any) -> dict[str, Lfib]:
    """Per-router Lfib from the `lsr sim lfib --json` / lab `lfib --json` schema::

        {"routers": {"p1": {"lsr_id": "10.255.0.2",
           "ftn": [{"fec", "nexthops": [{"neighbor", "interface", "nexthop", "out_labels"}]}],
           "ilm": [{"in_label", "fec", "nexthops": [{"op", "neighbor", "interface", "nexthop", "out_labels"}]}]}}}

    Raises ValueError naming the key path of the first problem.
    """

    class Missing(ValueError):
        """Already names its key path: not prefixed again below."""

    def need(d: Any, key: str, where: str) -> Any:
        if not isinstance(d, dict) or key not in d:
            raise Missing(f"{where}: missing '{key}'")
        return d[key]

    def nexthops(lst: Any, where: str, ilm: bool) -> tuple[Nhlfe, ...]:
        if not isinstance(lst, list):
            raise ValueError(f"{where}: expected a list")
        out = []
        for k, nh in enumerate(lst):
            w = f"{where}[{k}]"
            try:
                labels = tuple(int(x) for x in need(nh, "out_labels", w))
                out.append(Nhlfe(
                    str(need(nh, "neighbor", w)), str(need(nh, "interface", w)),
                    ip_address(need(nh, "nexthop", w)), labels,  # IPv6: a VRF static route
                    str(need(nh, "op", w)) if ilm else "push",
                ))
            except Missing:
                raise
            except (TypeError, ValueError, ipaddress.AddressValueError) as e:
                raise ValueError(f"{w}: {e}") from None
        return tuple(out)

    routers = need(doc, "routers", "lfib")
    if not isinstance(routers, dict):
        raise ValueError("lfib.routers: expected a mapping of router name to tables")
    lfibs: dict[str, Lfib] = {}
    for name, r in routers.items():
        lf = Lfib()
        for i, e in enumerate(need(r, "ftn", f"routers.{name}") or []):
            w = f"routers.{name}.ftn[{i}]"
            try:
                fec = IPv4Network(need(e, "fec", w))
            except Missing:
                raise
            except ValueError as ex:
                raise ValueError(f"{w}.fec: {ex}") from None
            lf.ftn[fec] = FtnEntry(fec, nexthops(need(e, "nexthops", w), w + ".nexthops", False))
        for i, e in enumerate(need(r, "ilm", f"routers.{name}") or []):
            w = f"routers.{name}.ilm[{i}]"
            try:
                fec = IPv4Network(need(e, "fec", w))
                label = int(need(e, "in_label", w))
            except Missing:
                raise
            except (TypeError, ValueError) as ex:
                raise ValueError(f"{w}: {ex}") from None
            lf.ilm[label] = IlmEntry(label, fec, nexthops(need(e, "nexthops", w), w + ".nexthops", True))
        for i, e in enumerate(r.get("vpn_ilm") or []):
            w = f"routers.{name}.vpn_ilm[{i}]"
            try:
                label = int(need(e, "in_label", w))
                vrf = str(need(e, "vrf", w))
                pfx = need(e, "prefix", w)
                prefix = None if pfx is None else ip_network(pfx)  # IPv6: 6VPE
            except Missing:
                raise
            except (TypeError, ValueError) as ex:
                raise ValueError(f"{w}: {ex}") from None
            lf.vpn_ilm[label] = VpnIlmEntry(label, vrf, prefix,
                                            nexthops(need(e, "nexthops", w), w + ".nexthops", True))
        vrfs = r.get("vrfs") or {}
        if not isinstance(vrfs, dict):
            raise ValueError(f"routers.{name}.vrfs: expected a mapping of VRF name to routes")
        for vname, entries in vrfs.items():
            fib: dict[IPv4Network | IPv6Network, VrfEntry] = {}
            for i, e in enumerate(entries or []):
                w = f"routers.{name}.vrfs.{vname}[{i}]"
                try:
                    prefix = ip_network(need(e, "prefix", w))
                    pe = e.get("pe")
                    label = e.get("vpn_label")
                    fib[prefix] = VrfEntry(
                        prefix, str(need(e, "source", w)),
                        nexthops(need(e, "nexthops", w), w + ".nexthops", False),
                        str(e.get("interface", "")), str(e.get("rd", "")),
                        None if pe is None else IPv4Address(pe),
                        None if label is None else int(label),
                        tuple(str(t) for t in e.get("route_targets", ())), str(e.get("vrf", "")))
                except Missing:
                    raise
                except (TypeError, ValueError, AttributeError) as ex:
                    raise ValueError(f"{w}: {ex}") from None
            lf.vrfs[str(vname)] = fib
        lfibs[str(name)] = lf
    return lfibs


# ---------------------------------------------------------------- FECs and a reference LDP


def normalize_neighbors(topo: Topology, lfibs: Mapping[str, Lfib]) -> dict[str, Lfib]:
    """Name next-hop neighbours by node name; LDP's own tables use LSR IDs."""
    names = {str(r.lsr_id): r.name for r in topo.routers}

    def fix(nhs: tuple[Nhlfe, ...]) -> tuple[Nhlfe, ...]:
        return tuple(replace(n, neighbor=names.get(n.neighbor, n.neighbor)) for n in nhs)

    out: dict[str, Lfib] = {}
    for r, lf in lfibs.items():
        out[r] = Lfib(
            {f: replace(e, nexthops=fix(e.nexthops)) for f, e in lf.ftn.items()},
            {k: replace(e, nexthops=fix(e.nexthops)) for k, e in lf.ilm.items()},
            {v: {p: replace(e, nexthops=fix(e.nexthops)) for p, e in fib.items()}
             for v, fib in lf.vrfs.items()},
            {k: replace(e, nexthops=fix(e.nexthops)) for k, e in lf.vpn_ilm.items()},
        )
    return out


def _egresses(topo: Topology, fec: IPv4Network) -> frozenset[str]:
    return frozenset(lspwalk.egresses(topo, fec))


def wants(topo: Topology, router: str, fec: IPv4Network) -> bool:
    """Does `router` label `fec` (its `ldp.fecs` option: all prefixes, or /32s)?"""
    return topo.nodes[router].ldp.fecs == "all" or fec.prefixlen == 32


def expected_lsps(topo: Topology, igp: Igp) -> list[tuple[str, IPv4Network]]:
    """(ingress, FEC) pairs that must have an LSP: the router labels the FEC and
    reaches it through the IGP (not connected)."""
    out = []
    for r in topo.routers:
        for fec, route in igp.rib(r.name).items():
            if not route.connected and wants(topo, r.name, fec):
                out.append((r.name, fec))
    return out


def reference_lfibs(topo: Topology, igp: Igp | None = None) -> dict[str, Lfib]:
    """The LFIBs LDP should converge to (independent control, liberal retention), and
    the VPN state of PEs once BGP has carried every VPN route (`bgp.vpn.reference_imports`):
    one local label per router per FEC from the router's label range, swap to
    the IGP next hop's label, pop towards the egress (or explicit-null when the
    egress advertises it). An oracle for tests and for `lsr validate --reference`.
    """
    igp = igp or Igp(topo)
    fecs = list(topo.prefixes())
    local: dict[tuple[str, IPv4Network], int] = {}
    for r in topo.routers:
        nxt = topo.label_ranges(r.name)[0][0]  # after a 6PE router's 6PE label
        for fec in fecs:
            if r.name in _egresses(topo, fec) or not wants(topo, r.name, fec):
                continue
            if fec in igp.rib(r.name):
                local[(r.name, fec)] = nxt
                nxt += 1

    def out_labels(nb: str, fec: IPv4Network) -> tuple[int, ...] | None:
        if nb in _egresses(topo, fec):
            return lspwalk.egress_binding(topo, nb)
        lbl = local.get((nb, fec))
        return None if lbl is None else (lbl,)

    lfibs: dict[str, Lfib] = {}
    for r in topo.routers:
        lf = Lfib()
        for fec, route in igp.rib(r.name).items():
            if route.connected or (r.name, fec) not in local:
                continue
            nhs = []
            for nh in route.nexthops:
                out = out_labels(nh.neighbor, fec)
                if out is not None:
                    nhs.append((nh, out))
            if not nhs:
                continue
            lf.ftn[fec] = FtnEntry(fec, tuple(Nhlfe(n.neighbor, n.interface, n.address, o) for n, o in nhs))
            lbl = local[(r.name, fec)]
            lf.ilm[lbl] = IlmEntry(lbl, fec, tuple(
                Nhlfe(n.neighbor, n.interface, n.address, o, "swap" if o else "pop") for n, o in nhs
            ))
        lfibs[r.name] = lf
    for r in topo.routers:  # PEs: every VPN route carried everywhere (RFC 4364)
        if r.vrfs:
            from bgp.vpn import allocate_labels, reference_imports
            from lsr.core.vpnfib import compose

            vt = compose(topo, r.name, reference_imports(topo, r.name), lfibs[r.name].ftn,
                         allocate_labels(topo, r.name))
            lfibs[r.name].vrfs, lfibs[r.name].vpn_ilm = vt.vrfs, vt.ilm
    return lfibs


# ---------------------------------------------------------------- walking LSPs over LFIBs


@dataclass(frozen=True)
class Problem:
    """One invariant violation: which check, where (router), what."""

    check: str
    router: str
    fec: IPv4Network
    detail: str


@dataclass
class LspWalk:
    """Every ECMP branch of the LSP for `fec` from `ingress`, walked over the LFIBs."""

    ingress: str
    fec: IPv4Network
    paths: list[tuple[str, ...]] = field(default_factory=list)  # complete: ingress .. egress
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.paths) and not self.problems


# How each problem of the walk shows in the invariants (INVARIANTS).
_CHECK = {
    lspwalk.NO_FTN: "lsp-coverage",
    lspwalk.LOOP: "no-loops",
    lspwalk.MAX_HOPS_EXCEEDED: "no-loops",
    lspwalk.NOT_A_ROUTER: "no-black-holes",
    lspwalk.EGRESS_LABEL: "php",
    lspwalk.EARLY_POP: "php",
    lspwalk.LABEL_DISCONTINUITY: "label-continuity",
    lspwalk.MISSING_ILM: "no-black-holes",
    lspwalk.BLACKHOLE: "no-black-holes",
}


def walk_lsp(topo: Topology, lfibs: Mapping[str, Lfib], ingress: str, fec: IPv4Network) -> LspWalk:
    """Follow FTN then ILM entries hop by hop over every ECMP branch (`lsr.oam.lspwalk`)."""
    wk = lspwalk.walk(topo, lfibs, ingress, fec)
    return LspWalk(ingress, fec, [b.routers for b in wk.complete],
                   [Problem(_CHECK[p.kind], p.router, fec, p.detail) for p in wk.problems])


def _igp_set(igp: Igp, router: str, fec: IPv4Network) -> set[tuple[str, str, IPv4Address]] | None:
    route = igp.rib(router).get(fec)
    if route is None or route.connected:
        return None
    return {(n.neighbor, n.interface, n.address) for n in route.nexthops}


def _fmt_set(s: Iterable[tuple[str, str, IPv4Address]]) -> str:
    return "{" + ", ".join(f"{n}/{i}" for n, i, _ in sorted(s)) + "}"


def shortest_path_problems(topo: Topology, lfibs: Mapping[str, Lfib], igp: Igp) -> list[Problem]:
    """FTN and ILM next-hop sets must equal the IGP ECMP sets."""
    out = []
    for r in sorted(lfibs):
        if r not in topo.nodes:
            continue
        entries: list[tuple[str, FtnEntry | IlmEntry]] = [("FTN", e) for e in lfibs[r].ftn.values()]
        entries += [(f"ILM {e.in_label}", e) for e in lfibs[r].ilm.values()]
        for what, e in entries:
            have = {(n.neighbor, n.interface, n.nexthop) for n in e.nexthops}
            want = _igp_set(igp, r, e.fec)
            if want is None:
                out.append(Problem("igp-shortest-path", r, e.fec,
                                   f"{r} {what} {e.fec}: no IGP route (or connected) but next hops "
                                   f"{_fmt_set(have)}"))
            elif have != want:
                out.append(Problem("igp-shortest-path", r, e.fec,
                                   f"{r} {what} {e.fec}: next hops {_fmt_set(have)} != IGP ECMP set "
                                   f"{_fmt_set(want)}"))
    return out


# ---------------------------------------------------------------- the engine

PingCheck = Callable[[str, str], tuple[bool, str]]


def walk_trace(topo: Topology, lfibs: Mapping[str, Lfib], igp: Igp) -> vpncheck.Trace:
    """Packet walks over the pure forwarding plane (forwarding.walk JSON), VRFs included."""
    from forwarding.tables import RouterTables
    from forwarding.walk import walk

    tables = {r.name: RouterTables.build(topo, r.name, igp.rib(r.name), lfibs.get(r.name, Lfib()))
              for r in topo.routers}
    return lambda src, dst: walk(topo, tables, src, dst, down=igp.down)


def walk_ping(topo: Topology, lfibs: Mapping[str, Lfib], igp: Igp,
              trace: vpncheck.Trace | None = None) -> PingCheck:
    """A `ping` check over the pure forwarding plane (forwarding.walk): an ICMP
    echo from src to dst and the reply back must both be delivered."""
    walk = trace or walk_trace(topo, lfibs, igp)

    def check(src: str, dst: str) -> tuple[bool, str]:
        parts = []
        ok = True
        for a, b, what in ((src, dst, "request"), (dst, src, "reply")):
            j = walk(a, b)
            path = " -> ".join(
                f"{h['router']}[{h['op']}{' ' + str(h['labels_out']) if h['labels_out'] else ''}]"
                for h in j["hops"])
            last = j["hops"][-1] if j["hops"] else None
            how = (f"dropped at {last['router']} ({last['reason']})"
                   if j["result"] == "dropped" and last is not None and last["reason"]
                   else j["result"])
            parts.append(f"{what} {how}: {path}")
            ok = ok and j["result"] == "delivered"
        return ok, "; ".join(parts)

    return check


def _check_lsp(topo: Topology, lfibs: Mapping[str, Lfib], e: Expectation) -> CheckResult:
    assert e.fec is not None
    w = walk_lsp(topo, lfibs, e.src, e.fec)
    name = e.label
    if w.problems:
        return CheckResult(name, "fail", "; ".join(p.detail for p in w.problems[:3])
                           + (f" (+{len(w.problems) - 3} more)" if len(w.problems) > 3 else ""))
    if not w.paths:
        return CheckResult(name, "fail", f"no LSP from {e.src} for {e.fec}")
    paths = [" -> ".join(p) for p in w.paths]
    for r in e.via:
        missing = [" -> ".join(p) for p in w.paths if r not in p]
        if missing:
            return CheckResult(name, "fail", f"branch {missing[0]} does not pass through {r}"
                               + (f" ({len(missing)} of {len(paths)} branches)" if len(paths) > 1 else ""))
    if e.via_any and not any(all(r in p for r in e.via_any) for p in w.paths):
        return CheckResult(name, "fail", f"no branch passes through {', '.join(e.via_any)}: "
                           + " | ".join(paths))
    if e.hops is not None:
        wrong = [p for p in w.paths if len(p) - 1 != e.hops]
        if wrong:
            return CheckResult(name, "fail", f"{len(wrong[0]) - 1} hops ({' -> '.join(wrong[0])}), "
                               f"expected {e.hops}")
    return CheckResult(name, "pass", " | ".join(paths))


def validate(
    topo: Topology,
    lfibs: Mapping[str, Lfib],
    igp: Igp | None = None,
    *,
    expectations: Iterable[Expectation] | None = None,
    ping: PingCheck | None = None,
    invariants: bool = True,
    trace: vpncheck.Trace | None = None,
) -> list[CheckResult]:
    """Run the topology's `expect:` assertions (or `expectations`) and the
    built-in invariants. `ping` assertions use `ping` (see `walk_ping`), `vpn` ones
    and the VPN invariants' walks `trace` (`walk_trace`); without them they are
    reported as skipped."""
    igp = igp or Igp(topo)
    lfibs = normalize_neighbors(topo, lfibs)
    exps = list(topo.extra.get("expect", []) if expectations is None else expectations)
    results: list[CheckResult] = []
    for e in exps:
        if e.kind == "lsp":
            results.append(_check_lsp(topo, lfibs, e))
        elif e.kind == "vpn":
            if trace is None:
                results.append(CheckResult(e.label, "skip", "no data-plane walker given"))
                continue
            ok, detail = vpncheck.expect_vpn(trace, topo, e.src, e.dst, e.reach)
            results.append(CheckResult(e.label, "pass" if ok else "fail", detail))
        elif ping is None:
            results.append(CheckResult(e.label, "skip", "no data-plane walker given"))
        else:
            ok, detail = ping(e.src, e.dst)
            results.append(CheckResult(e.label, "pass" if ok else "fail", detail))
    if invariants:
        results.extend(invariant_results(topo, lfibs, igp))
        if any(r.vrfs for r in topo.routers):
            results += [CheckResult(r.check, r.status, r.detail)
                        for r in vpncheck.invariant_rows(topo, lfibs, trace, igp.down)]
    return results


def invariant_results(topo: Topology, lfibs: Mapping[str, Lfib], igp: Igp) -> list[CheckResult]:
    """One fail row per distinct violation (naming the ingresses it affects),
    or one pass row per invariant."""
    pairs = expected_lsps(topo, igp)
    problems: dict[tuple[str, str], set[str]] = {}  # (check, detail) -> ingresses
    order: list[tuple[str, str]] = []
    paths = 0
    for ingress, fec in pairs:
        w = walk_lsp(topo, lfibs, ingress, fec)
        paths += len(w.paths)
        for p in w.problems:
            key = (p.check, p.detail)
            if key not in problems:
                problems[key] = set()
                order.append(key)
            problems[key].add(ingress)
    for p in shortest_path_problems(topo, lfibs, igp):
        key = (p.check, p.detail)
        if key not in problems:
            problems[key] = set()
            order.append(key)
    # a router whose label range is too small: named once (only when it is)
    out: list[CheckResult] = [CheckResult("label-range", "fail", why) for r in topo.routers
                              if (why := topo.label_shortage(r.name)) is not None]
    nfec = len({f for _, f in pairs})
    for check in INVARIANTS:
        rows = [(d, problems[(c, d)]) for c, d in order if c == check]
        if not rows:
            out.append(CheckResult(f"invariant {check}", "pass",
                                   f"{len(pairs)} LSPs ({nfec} FECs, {paths} branches)"))
            continue
        for detail, ingresses in rows:
            affects = f" [LSPs from {', '.join(sorted(ingresses))}]" if ingresses else ""
            out.append(CheckResult(f"invariant {check}", "fail", detail + affects))
    return out


def summary(results: Iterable[CheckResult]) -> dict[str, Any]:
    """The JSON of `lsr validate --json` (docs/cli.md), minus the source fields."""
    rs = list(results)
    counts = {s: sum(1 for r in rs if r.status == s) for s in ("pass", "fail", "skip")}
    return {
        "results": [r.to_json() for r in rs],
        "passed": counts["pass"],
        "failed": counts["fail"],
        "skipped": counts["skip"],
        "result": "fail" if counts["fail"] else "ok",
    }


def control_plane_results(problems: Sequence[str], sessions: int,
                          adjacencies: int | None) -> list[CheckResult]:
    """invariant control-plane: every LDP session (and OSPF adjacency) the topology calls
    for is up; else one failure per one that is not, naming it and its cause
    (`lsr.oam.diagnose`). The LSP invariants after it show what that breaks."""
    if problems:
        return [CheckResult("invariant control-plane", "fail", p) for p in problems]
    ospf = f", {adjacencies} OSPF adjacencies Full" if adjacencies is not None else ""
    return [CheckResult("invariant control-plane", "pass",
                        f"{sessions} LDP sessions OPERATIONAL{ospf}")]


def igp_route_result(topo: Topology, ribs: Mapping[str, Mapping[IPv4Network, Any]],
                     igp: Igp) -> CheckResult:
    """invariant igp-routes: the routes each router's IGP (OSPF) built equal the reference
    model's, prefix by prefix: metric and the exact ECMP next-hop set."""
    bad: list[str] = []
    total = 0
    for r in topo.routers:
        want, have = igp.rib(r.name), ribs.get(r.name, {})
        total += len(want)
        for p in sorted(set(want) | set(have), key=lambda p: (int(p.network_address), p.prefixlen)):
            if want.get(p) != have.get(p):
                bad.append(f"{r.name} {p}: {_route_text(have.get(p))} (reference "
                           f"{_route_text(want.get(p))})")
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        return CheckResult("invariant igp-routes", "fail", "; ".join(bad[:3]) + more)
    return CheckResult("invariant igp-routes", "pass",
                       f"{total} routes on {len(topo.routers)} routers equal the reference")


def _route_text(route: Any) -> str:
    if route is None:
        return "none"
    via = ",".join(nh.neighbor for nh in route.nexthops) or "connected"
    return f"metric {route.metric} via {via}"
