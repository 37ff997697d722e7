"""The IPv6 part of one router's forwarding tables (`RouterTables.v6`).

IPv6 lives on customer (host) links only; the core is IPv4 and IPv6 crosses it
labelled (6PE, RFC 4798). Compiled from the topology and the router's `Fib6`
(`lsr.core.fib6`, BGP's labelled IPv6 routes over LDP):

- `ifs`: the interfaces with an IPv6 address (their subnet, MAC, the host on the
  other end and its MAC: the lab sets every MAC, so the dataplane needs no
  Neighbor Discovery of its own; it answers the hosts' solicitations);
- `own`: our IPv6 addresses (delivered, answered: Echo, Neighbor Solicitation);
- one longest-prefix-match table over the connected subnets and the 6PE routes
  (`Action`s of `forwarding.tables`, keyed by the 128-bit network as an int), with a
  per-destination cache;
- `labels`: our 6PE labels (pop, IPv6 lookup), from the Fib6;
- counters per connected prefix (`ip6`) and per 6PE prefix (`ftn6`).

An IPv4-only router (a P router) has an empty one: it still sends ICMPv6 errors
about the IPv6 packets it label-switches, from ::ffff:<its incoming interface's
IPv4 address> (`error_source`).

A VRF with IPv6 ports (6VPE, RFC 4659) has one of its own (`VrfTable.v6`, `vrf` set):
its ports, their subnets and the VRF's IPv6 routes (`set_vrf_fib`: VPN routes pushing
[LDP label, VPN label], subnets leaked from another VRF of the PE out that VRF's port,
static routes to the CE on a port: unlabelled next hops to that host's MAC);
its counters are the router's per-VRF ones (`RouterTables.c_vrf`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Interface, IPv6Network
from typing import Any

from forwarding.nexthop import A_CONNECTED, A_NHLFE, LPM_CACHE_MAX, Action, CNhlfe
from lsr.core.fib6 import Fib6
from lsr.core.ipv6 import mapped

ETH_IPV6 = b"\x86\xdd"


@dataclass(frozen=True)
class If6:
    name: str
    address: IPv6Interface
    mac: bytes
    mtu: int
    peer_node: str
    peer_mac: bytes
    peer_address: bytes | None  # the host's IPv6 address (16 octets), if it has one


class Tables6:
    """IPv6 state of one router (see module docstring). `rt`: its
    `forwarding.tables.RouterTables` (interfaces, MACs, the NHLFE compiler)."""

    def __init__(self, rt: Any, ifs: Mapping[str, If6] | None = None, vrf: str | None = None,
                 nh_ifs: Mapping[str, If6] | None = None) -> None:
        self.rt = rt
        self.vrf = vrf
        self.ifs: dict[str, If6] = dict(ifs or {})
        # every port a route may leave by (a leaked subnet: another VRF's port)
        self.nh_ifs: dict[str, If6] = {**(nh_ifs or {}), **self.ifs}
        self.own: set[bytes] = {i.address.ip.packed for i in self.ifs.values()}
        # The source of errors about packets that came in on a link without IPv6 (from
        # the core): our first IPv6 address; an IPv4-only router has none (error_source).
        self.first: bytes | None = min(self.own) if self.own else None
        self.neigh: dict[bytes, tuple[str, bytes, str]] = {
            i.peer_address: (i.name, i.peer_mac, i.peer_node)
            for i in self.ifs.values() if i.peer_address is not None}
        self.fib = Fib6()
        self.leaked: dict[IPv6Network, str] = {}  # a VRF's: prefix -> another VRF's port
        self.static: dict[IPv6Network, tuple[str, bytes]] = {}  # prefix -> (port, CE address)
        self.labels: frozenset[int] = frozenset()
        self.c_ip6: dict[IPv6Network, list[int]] = {}
        self.c_ftn6: dict[IPv6Network, list[int]] = {}
        self._lpm: list[tuple[int, int, dict[int, Action]]] = []
        self.cache: dict[bytes, Action | None] = {}
        self._hdr: dict[tuple[str, bytes], bytes] = {}
        self._conn: dict[tuple[str, bytes], CNhlfe] = {}  # connected_nh, made once per host
        self._rebuild()

    # ------------------------------------------------------------ construction

    def error_source(self, in_if: str) -> bytes:
        """The source of an ICMPv6 error about a packet that came in on `in_if`: that
        interface's IPv6 address, else our first one, else ::ffff:<in_if's IPv4> (an
        IPv4-only LSR, as 6PE P routers answer traceroute, RFC 4798)."""
        i = self.ifs.get(in_if)
        if i is not None:
            return i.address.ip.packed
        if self.first is not None:
            return self.first
        ifi = self.rt.interfaces.get(in_if)
        v4 = ifi.address.ip if ifi is not None else (self.rt.loopback or IPv4Address(0))
        return mapped(v4).packed

    def set_fib(self, fib: Fib6) -> None:
        """Swap in a new Fib6 (counters of prefixes that stay are kept)."""
        self.fib = fib
        self.labels = frozenset(fib.labels)
        self._rebuild()

    def set_vrf_fib(self, fib: Fib6, leaked: Mapping[IPv6Network, str],
                    static: Mapping[IPv6Network, tuple[str, bytes]] | None = None) -> None:
        """A VRF's IPv6 routes: VPN routes (`fib`, no labels of its own: the VPN label is
        the VRF's, `RouterTables.ilm`), subnets leaked out of other VRFs' ports and static
        routes to a CE (`static`: prefix -> (port, the CE's IPv6 address on it))."""
        self.fib = fib
        self.leaked = dict(leaked)
        self.static = dict(static or {})
        self._rebuild()

    def static_nh(self, port: str, via: bytes) -> CNhlfe:
        """The next hop of a static route: the CE `via` on `port` (unresolved if the host
        there has another address); no labels, so `unlabelled` gives its IPv6 header."""
        i = self.nh_ifs[port]
        ok = i.peer_address == via
        return CNhlfe(port, i.peer_node if ok else "", 0, (), b"",
                      self.hdr6(port, i.peer_mac if ok else bytes(6)), i.mtu, ok)

    def _ctr(self, d: dict[IPv6Network, list[int]], p: IPv6Network) -> list[int]:
        if self.vrf is not None:  # a VRF's counters are the router's per-VRF ones
            return self.rt.c_vrf.setdefault((self.vrf, p), [0, 0])
        return d.setdefault(p, [0, 0])

    def hdr6(self, out_if: str, dst_mac: bytes) -> bytes:
        """The Ethernet header of an IPv6 frame out of `out_if` to `dst_mac`."""
        key = (out_if, dst_mac)
        h = self._hdr.get(key)
        if h is None:
            i = self.rt.interfaces.get(out_if)
            h = self._hdr[key] = dst_mac + (i.mac if i is not None else bytes(6)) + ETH_IPV6
        return h

    def _rebuild(self) -> None:
        by_len: dict[int, dict[int, Action]] = {}

        def put(a: Action) -> None:
            p = a.prefix
            by_len.setdefault(p.prefixlen, {})[int(p.network_address)] = a

        for p, r in self.fib.routes.items():
            nhs = tuple(self.rt.compile_nhlfe(n) for n in r.nexthops)
            put(Action(A_NHLFE, p, nhs, True, self._ctr(self.c_ftn6, p)))
        for p, (port, via) in self.static.items():
            if port in self.nh_ifs:
                put(Action(A_NHLFE, p, (self.static_nh(port, via),), False,
                           self._ctr(self.c_ip6, p)))
        for p, port in self.leaked.items():
            if port in self.nh_ifs:
                put(Action(A_CONNECTED, p, out_if=port, counter=self._ctr(self.c_ip6, p)))
        for i in self.ifs.values():  # connected subnets win over any route of theirs
            net = i.address.network
            put(Action(A_CONNECTED, net, out_if=i.name, counter=self._ctr(self.c_ip6, net)))
        self._lpm = [(plen, ((1 << 128) - 1) ^ ((1 << (128 - plen)) - 1), by_len[plen])
                     for plen in sorted(by_len, reverse=True)]
        self.cache = {}

    # ------------------------------------------------------------ lookups

    def lookup(self, dst: bytes) -> Action | None:
        """Longest-prefix match for a 16-octet destination, cached."""
        try:
            return self.cache[dst]
        except KeyError:
            pass
        d = int.from_bytes(dst, "big")
        a = None
        for _plen, mask, table in self._lpm:
            a = table.get(d & mask)
            if a is not None:
                break
        if len(self.cache) >= LPM_CACHE_MAX:
            self.cache.clear()
        self.cache[dst] = a
        return a

    def connected_nh(self, out_if: str, dst: bytes) -> CNhlfe:
        """The next hop for a destination on a connected IPv6 subnet: the host itself.
        `hdr_ip` is the IPv6 (0x86dd) header; unresolved if no station has `dst`."""
        nh = self._conn.get((out_if, dst))
        if nh is None:
            i = self.nh_ifs[out_if]
            ok = i.peer_address == dst  # the one host on the link (VRFs reuse addresses)
            mac = i.peer_mac if ok else bytes(6)
            nh = CNhlfe(out_if, i.peer_node if ok else "", 0, (), b"", self.hdr6(out_if, mac),
                        i.mtu, ok)
            if len(self._conn) >= LPM_CACHE_MAX:
                self._conn.clear()
            self._conn[(out_if, dst)] = nh
        return nh

    def unlabelled(self, nh: CNhlfe) -> bytes:
        """The IPv6 header for a 6PE next hop whose labels are all implicit null."""
        return nh.hdr_ip[:12] + ETH_IPV6

    # ------------------------------------------------------------ counters

    def forwarded(self) -> int:
        return sum(c[0] for d in (self.c_ip6, self.c_ftn6) for c in d.values())

    def reset_counters(self) -> None:
        for d in (self.c_ip6, self.c_ftn6):
            for c in d.values():
                c[0] = c[1] = 0

    def counters_json(self) -> dict:
        def pb(c: list[int]) -> dict[str, int]:
            return {"packets": c[0], "bytes": c[1]}

        def key(p: IPv6Network) -> tuple[int, int]:
            return (int(p.network_address), p.prefixlen)

        return {"ip6": {str(p): pb(self.c_ip6[p]) for p in sorted(self.c_ip6, key=key)},
                "ftn6": {str(p): pb(self.c_ftn6[p]) for p in sorted(self.c_ftn6, key=key)}}


def interfaces6(topo: Any, router: str, rt: Any, vrf: str | None = None,
                every: bool = False) -> dict[str, If6]:
    """The router's IPv6 interfaces from the topology (customer links with `subnet6`):
    those of the global table (`vrf` None) or of VRF `vrf`; `every`: all of them."""
    node = topo.nodes[router]
    out: dict[str, If6] = {}
    for name, i in node.interfaces.items():
        if i.address6 is None or (i.vrf != vrf and not every):
            continue
        peer = topo.nodes[i.peer_node].interfaces[i.peer_interface]
        out[name] = If6(name, i.address6, rt.if_mac[name], i.mtu, i.peer_node,
                        rt.interfaces[name].peer_mac,
                        peer.address6.ip.packed if peer.address6 is not None else None)
    return out

