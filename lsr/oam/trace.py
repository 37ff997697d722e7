"""LSP ping and traceroute engines (RFC 8029 §4.3 - §4.6), pure.

The engines build echo requests and read replies; the caller moves the bytes.
`send(ttl, request)` must deliver `request` down the LSP with the top label's
TTL set to `ttl` (the IP TTL stays 1, §4.3) and return the `Reply` (the
decoded echo reply plus who sent it) or None on timeout. In multipath mode
the engine calls `send(ttl, request, dst)`: `dst` is the 127/8 IP destination
that steers the probe onto one ECMP branch (§3.4.1.1, §4.3) - that is how
every branch gets explored, as Cisco's `traceroute mpls multipath` does. For an
IPv6 FEC (its requests are IPv6, `lsr.oam.echo6`) the destinations, the multipath
data of the requests and of the replies are ::ffff:127.0.0.0/104 (§3.4.1.1.1).

`LfibNetwork` is such a `send` over a set of per-router tables (simulator
output, or a lab's `lfib` JSON): it moves the probe label by label through
the FTN/ILM entries and asks `responder.respond` at the router where the TTL
expires or the LSP ends. The lab runtime will supply its own `send` over real
sockets.

Traceroute JSON (`TraceResult.to_json`)::

    {"fec": "10.255.0.4/32", "from": "pe1", "multipath": false,
     "hops": [{"ttl": 1, "path": 0, "router": "p1", "address": "10.0.0.2",
               "return_code": 8, "return_code_name": "label switched at stack depth",
               "return_subcode": 1, "labels": [17], "interface": "eth1",
               "downstream": ["10.0.0.6"], "rtt_ms": 0.4}, ...],
     "paths": [{"path": 0, "result": "ok", "routers": ["p1", "pe2"]}],
     "result": "ok" | "broken",
     "broken_at": null | {"ttl", "path", "router", "return_code", "return_code_name"}}

`labels` are the labels the hop sends downstream (from its DDMAP; 3 =
implicit-null: it pops), `interface` the interface the request came in on,
`return_code` null for a timeout. `expected_router` is the router the
request's DDMAP named as the downstream (the previous hop's, or the
ingress's own), null when it named all routers: for a timeout, the hop that
stayed silent.

A branch on which a hop did not answer is never `ok`, even when a later
request reaches the egress past it (the silent LSR still label-switched):
its result is `timeout`, and `broken_at` names the silent hop.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Any

from lsr.core.fib6 import Fib6
from lsr.core.lfib import VrfEntry
from lsr.core.topology import Topology
from lsr.oam.echo import (
    ALL_ROUTERS,
    FLAG_V,
    LOCALHOST,
    LOCALHOST6,
    Ddmap,
    DecodeError,
    EchoMessage,
    Fec,
    LdpIpv4Fec,
    MessageType,
    Multipath,
    ReplyMode,
    ReturnCode,
    TargetFecStack,
    Timestamp,
    multipath_range,
    ntp_from_unix,
    return_code_name,
)
from lsr.oam.lspwalk import MAX_HOPS, step
from lsr.oam.responder import (
    EcmpSelect,
    RouterTables,
    SixpeTarget,
    Target,
    VpnTarget,
    ingress_ddmaps,
    ingress_nexthops,
    is_ipv6,
    respond,
)

DEFAULT_MAX_TTL = 30
DEFAULT_TIMEOUTS = 3  # consecutive timeouts before a branch is declared broken
DEFAULT_MULTIPATH_ADDRESSES = 32  # 127.0.0.1 .. 127.0.0.32 (IPv6 FECs: ::ffff:127.0.0.1 ..)
MAX_PATHS = 256


@dataclass(frozen=True)
class Reply:
    """What `send` returns: the echo reply and where it came from."""

    message: EchoMessage
    router: str | None = None
    address: IPv4Address | None = None
    interface: str | None = None
    rtt_ms: float | None = None


Sender = Callable[..., "Reply | None"]


def echo_request(
    fec: IPv4Network,
    *,
    sequence: int = 1,
    handle: int = 0,
    ddmap: Ddmap | None = None,
    ts_sent: Timestamp = (0, 0),
    validate: bool = True,
    reply_mode: ReplyMode = ReplyMode.UDP,
    fecs: Sequence[Fec] | None = None,
) -> EchoMessage:
    """An echo request for an LDP IPv4 FEC (§4.3), V flag set by default; `fecs` is
    another Target FEC Stack, one FEC per label (a VPN one: `responder.vpn_fecs`)."""
    tlvs: tuple = (TargetFecStack(tuple(fecs) if fecs else (LdpIpv4Fec(fec),)),)
    if ddmap is not None:
        tlvs += (ddmap,)
    return EchoMessage(
        msg_type=MessageType.ECHO_REQUEST,
        reply_mode=reply_mode,
        sender_handle=handle,
        sequence=sequence,
        ts_sent=ts_sent,
        flags=FLAG_V if validate else 0,
        tlvs=tlvs,
    )


@dataclass(frozen=True)
class Hop:
    ttl: int
    path: int
    router: str | None
    address: IPv4Address | None
    return_code: int | None  # None: no reply (timeout)
    return_subcode: int
    labels: tuple[int, ...]
    interface: str | None
    downstream: tuple[IPv4Address, ...]
    rtt_ms: float | None
    expected: str | None = None  # the router the request's DDMAP named (None: all routers)

    @property
    def ok(self) -> bool:
        return self.return_code in (ReturnCode.EGRESS, ReturnCode.LABEL_SWITCHED,
                                    ReturnCode.LABEL_SWITCHED_FEC_CHANGE)

    def to_json(self) -> dict[str, Any]:
        return {
            "ttl": self.ttl,
            "path": self.path,
            "router": self.router,
            "address": None if self.address is None else str(self.address),
            "return_code": None if self.return_code is None else int(self.return_code),
            "return_code_name": "timeout" if self.return_code is None else return_code_name(self.return_code),
            "return_subcode": self.return_subcode,
            "labels": list(self.labels),
            "interface": self.interface,
            "downstream": [str(a) for a in self.downstream],
            "rtt_ms": self.rtt_ms,
            "expected_router": self.expected,
        }


@dataclass
class TraceResult:
    fec: Target
    source: str
    multipath: bool
    hops: list[Hop] = field(default_factory=list)
    paths: list[dict[str, Any]] = field(default_factory=list)

    @property
    def result(self) -> str:
        return "ok" if self.paths and all(p["result"] == "ok" for p in self.paths) else "broken"

    @property
    def broken_at(self) -> Hop | None:
        for p in self.paths:
            if p["result"] != "ok":
                hops = [h for h in self.hops if h.path == p["path"]]
                bad = next((h for h in hops if not h.ok), None)
                return bad or (hops[-1] if hops else None)
        return None

    def to_json(self) -> dict[str, Any]:
        b = self.broken_at
        return {
            "fec": str(self.fec),
            "from": self.source,
            "multipath": self.multipath,
            "hops": [h.to_json() for h in self.hops],
            "paths": self.paths,
            "result": self.result,
            "broken_at": None if b is None else {
                # a silent hop is named by the DDMAP that pointed at it
                "ttl": b.ttl, "path": b.path, "router": b.router or b.expected,
                "return_code": None if b.return_code is None else int(b.return_code),
                "return_code_name": "timeout" if b.return_code is None else return_code_name(b.return_code),
            },
        }


def _hop(ttl: int, path: int, reply: Reply | None, ddmaps: Sequence[Ddmap],
         expected: str | None = None) -> Hop:
    if reply is None:
        return Hop(ttl, path, None, None, None, 0, (), None, (), None, expected)
    m = reply.message
    labels = ddmaps[0].label_values if ddmaps else ()
    downstream = tuple(d.downstream_address for d in ddmaps if isinstance(d.downstream_address, IPv4Address))
    return Hop(ttl, path, reply.router, reply.address, m.return_code, m.return_subcode,
               labels, reply.interface, downstream, reply.rtt_ms, expected)


def _named(ddmap: Ddmap, name_of: Callable[[IPv4Address], str | None] | None) -> str | None:
    """The router a request's DDMAP names as the one to answer (None: all routers)."""
    a = ddmap.downstream_address
    if name_of is None or not isinstance(a, IPv4Address) or a in (ALL_ROUTERS, LOCALHOST):
        return None
    return name_of(a)


