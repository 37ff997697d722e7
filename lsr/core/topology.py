"""Topology model and loader.

A topology file is YAML shaped like containerlab's::

    name: diamond
    topology:
      defaults: {}            # fields applied to every lsr node
      nodes:
        ce1: {kind: host}
        pe1: {loopback: 10.255.0.1}
      links:
        - endpoints: [ce1:eth0, pe1:eth1]
          subnet: 192.168.1.0/24
          cost: 10

Loading validates everything and raises `TopologyError` naming the file, the
line and the key path of the first problem. Addresses, MACs and link subnets
that the file leaves out are assigned deterministically.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.metadata import EntryPoint, entry_points
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from pathlib import Path as FsPath
from typing import Any

import networkx as nx

from lsr.core import impair as _impair
from lsr.core import ipv6 as _ipv6
from lsr.core.labels import MAX_LABEL, MIN_UNRESERVED
from lsr.core.vrf import Vrf, parse_vrfs
from lsr.core.yamlpos import MAX_BYTES, Located, Path, YamlError, load_located, too_big
from lsr.errors import LsrError

ROUTER_KINDS = ("lsr", "frr")  # nodes that run the IGP and LDP
# customer hosts: kernel IP stack, one link, default route; `strongswan` is a host that runs
# strongSwan's charon as an IPsec gateway (lsr/lab/strongswan.py)
HOST_KINDS = ("host", "strongswan")
NODE_KINDS = ROUTER_KINDS + HOST_KINDS

DEFAULT_COST = 10
DEFAULT_MTU = 1500
DEFAULT_LABEL_RANGE = (16, 1048575)
LABEL_BLOCK = 1000  # default: the k-th router allocates from 1000*k up, so a label names its router
LOOPBACK_POOL = IPv4Network("10.255.0.0/16")
# From 10.0.0.0 up: /16 holds 16,384 links, the rest is for networks as large as real ones.
CORE_LINK_POOL = IPv4Network("10.0.0.0/9")
HOST_LINK_POOL = IPv4Network("192.168.0.0/16")

NAME_RE = re.compile(r"[a-z][a-z0-9-]*")  # use fullmatch: `$` would let "r1\n" through
MAX_LAB_NAME = 12
MAX_NODE_NAME = 15
IFNAME_MAX = 15  # IFNAMSIZ - 1

TTL_MODELS = ("uniform", "pipe", "short-pipe")
LDP_CONTROL = ("independent", "ordered")
LDP_RETENTION = ("liberal", "conservative")
LDP_FECS = ("all", "loopbacks")


class TopologyError(Exception):
    """A problem in a topology file: one line naming file, place and problem."""

    def __init__(self, source: str, line: int | None, where: str, message: str) -> None:
        self.source = source
        self.line = line
        self.where = where
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        loc = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{loc}: {self.where}: {self.message}" if self.where else f"{loc}: {self.message}"


# ---------------------------------------------------------------- model


@dataclass(frozen=True)
class LdpOptions:
    """Per-router LDP settings (RFC 5036 defaults unless stated)."""

    hello_interval: int = 5  # s; RFC 5036 leaves it to the implementation (FRR: 5)
    hello_holdtime: int = 15  # s; §3.5.2 default for link hellos
    keepalive_time: int = 180  # s; proposed in Initialization (FRR/Cisco default)
    explicit_null: bool = False  # egress advertises label 0 instead of implicit-null (3)
    control: str = "independent"  # §2.6.1 label distribution control
    retention: str = "liberal"  # §2.6.2.2 label retention
    fecs: str = "all"  # which IGP prefixes get labels: all, or loopbacks only
    passwords: tuple[tuple[str, str], ...] = ()  # (neighbour node, TCP MD5 key), RFC 5036 §2.9
    gtsm: bool = False  # RFC 6720: G bit in Link Hellos; TTL 255 + min TTL 255 on the session
    igp_sync: bool = False  # RFC 5443: a link advertises max metric until LDP is up on it
    # Flood bounds of Basic Discovery (ldp.discovery): Hello adjacencies per interface, and
    # new adjacencies a second per interface (a token bucket; a burst of ADJ_BURST).
    max_adjacencies: int = 16
    adjacency_rate: int = 2

    def password_for(self, neighbor: str) -> str | None:
        return dict(self.passwords).get(neighbor)


@dataclass(frozen=True)
class OspfOptions:
    """Per-router OSPFv2 settings: RFC 2328 / FRR defaults unless stated (ospf.instance)."""

    hello_interval: int = 10  # s; must match on both ends of a link (§10.5)
    dead_interval: int = 40  # s
    retransmit_interval: int = 5  # s
    spf_delay_ms: int = 0  # SPF throttle (FRR `timers throttle spf 0 50 5000`)
    spf_hold_ms: int = 50
    spf_max_hold_ms: int = 5000
    min_ls_interval_ms: int = 1000  # RFC 2328 MinLSInterval is 5000 (see ospf.instance)
    min_ls_arrival_ms: int = 500  # RFC 2328 MinLSArrival is 1000
    md5_key: str = ""  # RFC 2328 App. D cryptographic authentication when set
    md5_key_id: int = 1
    restart_max_metric_ms: int = 5000  # RFC 6987 stub router after a restart; 0 = off
    flood_pacing_ms: int = 2  # Updates and delayed acks on an interface, at most every
    # this many ms (ospf.instance: flood pacing); 0 = unpaced


@dataclass(frozen=True)
class Interface:
    node: str
    name: str
    address: IPv4Interface
    mac: str
    mtu: int
    link: int  # index into Topology.links
    peer_node: str
    peer_interface: str
    # The VRF the link is bound to (both ends: the PE's customer port and the host's
    # interface share its address space), None for the global table.
    vrf: str | None = None
    # IPv6 on a customer (host) link: `subnet6` of the link (lsr.core.ipv6); None elsewhere
    address6: IPv6Interface | None = None


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    index: int  # position in the file, used for deterministic MACs
    loopback: IPv4Address | None = None
    labels: tuple[int, int] = DEFAULT_LABEL_RANGE
    ttl_model: str = "uniform"
    ldp: LdpOptions = field(default_factory=LdpOptions)
    ospf: OspfOptions = field(default_factory=OspfOptions)
    interfaces: dict[str, Interface] = field(default_factory=dict)
    vrfs: dict[str, Vrf] = field(default_factory=dict)  # RFC 4364 VRFs (lsr.core.vrf)

    @property
    def is_router(self) -> bool:
        return self.kind in ROUTER_KINDS

    @property
    def lsr_id(self) -> IPv4Address:
        """LSR ID = loopback address (the LDP transport address too)."""
        assert self.loopback is not None
        return self.loopback

    def gateway(self, topo: Topology) -> IPv4Address:
        """A host's default gateway: its router's address on the host link."""
        (iface,) = self.interfaces.values()
        return topo.nodes[iface.peer_node].interfaces[iface.peer_interface].address.ip

    def gateway6(self, topo: Topology) -> IPv6Address | None:
        """A host's IPv6 default gateway: its router's IPv6 address on the host link."""
        (iface,) = self.interfaces.values()
        a = topo.nodes[iface.peer_node].interfaces[iface.peer_interface].address6
        return a.ip if a is not None else None


@dataclass(frozen=True)
class Link:
    index: int
    a: tuple[str, str]  # (node, interface)
    b: tuple[str, str]
    subnet: IPv4Network
    cost: int
    mtu: int
    # delay / jitter / loss / rate (lsr.core.impair): applied by our dataplane in labs
    impair: _impair.Impairment | None = None
    vrf: str | None = None  # a PE-CE link bound to a VRF: its subnet is not in the IGP
    subnet6: IPv6Network | None = None  # IPv6 on a customer link (lsr.core.ipv6)

    @property
    def nodes(self) -> tuple[str, str]:
        return (self.a[0], self.b[0])

    def other(self, node: str) -> tuple[str, str]:
        return self.b if self.a[0] == node else self.a

    def end(self, node: str) -> tuple[str, str]:
        return self.a if self.a[0] == node else self.b


@dataclass
class Topology:
    name: str
    nodes: dict[str, Node]
    links: list[Link]
    source: str = "<topology>"
    extra: dict[str, Any] = field(default_factory=dict)  # validated optional sections
    # what an import (containerlab file, GML graph: lsr.core.importers) mapped or ignored
    notes: list[str] = field(default_factory=list, compare=False)
    _graph: nx.MultiGraph | None = field(default=None, repr=False, compare=False)

    @property
    def routers(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.is_router]

    @property
    def hosts(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind in HOST_KINDS]

    def interface(self, node: str, ifname: str) -> Interface:
        return self.nodes[node].interfaces[ifname]

    def find_link(self, a: str, b: str) -> Link:
        """The link between endpoints `a` and `b`, each NODE or NODE:INTERFACE. Two nodes
        joined by parallel links need an interface at one end to say which (one clear
        error names them): failing the first one silently would fail the wrong link."""
        (na, ia), (nb, ib) = self._endpoint(a), self._endpoint(b)
        hits = [ln for ln in self.links
                if {ln.a[0], ln.b[0]} == {na, nb} and na != nb
                and (ia is None or ln.end(na)[1] == ia) and (ib is None or ln.end(nb)[1] == ib)]
        if not hits:
            raise LsrError(f"{self.name}: no link between {a} and {b}")
        if len(hits) > 1:
            names = ", ".join(f"{ln.a[0]}:{ln.a[1]}-{ln.b[0]}:{ln.b[1]}" for ln in hits)
            raise LsrError(f"{self.name}: {len(hits)} links join {na} and {nb} ({names}): "
                           f"name one by an interface, e.g. {hits[0].end(na)[0]}:"
                           f"{hits[0].end(na)[1]} {nb}")
        return hits[0]

    def _endpoint(self, spec: str) -> tuple[str, str | None]:
        node, sep, ifname = spec.partition(":")
        if node not in self.nodes:
            raise LsrError(f"{self.name}: no node '{node}'")
        if sep and ifname not in self.nodes[node].interfaces:
            raise LsrError(f"{self.name}: {node} has no interface '{ifname}'")
        return node, (ifname if sep else None)

    def parse_link(self, spec: str) -> Link:
        """'A-B' -> the A-B link (`find_link`); node and interface names may contain '-':
        the first split where both sides name an endpoint of this topology is taken."""
        for k in range(1, len(spec)):
            if spec[k] == "-" and self._is_endpoint(spec[:k]) and self._is_endpoint(spec[k + 1:]):
                return self.find_link(spec[:k], spec[k + 1:])
        raise LsrError(f"{self.name}: '{spec}' is not A-B with two nodes of {self.name} "
                       "(each NODE or NODE:INTERFACE)")

    def _is_endpoint(self, spec: str) -> bool:
        node, sep, ifname = spec.partition(":")
        return node in self.nodes and (not sep or ifname in self.nodes[node].interfaces)

    def link_name(self, link: Link) -> str:
        """'a-b', or 'a:if-b:if' where a and b are joined by more than one link (so the
        name says which)."""
        pair = {link.a[0], link.b[0]}
        if sum(1 for ln in self.links if {ln.a[0], ln.b[0]} == pair) > 1:
            return f"{link.a[0]}:{link.a[1]}-{link.b[0]}:{link.b[1]}"
        return f"{link.a[0]}-{link.b[0]}"

    def graph(self) -> nx.MultiGraph:
        """The IGP graph: routers as nodes, router-router links as edges (key = link index)."""
        if self._graph is None:
            g = nx.MultiGraph()
            for n in self.routers:
                g.add_node(n.name)
            for link in self.links:
                a, b = link.a[0], link.b[0]
                if self.nodes[a].is_router and self.nodes[b].is_router:
                    g.add_edge(a, b, key=link.index, cost=link.cost)
            self._graph = g
        return self._graph

    def ldp_interfaces(self, node: str) -> tuple[str, ...]:
        """The interfaces of `node` LDP runs on: its links to other routers (`lsr`, `frr`).

        RFC 5036 §2.4.1 Basic Discovery runs on the interfaces configured for LDP; a
        host-facing (customer) port is not one of them, so a host can neither form a Hello
        adjacency nor be an OSPF neighbour (its subnet is a passive stub), and the
        dataplane accepts no labelled frame on it (`forwarding.tables.RouterTables.mpls_input`,
        like Linux's net.mpls.conf.<if>.input). The one place this set is defined: the LDP
        speaker, the lab's Hello sockets, OSPF's configuration, FRR's ldpd.conf and the
        forwarding tables all take it from here."""
        return tuple(i.name for i in self.nodes[node].interfaces.values()
                     if self.nodes[i.peer_node].is_router)

    def prefixes(self) -> dict[IPv4Network, list[tuple[str, int]]]:
        """Every IGP prefix -> the routers that originate it and at what cost.

        Loopbacks are originated at cost 0; a link subnet by each router on it
        at the link's cost, as an OSPF stub network would be.
        """
        out: dict[IPv4Network, list[tuple[str, int]]] = {}
        for n in self.routers:
            out[IPv4Network(f"{n.loopback}/32")] = [(n.name, 0)]
        for link in self.links:
            if link.vrf is not None:  # a VRF's subnet: in its VRF, never in the global table
                continue
            owners = [(nd, link.cost) for nd in link.nodes if self.nodes[nd].is_router]
            out[link.subnet] = owners
        return dict(sorted(out.items(), key=lambda kv: (int(kv[0].network_address), kv[0].prefixlen)))

    def node_of_address6(self, addr: IPv6Address, vrf: str | None = None) -> Node | None:
        """The node with IPv6 address `addr` on one of its interfaces in the global table
        (`vrf` None) or in VRF `vrf`, or None."""
        for n in self.nodes.values():
            for i in n.interfaces.values():
                if i.address6 is not None and i.address6.ip == addr and i.vrf == vrf:
                    return n
        return None

    @property
    def has_ipv6(self) -> bool:
        """Some customer link has IPv6 (`subnet6`)."""
        return any(lk.subnet6 is not None for lk in self.links)

    def node_of_address(self, addr: IPv4Address, vrf: str | None = None) -> Node | None:
        """The node that has `addr` in the global table (`vrf` None) or in VRF `vrf`
        (VRFs may reuse each other's addresses: the same address names a node per VRF)."""
        for n in self.nodes.values():
            if vrf is None and n.loopback == addr:
                return n
            for i in n.interfaces.values():
                if i.address.ip == addr and i.vrf == vrf:
                    return n
        return None

    def vrf_of(self, node: str) -> str | None:
        """The VRF a host sits in (its link's), None for a router or a global host."""
        n = self.nodes[node]
        if n.is_router:
            return None
        (iface,) = n.interfaces.values()
        return iface.vrf

    def pe_of(self, host: str) -> str:
        """The router a host is attached to."""
        (iface,) = self.nodes[host].interfaces.values()
        return iface.peer_node

    def label_shortage(self, router: str) -> str | None:
        """Why `router`'s LDP labels are too few for its FECs, or None: it needs one for
        every FEC it does not originate (its own get a null label). Counted only for a
        range that could be too small (the prefixes are the loopbacks and links at most)."""
        node = self.nodes[router]
        if node.kind != "lsr":
            return None
        (lo, hi), _ = self.label_ranges(router)
        if hi - lo + 1 >= len(self.nodes) + len(self.links):
            return None
        loopbacks = node.ldp.fecs != "all"
        fecs = sum(1 for p, owners in self.prefixes().items()
                   if all(o != router for o, _ in owners) and (not loopbacks or p.prefixlen == 32))
        if hi - lo + 1 >= fecs:
            return None
        return (f"{router}'s LDP labels [{lo}, {hi}] are {hi - lo + 1} for {fecs} FECs "
                f"(every IGP prefix{' /32' if loopbacks else ''} but its own): "
                f"{fecs - (hi - lo + 1)} of them get no local label (RFC 5036 A.2.1 "
                "SL.9-12)")

    def label_ranges(self, router: str) -> tuple[tuple[int, int], tuple[int, int] | None]:
        """The router's labels for LDP and for VPN labels (None without VRFs): one space,
        split so that none is handed out twice. A 6PE router's first label is its 6PE label
        (`lsr.core.ipv6.sixpe_label`), LDP takes the bottom after it: as many labels as the
        topology has prefixes, rounded up to a hundred with room to spare; VPN labels the
        rest. With the default blocks pe1's LDP labels are 1000.. (1001.. beside the 6PE
        label 1000) and its VPN labels 1100.."""
        node = self.nodes[router]
        lo, hi = max(node.labels[0], MIN_UNRESERVED), node.labels[1]
        first = lo + 1 if _ipv6.sixpe_label(node) is not None else lo
        if not node.vrfs:
            return (node.labels if first == node.labels[0] else (first, hi)), None
        ldp = len(self.prefixes())
        # per-prefix VRFs label their ports' IPv6 subnets too (6VPE, RFC 4659)
        vpn = sum(v.label_count() + (sum(node.interfaces[i].address6 is not None
                                         for i in v.interfaces)
                                     if v.label_mode == "per-prefix" else 0)
                  for v in node.vrfs.values())
        base = lo + 100 * -(-(ldp + 50) // 100)
        if base + vpn - 1 > hi:
            base = hi - vpn + 1
        if base < first + ldp:
            raise ValueError(f"labels [{node.labels[0]}, {hi}] are too few for {ldp} LDP and "
                             f"{vpn} VPN labels")
        return (first, base - 1), (base, hi)

    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.routers)} routers, {len(self.hosts)} hosts, "
            f"{len(self.links)} links"
        )


