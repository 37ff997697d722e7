"""The topology file's optional `bgp:` section, and each router's `BgpConfig`.

    bgp:
      asn: 65000                  # every router's AS unless it says otherwise
      hold_time: 90               # 0 or 3..65535 (RFC 4271 §4.2); keepalive: hold/3
      connect_retry: 120          # ConnectRetryTime (§10)
      families: [ipv4-unicast, ipv4-vpn]   # also ipv6-labelled (6PE)
      routers:
        rr:  {route_reflector: true}       # clients: its iBGP neighbours (or rr_clients)
        pe1: {}                            # neighbours: the RRs of its AS, else a full mesh
        pe2: {networks: [10.9.0.0/16]}     # IPv4 unicast prefixes it originates
        ce1: {asn: 65001, neighbors: [pe1]}   # eBGP (between loopbacks)

Per router: `asn`, `router_id` (default: the loopback), `neighbors` (router names),
`route_reflector`, `rr_clients`, `cluster_id` (default: the router ID),
`networks`, and `hold_time` / `keepalive` / `connect_retry` / `families` overriding
the section's. Sessions run between loopbacks and are configured on both ends
from one mention. The loader (`lsr.core.topology`) calls `validate` only for a
file that has the section (entry point `lsr.sections`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from bgp.attrs import ExtCommunity
from bgp.nlri import FAMILY_BY_NAME, Family
from lsr.core.topology import Topology

SECTION = "bgp"
_TOP_KEYS = ("asn", "hold_time", "keepalive", "connect_retry", "families", "routers")
_ROUTER_KEYS = ("asn", "router_id", "neighbors", "route_reflector", "rr_clients", "cluster_id",
                "networks", "hold_time", "keepalive", "connect_retry", "families")
DEFAULT_HOLD = 90  # RFC 4271 §10 suggests 90 s
DEFAULT_CONNECT_RETRY = 120.0  # §10
DEFAULT_FAMILIES = ("ipv4-unicast", "ipv4-vpn")


@dataclass(frozen=True)
class PeerConfig:
    address: IPv4Address
    asn: int
    name: str = ""
    rr_client: bool = False
    passive: bool = False
    password: str | None = None


@dataclass(frozen=True)
class BgpConfig:
    asn: int
    router_id: IPv4Address
    local_address: IPv4Address  # the update source: the loopback
    peers: tuple[PeerConfig, ...] = ()
    cluster_id: IPv4Address | None = None  # None: the router ID (RFC 4456 §7)
    route_reflector: bool = False
    hold_time: int = DEFAULT_HOLD
    keepalive: int | None = None  # None: hold_time / 3
    connect_retry: float = DEFAULT_CONNECT_RETRY
    families: tuple[Family, ...] = tuple(FAMILY_BY_NAME[f] for f in DEFAULT_FAMILIES)
    networks: tuple[IPv4Network, ...] = ()
    name: str = ""
    names: dict[str, str] = field(default_factory=dict)  # peer address -> node name
    # A PE's inbound route-target filter (RFC 4364 §4.3.3): VPN-IPv4 routes are kept
    # only with one of these route targets (raw extended communities); None keeps all
    # (a reflector, or a router without VRFs).
    import_targets: frozenset[bytes] | None = None


@dataclass(frozen=True)
class RouterSpec:
    asn: int
    router_id: IPv4Address
    neighbors: tuple[str, ...] | None
    route_reflector: bool
    rr_clients: tuple[str, ...] | None
    cluster_id: IPv4Address | None
    networks: tuple[IPv4Network, ...]
    hold_time: int
    keepalive: int | None
    connect_retry: float
    families: tuple[Family, ...]


@dataclass(frozen=True)
class BgpSection:
    routers: dict[str, RouterSpec]
    sessions: frozenset[frozenset[str]]
    clients: frozenset[tuple[str, str]]  # (reflector, client)


def _int(ctx: Any, v: Any, p: tuple, lo: int, hi: int, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ctx.fail(p, f"{what} must be an integer {lo}..{hi}, got {v!r}")
    return v


def _hold(ctx: Any, v: Any, p: tuple) -> int:
    h = _int(ctx, v, p, 0, 65535, "hold_time")
    if h in (1, 2):  # RFC 4271 §4.2
        raise ctx.fail(p, "hold_time must be 0 or at least 3 seconds (RFC 4271 §4.2)")
    return h


def _families(ctx: Any, v: Any, p: tuple) -> tuple[Family, ...]:
    if not isinstance(v, list) or not v:
        raise ctx.fail(p, f"families must be a list of {', '.join(FAMILY_BY_NAME)}")
    out = []
    for i, f in enumerate(v):
        if f not in FAMILY_BY_NAME:
            raise ctx.fail(p + (i,), f"unknown family {f!r} (allowed: {', '.join(FAMILY_BY_NAME)})")
        out.append(FAMILY_BY_NAME[f])
    return tuple(dict.fromkeys(out))


def _v4(ctx: Any, v: Any, p: tuple, what: str) -> IPv4Address:
    try:
        a = IPv4Address(str(v))
    except ValueError:
        raise ctx.fail(p, f"{what} must be an IPv4 address, got {v!r}") from None
    if int(a) == 0:
        raise ctx.fail(p, f"{what} must not be 0.0.0.0")
    return a


def _names(ctx: Any, v: Any, p: tuple, routers: dict[str, Any], me: str) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise ctx.fail(p, "expected a list of router names from bgp.routers")
    out = []
    for i, n in enumerate(v):
        if n not in routers:
            raise ctx.fail(p + (i,), f"{n!r} is not a router of bgp.routers")
        if n == me:
            raise ctx.fail(p + (i,), f"{me} cannot peer with itself")
        out.append(n)
    return tuple(dict.fromkeys(out))


def validate(ctx: Any, raw: Any, topo: Topology) -> BgpSection:
    """Validator of the `bgp:` section (entry point in the `lsr.sections` group)."""
    base: tuple = (SECTION,)
    if not isinstance(raw, dict):
        raise ctx.fail(base, "expected a mapping with asn and routers")
    for k in raw:
        if k not in _TOP_KEYS:
            raise ctx.fail(base + (k,), f"unknown key '{k}' (allowed: {', '.join(_TOP_KEYS)})")
    asn = _int(ctx, raw["asn"], base + ("asn",), 1, 0xFFFFFFFF, "asn") if "asn" in raw else None
    hold = _hold(ctx, raw["hold_time"], base + ("hold_time",)) if "hold_time" in raw else DEFAULT_HOLD
    ka = (_int(ctx, raw["keepalive"], base + ("keepalive",), 0, 21845, "keepalive")
          if "keepalive" in raw else None)
    retry = float(_int(ctx, raw["connect_retry"], base + ("connect_retry",), 1, 65535,
                       "connect_retry")) if "connect_retry" in raw else DEFAULT_CONNECT_RETRY
    fams = (_families(ctx, raw["families"], base + ("families",)) if "families" in raw
            else tuple(FAMILY_BY_NAME[f] for f in DEFAULT_FAMILIES))
    routers_raw = raw.get("routers")
    rp = base + ("routers",)
    if not isinstance(routers_raw, dict) or not routers_raw:
        raise ctx.fail(rp, "expected a mapping of router name -> options")
    specs: dict[str, RouterSpec] = {}
    for name, opts in routers_raw.items():
        p = rp + (name,)
        node = topo.nodes.get(name)
        if node is None or not node.is_router:
            raise ctx.fail(p, f"{name!r} is not a router of this topology")
        opts = opts or {}
        if not isinstance(opts, dict):
            raise ctx.fail(p, "expected a mapping of options (or {})")
        for k in opts:
            if k not in _ROUTER_KEYS:
                raise ctx.fail(p + (k,), f"unknown key '{k}' (allowed: {', '.join(_ROUTER_KEYS)})")
        r_asn = _int(ctx, opts["asn"], p + ("asn",), 1, 0xFFFFFFFF, "asn") if "asn" in opts else asn
        if r_asn is None:
            raise ctx.fail(p, "no asn (set bgp.asn or this router's asn)")
        nets = []
        for i, n in enumerate(opts.get("networks") or []):
            try:
                nets.append(IPv4Network(str(n)))
            except ValueError:
                raise ctx.fail(p + ("networks", i), f"not an IPv4 prefix: {n!r}") from None
        rr = opts.get("route_reflector", False)
        if not isinstance(rr, bool):
            raise ctx.fail(p + ("route_reflector",), "route_reflector must be true or false")
        specs[name] = RouterSpec(
            asn=r_asn,
            router_id=_v4(ctx, opts["router_id"], p + ("router_id",), "router_id")
            if "router_id" in opts else node.lsr_id,
            neighbors=_names(ctx, opts["neighbors"], p + ("neighbors",), routers_raw, name)
            if "neighbors" in opts else None,
            route_reflector=rr or "rr_clients" in opts,
            rr_clients=_names(ctx, opts["rr_clients"], p + ("rr_clients",), routers_raw, name)
            if "rr_clients" in opts else None,
            cluster_id=_v4(ctx, opts["cluster_id"], p + ("cluster_id",), "cluster_id")
            if "cluster_id" in opts else None,
            networks=tuple(nets),
            hold_time=_hold(ctx, opts["hold_time"], p + ("hold_time",))
            if "hold_time" in opts else hold,
            keepalive=_int(ctx, opts["keepalive"], p + ("keepalive",), 0, 21845, "keepalive")
            if "keepalive" in opts else ka,
            connect_retry=float(_int(ctx, opts["connect_retry"], p + ("connect_retry",), 1,
                                     65535, "connect_retry")) if "connect_retry" in opts else retry,
            families=_families(ctx, opts["families"], p + ("families",))
            if "families" in opts else fams,
        )
    for name, s in specs.items():
        if s.rr_clients:
            for i, c in enumerate(s.rr_clients):
                if specs[c].asn != s.asn:
                    raise ctx.fail(rp + (name, "rr_clients", i),
                                   f"{c} is in AS {specs[c].asn}, not {s.asn}: not a client")
    sessions, clients = _sessions(specs)
    return BgpSection(specs, sessions, clients)


def _sessions(specs: dict[str, RouterSpec]) -> tuple[frozenset[frozenset[str]],
                                                        frozenset[tuple[str, str]]]:
    """Every session (a pair, configured on both ends) and every (reflector, client)."""
    pairs: set[frozenset[str]] = set()
    clients: set[tuple[str, str]] = set()
    for name, s in specs.items():
        same = [n for n, o in specs.items() if n != name and o.asn == s.asn]
        rrs = [n for n in same if specs[n].route_reflector]
        if s.neighbors is not None:
            nbrs = list(s.neighbors)
        elif s.route_reflector:
            nbrs = same  # reflectors peer with every router of their AS
        else:
            nbrs = rrs or same  # clients peer with the reflectors, else a full mesh
        nbrs += list(s.rr_clients or ())
        for n in nbrs:
            pairs.add(frozenset((name, n)))
    for name, s in specs.items():
        if not s.route_reflector:
            continue
        for pair in pairs:
            if name in pair:
                (other,) = pair - {name}
                o = specs[other]
                is_client = (other in s.rr_clients) if s.rr_clients is not None else \
                    (o.asn == s.asn and not o.route_reflector)
                if is_client:
                    clients.add((name, other))
    return frozenset(pairs), frozenset(clients)


def from_topology(topo: Topology, router: str, **overrides: Any) -> BgpConfig | None:
    """The router's BGP configuration, or None when the file gives it none."""
    sec: BgpSection | None = topo.extra.get(SECTION)
    if sec is None or router not in sec.routers:
        return None
    s = sec.routers[router]
    peers = []
    for pair in sorted(sec.sessions, key=sorted):
        if router not in pair:
            continue
        (other,) = pair - {router}
        o = sec.routers[other]
        peers.append(PeerConfig(topo.nodes[other].lsr_id, o.asn, other,
                                rr_client=(router, other) in sec.clients))
    names = {str(topo.nodes[n].lsr_id): n for n in sec.routers}
    vrfs = topo.nodes[router].vrfs
    targets = frozenset(ExtCommunity.route_target(t).raw for v in vrfs.values()
                        for t in v.import_rts) if vrfs and not s.route_reflector else None
    kw: dict[str, Any] = {
        "import_targets": targets,
        "cluster_id": s.cluster_id, "route_reflector": s.route_reflector,
        "hold_time": s.hold_time, "keepalive": s.keepalive, "connect_retry": s.connect_retry,
        "families": s.families, "networks": s.networks, "name": router, "names": names,
    }
    kw.update(overrides)
    return BgpConfig(s.asn, s.router_id, topo.nodes[router].lsr_id,
                     tuple(sorted(peers, key=lambda p: p.address)), **kw)