def home(fec: Target) -> IPv4Address | IPv6Address:
    """The destination of `fec`'s echo requests when one will do (§4.3): 127.0.0.1, or
    ::ffff:127.0.0.1 for an IPv6 FEC's (IPv6) requests."""
    return LOCALHOST6 if is_ipv6(fec) else LOCALHOST


def multipath_destinations(fec: Target,
                           count: int) -> tuple[IPv4Address, ...] | tuple[IPv6Address, ...]:
    """`count` destinations for multipath exploration of `fec` (§3.4.1.1.1): 127.0.0.1 up,
    or ::ffff:127.0.0.1 up for an IPv6 FEC."""
    return multipath_range(count, home(fec))


def _addresses(d: Ddmap, v6: bool) -> tuple[IPv4Address, ...] | tuple[IPv6Address, ...]:
    """The destinations a reply's DDMAP assigns to its next hop, in the request's family;
    none when it has no multipath data or data that does not fit the family."""
    try:
        return d.multipath.addresses(v6) if d.multipath else ()
    except DecodeError:
        return ()


@dataclass
class _Branch:
    path: int
    ttl: int
    ddmap: Ddmap
    dsts: tuple[IPv4Address, ...] | tuple[IPv6Address, ...]
    routers: list[str]
    timeouts: int = 0
    silent: bool = False  # a hop of this branch did not answer


