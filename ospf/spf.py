"""The shortest-path tree of area 0 from the LSDB (RFC 2328 §16.1) with exact ECMP.

Stage 1 runs Dijkstra over router vertices (and transit-network vertices, if any
network-LSA is present), following a link only when the far end links back
(§16.1 step 2b, the bidirectional check). Next hops are sets: a vertex reached
by several equal-cost paths keeps the union of its parents' next hops (§16.1.1).
Stage 2 adds stub networks (§16.1 step 2 for type-3 links). Pure code.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network

from lsr.core.igp import Nexthop, Route
from ospf.lsdb import Lsdb
from ospf.packets import MAX_AGE, LinkType, LsaKey, LsType, NetworkLsaBody, RouterLsaBody

# A first hop out of the root: (our interface name, the neighbor's address, its router ID).
FirstHop = tuple[str, IPv4Address, IPv4Address]
Vertex = tuple[int, IPv4Address]  # (LsType.ROUTER | LsType.NETWORK, vertex ID)
LS_INFINITY = 0xFFFF


def _body(lsdb: Lsdb, v: Vertex) -> RouterLsaBody | NetworkLsaBody | None:
    kind, vid = v
    if kind == LsType.ROUTER:
        e = lsdb.get(LsaKey(LsType.ROUTER, vid, vid))
    else:
        e = _network_lsa(lsdb, vid)
    if e is None or e.lsa.header.age >= MAX_AGE:
        return None
    b = e.lsa.body
    return b if isinstance(b, RouterLsaBody | NetworkLsaBody) else None


def _network_lsa(lsdb: Lsdb, dr_addr: IPv4Address):  # type: ignore[no-untyped-def]
    for key, e in lsdb.entries():
        if key.ls_type == LsType.NETWORK and key.ls_id == dr_addr:
            return e
    return None


def _edges(lsdb: Lsdb, v: Vertex) -> list[tuple[Vertex, int, IPv4Address]]:
    """(neighbor vertex, cost, link data) for each transit link of `v`."""
    return _edges_of(_body(lsdb, v))


def _edges_of(b: RouterLsaBody | NetworkLsaBody | None) -> list[tuple[Vertex, int, IPv4Address]]:
    out: list[tuple[Vertex, int, IPv4Address]] = []
    if isinstance(b, RouterLsaBody):
        for ln in b.links:
            if ln.type in (LinkType.POINT_TO_POINT, LinkType.VIRTUAL):
                out.append(((LsType.ROUTER, ln.link_id), ln.metric, ln.link_data))
            elif ln.type == LinkType.TRANSIT:
                out.append(((LsType.NETWORK, ln.link_id), ln.metric, ln.link_data))
    elif isinstance(b, NetworkLsaBody):
        for r in b.routers:
            out.append(((LsType.ROUTER, r), 0, IPv4Address(0)))
    return out


# Inside one run vertices are (kind, int(ID)): IPv4Address hashes through hex() on every
# dict and set operation, ints do not; the order of ints is the order of the addresses,
# so the heap pops vertices in the same order either way.
_V = tuple[int, int]


class _Graph:
    """One SPF run's view of the LSDB: each vertex's body, edges and the vertices it links
    back to, computed once per run instead of once per edge that reaches it."""

    def __init__(self, lsdb: Lsdb) -> None:
        self.lsdb = lsdb
        self.addr: dict[int, IPv4Address] = {}
        self._bodies: dict[_V, RouterLsaBody | NetworkLsaBody | None] = {}
        self._edges: dict[_V, list[tuple[_V, int, IPv4Address]]] = {}
        self._back: dict[_V, set[_V]] = {}

    def vertex(self, v: _V) -> Vertex:
        return (v[0], self.addr[v[1]])

    def body(self, v: _V) -> RouterLsaBody | NetworkLsaBody | None:
        try:
            return self._bodies[v]
        except KeyError:
            b = self._bodies[v] = _body(self.lsdb, self.vertex(v))
            return b

    def edges(self, v: _V) -> list[tuple[_V, int, IPv4Address]]:
        e = self._edges.get(v)
        if e is None:
            e = []
            for (kind, w), cost, link_data in _edges_of(self.body(v)):
                wi = int(w)
                self.addr.setdefault(wi, w)
                e.append(((kind, wi), cost, link_data))
            self._edges[v] = e
        return e

    def links_back(self, w: _V, v: _V) -> bool:
        back = self._back.get(w)
        if back is None:
            back = self._back[w] = {x for x, _, _ in self.edges(w)}
        return v in back


def spf(lsdb: Lsdb, root: IPv4Address,
        first_hops: Callable[[IPv4Address, IPv4Address], list[FirstHop]]
        ) -> dict[Vertex, tuple[int, frozenset[FirstHop]]]:
    """Dijkstra from `root`. `first_hops(nbr_id, our_link_data)` says which interfaces and
    neighbor addresses reach a directly connected router over the link whose Link Data
    in our router-LSA is `our_link_data` (empty if no such Full neighbor)."""
    g = _Graph(lsdb)
    return {g.vertex(v): dh for v, dh in _spf(g, root, first_hops).items()}


def _spf(g: _Graph, root: IPv4Address,
         first_hops: Callable[[IPv4Address, IPv4Address], list[FirstHop]]
         ) -> dict[_V, tuple[int, frozenset[FirstHop]]]:
    g.addr[int(root)] = root
    src: _V = (LsType.ROUTER, int(root))
    dist: dict[_V, int] = {src: 0}
    hops: dict[_V, frozenset[FirstHop]] = {src: frozenset()}
    done: set[_V] = set()
    heap: list[tuple[int, _V]] = [(0, src)]
    while heap:
        d, v = heapq.heappop(heap)
        if v in done:
            continue
        done.add(v)
        for w, cost, link_data in g.edges(v):
            if w in done:
                continue
            if g.body(w) is None or not g.links_back(w, v):
                continue
            nd = d + cost
            if v == src:
                h = (frozenset(first_hops(g.addr[w[1]], link_data)) if w[0] == LsType.ROUTER
                     else frozenset())
                if not h:
                    continue
            else:
                h = hops[v]
            dw = dist.get(w)
            if dw is None or nd < dw:
                dist[w], hops[w] = nd, h
                heapq.heappush(heap, (nd, w))
            elif nd == dw:
                hops[w] = hops[w] | h
    return {v: (dist[v], hops[v]) for v in done}


# A prefix inside one run: (network address, prefix length) as ints, cheap to hash, and
# sorting them is sorting the IPv4Networks by (address, length).
_NetKey = tuple[int, int]
_NETWORKS: dict[tuple[int, int], tuple[_NetKey, IPv4Network]] = {}


def _network(addr: IPv4Address, mask: IPv4Address) -> tuple[_NetKey, IPv4Network]:
    """IPv4Network(f"{addr}/{mask}", strict=False) and its key, memoised (bounded): a stub's
    prefix is rebuilt at every SPF run for every router that advertises it."""
    k = (int(addr), int(mask))
    hit = _NETWORKS.get(k)
    if hit is None:
        net = IPv4Network(f"{addr}/{mask}", strict=False)
        hit = ((int(net.network_address), net.prefixlen), net)
        if len(_NETWORKS) >= 1 << 16:
            _NETWORKS.clear()
        _NETWORKS[k] = hit
    return hit


def routes(lsdb: Lsdb, root: IPv4Address,
           first_hops: Callable[[IPv4Address, IPv4Address], list[FirstHop]],
           name_of: Mapping[IPv4Address, str]) -> dict[IPv4Network, Route]:
    """Stage 2: every stub network reachable through the tree -> Route. Our own stubs are
    connected routes (metric 0, no next hop), as the reference IGP model has them."""
    g = _Graph(lsdb)
    tree = _spf(g, root, first_hops)
    nets: dict[_NetKey, IPv4Network] = {}
    best: dict[_NetKey, tuple[int, frozenset[FirstHop]]] = {}
    own: set[_NetKey] = set()
    iroot = int(root)
    for v, (d, h) in tree.items():
        b = g.body(v)
        if v[0] == LsType.NETWORK and isinstance(b, NetworkLsaBody):
            k, net = _network(g.addr[v[1]], b.mask)
            nets[k] = net
            _better(best, k, d, h)
            continue
        if not isinstance(b, RouterLsaBody):
            continue
        for ln in b.links:
            if ln.type != LinkType.STUB:
                continue
            k, net = _network(ln.link_id, ln.link_data)
            nets[k] = net
            if v[1] == iroot:
                own.add(k)
            elif ln.metric < LS_INFINITY:
                _better(best, k, d + ln.metric, h)
    nexthops: dict[frozenset[FirstHop], tuple[Nexthop, ...]] = {}  # stubs share their router's
    out: dict[IPv4Network, Route] = {}
    for k in sorted(own.union(k for k, (_, h) in best.items() if h)):
        net = nets[k]
        if k in own:
            out[net] = Route(net, 0, ())
            continue
        d, h = best[k]
        nhs = nexthops.get(h)
        if nhs is None:
            nhs = nexthops[h] = tuple(sorted(Nexthop(_name(name_of, rid), ifname, addr)
                                             for ifname, addr, rid in h))
        out[net] = Route(net, d, nhs)
    return out


def _name(name_of: Mapping[IPv4Address, str], rid: IPv4Address) -> str:
    name = name_of.get(rid)
    return str(rid) if name is None else name


def _better(best: dict[_NetKey, tuple[int, frozenset[FirstHop]]], k: _NetKey,
            d: int, h: frozenset[FirstHop]) -> None:
    cur = best.get(k)
    if cur is None or d < cur[0]:
        best[k] = (d, h)
    elif d == cur[0]:
        best[k] = (d, cur[1] | h)
