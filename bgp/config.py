"""The topology file's optional `bgp:` section, and each router's `BgpConfig`.

    bgp:
      asn: 65000                  # every router's AS unless it says otherwise
      hold_time: 90               # 0 or 3..65535 (RFC 4271 §4.2); keepalive: hold/3
      connect_retry: 120          # ConnectRetryTime (§10)
      families: [ipv4-unicast, ipv4-vpn]   # also ipv6-labelled (6PE; the default when
                                           # some customer link has subnet6) and ipv6-vpn
                                           # (6VPE; the default when a VRF link has one)
      routers:
        rr:  {route_reflector: true}       # clients: its iBGP neighbours (or rr_clients)
        pe1: {}                            # neighbours: the RRs of its AS, else a full mesh
        pe2: {networks: [10.9.0.0/16]}     # IPv4 unicast prefixes it originates
        ce1: {asn: 65001, neighbors: [pe1]}   # eBGP (between loopbacks)

Per router: `asn`, `router_id` (default: the loopback), `neighbors` (router names),
`route_reflector`, `rr_clients`, `cluster_id` (default: the router ID),
`networks`, and `hold_time` / `keepalive` / `connect_retry` / `families` overriding
the section's. Sessions run between loopbacks and are configured on both ends
from one mention. For labs and tests: `passwords` ({neighbour: key}, TCP MD5, RFC
2385; set it on both ends), `passive` (true, or neighbour names: never open the
connection, wait for the peer's), `ttl_security` (RFC 5082 GTSM on eBGP sessions
to directly linked neighbours) and `vpn_networks` (VPN-IPv4 routes originated as
they are, each `{prefix, rd, label, rt}`: VPN routes without VRFs). 6PE (`bgp.sixpe`):
`ipv6_explicit_null: true` binds IPv6 Explicit Null (label 2) to the router's IPv6
prefixes instead of its 6PE label. The loader (`lsr.core.topology`) calls `validate` only
for a file that has the section (entry point `lsr.sections`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from bgp.attrs import ExtCommunity
from bgp.nlri import FAMILY_BY_NAME, MAX_LABEL, Family, Rd
from lsr.core.topology import Topology

SECTION = "bgp"
_TOP_KEYS = ("asn", "hold_time", "keepalive", "connect_retry", "families", "routers")
_ROUTER_KEYS = ("asn", "router_id", "neighbors", "route_reflector", "rr_clients", "cluster_id",
                "networks", "hold_time", "keepalive", "connect_retry", "families", "passwords",
                "passive", "ttl_security", "vpn_networks", "ipv6_explicit_null")
_VPN_KEYS = ("prefix", "rd", "label", "rt")
MAX_PASSWORD = 80  # TCP_MD5SIG_MAXKEYLEN
DEFAULT_HOLD = 90  # RFC 4271 §10 suggests 90 s
DEFAULT_CONNECT_RETRY = 120.0  # §10
DEFAULT_FAMILIES = ("ipv4-unicast", "ipv4-vpn")
SIXPE_FAMILY = "ipv6-labelled"  # added to the defaults when some customer link has IPv6
SIXVPE_FAMILY = "ipv6-vpn"  # added to the defaults when some VRF link has IPv6 (RFC 4659)


@dataclass(frozen=True)
class PeerConfig:
    address: IPv4Address
    asn: int
    name: str = ""
    rr_client: bool = False
    passive: bool = False
    password: str | None = None
    ttl_security: bool = False  # RFC 5082 GTSM, one hop (eBGP to a directly linked router)


@dataclass(frozen=True)
class VpnNetwork:
    """A VPN-IPv4 route originated as configured (RFC 4364 §4.3.4): no VRF behind it."""

    prefix: IPv4Network
    rd: Rd
    label: int
    route_targets: tuple[str, ...]


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
    vpn_networks: tuple[VpnNetwork, ...] = ()
    name: str = ""
    names: dict[str, str] = field(default_factory=dict)  # peer address -> node name
    # 6PE (bgp.sixpe): bind IPv6 Explicit Null (2) to our IPv6 prefixes, not our 6PE label
    ipv6_explicit_null: bool = False
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
    passwords: tuple[tuple[str, str], ...] = ()
    passive: bool | tuple[str, ...] = False
    ttl_security: bool = False
    vpn_networks: tuple[VpnNetwork, ...] = ()
    ipv6_explicit_null: bool = False


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


def _bool(ctx: Any, v: Any, p: tuple, what: str) -> bool:
    if not isinstance(v, bool):
        raise ctx.fail(p, f"{what} must be true or false")
    return v


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


def _passwords(ctx: Any, v: Any, p: tuple, routers: dict[str, Any],
               me: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(v, dict):
        raise ctx.fail(p, "expected a mapping of neighbour name to password")
    out = []
    for nb, key in v.items():
        if nb not in routers or nb == me:
            raise ctx.fail(p + (nb,), f"{nb!r} is not another router of bgp.routers")
        if not isinstance(key, str) or not 1 <= len(key.encode()) <= MAX_PASSWORD:
            raise ctx.fail(p + (nb,), f"password must be a string of 1..{MAX_PASSWORD} characters")
        out.append((nb, key))
    return tuple(sorted(out))


def _passive(ctx: Any, v: Any, p: tuple, routers: dict[str, Any],
             me: str) -> bool | tuple[str, ...]:
    if isinstance(v, bool):
        return v
    if isinstance(v, list):
        return _names(ctx, v, p, routers, me)
    raise ctx.fail(p, "passive must be true, false or a list of neighbour names")


def _vpn_networks(ctx: Any, v: Any, p: tuple) -> tuple[VpnNetwork, ...]:
    if not isinstance(v, list):
        raise ctx.fail(p, "expected a list of {prefix, rd, label, rt}")
    out: dict[tuple, VpnNetwork] = {}
    for i, e in enumerate(v):
        q = p + (i,)
        if not isinstance(e, dict) or not {"prefix", "rd", "label"} <= set(e):
            raise ctx.fail(q, "expected a mapping with prefix, rd, label (and rt)")
        for k in e:
            if k not in _VPN_KEYS:
                raise ctx.fail(q + (k,), f"unknown key '{k}' (allowed: {', '.join(_VPN_KEYS)})")
        try:
            prefix = IPv4Network(str(e["prefix"]))
        except ValueError:
            raise ctx.fail(q + ("prefix",), f"not an IPv4 prefix: {e['prefix']!r}") from None
        try:
            rd = Rd.parse(str(e["rd"]))
        except ValueError as err:
            raise ctx.fail(q + ("rd",), str(err)) from None
        label = _int(ctx, e["label"], q + ("label",), 16, MAX_LABEL, "label")
        rts = e.get("rt", [])
        rts = [rts] if isinstance(rts, str) else rts
        if not isinstance(rts, list):
            raise ctx.fail(q + ("rt",), "rt must be a route target or a list of them")
        for j, rt in enumerate(rts):
            try:
                ExtCommunity.route_target(str(rt))
            except ValueError as err:
                raise ctx.fail(q + ("rt", j), str(err)) from None
        if (rd, prefix) in out:
            raise ctx.fail(q, f"{rd} {prefix} is listed twice")
        out[(rd, prefix)] = VpnNetwork(prefix, rd, label, tuple(str(r) for r in rts))
    return tuple(out.values())


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
    v6 = [lk for lk in topo.links if lk.subnet6 is not None]
    defaults = DEFAULT_FAMILIES + ((SIXPE_FAMILY,) if any(lk.vrf is None for lk in v6) else ()) \
        + ((SIXVPE_FAMILY,) if any(lk.vrf is not None for lk in v6) else ())
    fams = (_families(ctx, raw["families"], base + ("families",)) if "families" in raw
            else tuple(FAMILY_BY_NAME[f] for f in defaults))
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
            passwords=_passwords(ctx, opts["passwords"], p + ("passwords",), routers_raw, name)
            if "passwords" in opts else (),
            passive=_passive(ctx, opts["passive"], p + ("passive",), routers_raw, name)
            if "passive" in opts else False,
            ttl_security=_bool(ctx, opts.get("ttl_security", False), p + ("ttl_security",),
                               "ttl_security"),
            vpn_networks=_vpn_networks(ctx, opts["vpn_networks"], p + ("vpn_networks",))
            if "vpn_networks" in opts else (),
            ipv6_explicit_null=_bool(ctx, opts.get("ipv6_explicit_null", False),
                                     p + ("ipv6_explicit_null",), "ipv6_explicit_null"),
        )
    for name, s in specs.items():
        if s.rr_clients:
            for i, c in enumerate(s.rr_clients):
                if specs[c].asn != s.asn:
                    raise ctx.fail(rp + (name, "rr_clients", i),
                                   f"{c} is in AS {specs[c].asn}, not {s.asn}: not a client")
    sessions, clients = _sessions(specs)
    for name, s in specs.items():
        peers = {n for pair in sessions if name in pair for n in pair} - {name}
        named = [("passwords", n) for n, _ in s.passwords]
        named += [("passive", n) for n in (s.passive if isinstance(s.passive, tuple) else ())]
        for key, n in named:
            if n not in peers:
                raise ctx.fail(rp + (name, key), f"{n} is not a BGP neighbour of {name}")
        if s.ttl_security:  # RFC 5082 one hop: only eBGP neighbours on a shared link
            linked = {i.peer_node for i in topo.nodes[name].interfaces.values()}
            for n in sorted(peers):
                if specs[n].asn != s.asn and n not in linked:
                    raise ctx.fail(rp + (name, "ttl_security"),
                                   f"eBGP neighbour {n} is not directly linked to {name} "
                                   "(GTSM here is for one-hop sessions)")
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
        passive = s.passive if isinstance(s.passive, bool) else other in s.passive
        peers.append(PeerConfig(topo.nodes[other].lsr_id, o.asn, other,
                                rr_client=(router, other) in sec.clients, passive=passive,
                                password=dict(s.passwords).get(other),
                                ttl_security=s.ttl_security and o.asn != s.asn))
    names = {str(topo.nodes[n].lsr_id): n for n in sec.routers}
    vrfs = topo.nodes[router].vrfs
    targets = frozenset(ExtCommunity.route_target(t).raw for v in vrfs.values()
                        for t in v.import_rts) if vrfs and not s.route_reflector else None
    kw: dict[str, Any] = {
        "import_targets": targets,
        "cluster_id": s.cluster_id, "route_reflector": s.route_reflector,
        "hold_time": s.hold_time, "keepalive": s.keepalive, "connect_retry": s.connect_retry,
        "families": s.families, "networks": s.networks, "vpn_networks": s.vpn_networks,
        "name": router, "names": names, "ipv6_explicit_null": s.ipv6_explicit_null,
    }
    kw.update(overrides)
    return BgpConfig(s.asn, s.router_id, topo.nodes[router].lsr_id,
                     tuple(sorted(peers, key=lambda p: p.address)), **kw)