def traceroute(
    send: Sender,
    fec: Target,
    source: str,
    *,
    fecs: Sequence[Fec] | None = None,
    multipath: bool = False,
    first_ddmaps: Sequence[Ddmap] = (),
    destinations: int = DEFAULT_MULTIPATH_ADDRESSES,
    max_ttl: int = DEFAULT_MAX_TTL,
    timeouts: int = DEFAULT_TIMEOUTS,
    handle: int = 0,
    clock: Callable[[], float] | None = None,
    name_of: Callable[[IPv4Address], str | None] | None = None,
) -> TraceResult:
    """LSP traceroute (§4.3): label TTL 1, 2, ... until the egress answers 3.

    Each request carries the DDMAP the previous hop returned, so the next hop
    validates interface and label (§4.4, return code 5 on mismatch).
    `first_ddmaps` are the ingress's own DDMAPs (`responder.ingress_ddmaps`);
    without them the first request names ALL-ROUTERS. With `multipath`, the
    first DDMAPs carry the ingress's split of `destinations` 127/8 addresses
    (::ffff:127/104 for an IPv6 FEC) and every branch the replies announce is
    followed. `name_of` names the router owning a DDMAP's downstream address (the
    hop expected to answer). `fecs`:
    the Target FEC Stack when it is not `fec`'s LDP FEC (a VPN route's: `vpn_fecs`).
    """
    res = TraceResult(fec, source, multipath)
    seq = itertools.count(1)
    v6 = is_ipv6(fec)
    dsts = multipath_destinations(fec, destinations) if multipath else (home(fec),)
    if first_ddmaps:
        starts = [(d, _addresses(d, v6) if d.multipath else dsts) for d in first_ddmaps]
        if not multipath:
            starts = starts[:1]
    else:
        starts = [(Ddmap(), dsts)]
    work = [_Branch(i, 1, d, tuple(addrs) or dsts, []) for i, (d, addrs) in enumerate(starts)]
    work.reverse()  # a stack: explore branch 0 first, depth first
    path_ids = itertools.count(len(starts))
    while work:
        br = work.pop()
        dst = br.dsts[0]
        if multipath:
            mp = Multipath.bitmask(br.dsts)
        elif v6:  # one 16-octet address as type 2 is malformed to Wireshark 4.0 (responder)
            mp = Multipath.bitmask([dst])
        else:
            mp = Multipath.ip_addresses([dst])
        ts = ntp_from_unix(clock()) if clock else (0, 0)
        req = echo_request(_prefix(fec), sequence=next(seq), handle=handle,
                           ddmap=replace(br.ddmap, multipath=mp), ts_sent=ts, fecs=fecs)
        reply = send(br.ttl, req, dst) if multipath else send(br.ttl, req)
        if reply is not None and (reply.message.sender_handle != handle
                                  or reply.message.sequence != req.sequence):
            reply = None  # not ours (§4.6: match handle and sequence)
        maps = reply.message.ddmaps if reply is not None else ()
        hop = _hop(br.ttl, br.path, reply, maps, _named(br.ddmap, name_of))
        res.hops.append(hop)
        # A router answering twice on one branch (or the ingress answering) is a
        # loop, as LDP's path vector would call it (RFC 5036 §2.8), even when the
        # packet hairpins back out and reaches the egress.
        looped = bool(hop.router) and hop.router in (res.source, *br.routers)
        if hop.router:
            br.routers.append(hop.router)

        def finish(result: str, br: _Branch = br) -> None:
            res.paths.append({"path": br.path, "result": result, "routers": list(br.routers)})

        if reply is None:
            br.timeouts += 1
            br.silent = True
            if br.timeouts >= timeouts or br.ttl >= max_ttl:
                finish("timeout")
            else:
                work.append(replace(br, ttl=br.ttl + 1, ddmap=Ddmap()))
            continue
        code = reply.message.return_code
        if code == ReturnCode.EGRESS:
            # past a hop that did not answer: the path is not verified (never "ok")
            finish("timeout" if br.silent else "ok")
            continue
        if code not in (ReturnCode.LABEL_SWITCHED, ReturnCode.LABEL_SWITCHED_FEC_CHANGE):
            finish("broken")
            continue
        if looped:
            finish("loop")
            continue
        if br.ttl >= max_ttl:
            finish("max-ttl")
            continue
        nexts = list(maps) or [Ddmap()]
        if not multipath:
            nexts = nexts[:1]
        children = []
        for i, d in enumerate(nexts):
            addrs = tuple(a for a in _addresses(d, v6) if a in br.dsts) or \
                (br.dsts if i == 0 else ())
            if not addrs:
                continue
            pid = br.path if not children else next(path_ids)
            if len(res.paths) + len(work) + len(children) >= MAX_PATHS:
                break
            children.append(_Branch(pid, br.ttl + 1, replace(d, multipath=None), addrs,
                                    list(br.routers), silent=br.silent))
        work.extend(reversed(children))
    res.paths.sort(key=lambda p: p["path"])
    res.hops.sort(key=lambda h: (h.path, h.ttl))
    return res


