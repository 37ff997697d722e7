"""Everything one router's forwarding plane needs, compiled for fast lookups.

`RouterTables.build(topo, router, rib, lfib)` takes the topology (interfaces,
deterministic MACs, peers), the IGP RIB of the router and its LFIB (FTN + ILM,
`lsr.core.lfib`, produced by LDP) and precompiles:

- per interface: MAC, address, MTU, the peer's MAC (the lab sets these MACs on
  the veths, so no ARP is needed in the dataplane);
- a neighbour table address -> (interface, MAC) for every peer, hosts included;
- per NHLFE: a prebuilt 14-byte Ethernet header for MPLS (0x8847) and one for
  IPv4 (0x0800), the out label bits, the link MTU;
- one longest-prefix-match table merging the RIB and the FTN: for each prefix
  the FTN entry if LDP installed one, else the RIB route (connected routes win
  over FTN entries of the same prefix); a per-destination cache over it;
- own addresses (loopback + interface addresses): packets for them are delivered;
- the interfaces labelled frames are accepted on (`mpls_input`: those LDP runs
  on) and the martian address tables (RFC 1812 §5.3.7);
- on a PE (RFC 4364), a `VrfTable` per VRF: its own LPM over the VRF's FIB
  (`Lfib.vrfs`) and its ports' subnets, its own addresses and CE neighbours. A
  port bound to a VRF (`port_vrf`) is looked up in that VRF only, never in the
  global table, and the global table holds nothing of any VRF. VPN labels
  (`Lfib.vpn_ilm`) are ILM entries: a per-prefix label of a static route pops
  and forwards like PHP (the fast paths take it), the others pop and look up in
  their VRF (`IlmC.vrf`, the general path).

`set_lfib`, `set_rib` and `apply_diff` swap in new state without touching
counters of entries that stay. Counters: per ILM label, FTN prefix and RIB
prefix (packets, bytes), drops by reason, deliveries, ICMP errors sent;
`forwarded()` + deliveries + drops = frames decided on.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Network

from forwarding.labelops import ETH_P_IP, ETH_P_MPLS_UC, IMPLICIT_NULL
from forwarding.nexthop import (  # re-exported: the IPv4 and IPv6 tables share them
    A_CONNECTED,
    A_LOCAL,
    A_NHLFE,
    LPM_CACHE_MAX,
    Action,
    CNhlfe,
)
from forwarding.results import DropReason
from forwarding.tables6 import Tables6, interfaces6
from lsr.core.fib6 import Fib6, Route6
from lsr.core.igp import Route
from lsr.core.lfib import FtnEntry, IlmEntry, Lfib, LfibDiff, Nhlfe, VpnIlmEntry, VrfEntry
from lsr.core.topology import Topology

TTL_MODELS = ("uniform", "pipe", "short-pipe")

# RouterTables.fast_ilm: in_label -> (FAST_KIND, FAST_NHS, FAST_COUNTER), for the labels the
# hot loops (forwarding.plane.Dataplane, forwarding.ioloop, forwarding.vector) switch without
# `decide`: every next hop resolved, and all of them swapping to one label >= 16
# (FAST_SWAP) or all popping the label (FAST_PHP: IPv4 out if it was the bottom one).
# FAST_NHS: a tuple of next hops (FNH_OUT_IF, FNH_HDR, FNH_LABEL, FNH_MTU): the egress
# interface, its 14-byte Ethernet header (ethertype 0x8847 for FAST_SWAP, 0x0800 for
# FAST_PHP), the out label << 12 (the label bits of a stack entry; 0 for FAST_PHP), the link
# MTU. FAST_COUNTER: the ILM counter [packets, bytes]. Plain tuples: the loops unpack them
# (a NamedTuple would cost them ~35 ns a frame, see forwarding.ioloop).
FAST_SWAP, FAST_PHP = 0, 1
FAST_KIND, FAST_NHS, FAST_COUNTER = 0, 1, 2
FNH_OUT_IF, FNH_HDR, FNH_LABEL, FNH_MTU = 0, 1, 2, 3


# RFC 1812 §5.3.7 (martian addresses), by first octet: a router must not forward a packet
# whose source is on network 0 or 127 or is not unicast (224/4 multicast, 240/4 class E and
# 255.255.255.255), nor one whose destination is on network 0 or 127 or in class E
# (255.255.255.255 is delivered, never forwarded). Subnet-directed broadcast sources are
# not checked: which addresses those are depends on masks this router does not know.
SOURCE_OK = bytes(0 if a in (0, 127) or a >= 224 else 1 for a in range(256))  # [src >> 24]
DESTINATION_OK = bytes(0 if a in (0, 127) or a >= 240 else 1 for a in range(256))  # [dst >> 24]


def router_seed(name: str) -> int:
    """A router's ECMP hash seed (CRC-32 of its name), mixed in by `forwarding.plane.mix32`."""
    return zlib.crc32(name.encode())