# ---------------------------------------------------------------- loader

# Optional top-level sections (`ipsec:`, `expect:`, ...) belong to the packages
# that understand them. The core never names them: each owner declares its
# validator as an entry point in the group below (pyproject.toml), and the
# loader imports a validator only when a file has that section, so loading a
# plain topology imports no plugin. Tests may also register_section() directly.
SectionValidator = Callable[["_Ctx", Any, "Topology"], Any]
SECTION_GROUP = "lsr.sections"
EXTRA_SECTIONS: dict[str, SectionValidator] = {}
_declared: dict[str, EntryPoint] | None = None


def register_section(name: str, validator: SectionValidator) -> None:
    """Allow an optional top-level section (e.g. `expect`, `ipsec`) and validate it."""
    EXTRA_SECTIONS[name] = validator


def _declared_sections() -> dict[str, EntryPoint]:
    global _declared
    if _declared is None:
        _declared = {ep.name: ep for ep in entry_points(group=SECTION_GROUP)}
    return _declared


def section_names() -> tuple[str, ...]:
    """Every optional section a file may have, in validation order."""
    names = list(_declared_sections())
    names += [n for n in EXTRA_SECTIONS if n not in names]
    return tuple(names)


def _section_validator(name: str) -> SectionValidator:
    if name not in EXTRA_SECTIONS:
        EXTRA_SECTIONS[name] = _declared_sections()[name].load()
    return EXTRA_SECTIONS[name]