@dataclass
class PingResult:
    fec: Target
    source: str
    replies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def result(self) -> str:
        return "ok" if self.replies and all(r["return_code"] == ReturnCode.EGRESS for r in self.replies) else "broken"

    def to_json(self) -> dict[str, Any]:
        return {"fec": str(self.fec), "from": self.source, "replies": self.replies, "result": self.result}


def ping(
    send: Sender,
    fec: Target,
    source: str,
    *,
    count: int = 1,
    handle: int = 0,
    ttl: int = 255,
    clock: Callable[[], float] | None = None,
    fecs: Sequence[Fec] | None = None,
) -> PingResult:
    """LSP ping (§4.3): `count` requests with label TTL 255; ok when every reply is 3.
    `fecs` as for `traceroute`."""
    res = PingResult(fec, source)
    for seq in range(1, count + 1):
        ts = ntp_from_unix(clock()) if clock else (0, 0)
        req = echo_request(_prefix(fec), sequence=seq, handle=handle, ts_sent=ts, fecs=fecs)
        reply = send(ttl, req)
        if reply is not None and (reply.message.sender_handle != handle or reply.message.sequence != seq):
            reply = None
        code = None if reply is None else int(reply.message.return_code)
        res.replies.append({
            "sequence": seq,
            "router": None if reply is None else reply.router,
            "return_code": code,
            "return_code_name": "timeout" if code is None else return_code_name(code),
            "return_subcode": 0 if reply is None else reply.message.return_subcode,
            "rtt_ms": None if reply is None else reply.rtt_ms,
        })
    return res


def _prefix(fec: Target) -> IPv4Network:
    """The LDP FEC of an echo request without a Target FEC Stack of its own (the VPN and
    6PE ones always come with theirs: only the type matters here)."""
    if isinstance(fec, (VpnTarget, SixpeTarget)):
        p = fec.prefix
        return p if isinstance(p, IPv4Network) else IPv4Network("0.0.0.0/0")
    return fec


# ---------------------------------------------------------------- a `send` over LFIBs