def martian_source(src: int) -> bool:
    """The IPv4 source (as int) is one a router must not forward (RFC 1812 §5.3.7)."""
    return not SOURCE_OK[src >> 24]


def martian_destination(dst: int) -> bool:
    """The IPv4 destination (as int) is one a router must not forward (RFC 1812 §5.3.7)."""
    return not DESTINATION_OK[dst >> 24]


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


@dataclass(frozen=True)
class IfInfo:
    name: str
    mac: bytes
    address: IPv4Interface
    mtu: int
    peer_node: str
    peer_interface: str
    peer_mac: bytes
    peer_address: IPv4Address
    peer_is_host: bool
    vrf: str | None = None  # the VRF the port is bound to (RFC 4364), None: global

    @property
    def ip(self) -> int:
        return int(self.address.ip)


@dataclass(slots=True)
class IlmC:
    entry: IlmEntry | VpnIlmEntry
    nhs: tuple[CNhlfe, ...]
    counter: list[int]
    # A VPN label's VRF: with no next hops, pop and look up there; with next hops (a
    # per-prefix label), ICMP errors about the packet are routed there.
    vrf: str | None = None


class VrfTable:
    """One VRF's forwarding on a PE: the lookup contract of the global table (`own`,
    `local_bcast`, `lookup`), over the VRF's FIB (`lsr.core.lfib.VrfEntry`) and the
    subnets of its ports. Built and kept up to date by its `RouterTables`. Its IPv6
    (6VPE, RFC 4659) is a `forwarding.tables6.Tables6` of its own, `v6`: the FIB's IPv6
    prefixes go there."""

    def __init__(self, name: str, tables: RouterTables) -> None:
        self.name = name
        self.tables = tables
        self.ports = tuple(n for n, i in tables.interfaces.items() if i.vrf == name)
        ifs = [tables.interfaces[n] for n in self.ports]
        self.own: set[int] = {i.ip for i in ifs}
        self.local_bcast: set[int] = {0xFFFFFFFF} | {
            int(i.address.network.broadcast_address) for i in ifs if i.address.network.prefixlen < 31}
        # The source of ICMP errors this VRF originates for a packet that came from the
        # core (a VRF has no loopback): its first port's address.
        self.source = ifs[0].ip if ifs else 0
        self.fib: dict[IPv4Network | IPv6Network, VrfEntry] = {}
        self._lpm: list[tuple[int, int, dict[int, Action]]] = []
        self.lpm_cache: dict[int, Action | None] = {}
        self.v6 = Tables6(tables, vrf=name)  # RouterTables.build gives it the ports

    def set_fib(self, fib: Mapping[IPv4Network | IPv6Network, VrfEntry]) -> None:
        t = self.tables
        self.fib = dict(fib)
        self._set_fib6()
        by_len: dict[int, dict[int, Action]] = {}
        for n in self.ports:  # the ports' subnets, unless the FIB says otherwise
            net = t.interfaces[n].address.network
            by_len.setdefault(net.prefixlen, {})[int(net.network_address)] = Action(
                A_CONNECTED, net, out_if=n, counter=t.c_vrf.setdefault((self.name, net), [0, 0]))
        for prefix, e in self.fib.items():
            if prefix.version == 6:
                continue
            ctr = t.c_vrf.setdefault((self.name, prefix), [0, 0])
            if e.interface:
                a = Action(A_CONNECTED, prefix, out_if=e.interface, counter=ctr)
            elif e.nexthops:
                nhs = tuple(t.compile_nhlfe(nh) for nh in e.nexthops)
                a = Action(A_NHLFE, prefix, nhs, e.source == "vpn", ctr)
            else:
                continue
            by_len.setdefault(prefix.prefixlen, {})[int(prefix.network_address)] = a
        self._lpm = [(plen, (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF, by_len[plen])
                     for plen in sorted(by_len, reverse=True)]
        self.lpm_cache = {}

    def _set_fib6(self) -> None:
        """The FIB's IPv6 routes into `v6`: VPN routes (push [LDP, VPN label]) as 6PE-like
        routes, leaked subnets out of the other VRF's port (the VRF's own ports are `v6`'s),
        static routes (this VRF's or leaked from another) to their CE."""
        routes: dict[IPv6Network, Route6] = {}
        leaked: dict[IPv6Network, str] = {}
        static: dict[IPv6Network, tuple[str, bytes]] = {}
        for p, e in self.fib.items():
            if not isinstance(p, IPv6Network):
                continue
            if e.interface:
                leaked[p] = e.interface
            elif e.nexthops and e.pe is not None and e.vpn_label is not None:
                routes[p] = Route6(p, e.pe, e.vpn_label, e.nexthops)
            elif e.nexthops and e.source in ("static", "leaked"):
                nh = e.nexthops[0]
                static[p] = (nh.interface, nh.nexthop.packed)
        if routes or leaked or static or self.v6.fib.routes or self.v6.leaked or self.v6.static:
            self.v6.set_vrf_fib(Fib6(routes), leaked, static)

    def lookup(self, dst: int) -> Action | None:
        """Longest-prefix match in this VRF (martian destinations have no route)."""
        try:
            return self.lpm_cache[dst]
        except KeyError:
            pass
        a = None
        if DESTINATION_OK[dst >> 24]:
            for _plen, mask, d in self._lpm:
                a = d.get(dst & mask)
                if a is not None:
                    break
        if len(self.lpm_cache) >= LPM_CACHE_MAX:
            self.lpm_cache.clear()
        self.lpm_cache[dst] = a
        return a


class RouterTables:
    """The compiled forwarding state of one router. Build with `RouterTables.build`."""

    def __init__(self, name: str, interfaces: Mapping[str, IfInfo], loopback: IPv4Address | None,
                 ttl_model: str = "uniform",
                 extra_neighbors: Mapping[IPv4Address, tuple[str, bytes, str]] | None = None,
                 mpls_input: Iterable[str] | None = None) -> None:
        if ttl_model not in TTL_MODELS:
            raise ValueError(f"ttl_model must be one of {TTL_MODELS}")
        self.name = name
        self.ttl_model = ttl_model
        self.uniform = ttl_model == "uniform"
        self.interfaces: dict[str, IfInfo] = dict(interfaces)
        self.loopback = loopback
        self.if_mac: dict[str, bytes] = {n: i.mac for n, i in self.interfaces.items()}
        # VRF ports (RFC 4364): their IPv4 is looked up in their VRF, so the IPv4 fast
        # paths, which look up the global table, take frames of the other ports only.
        self.if_vrf: dict[str, str] = {n: i.vrf for n, i in self.interfaces.items() if i.vrf}
        self.ip_mac: dict[str, bytes] = {n: m for n, m in self.if_mac.items()
                                         if n not in self.if_vrf}
        self.vrf_macs: frozenset[bytes] = frozenset(self.if_mac[n] for n in self.if_vrf)
        glob = [i for i in self.interfaces.values() if not i.vrf]
        # MPLS input (see set_mpls_input); by default the interfaces towards routers
        self.mpls_input: frozenset[str] = frozenset()
        self.mpls_mac: dict[str, bytes] = {}
        self.set_mpls_input(mpls_input if mpls_input is not None else
                            [n for n, i in self.interfaces.items() if not i.peer_is_host])
        self.if_ip: dict[str, int] = {n: i.ip for n, i in self.interfaces.items()}
        self.own: set[int] = {i.ip for i in glob}
        if loopback is not None:
            self.own.add(int(loopback))
        # Local broadcast-ish addresses: delivered, never forwarded.
        self.local_bcast: set[int] = {0xFFFFFFFF}
        self.local_bcast |= {int(i.address.network.broadcast_address)
                             for i in glob if i.address.network.prefixlen < 31}
        # neighbour table: address -> (interface, MAC, node)
        self.neigh: dict[int, tuple[str, bytes, str]] = {}
        for i in glob:
            self.neigh[int(i.peer_address)] = (i.name, i.peer_mac, i.peer_node)
        for a, v in (extra_neighbors or {}).items():
            self.neigh[int(a)] = v
        # CEs on VRF ports, by (port, address): two VRFs may use the same addresses.
        self.port_neigh: dict[tuple[str, int], tuple[str, bytes, str]] = {
            (i.name, int(i.peer_address)): (i.name, i.peer_mac, i.peer_node)
            for i in self.interfaces.values() if i.vrf}
        self.c_vrf: dict[tuple[str, IPv4Network], list[int]] = {}  # (VRF, prefix) counters
        self.vrfs: dict[str, VrfTable] = {v: VrfTable(v, self) for v in sorted(set(self.if_vrf.values()))}
        self.port_vrf: dict[str, VrfTable] = {n: self.vrfs[v] for n, v in self.if_vrf.items()}
        self.seed = router_seed(name)  # per-router ECMP hash seed (forwarding.plane.mix32)
        self.lfib = Lfib()
        self.rib: dict[IPv4Network, Route] = {}
        # compiled state
        self.ilm: dict[int, IlmC] = {}
        self.fast_ilm: dict[int, tuple] = {}  # see FAST_KIND above
        self._lpm: list[tuple[int, int, dict[int, Action]]] = []
        self._by_len: dict[int, dict[int, Action]] = {}
        self._conn: dict[IPv4Network, str] = {}
        # destination -> lookup() result. A new dict after every LPM change: caches derived
        # from lookups (forwarding.ioloop) compare its identity to know when to forget.
        self.lpm_cache: dict[int, Action | None] = {}
        # counters
        self.c_ilm: dict[int, list[int]] = {}
        self.c_ftn: dict[IPv4Network, list[int]] = {}
        self.c_ip: dict[IPv4Network, list[int]] = {}
        self.drops: dict[str, int] = {r.value: 0 for r in DropReason}
        self.delivered = 0
        self.icmp_sent = 0
        self.fragments = 0  # frames sent beyond the first of a fragmented packet (RFC 3032 §3)
        self.hdr_cache: dict[tuple[str, int], tuple[bytes, bytes, bool]] = {}
        # IPv6 (customer links, 6PE): forwarding.tables6; `build` fills in the interfaces
        self.v6 = Tables6(self)

    # ------------------------------------------------------------ construction

    @classmethod
    def build(cls, topo: Topology, router: str, rib: Mapping[IPv4Network, Route],
              lfib: Lfib | None = None, mpls_input: Iterable[str] | None = None) -> RouterTables:
        """Tables of `router` from the topology, its IGP RIB and its LFIB. `mpls_input`: the
        interfaces LDP runs on (default: the topology's, `Topology.ldp_interfaces`)."""
        node = topo.nodes[router]
        if not node.is_router:
            raise ValueError(f"{router} is not a router")
        ifs: dict[str, IfInfo] = {}
        for name, i in node.interfaces.items():
            peer = topo.nodes[i.peer_node]
            pi = peer.interfaces[i.peer_interface]
            ifs[name] = IfInfo(
                name=name, mac=mac_bytes(i.mac), address=i.address, mtu=i.mtu,
                peer_node=i.peer_node, peer_interface=i.peer_interface,
                peer_mac=mac_bytes(pi.mac), peer_address=pi.address.ip,
                peer_is_host=not peer.is_router, vrf=i.vrf,
            )
        t = cls(router, ifs, node.loopback, node.ttl_model,
                mpls_input=topo.ldp_interfaces(router) if mpls_input is None else mpls_input)
        if t.vrfs:  # 6VPE: each VRF's IPv6 ports (before the LFIB fills the VRF FIBs)
            every = interfaces6(topo, router, t, every=True)
            for name, v in t.vrfs.items():
                v.v6 = Tables6(t, interfaces6(topo, router, t, name), vrf=name, nh_ifs=every)
        t.set_rib(rib, recompile=False)
        t.set_lfib(lfib if lfib is not None else Lfib())
        ifs6 = interfaces6(topo, router, t)
        if ifs6:
            t.v6 = Tables6(t, ifs6)
        return t

    def set_mpls_input(self, ifnames: Iterable[str]) -> None:
        """The interfaces labelled frames are accepted on: those LDP runs on (the lab passes
        `Topology.ldp_interfaces`; FRR nodes the interfaces of their ldpd.conf). A labelled
        frame on any other interface is dropped, MPLS_INPUT_DISABLED, before its label is
        looked at (Linux: net.mpls.conf.<if>.input, default 0). `mpls_mac` is `if_mac` for
        those interfaces only: the hot loops compare the destination MAC of a labelled
        frame with it, so the check costs them nothing."""
        names = frozenset(ifnames)
        unknown = names - set(self.interfaces)
        if unknown:
            raise ValueError(f"mpls_input: no interface {', '.join(sorted(unknown))} on {self.name}")
        self.mpls_input = names
        self.mpls_mac = {n: m for n, m in self.if_mac.items() if n in names}

    # ------------------------------------------------------------ compilation

    def _headers(self, out_if: str, nexthop: int) -> tuple[bytes, bytes, bool]:
        key = (out_if, nexthop)
        h = self.hdr_cache.get(key)
        if h is None:
            i = self.interfaces.get(out_if)
            n = self.neigh.get(nexthop)
            if n is None or n[0] != out_if:
                n = self.port_neigh.get((out_if, nexthop))
            if i is None or n is None or n[0] != out_if:
                dst, ok = b"\x00" * 6, False
            else:
                dst, ok = n[1], True
            src = i.mac if i is not None else b"\x00" * 6
            h = (dst + src + ETH_P_MPLS_UC.to_bytes(2, "big"), dst + src + ETH_P_IP.to_bytes(2, "big"), ok)
            self.hdr_cache[key] = h
        return h

    def compile_nhlfe(self, nh: Nhlfe) -> CNhlfe:
        nhip = int(nh.nexthop)
        hm, hi, ok = self._headers(nh.interface, nhip)
        i = self.interfaces.get(nh.interface)
        # Implicit-null (3) is signalled only, never sent (RFC 3032 §2.1): it means "pop".
        labels = tuple(lbl for lbl in nh.out_labels if lbl != IMPLICIT_NULL)
        # The neighbour as a topology node name (LDP may name it by LSR-ID).
        neighbor = i.peer_node if i is not None and ok else nh.neighbor
        return CNhlfe(nh.interface, neighbor, nhip, labels, hm, hi,
                      i.mtu if i is not None else 0, ok and i is not None, nh)

    def connected_nhlfe(self, out_if: str, dst: int) -> CNhlfe:
        """Next hop for a destination on a connected subnet: the station itself."""
        hm, hi, ok = self._headers(out_if, dst)
        n = self.neigh.get(dst) or self.port_neigh.get((out_if, dst))
        i = self.interfaces[out_if]
        return CNhlfe(out_if, n[2] if n else "", dst, (), hm, hi, i.mtu, ok)

    def _compile_ilm(self, e: IlmEntry | VpnIlmEntry) -> None:
        nhs = tuple(self.compile_nhlfe(n) for n in e.nexthops)
        ctr = self.c_ilm.setdefault(e.in_label, [0, 0])
        vrf = e.vrf if isinstance(e, VpnIlmEntry) else None
        self.ilm[e.in_label] = IlmC(e, nhs, ctr, vrf)
        self.fast_ilm.pop(e.in_label, None)
        if not nhs or not all(n.resolved for n in nhs):
            return
        if all(len(n.out_labels) == 1 and n.out_labels[0] >= 16 for n in nhs):
            self.fast_ilm[e.in_label] = (
                FAST_SWAP, tuple((n.out_if, n.hdr_mpls, n.out_labels[0] << 12, n.mtu) for n in nhs),
                ctr)
        elif all(not n.out_labels for n in nhs):
            self.fast_ilm[e.in_label] = (
                FAST_PHP, tuple((n.out_if, n.hdr_ip, 0, n.mtu) for n in nhs), ctr)

    def _action_for(self, prefix: IPv4Network) -> Action | None:
        """The LPM entry of one prefix: connected/local > FTN > RIB route."""
        route = self.rib.get(prefix)
        conn_if = self._conn.get(prefix)
        if (route is not None and route.connected) or (conn_if and not self.rib):
            if conn_if:
                return Action(A_CONNECTED, prefix, out_if=conn_if,
                              counter=self.c_ip.setdefault(prefix, [0, 0]))
            return Action(A_LOCAL, prefix)  # our loopback (or another own prefix)
        fe = self.lfib.ftn.get(prefix)
        if fe is not None and fe.nexthops:
            nhs = tuple(self.compile_nhlfe(n) for n in fe.nexthops)
            return Action(A_NHLFE, prefix, nhs, True, self.c_ftn.setdefault(prefix, [0, 0]))
        if route is not None and route.nexthops:
            nhs = tuple(self.compile_nhlfe(Nhlfe(nh.neighbor, nh.interface, nh.address, (), "push"))
                        for nh in route.nexthops)
            return Action(A_NHLFE, prefix, nhs, False, self.c_ip.setdefault(prefix, [0, 0]))
        return None

    def _put(self, prefix: IPv4Network) -> bool:
        """Recompute one prefix's LPM entry; True if a new prefix length appeared."""
        a = self._action_for(prefix)
        d = self._by_len.get(prefix.prefixlen)
        key = int(prefix.network_address)
        if a is None:
            if d is not None:
                d.pop(key, None)
            return False
        if d is None:
            self._by_len[prefix.prefixlen] = {key: a}
            return True
        d[key] = a
        return False

    def _sort_lpm(self) -> None:
        self._lpm = [(plen, (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF, self._by_len[plen])
                     for plen in sorted(self._by_len, reverse=True)]

    def _rebuild_lpm(self) -> None:
        self._conn = {i.address.network: i.name for i in self.interfaces.values() if not i.vrf}
        self._by_len = {}
        prefixes = set(self.rib) | set(self.lfib.ftn)
        if not self.rib:
            prefixes |= set(self._conn)
        for prefix in prefixes:
            self._put(prefix)
        self._sort_lpm()
        self.lpm_cache = {}
        for name, v in self.vrfs.items():
            v.set_fib(self.lfib.vrfs.get(name, {}))

    def _update_prefixes(self, prefixes: list[IPv4Network]) -> None:
        """Incremental LPM update for a few FTN prefixes (LDP diffs)."""
        grew = False
        for p in prefixes:
            grew |= self._put(p)
        if grew:
            self._sort_lpm()
        self.lpm_cache = {}

    def lookup(self, dst: int) -> Action | None:
        """Longest-prefix match for an IPv4 destination (as int), cached."""
        try:
            return self.lpm_cache[dst]
        except KeyError:
            pass
        a = None
        if DESTINATION_OK[dst >> 24]:  # a martian destination has no route (RFC 1812 §5.3.7)
            for _plen, mask, d in self._lpm:
                a = d.get(dst & mask)
                if a is not None:
                    break
        if len(self.lpm_cache) >= LPM_CACHE_MAX:
            self.lpm_cache.clear()
        self.lpm_cache[dst] = a
        return a

    # ------------------------------------------------------------ updates

    def set_rib(self, rib: Mapping[IPv4Network, Route], recompile: bool = True) -> None:
        """Swap in a new IGP RIB (after a topology change). Only the prefixes whose route
        changed are compiled again (an SPF run while a big lab converges changes a few of
        hundreds); a whole rebuild where the RIB was or becomes empty (connected prefixes
        stand in for it then) or VRFs resolve through it."""
        old, self.rib = self.rib, dict(rib)
        if not recompile:
            return
        if self.vrfs or not old or not self.rib:
            self._rebuild_lpm()
            return
        new = self.rib
        changed = [p for p in old.keys() | new.keys() if old.get(p) != new.get(p)]
        if changed:
            self._update_prefixes(changed)

    def set_lfib(self, lfib: Lfib) -> None:
        """Swap in a whole new LFIB (counters of labels/prefixes that stay are kept)."""
        self.lfib = Lfib(dict(lfib.ftn), dict(lfib.ilm), dict(lfib.vrfs), dict(lfib.vpn_ilm))
        self.ilm.clear()
        self.fast_ilm.clear()
        for e in self.lfib.ilm.values():
            self._compile_ilm(e)
        for v in self.lfib.vpn_ilm.values():
            self._compile_ilm(v)
        self._rebuild_lpm()

    def set_vpn(self, vrfs: Mapping[str, Mapping[IPv4Network, VrfEntry]],
                vpn_ilm: Mapping[int, VpnIlmEntry]) -> None:
        """Swap in a PE's VRF FIBs and VPN labels (`lsr.core.vpnfib.compose`)."""
        for lbl in self.lfib.vpn_ilm:
            if lbl not in vpn_ilm:
                self.ilm.pop(lbl, None)
                self.fast_ilm.pop(lbl, None)
        self.lfib.vrfs = {k: dict(v) for k, v in vrfs.items()}
        self.lfib.vpn_ilm = dict(vpn_ilm)
        for e in self.lfib.vpn_ilm.values():
            self._compile_ilm(e)
        for name, v in self.vrfs.items():
            v.set_fib(self.lfib.vrfs.get(name, {}))

    def apply_diff(self, diff: LfibDiff) -> None:
        """Apply an LDP `LfibDiff`: only the touched ILM entries are recompiled."""
        self.lfib.apply(diff)
        for lbl in diff.ilm_del:
            self.ilm.pop(lbl, None)
            self.fast_ilm.pop(lbl, None)
        for e in diff.ilm_set:
            self._compile_ilm(e)
        if diff.ftn_set or diff.ftn_del:
            self._update_prefixes([*diff.ftn_del, *(e.fec for e in diff.ftn_set)])

    def set_ftn(self, entries: Mapping[IPv4Network, FtnEntry]) -> None:
        self.lfib.ftn = dict(entries)
        self._rebuild_lpm()

    # ------------------------------------------------------------ counters

    def count_drop(self, reason: DropReason) -> None:
        self.drops[reason.value] += 1

    def counters_json(self) -> dict:
        """Per-router counters: per ILM label, FTN and RIB prefix; drops by reason."""

        def pb(c: list[int]) -> dict[str, int]:
            return {"packets": c[0], "bytes": c[1]}

        def pkey(p: IPv4Network) -> tuple[int, int]:
            return (int(p.network_address), p.prefixlen)

        v6 = self.v6.counters_json() if self.v6.ifs or self.v6.fib.routes else {}
        return {
            "router": self.name,
            "ttl_model": self.ttl_model,
            "ilm": {str(k): pb(self.c_ilm[k]) for k in sorted(self.c_ilm)},
            "ftn": {str(p): pb(self.c_ftn[p]) for p in sorted(self.c_ftn, key=pkey)},
            "ip": {str(p): pb(self.c_ip[p]) for p in sorted(self.c_ip, key=pkey)},
            **v6,  # ip6 / ftn6: only on routers with IPv6
            **({"vrf": {f"{v} {p}": pb(c) for (v, p), c in sorted(
                self.c_vrf.items(), key=lambda kv: (kv[0][0], pkey(kv[0][1])))}}
               if self.c_vrf else {}),
            "drops": {k: v for k, v in sorted(self.drops.items())},
            "delivered": self.delivered,
            "forwarded": self.forwarded(),
            "icmp_sent": self.icmp_sent,
        }

    def forwarded(self) -> int:
        """Frames received and forwarded: the packets of every ILM / FTN / RIB counter less
        the extra frames fragmentation made. Every frame decided on is counted once:
        forwarded + delivered + sum(drops) = frames received."""
        n = sum(c[0] for d in (self.c_ilm, self.c_ftn, self.c_ip, self.c_vrf)
                for c in d.values())
        return n + self.v6.forwarded() - self.fragments

    def reset_counters(self) -> None:
        for d in (self.c_ilm, self.c_ftn, self.c_ip, self.c_vrf):
            for c in d.values():
                c[0] = c[1] = 0
        for k in self.drops:
            self.drops[k] = 0
        self.v6.reset_counters()
        self.delivered = self.icmp_sent = self.fragments = 0


def build_all(topo: Topology, ribs: Mapping[str, Mapping[IPv4Network, Route]],
              lfibs: Mapping[str, Lfib], fib6s: Mapping[str, Fib6] | None = None
              ) -> dict[str, RouterTables]:
    """RouterTables for every router of `topo` (with `fib6s`: each one's 6PE routes)."""
    out = {r.name: RouterTables.build(topo, r.name, ribs[r.name], lfibs.get(r.name))
           for r in topo.routers}
    for name, f in (fib6s or {}).items():
        if name in out:
            out[name].v6.set_fib(f)
    return out


# ---- the ring fast path's derived tables (forwarding.ioloop, forwarding.vector)

# forwarding.ioloop.FastPath.label_entry_table() values, one per label with a single next hop:
LE_KIND, LE_OUT_IF, LE_HDR, LE_LABEL, LE_MTU, LE_COUNTER = range(6)
#   kind: FAST_SWAP or FAST_PHP (forwarding.tables); out_if; the 14-byte Ethernet header;
#   the out label's bits as the LE value of a stack entry with TC, S and TTL 0 (swap; 0 for
#   PHP); the link MTU; the ILM counter [packets, bytes].
# forwarding.ioloop.FastPath.ip_entry() values, for a destination with one next hop the fast path serves:
IP_PUSH, IP_OUT_IF, IP_HDR, IP_LABEL, IP_MTU, IP_COUNTER = range(6)
#   push: one label to push (FTN), else plain IP forwarding; out_if; the Ethernet header
#   (0x8847 if push, else 0x0800); the label's bits as the LE value of an entry with S set,
#   TC and TTL 0 (0 if no push); the MTU left for the IPv4 packet; the FTN or RIB counter.
# The loops unpack these tuples into named locals: a NamedTuple would cost ~35 ns a frame
# (Python 3.11 specialises unpacking of exact tuples only: 69 vs 34 ns for six fields).
