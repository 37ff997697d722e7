"""The shortest-path tree of area 0 from the LSDB (RFC 2328 §16.1) with exact ECMP.

Stage 1 runs Dijkstra over router vertices (and transit-network vertices, if any
network-LSA is present), following a link only when the far end links back
(§16.1 step 2b, the bidirectional check). Next hops are sets: a vertex reached
by several equal-cost paths keeps the union of its parents' next hops (§16.1.1).
Stage 2 adds stub networks (§16.1 step 2 for type-3 links). Pure code.

What an LSA body says for SPF (its edges, the vertices it links back to, its stub
prefixes) is worked out once per body and kept on it: bodies are shared, frozen
objects (`ospf.packets` memoises decoding), so every router's every run reuses it.
A `RouteCache` carries one router's routes from run to run: a route whose metric and
next hops did not change is the same `Route` object, and the run says which prefixes
changed (what the RIB's consumers, LDP, look at).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network

from lsr.core.igp import Nexthop, Route
from lsr.core.prefix import Prefix, prefix
from ospf.lsdb import Entry, Lsdb
from ospf.packets import MAX_AGE, LinkType, LsType, NetworkLsaBody, RouterLsaBody

# A first hop out of the root: (our interface name, the neighbor's address, its router ID).
FirstHop = tuple[str, IPv4Address, IPv4Address]
Vertex = tuple[int, IPv4Address]  # (LsType.ROUTER | LsType.NETWORK, vertex ID)
LS_INFINITY = 0xFFFF


_ROUTER, _NETWORK = int(LsType.ROUTER), int(LsType.NETWORK)
_TRANSIT_TYPES = (LinkType.POINT_TO_POINT, LinkType.VIRTUAL)
_NO_ADDR = IPv4Address(0)

# Inside one run vertices are (kind, int(ID)): IPv4Address hashes through hex() on every
# dict and set operation, ints do not; the order of ints is the order of the addresses,
# so the heap pops vertices in the same order either way.
_V = tuple[int, int]


class _Info:
    """One LSA body, as SPF reads it: computed once per body (`_info`)."""

    __slots__ = ("body", "edges", "back", "_stubs")

    def __init__(self, b: RouterLsaBody | NetworkLsaBody) -> None:
        self.body = b
        # (neighbor vertex, cost, link data, neighbor ID) for each transit link
        self.edges: list[tuple[_V, int, IPv4Address, IPv4Address]] = []
        if isinstance(b, RouterLsaBody):
            for ln in b.links:
                if ln.type in _TRANSIT_TYPES:
                    self.edges.append(((_ROUTER, int(ln.link_id)), ln.metric, ln.link_data,
                                       ln.link_id))
                elif ln.type == LinkType.TRANSIT:
                    self.edges.append(((_NETWORK, int(ln.link_id)), ln.metric, ln.link_data,
                                       ln.link_id))
        else:
            for r in b.routers:
                self.edges.append(((_ROUTER, int(r)), 0, _NO_ADDR, r))
        self.back = {w for w, _, _, _ in self.edges}
        self._stubs: list[tuple[int, Prefix, int]] | None = None

    def stubs(self) -> list[tuple[int, Prefix, int]]:
        """(prefix key, prefix, metric) of each stub link, in the LSA's order: made when
        a run first reaches the router (as the stub's prefix was before)."""
        if self._stubs is None:
            out = []
            if isinstance(self.body, RouterLsaBody):
                for ln in self.body.links:
                    if ln.type == LinkType.STUB:
                        net = _network(ln.link_id, ln.link_data)
                        out.append((net.key, net, ln.metric))
            self._stubs = out
        return self._stubs


def _info(b: RouterLsaBody | NetworkLsaBody) -> _Info:
    info = b.__dict__.get("_spf")
    if info is None:
        info = _Info(b)
        object.__setattr__(b, "_spf", info)  # frozen: the cache is not one of its fields
    return info  # type: ignore[no-any-return]


def _usable(e: Entry | None) -> RouterLsaBody | NetworkLsaBody | None:
    if e is None or e.lsa.header.age >= MAX_AGE:
        return None
    b = e.lsa.body
    return b if isinstance(b, RouterLsaBody | NetworkLsaBody) else None


class _Graph:
    """One SPF run's view of the LSDB: each vertex's body info, looked up once per run."""

    def __init__(self, lsdb: Lsdb) -> None:
        self.lsdb = lsdb
        self.addr: dict[int, IPv4Address] = {}
        self._infos: dict[_V, _Info | None] = {}
        self._networks: dict[int, Entry] | None = None

    def vertex(self, v: _V) -> Vertex:
        return (v[0], self.addr[v[1]])

    def info(self, v: _V) -> _Info | None:
        try:
            return self._infos[v]
        except KeyError:
            pass
        kind, vid = v
        if kind == _ROUTER:
            b = _usable(self.lsdb.router_entry(vid))
        else:
            b = _usable(self._network_lsa(vid))
        i = self._infos[v] = None if b is None else _info(b)
        return i

    def body(self, v: _V) -> RouterLsaBody | NetworkLsaBody | None:
        i = self.info(v)
        return None if i is None else i.body

    def _network_lsa(self, vid: int) -> Entry | None:
        """The network-LSA of the transit network whose DR has this address: the first
        in database order (there is normally one)."""
        if self._networks is None:
            self._networks = {}
            if self.lsdb.networks:
                for key, e in self.lsdb.entries():
                    if key.ls_type == LsType.NETWORK:
                        self._networks.setdefault(int(key.ls_id), e)
        return self._networks.get(vid)


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
    src: _V = (_ROUTER, int(root))
    dist: dict[_V, int] = {src: 0}
    hops: dict[_V, frozenset[FirstHop]] = {src: frozenset()}
    done: set[_V] = set()
    heap: list[tuple[int, _V]] = [(0, src)]
    info = g.info
    addr = g.addr
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        d, v = pop(heap)
        if v in done:
            continue
        done.add(v)
        vi = info(v)
        if vi is None:
            continue
        for w, cost, link_data, w_addr in vi.edges:
            if w in done:
                continue
            wi = info(w)
            if wi is None or v not in wi.back:
                continue
            addr.setdefault(w[1], w_addr)
            nd = d + cost
            if v == src:
                h = (frozenset(first_hops(addr[w[1]], link_data)) if w[0] == _ROUTER
                     else frozenset())
                if not h:
                    continue
            else:
                h = hops[v]
            dw = dist.get(w)
            if dw is None or nd < dw:
                dist[w], hops[w] = nd, h
                push(heap, (nd, w))
            elif nd == dw:
                hops[w] = hops[w] | h
    return {v: (dist[v], hops[v]) for v in done}


_NETWORKS: dict[tuple[int, int], Prefix] = {}


def _network(addr: IPv4Address, mask: IPv4Address) -> Prefix:
    """IPv4Network(f"{addr}/{mask}", strict=False), interned, memoised (bounded)."""
    k = (int(addr), int(mask))
    net = _NETWORKS.get(k)
    if net is None:
        net = prefix(IPv4Network(f"{addr}/{mask}", strict=False))
        if len(_NETWORKS) >= 1 << 16:
            _NETWORKS.clear()
        _NETWORKS[k] = net
    return net


class RouteCache:
    """What one router keeps from one SPF run to the next: its routes (the RIB of the
    last run), the next-hop tuples of each first-hop set, and (after a run) what
    changed."""

    def __init__(self) -> None:
        self.routes: dict[IPv4Network, Route] = {}
        self.nexthops: dict[frozenset[FirstHop], tuple[Nexthop, ...]] = {}
        self.changed: list[Prefix] = []  # prefixes added, changed or gone in the last run


def routes(lsdb: Lsdb, root: IPv4Address,
           first_hops: Callable[[IPv4Address, IPv4Address], list[FirstHop]],
           name_of: Mapping[IPv4Address, str],
           cache: RouteCache | None = None) -> dict[IPv4Network, Route]:
    """Stage 2: every stub network reachable through the tree -> Route. Our own stubs are
    connected routes (metric 0, no next hop), as the reference IGP model has them.

    With a `cache` (one per router), unchanged routes are the previous run's objects
    and `cache.changed` lists the prefixes whose route differs from the previous run."""
    g = _Graph(lsdb)
    tree = _spf(g, root, first_hops)
    nets: dict[int, Prefix] = {}
    best: dict[int, tuple[int, frozenset[FirstHop]]] = {}
    own: set[int] = set()
    iroot = int(root)
    for v, (d, h) in tree.items():
        vi = g.info(v)
        if vi is None:
            continue
        b = vi.body
        if v[0] == _NETWORK and isinstance(b, NetworkLsaBody):
            net = _network(g.addr[v[1]], b.mask)
            nets[net.key] = net
            _better(best, net.key, d, h)
            continue
        if not isinstance(b, RouterLsaBody):
            continue
        if v[1] == iroot:
            for k, net, _ in vi.stubs():
                nets[k] = net
                own.add(k)
            continue
        for k, net, metric in vi.stubs():
            nets[k] = net
            if metric < LS_INFINITY:
                _better(best, k, d + metric, h)
    c = cache if cache is not None else RouteCache()
    prev = c.routes
    nexthops = c.nexthops  # stubs share their router's next hops
    changed: list[Prefix] = []
    out: dict[IPv4Network, Route] = {}
    for k in sorted(own.union(k for k, (_, h) in best.items() if h)):
        net = nets[k]
        if k in own:
            d, nhs = 0, ()
        else:
            d, h = best[k]
            nhs = nexthops.get(h)  # type: ignore[assignment]
            if nhs is None:
                nhs = nexthops[h] = tuple(sorted(Nexthop(_name(name_of, rid), ifname, addr)
                                                 for ifname, addr, rid in h))
        r = prev.get(net)
        if r is None or r.metric != d or r.nexthops != nhs:
            r = Route(net, d, nhs)
            changed.append(net)
        out[net] = r
    if len(out) != len(prev) or changed:
        changed.extend(p for p in prev if p not in out)  # type: ignore[misc]
    c.routes = out if changed else prev  # one RIB dict per router, not two equal ones
    c.changed = changed
    return out


def _name(name_of: Mapping[IPv4Address, str], rid: IPv4Address) -> str:
    name = name_of.get(rid)
    return str(rid) if name is None else name


def _better(best: dict[int, tuple[int, frozenset[FirstHop]]], k: int,
            d: int, h: frozenset[FirstHop]) -> None:
    cur = best.get(k)
    if cur is None or d < cur[0]:
        best[k] = (d, h)
    elif d == cur[0]:
        best[k] = (d, cur[1] | h)