class LfibNetwork:
    """Echo requests carried through per-router FTN/ILM tables, answered by
    `responder.respond`: the simulator's `send` (no sockets, no clock).

    `links` maps (router, interface) to (peer router, peer interface).
    Label TTLs are decremented at each LSR; the router where the top label's
    TTL expires, or where the packet arrives unlabelled (PHP), with
    explicit-null only or with a VPN label it allocated on top (the VPN label
    ends the LSP: popped, the 127/8 packet is its control plane's), answers.
    A label with no ILM entry at a router the TTL does not expire at is
    dropped: the probe times out (None). A VPN FEC (`VpnTarget`) starts with
    the labels of the ingress's VRF route, a 6PE FEC (`SixpeTarget`) with its 6PE
    route's, every label with the probe's TTL; the egress of a 6PE route answers
    where its 6PE label (or IPv6 Explicit Null, 2) is on top. Requests for IPv6 FECs
    are hashed as IPv6 packets (`ecmp6`).
    """

    def __init__(self, tables: Mapping[str, RouterTables], links: Mapping[tuple[str, str], tuple[str, str]],
                 ecmp: Callable[[str, IPv4Address], EcmpSelect] | None = None,
                 ecmp6: Callable[[str, IPv4Address], EcmpSelect] | None = None) -> None:
        self.tables = dict(tables)
        self.links = dict(links)
        # (router, the request's IP source) -> that router's ECMP choice for the probes
        # (`responder.dataplane_ecmp`; `ecmp6` for IPv6 requests); None: each table's `ecmp`
        self.ecmp = ecmp
        self.ecmp6 = ecmp6 or ecmp
        self._for_source: dict[tuple[str, bool], dict[str, RouterTables]] = {}

    @classmethod
    def from_topology(cls, topo: Topology, tables: Mapping[str, RouterTables],
                      ecmp: Callable[[str, IPv4Address], EcmpSelect] | None = None,
                      ecmp6: Callable[[str, IPv4Address], EcmpSelect] | None = None) -> LfibNetwork:
        links = {}
        for n in topo.routers:
            for i in n.interfaces.values():
                links[(n.name, i.name)] = (i.peer_node, i.peer_interface)
        return cls(tables, links, ecmp, ecmp6)

    def tables_for(self, ingress: str, v6: bool = False) -> Mapping[str, RouterTables]:
        """Every router's tables as they hash the echo requests `ingress` sends (their IP
        source is its LSR ID; IPv4-mapped in the IPv6 ones, `v6`)."""
        ecmp = self.ecmp6 if v6 else self.ecmp
        if ecmp is None:
            return self.tables
        got = self._for_source.get((ingress, v6))
        if got is None:
            src = self.tables[ingress].lsr_id
            got = self._for_source[(ingress, v6)] = {
                n: replace(t, ecmp=ecmp(n, src)) for n, t in self.tables.items()}
        return got

    def vrf_routes(self, ingress: str, vrf: str) -> Mapping[IPv4Network, VrfEntry]:
        """`ingress`'s FIB of VRF `vrf` (empty when it has no such VRF)."""
        return self.tables[ingress].lfib.vrfs.get(vrf, {})

    def fib6(self, ingress: str) -> Fib6 | None:
        """`ingress`'s 6PE routes (None when it has none)."""
        return self.tables[ingress].fib6

    def has_ftn(self, ingress: str, fec: Target) -> bool:
        t = self.tables[ingress]
        return bool(ingress_nexthops(t.lfib, fec, t.fib6))

    def sender(self, ingress: str, fec: Target) -> Sender:
        def send(ttl: int, request: EchoMessage,
                 dst: IPv4Address | IPv6Address | None = None) -> Reply | None:
            return self.probe(ingress, fec, ttl, request, dst)
        return send

    def first_ddmaps(self, ingress: str, fec: Target, multipath: bool,
                     destinations: int = DEFAULT_MULTIPATH_ADDRESSES) -> tuple[Ddmap, ...]:
        dsts = multipath_destinations(fec, destinations) if multipath else (home(fec),)
        return ingress_ddmaps(self.tables_for(ingress, is_ipv6(fec))[ingress], fec, dsts)

    def probe(self, ingress: str, fec: Target, ttl: int, request: EchoMessage,
              dst: IPv4Address | IPv6Address | None = None) -> Reply | None:
        """`request` down `fec`'s LSP to `dst` (default `home(fec)`), answered where it
        ends or its label TTL expires."""
        v6 = is_ipv6(fec)
        dst = home(fec) if dst is None else dst
        tables = self.tables_for(ingress, v6)
        t = tables[ingress]
        nexthops = ingress_nexthops(t.lfib, fec, t.fib6)
        if not nexthops:
            return None
        # One ECMP branch of the walk (`lspwalk.step` does the label operation);
        # each stack entry carries its TTL, which decides where the probe is answered.
        hop = step(ingress, None, t.ecmp(dst, nexthops))
        stack = [[lbl, ttl] for lbl in hop.stack]
        router, in_if = self.links.get((ingress, hop.interface), (None, None))
        for _ in range(MAX_HOPS):
            if router is None or router not in tables:
                return None  # left the MPLS domain
            t = tables[router]
            top = stack[0] if stack else None
            if top is None or top[0] in (0, 2) or top[1] <= 1 or (
                    (top[0] in t.lfib.vpn_ilm or top[0] in t.sixpe_labels)
                    and top[0] not in t.lfib.ilm):
                reply = respond(t, request, [e[0] for e in stack], in_if,
                                label_ttls=[e[1] for e in stack], v6=v6)
                if reply is None:
                    return None
                addr = t.ports[in_if].address.ip if in_if in t.ports else t.lsr_id
                return Reply(reply, router, addr, in_if, None)
            ilm = t.lfib.ilm.get(top[0])
            if ilm is None or not ilm.nexthops:
                return None  # dropped: no label entry
            hop = step(router, tuple(e[0] for e in stack), t.ecmp(dst, ilm.nexthops))
            stack = [[lbl, top[1] - 1] for lbl in hop.out_labels] + stack[1:]
            router, in_if = self.links.get((router, hop.interface), (None, None))
        return None