class _Ctx:
    """Carries the file name and key positions for error messages."""

    def __init__(self, source: str, located: Located) -> None:
        self.source = source
        self.located = located
        self.notes: list[str] = []  # from a conversion (containerlab)

    def fail(self, path: Path, message: str) -> TopologyError:
        return TopologyError(self.source, self.located.line(path), _fmt_path(path), message)


def _fmt_path(path: Path) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif not str(p).isprintable() or any(c.isspace() for c in str(p)):
            out += f"[{str(p)!r}]"  # a key with a newline in it stays on the error's one line
        else:
            out += ("." if out else "") + str(p)
    return out


def _mapping(ctx: _Ctx, value: Any, path: Path, allowed: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ctx.fail(path, f"expected a mapping, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str) or key not in allowed:
            raise ctx.fail(path + (key,), f"unknown key '{key}' (allowed: {', '.join(allowed)})")
    return value


def _kind(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(v), type(v).__name__
    )


def _int(ctx: _Ctx, value: Any, path: Path, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.fail(path, f"expected an integer, got {_kind(value)} {value!r}")
    if not lo <= value <= hi:
        raise ctx.fail(path, f"{value} is out of range {lo}..{hi}")
    return value


def _choice(ctx: _Ctx, value: Any, path: Path, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ctx.fail(path, f"{value!r} is not one of: {', '.join(choices)}")
    return value


def _bool(ctx: _Ctx, value: Any, path: Path) -> bool:
    if not isinstance(value, bool):
        raise ctx.fail(path, f"expected true or false, got {value!r}")
    return value


def _unicast(ctx: _Ctx, value: Any, path: Path) -> IPv4Address:
    try:
        addr = IPv4Address(str(value))
    except ValueError:
        raise ctx.fail(path, f"bad IPv4 address {value!r}") from None
    if addr.is_multicast or addr.is_loopback or addr.is_unspecified or addr == IPv4Address(
        "255.255.255.255"
    ) or addr.is_link_local:
        raise ctx.fail(path, f"{addr} is not a usable unicast address")
    return addr


def _subnet(ctx: _Ctx, value: Any, path: Path, max_len: int) -> IPv4Network:
    try:
        net = IPv4Network(str(value), strict=True)
    except ValueError as e:
        raise ctx.fail(path, f"bad IPv4 subnet {value!r}: {e}") from None
    if net.prefixlen > max_len:
        raise ctx.fail(path, f"{net} is too small for a link (at most /{max_len})")
    first = net.network_address
    if first.is_multicast or first.is_loopback or first.is_unspecified or first.is_link_local:
        raise ctx.fail(path, f"{net} is not a usable unicast subnet")
    return net


# Names Linux takes for something else in every namespace: the loopback, the
# /proc/sys/net/{ipv4,ipv6,mpls}/conf/{all,default} settings (a device called `all` would
# be configured through them) and the bonding driver's file in /sys/class/net.
RESERVED_IFNAMES = ("lo", "all", "default", "bonding_masters")
_IFNAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _ifname_ok(name: str) -> str | None:
    """Why Linux (or a tool a lab runs on it) would refuse `name`, or None."""
    if not name:
        return "empty interface name"
    if len(name) > IFNAME_MAX:
        return f"interface name {name!r} is longer than {IFNAME_MAX} characters"
    if name in RESERVED_IFNAMES:
        return f"'{name}' is reserved for Linux's own use ({', '.join(RESERVED_IFNAMES)})"
    # The kernel refuses '/', ':', whitespace, '.' and '..'; '%' makes a name a template,
    # and a leading '-' reads as an option to ethtool and tcpdump.
    if name in (".", "..") or not _IFNAME_RE.fullmatch(name):
        return (f"{name!r} is not a valid Linux interface name (letters, digits, '_', '.', "
                "'-'; not starting with '.' or '-')")
    return None


_NODE_KEYS = ("kind", "loopback", "labels", "ttl_model", "ldp", "ospf", "vrfs")
_ROUTER_FIELDS = ("labels", "ttl_model", "ldp", "ospf")
_LINK_KEYS = ("endpoints", "subnet", "subnet6", "cost", "mtu", *_impair.KEYS)


def _ldp_passwords(ctx: _Ctx, v: Any, p: Path) -> tuple[tuple[str, str], ...]:
    if not isinstance(v, dict):
        raise ctx.fail(p, "expected a mapping of neighbour name to password")
    pw = []
    for nb, secret in v.items():
        if not isinstance(secret, str) or not 1 <= len(secret) <= 80:
            raise ctx.fail(p + (nb,), "password must be a string of 1..80 characters")
        pw.append((str(nb), secret))
    return tuple(sorted(pw))


# `ldp:` keys and the validator of each one's value; the table's order is the order of
# "allowed: ..." in error messages.
_LDP_FIELDS: dict[str, Callable[[_Ctx, Any, Path], Any]] = {
    "hello_interval": lambda ctx, v, p: _int(ctx, v, p, 1, 21845),
    "hello_holdtime": lambda ctx, v, p: _int(ctx, v, p, 1, 65534),
    "keepalive_time": lambda ctx, v, p: _int(ctx, v, p, 1, 65534),
    "explicit_null": _bool,
    "control": lambda ctx, v, p: _choice(ctx, v, p, LDP_CONTROL),
    "retention": lambda ctx, v, p: _choice(ctx, v, p, LDP_RETENTION),
    "fecs": lambda ctx, v, p: _choice(ctx, v, p, LDP_FECS),
    "passwords": _ldp_passwords,
    "gtsm": _bool,
    "igp_sync": _bool,
    "max_adjacencies": lambda ctx, v, p: _int(ctx, v, p, 1, 4096),
    "adjacency_rate": lambda ctx, v, p: _int(ctx, v, p, 1, 1000),
}
_LDP_KEYS = tuple(_LDP_FIELDS)


def _md5_key(ctx: _Ctx, v: Any, p: Path) -> str:
    if not isinstance(v, str) or not 1 <= len(v) <= 16:
        raise ctx.fail(p, "md5_key must be a string of 1..16 characters (RFC 2328 D.3)")
    return v


# `ospf:` keys, as `ldp:`: the table's order is the order of "allowed: ..." in errors.
_OSPF_FIELDS: dict[str, Callable[[_Ctx, Any, Path], Any]] = {
    "hello_interval": lambda ctx, v, p: _int(ctx, v, p, 1, 65535),
    "dead_interval": lambda ctx, v, p: _int(ctx, v, p, 1, 65535),
    "retransmit_interval": lambda ctx, v, p: _int(ctx, v, p, 1, 3600),
    "spf_delay_ms": lambda ctx, v, p: _int(ctx, v, p, 0, 600000),
    "spf_hold_ms": lambda ctx, v, p: _int(ctx, v, p, 0, 600000),
    "spf_max_hold_ms": lambda ctx, v, p: _int(ctx, v, p, 0, 600000),
    "min_ls_interval_ms": lambda ctx, v, p: _int(ctx, v, p, 0, 5000),
    "min_ls_arrival_ms": lambda ctx, v, p: _int(ctx, v, p, 0, 5000),
    "md5_key": _md5_key,
    "md5_key_id": lambda ctx, v, p: _int(ctx, v, p, 0, 255),
    "restart_max_metric_ms": lambda ctx, v, p: _int(ctx, v, p, 0, 3600000),
    "flood_pacing_ms": lambda ctx, v, p: _int(ctx, v, p, 0, 1000),
}
_OSPF_KEYS = tuple(_OSPF_FIELDS)


def _ospf_options(ctx: _Ctx, raw: Any, path: Path, base: OspfOptions) -> OspfOptions:
    m = _mapping(ctx, raw, path, _OSPF_KEYS)
    opts = replace(base, **{k: _OSPF_FIELDS[k](ctx, v, path + (k,)) for k, v in m.items()})
    if opts.dead_interval <= opts.hello_interval:
        raise ctx.fail(path, "dead_interval must be longer than hello_interval")
    if opts.spf_max_hold_ms < opts.spf_hold_ms:
        raise ctx.fail(path, "spf_max_hold_ms must be at least spf_hold_ms")
    return opts


def _ldp_options(ctx: _Ctx, raw: Any, path: Path, base: LdpOptions) -> LdpOptions:
    m = _mapping(ctx, raw, path, _LDP_KEYS)
    kw = {k: _LDP_FIELDS[k](ctx, v, path + (k,)) for k, v in m.items()}
    opts = replace(base, **kw)
    if opts.hello_holdtime < opts.hello_interval:
        raise ctx.fail(path, "hello_holdtime must be at least hello_interval")
    return opts


def _label_range(ctx: _Ctx, v: Any, p: Path) -> tuple[int, int]:
    if not (isinstance(v, list) and len(v) == 2):
        raise ctx.fail(p, "labels must be a list [first, last]")
    lo = _int(ctx, v[0], p + (0,), MIN_UNRESERVED, MAX_LABEL)
    hi = _int(ctx, v[1], p + (1,), MIN_UNRESERVED, MAX_LABEL)
    if lo > hi:
        raise ctx.fail(p, f"label range [{lo}, {hi}] is empty")
    return (lo, hi)


def load_topology(path: str | FsPath) -> Topology:
    """Read and validate a topology file; raises TopologyError."""
    source = str(path)
    if FsPath(source).suffix.lower() in (".gml", ".graphml"):
        return _graph_topology(source)
    try:
        with open(path, "rb") as f:
            # Never more than the limit into memory, whatever the file is (/dev/zero too).
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise TopologyError(source, None, "", too_big(len(data)))
        text = data.decode()
    except FileNotFoundError:
        raise TopologyError(source, None, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TopologyError(source, None, "", f"cannot read: {e}") from None
    return parse_topology(text, source)


def _graph_topology(source: str) -> Topology:
    """A GML/GraphML graph (lsr.core.importers.graph: routers, hosts, costs) as a topology."""
    from lsr.core.importers import graph

    try:
        text, notes = graph.to_yaml(source)
    except graph.GraphError as e:
        raise TopologyError(source, None, "", str(e)) from None
    topo = parse_topology(text, source)
    topo.notes = notes
    return topo


def parse_topology(text: str, source: str = "<topology>") -> Topology:
    """Validate topology YAML text; raises TopologyError.

    One step per part of the file, in this order; a file with several problems
    gets the error of the first step that finds one (tests pin that order).
    """
    ctx, doc = _document(text, source)
    name = _lab_name(ctx, doc)
    defaults_raw, nodes_raw, links_raw = _topology_shape(ctx, doc)
    defaults = _router_defaults(ctx, defaults_raw)
    specs = _node_specs(ctx, nodes_raw, defaults)
    link_specs = _link_specs(ctx, links_raw, specs)
    _check_host_links(ctx, specs, link_specs)
    _bind_vrfs(ctx, specs, link_specs)
    _plan_addresses(ctx, specs, link_specs)
    topo = _build(name, source, specs, link_specs)
    topo.notes = ctx.notes
    _check_connected(ctx, topo)
    _check_passwords(ctx, topo)
    _check_vrfs(ctx, topo)
    for section in section_names():
        if section in doc:
            topo.extra[section] = _section_validator(section)(ctx, doc[section], topo)
    return topo


@dataclass(frozen=True)
class _RouterDefaults:
    """`topology.defaults`: what a router node leaves out."""

    labels: tuple[int, int] | None  # None: each router gets its own block (_default_labels)
    ttl_model: str
    ldp: LdpOptions
    ospf: OspfOptions


@dataclass
class _NodeSpec:
    """A validated node before addresses are planned (hosts keep the defaults)."""

    kind: str
    index: int
    loopback: IPv4Address | None = None
    labels: tuple[int, int] = DEFAULT_LABEL_RANGE
    ttl_model: str = "uniform"
    ldp: LdpOptions = field(default_factory=LdpOptions)
    ospf: OspfOptions = field(default_factory=OspfOptions)
    vrfs: dict[str, Vrf] = field(default_factory=dict)


@dataclass
class _LinkSpec:
    """A validated link before addresses are planned."""

    ends: tuple[tuple[str, str], tuple[str, str]]
    host: bool  # one end is a host
    path: Path
    subnet: IPv4Network | None
    cost: int
    mtu: int
    impair: _impair.Impairment | None = None
    subnet6: IPv6Network | str | None = None  # a prefix, "auto" until planned, or None
    vrf: str | None = None


def _document(text: str, source: str) -> tuple[_Ctx, dict[str, Any]]:
    try:
        located = load_located(text)
    except YamlError as e:
        raise TopologyError(source, e.line, "", e.message) from None
    except MemoryError:  # the limits keep this away unless memory is short already
        raise TopologyError(source, None, "", "out of memory while reading the file") from None
    ctx = _Ctx(source, located)
    if located.data is None:
        raise ctx.fail((), "file is empty")
    ctx = _containerlab(ctx)
    return ctx, _mapping(ctx, ctx.located.data, (), ("name", "topology", *section_names()))


def _containerlab(ctx: _Ctx) -> _Ctx:
    """A containerlab file converted to ours (lsr.core.importers.containerlab: the mapping),
    errors still located in the file; anything else as it is."""
    from lsr.core.importers import containerlab

    if not containerlab.recognise(ctx.located.data):
        return ctx
    try:
        data, lines, notes = containerlab.convert(ctx.located.data, ctx.located.lines)
    except containerlab.ConvertError as e:
        raise ctx.fail(e.path, e.message) from None
    out = _Ctx(ctx.source, Located(data, lines))
    out.notes = notes
    return out


def _lab_name(ctx: _Ctx, doc: dict[str, Any]) -> str:
    if "name" not in doc:
        raise ctx.fail((), "missing 'name'")
    name = doc["name"]
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or len(name) > MAX_LAB_NAME:
        raise ctx.fail(
            ("name",),
            f"lab name {name!r} must be lowercase letters, digits and '-', start with a letter, "
            f"at most {MAX_LAB_NAME} characters",
        )
    return name


def _topology_shape(ctx: _Ctx, doc: dict[str, Any]) -> tuple[dict[str, Any], dict[Any, Any], list[Any]]:
    """The `topology:` mapping's three parts, checked for shape only."""
    if "topology" not in doc:
        raise ctx.fail((), "missing 'topology'")
    topo_raw = _mapping(ctx, doc["topology"], ("topology",), ("defaults", "nodes", "links"))
    defaults_raw = _mapping(ctx, topo_raw.get("defaults"), ("topology", "defaults"), _ROUTER_FIELDS)
    nodes_raw = topo_raw.get("nodes")
    if not isinstance(nodes_raw, dict) or not nodes_raw:
        raise ctx.fail(("topology", "nodes"), "expected a non-empty mapping of nodes")
    links_raw = topo_raw.get("links") or []
    if not isinstance(links_raw, list):
        raise ctx.fail(("topology", "links"), "expected a list of links")
    return defaults_raw, nodes_raw, links_raw


def _router_defaults(ctx: _Ctx, raw: dict[str, Any]) -> _RouterDefaults:
    dpath: Path = ("topology", "defaults")
    labels = _label_range(ctx, raw["labels"], dpath + ("labels",)) if "labels" in raw else None
    ttl = _choice(ctx, raw.get("ttl_model", "uniform"), dpath + ("ttl_model",), TTL_MODELS)
    return _RouterDefaults(labels, ttl, _ldp_options(ctx, raw.get("ldp"), dpath + ("ldp",), LdpOptions()),
                           _ospf_options(ctx, raw.get("ospf"), dpath + ("ospf",), OspfOptions()))


def _node_specs(ctx: _Ctx, nodes_raw: dict[Any, Any], defaults: _RouterDefaults) -> dict[str, _NodeSpec]:
    """Every node in file order (interfaces come from the links)."""
    specs: dict[str, _NodeSpec] = {}
    loopbacks: dict[IPv4Address, str] = {}  # explicit ones, to name the first user of each
    routers = 0
    for index, (nname, nraw) in enumerate(nodes_raw.items()):
        spec = _node_spec(ctx, index, nname, nraw, defaults, loopbacks, routers)
        routers += spec.kind in ROUTER_KINDS
        specs[nname] = spec
    if not routers:
        raise ctx.fail(("topology", "nodes"), "a topology needs at least one router")
    return specs


def _node_spec(
    ctx: _Ctx, index: int, nname: Any, nraw: Any, defaults: _RouterDefaults,
    loopbacks: dict[IPv4Address, str], router_ordinal: int,
) -> _NodeSpec:
    npath: Path = ("topology", "nodes", nname)
    if not isinstance(nname, str) or not NAME_RE.fullmatch(nname) or len(nname) > MAX_NODE_NAME:
        raise ctx.fail(
            npath,
            f"node name {nname!r} must be lowercase letters, digits and '-', start with a "
            f"letter, at most {MAX_NODE_NAME} characters",
        )
    nm = _mapping(ctx, nraw, npath, _NODE_KEYS)
    kind = _choice(ctx, nm.get("kind", "lsr"), npath + ("kind",), NODE_KINDS)
    if kind in HOST_KINDS:
        for k in nm:
            if k != "kind":
                raise ctx.fail(npath + (k,), f"'{k}' does not apply to a {kind} node")
        return _NodeSpec(kind, index)
    return _router_spec(ctx, npath, nm, _NodeSpec(kind, index), defaults, loopbacks, router_ordinal)


def _router_spec(
    ctx: _Ctx, npath: Path, nm: dict[str, Any], spec: _NodeSpec, defaults: _RouterDefaults,
    loopbacks: dict[IPv4Address, str], router_ordinal: int,
) -> _NodeSpec:
    """A router's own fields, in order: loopback, labels, ttl_model, ldp, then FRR's limits."""
    if "loopback" in nm:
        spec.loopback = _unicast(ctx, nm["loopback"], npath + ("loopback",))
        if spec.loopback in loopbacks:
            raise ctx.fail(
                npath + ("loopback",),
                f"loopback {spec.loopback} is already used by {loopbacks[spec.loopback]}",
            )
        loopbacks[spec.loopback] = npath[-1]
    if "labels" in nm:
        spec.labels = _label_range(ctx, nm["labels"], npath + ("labels",))
    else:
        spec.labels = defaults.labels or _default_labels(router_ordinal)
    spec.ttl_model = _choice(ctx, nm.get("ttl_model", defaults.ttl_model), npath + ("ttl_model",), TTL_MODELS)
    spec.ldp = _ldp_options(ctx, nm.get("ldp"), npath + ("ldp",), defaults.ldp)
    spec.ospf = _ospf_options(ctx, nm.get("ospf"), npath + ("ospf",), defaults.ospf)
    if spec.kind == "frr":  # FRR's ldpd: labels come from zebra's label manager, liberal only
        if "labels" in nm:
            raise ctx.fail(npath + ("labels",), "an frr node allocates its own labels "
                           "(FRR's label manager); 'labels' does not apply")
        if spec.ldp.retention != "liberal":
            raise ctx.fail(npath + ("ldp", "retention"), "FRR's ldpd supports only liberal retention")
    if "vrfs" in nm:
        if spec.kind != "lsr":
            raise ctx.fail(npath + ("vrfs",), f"VRFs run on lsr routers, not on a {spec.kind} node")
        spec.vrfs = parse_vrfs(ctx.fail, nm["vrfs"], npath + ("vrfs",))
    return spec


def _link_specs(ctx: _Ctx, links_raw: list[Any], specs: dict[str, _NodeSpec]) -> list[_LinkSpec]:
    used: dict[tuple[str, str], int] = {}  # (node, interface) -> link index
    return [_link_spec(ctx, li, lraw, specs, used) for li, lraw in enumerate(links_raw)]


def _link_spec(
    ctx: _Ctx, li: int, lraw: Any, specs: dict[str, _NodeSpec], used: dict[tuple[str, str], int]
) -> _LinkSpec:
    lpath: Path = ("topology", "links", li)
    lm = _mapping(ctx, lraw, lpath, _LINK_KEYS)
    ends = _endpoints(ctx, lm.get("endpoints"), lpath + ("endpoints",), li, specs, used)
    host_link = any(specs[nd].kind in HOST_KINDS for nd, _ in ends)
    subnet = (
        _subnet(ctx, lm["subnet"], lpath + ("subnet",), 30 if host_link else 31)
        if "subnet" in lm
        else None
    )
    cost = _int(ctx, lm.get("cost", DEFAULT_COST), lpath + ("cost",), 1, 65535)
    mtu = _int(ctx, lm.get("mtu", DEFAULT_MTU), lpath + ("mtu",), 576, 9000)
    subnet6 = _subnet6(ctx, lm["subnet6"], lpath + ("subnet6",), host_link, mtu) \
        if "subnet6" in lm else None
    return _LinkSpec(ends, host_link, lpath, subnet, cost, mtu,
                     _link_impairment(ctx, lm, lpath, ends, specs), subnet6)


def _subnet6(ctx: _Ctx, value: Any, path: Path, host_link: bool, mtu: int) -> IPv6Network | str:
    """A customer link's IPv6 subnet: a prefix, or `auto` (lsr.core.ipv6.auto_subnet)."""
    if not host_link:
        raise ctx.fail(path, "subnet6 is for customer (host) links: the core stays IPv4 "
                             "(IPv6 crosses it labelled, 6PE RFC 4798)")
    if mtu < _ipv6.MIN_MTU:
        raise ctx.fail(path, f"IPv6 needs a link MTU of at least {_ipv6.MIN_MTU} "
                             f"(RFC 8200 §5); this link has {mtu}")
    if value == "auto":
        return "auto"
    try:
        net = IPv6Network(str(value), strict=True)
    except ValueError as e:
        raise ctx.fail(path, f"bad IPv6 subnet {value!r} (or 'auto'): {e}") from None
    why = _ipv6.subnet_problem(net)
    if why:
        raise ctx.fail(path, why)
    return net


def _link_impairment(ctx: _Ctx, lm: dict[str, Any], lpath: Path, ends: tuple[tuple[str, str], ...],
                     specs: dict[str, _NodeSpec]) -> _impair.Impairment | None:
    """A link's delay/jitter/loss/rate/queue; our `lsr` runtime applies them, so one end must
    be an `lsr` router (lsr.lab.node_impair)."""
    raw = {k: lm[k] for k in _impair.KEYS if k in lm}
    if not raw:
        return None
    for k, v in raw.items():
        try:
            _impair.parse_value(k, v)
        except ValueError as e:
            raise ctx.fail(lpath + (k,), str(e).split(": ", 1)[-1]) from None
    try:
        imp = _impair.update(None, raw)
    except ValueError as e:
        raise ctx.fail(lpath + ("jitter",), str(e)) from None
    if not any(specs[nd].kind == "lsr" for nd, _ in ends):
        raise ctx.fail(lpath + (next(iter(raw)),), "impairments are applied by an lsr router's "
                       "dataplane: one end of the link must be a node of kind lsr")
    return imp


def _endpoints(
    ctx: _Ctx, eps: Any, epath: Path, li: int, specs: dict[str, _NodeSpec],
    used: dict[tuple[str, str], int],
) -> tuple[tuple[str, str], tuple[str, str]]:
    if not (isinstance(eps, list) and len(eps) == 2):
        raise ctx.fail(epath, "endpoints must be a list of two 'node:interface' strings")
    ends: list[tuple[str, str]] = []
    for ei, ep in enumerate(eps):
        if not isinstance(ep, str) or ep.count(":") != 1:
            raise ctx.fail(epath + (ei,), f"endpoint {ep!r} must be 'node:interface'")
        nd, ifn = ep.split(":")
        if nd not in specs:
            raise ctx.fail(epath + (ei,), f"unknown node '{nd}'")
        bad = _ifname_ok(ifn)
        if bad:
            raise ctx.fail(epath + (ei,), bad)
        if (nd, ifn) in used:
            raise ctx.fail(epath + (ei,), f"interface {nd}:{ifn} is already used by link {used[(nd, ifn)]}")
        used[(nd, ifn)] = li
        ends.append((nd, ifn))
    a, b = ends
    if a[0] == b[0]:
        raise ctx.fail(epath, f"a link cannot connect {a[0]} to itself")
    if specs[a[0]].kind in HOST_KINDS and specs[b[0]].kind in HOST_KINDS:
        raise ctx.fail(epath, "a host must connect to a router, not to another host")
    return a, b


def _check_host_links(ctx: _Ctx, specs: dict[str, _NodeSpec], link_specs: list[_LinkSpec]) -> None:
    """A host has exactly one link (its default route points along it)."""
    degree = Counter(nd for ls in link_specs for nd, _ in ls.ends)
    for nname, spec in specs.items():
        if spec.kind in HOST_KINDS and degree[nname] != 1:
            raise ctx.fail(
                ("topology", "nodes", nname), f"a host needs exactly one link, it has {degree[nname]}"
            )


def _plan_addresses(ctx: _Ctx, specs: dict[str, _NodeSpec], link_specs: list[_LinkSpec]) -> None:
    """Explicit loopbacks and subnets first, then auto-assign around them.

    The global table is one plan; each VRF (by name) is a plan of its own that must stay
    clear of the global one but may reuse another VRF's addresses (two customers with the
    same prefixes, RFC 4364 §1). Global blocks avoid every VRF's; VRF links are given
    subnets last, from the host pool, so two VRFs get the same ones."""
    plan = _AddressPlan(ctx)
    vrf_plans: dict[str, _AddressPlan] = {}
    for ls in link_specs:
        if ls.vrf is not None:
            vrf_plans.setdefault(ls.vrf, _AddressPlan(ctx))
    every = tuple(vrf_plans.values())
    for nname, spec in specs.items():
        if spec.loopback is not None:
            plan.claim(IPv4Network(f"{spec.loopback}/32"), ("topology", "nodes", nname, "loopback"))
    for ls in link_specs:
        if ls.subnet is not None:
            if ls.vrf is None:
                plan.claim(ls.subnet, ls.path + ("subnet",), every)
            else:
                vrf_plans[ls.vrf].claim(ls.subnet, ls.path + ("subnet",), (plan,))
    for nname, spec in specs.items():
        if spec.kind in ROUTER_KINDS and spec.loopback is None:
            spec.loopback = plan.assign(LOOPBACK_POOL, 32, ("topology", "nodes", nname),
                                        every).network_address
    for ls in link_specs:
        if ls.subnet is None and ls.vrf is None:
            pool, plen = (HOST_LINK_POOL, 24) if ls.host else (CORE_LINK_POOL, 30)
            ls.subnet = plan.assign(pool, plen, ls.path, every)
    # The global plan records its claims, not its assignments (only its cursor): a VRF
    # starts after the global host links, so that it reuses none of their subnets.
    start = plan.cursor.get((HOST_LINK_POOL, 24))
    for vp in vrf_plans.values():
        if start is not None:
            vp.cursor[(HOST_LINK_POOL, 24)] = start
    for ls in link_specs:
        if ls.subnet is None and ls.vrf is not None:
            ls.subnet = vrf_plans[ls.vrf].assign(HOST_LINK_POOL, 24, ls.path, (plan,))
    _plan_ipv6(ctx, link_specs)


def _plan_ipv6(ctx: _Ctx, link_specs: list[_LinkSpec]) -> None:
    """Explicit IPv6 subnets must not overlap; `auto` ones come from the lab's ULA /48.
    As for IPv4, a VRF is an address space of its own: two VRFs (by name) may use the
    same IPv6 subnets (6VPE, RFC 4659), none may overlap a global one."""
    seen: list[tuple[IPv6Network, Path]] = []
    space: dict[Path, str | None] = {}
    for ls in link_specs:
        if isinstance(ls.subnet6, IPv6Network):
            for net, p in seen:
                if net.overlaps(ls.subnet6) and (ls.vrf is None or space[p] is None
                                                 or space[p] == ls.vrf):
                    raise ctx.fail(ls.path + ("subnet6",),
                                   f"{ls.subnet6} overlaps {net} ({_fmt_path(p)})")
            seen.append((ls.subnet6, ls.path))
            space[ls.path] = ls.vrf
    name = ctx.located.data.get("name") if isinstance(ctx.located.data, dict) else None
    for li, ls in enumerate(link_specs):
        if ls.subnet6 == "auto":
            net = _ipv6.auto_subnet(str(name), li)
            for other, p in seen:
                if net.overlaps(other):
                    raise ctx.fail(ls.path + ("subnet6",),
                                   f"auto subnet {net} overlaps {other} ({_fmt_path(p)})")
            ls.subnet6 = net


def _bind_vrfs(ctx: _Ctx, specs: dict[str, _NodeSpec], link_specs: list[_LinkSpec]) -> None:
    """A VRF interface is a port of its router that leads to a host (a CE), in one VRF."""
    link_of = {end: ls for ls in link_specs for end in ls.ends}
    for nname, spec in specs.items():
        bound: dict[str, str] = {}
        for vname, vrf in spec.vrfs.items():
            for k, ifn in enumerate(vrf.interfaces):
                p = ("topology", "nodes", nname, "vrfs", vname, "interfaces", k)
                ls = link_of.get((nname, ifn))
                if ls is None:
                    raise ctx.fail(p, f"{nname} has no interface '{ifn}' (no link names it)")
                if ifn in bound:
                    raise ctx.fail(p, f"{nname}:{ifn} is already in VRF {bound[ifn]}")
                bound[ifn] = vname
                peer = ls.ends[1] if ls.ends[0][0] == nname else ls.ends[0]
                if specs[peer[0]].kind not in HOST_KINDS:
                    raise ctx.fail(p, f"{nname}:{ifn} leads to router {peer[0]}: a VRF interface "
                                      "leads to a host (a CE)")
                ls.vrf = vname


def _build(name: str, source: str, specs: dict[str, _NodeSpec], link_specs: list[_LinkSpec]) -> Topology:
    links: list[Link] = []
    ifaces: dict[str, dict[str, Interface]] = {n: {} for n in specs}
    for li, ls in enumerate(link_specs):
        net = ls.subnet
        assert net is not None  # _plan_addresses gave every link one
        # The first two host addresses (all of a /31), by arithmetic: listing the hosts of
        # a big subnet (a /8 is allowed on a host link) would cost seconds and gigabytes.
        first = int(net.network_address) + (1 if net.prefixlen < 31 else 0)
        (an, ai), (bn, bi) = ls.ends
        net6 = ls.subnet6 if isinstance(ls.subnet6, IPv6Network) else None
        for k, ((nd, ifn), addr, (pn, pi)) in enumerate((
            ((an, ai), first, (bn, bi)),
            ((bn, bi), first + 1, (an, ai)),
        )):
            ifaces[nd][ifn] = Interface(
                node=nd,
                name=ifn,
                address=IPv4Interface((addr, net.prefixlen)),
                mac=_mac(specs[nd].index, len(ifaces[nd])),
                mtu=ls.mtu,
                link=li,
                peer_node=pn,
                peer_interface=pi,
                vrf=ls.vrf,
                address6=_ipv6.host_interface(net6, k) if net6 is not None else None,
            )
        links.append(Link(li, (an, ai), (bn, bi), net, ls.cost, ls.mtu, ls.impair, ls.vrf, net6))
    nodes = {
        nname: Node(
            name=nname,
            kind=spec.kind,
            index=spec.index,
            loopback=spec.loopback,
            labels=spec.labels,
            ttl_model=spec.ttl_model,
            ldp=spec.ldp,
            ospf=spec.ospf,
            interfaces=dict(sorted(ifaces[nname].items())),
            vrfs=spec.vrfs,
        )
        for nname, spec in specs.items()
    }
    return Topology(name=name, nodes=nodes, links=links, source=source)


def _check_connected(ctx: _Ctx, topo: Topology) -> None:
    """Routers must form one connected IGP domain."""
    g = topo.graph()
    if g.number_of_nodes() > 1 and not nx.is_connected(g):
        comps = sorted((sorted(c) for c in nx.connected_components(g)), key=lambda c: c[0])
        raise ctx.fail(
            ("topology", "links"),
            "routers are not all connected: "
            + " | ".join(", ".join(c[:4]) + (" ..." if len(c) > 4 else "") for c in comps[:3]),
        )


def _check_passwords(ctx: _Ctx, topo: Topology) -> None:
    """LDP passwords must name routers of the topology."""
    for n in topo.routers:
        for nb, _ in n.ldp.passwords:
            if nb not in topo.nodes or not topo.nodes[nb].is_router:
                raise ctx.fail(
                    ("topology", "nodes", n.name, "ldp", "passwords", nb), f"unknown router '{nb}'"
                )


def _check_vrfs(ctx: _Ctx, topo: Topology) -> None:
    """Static routes' next hops are on a subnet of the VRF (a CE, not the PE itself);
    LDP and VPN labels fit the router's label range."""
    for n in topo.routers:
        for vname, vrf in n.vrfs.items():
            base = ("topology", "nodes", n.name, "vrfs", vname)
            routes = []
            for k, r in enumerate(vrf.routes):
                ports = [n.interfaces[x] for x in vrf.interfaces]
                if r.via.version == 6:  # 6VPE: the CE's address on a port's subnet6
                    own = [i.address6 for i in ports if i.address6 is not None
                           and r.via in i.address6.network]
                    hit = [i for i in ports if i.address6 is not None
                           and r.via in i.address6.network]
                else:
                    own = [i.address for i in ports if r.via in i.address.network]
                    hit = [i for i in ports if r.via in i.address.network]
                if not hit:
                    raise ctx.fail(base + ("routes", k, "via"),
                                   f"{r.via} is on no subnet of VRF {vname}'s interfaces"
                                   + (" (IPv6: a port's subnet6)" if r.via.version == 6 else ""))
                if r.via == own[0].ip:
                    raise ctx.fail(base + ("routes", k, "via"), f"{r.via} is {n.name}'s own address")
                routes.append(replace(r, interface=hit[0].name))
            n.vrfs[vname] = replace(vrf, routes=tuple(routes))
        try:
            topo.label_ranges(n.name)
        except ValueError as e:
            raise ctx.fail(("topology", "nodes", n.name, "labels"), str(e)) from None


class _AddressPlan:
    """Address blocks in use, as sorted intervals, so overlap checks stay O(log n)."""

    def __init__(self, ctx: _Ctx) -> None:
        self.ctx = ctx
        self.starts: list[int] = []
        self.blocks: list[tuple[int, int, IPv4Network, Path]] = []  # sorted by start
        self.cursor: dict[tuple[IPv4Network, int], int] = {}

    def _conflict(self, lo: int, hi: int) -> tuple[int, int, IPv4Network, Path] | None:
        i = bisect.bisect_right(self.starts, hi)
        # Blocks are disjoint, so only the one starting last at or before `hi` can overlap.
        if i and self.blocks[i - 1][1] >= lo:
            return self.blocks[i - 1]
        return None

    def _add(self, lo: int, hi: int, net: IPv4Network, path: Path) -> None:
        i = bisect.bisect_right(self.starts, lo)
        self.starts.insert(i, lo)
        self.blocks.insert(i, (lo, hi, net, path))

    def _conflict_any(self, lo: int, hi: int, others: tuple[_AddressPlan, ...]
                      ) -> tuple[int, int, IPv4Network, Path] | None:
        hit = self._conflict(lo, hi)
        for o in others:
            if hit is not None:
                break
            hit = o._conflict(lo, hi)
        return hit

    def claim(self, net: IPv4Network, path: Path, others: tuple[_AddressPlan, ...] = ()) -> None:
        """Take `net`; it must overlap nothing of this plan nor of `others`."""
        lo, hi = int(net.network_address), int(net.broadcast_address)
        hit = self._conflict_any(lo, hi, others)
        if hit:
            raise self.ctx.fail(path, f"{net} overlaps {hit[2]} ({_fmt_path(hit[3])})")
        self._add(lo, hi, net, path)

    def assign(self, pool: IPv4Network, plen: int, path: Path,
               others: tuple[_AddressPlan, ...] = ()) -> IPv4Network:
        """The next free /plen of `pool` (never its first /32: x.x.0.0 is no loopback),
        clear of this plan and of `others`."""
        size = 1 << (32 - plen)
        key = (pool, plen)
        lo = self.cursor.get(key, int(pool.network_address) + (size if plen == 32 else 0))
        end = int(pool.broadcast_address)
        while lo + size - 1 <= end:
            hit = self._conflict_any(lo, lo + size - 1, others)
            if hit is None:
                # Not added to the intervals: claims all come before the first assignment,
                # and the pools are disjoint with one prefix length each, so the cursor
                # alone keeps assigned blocks apart (and 60,000 sorted inserts cost seconds).
                net = IPv4Network((lo, plen))
                self.cursor[key] = lo + size
                return net
            lo = ((hit[1] + 1 + size - 1) // size) * size  # next aligned block after the conflict
        raise self.ctx.fail(path, f"no free /{plen} left in {pool} to assign")


def _default_labels(router_ordinal: int) -> tuple[int, int]:
    """Router k (0-based, file order) allocates from 1000*(k+1) up: labels are locally
    significant (RFC 3031 §3.1), and distinct blocks make every label say which router
    allocated it, which is what a student reading an LSP needs."""
    start = LABEL_BLOCK * (router_ordinal + 1)
    return (start, MAX_LABEL) if start + LABEL_BLOCK <= MAX_LABEL else DEFAULT_LABEL_RANGE


def _mac(node_index: int, if_index: int) -> str:
    """Locally administered, deterministic MAC: 02:4c:53 ('LS') + node + interface."""
    return f"02:4c:53:{(node_index >> 8) & 0xFF:02x}:{node_index & 0xFF:02x}:{if_index & 0xFF:02x}"


def host_address(topo: Topology, node: str) -> IPv4Address:
    """The address of a host (its single interface) or a router's loopback."""
    n = topo.nodes[node]
    if n.is_router:
        return n.lsr_id
    (iface,) = n.interfaces.values()
    return iface.address.ip


def parse_address_or_node(topo: Topology, value: str) -> IPv4Address:
    """Resolve 'ce1' or '10.255.0.4' to an address of the topology."""
    if value in topo.nodes:
        return host_address(topo, value)
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"'{value}' is neither a node of {topo.name} nor an IPv4 address") from None
