"""What an LSR answers to an MPLS echo request (RFC 8029 §4.4), as a pure function.

The caller (simulator or lab node) hands over the router's tables, the label
stack the request arrived with (top first; empty when the previous hop popped
with PHP) and the interface it arrived on; `respond` returns the echo reply
(or None for reply mode 1 "do not reply"). No sockets, no clock: the receive
timestamp is a parameter.

Simplified from the §4.4 pseudo-code to what LDP LSPs need:

* malformed request -> 1; unknown mandatory TLV or sub-TLV -> 2 with Errored TLVs;
* request DDMAP names another interface, or a top label other than the one
  received -> 5 "downstream mapping mismatch";
* each received label, top down (stack depth d = 1, 2, ...):
  reserved explicit-null / implicit-null -> popped (the LSP of the FEC at this
  depth ends here), next label;
  a VPN label this PE allocated (RFC 4364 §4.3.2; the bottom of the stack) ->
  the VPN IPv4 FEC (§3.2.5) at this depth is validated: no VRF with its route
  distinguisher, or no route of that VRF's own for its prefix -> 4 "no mapping";
  the label is another VRF's (or, per-prefix, another prefix's) -> 10 "not the
  given label"; else 3 "egress" at the FEC's depth;
  no ILM entry -> 11 "no label entry" at d;
  V flag set and the FEC at this depth is not bound to that label -> 10, or 4
  when this router has no binding for the FEC at all;
  ILM entry without next hop with labels left below ("pop and continue
  processing") -> next label;
  otherwise -> 8 "label switched" at d with one DDMAP per ECMP next hop (a
  penultimate hop popping the LDP label above a VPN label switches too);
* no label left (the packet reached us as IP after PHP, or we popped the last
  label): egress for the FEC -> 3 at the FEC's depth, else 4.

The DDMAPs in a reply carry the label stack the packet leaves with (§3.4: the
outgoing labels, implicit-null 3 when the next hop is the egress and we pop,
then the labels under the one switched, e.g. the VPN label), the downstream
router's interface address and, when the request asked with multipath data,
the subset of the request's 127/8 destinations that this router's ECMP hash
sends to that next hop (§3.4.1.1, §4.4): that is how traceroute explores every
branch. An IPv6 request's destinations are ::ffff:127.0.0.0/104 (§3.4.1.1.1): its
multipath data is read as IPv6 (`v6`: the family of the request's IP header, which
the sub-TLV does not name) and answered in IPv6, bit-masked.

An ingress names a VPN FEC as `VpnTarget` (its VRF and a prefix): the VRF's route
gives the labels (transport, then VPN) and the Target FEC Stack (`vpn_fecs`: the
LDP FEC of the egress PE's loopback over the VPN IPv4 FEC, one per label, §3.2; the
VPN IPv6 FEC, §3.2.6, for an IPv6 route of the VRF: 6VPE, RFC 4659).

A 6PE FEC (RFC 4798) is a `SixpeTarget` (an IPv6 prefix of the ingress's `Fib6`): the
route's labels [LDP label to the egress PE, its 6PE label or IPv6 Explicit Null] and the
Target FEC Stack `sixpe_fecs` (the egress's LDP FEC over the BGP labeled IPv6 FEC,
§3.2.14). The egress pops the bottom label and validates (`_sixpe_egress`): 3 only for
one of its own IPv6 prefixes with the label it bound to it (`RouterTables.sixpe_bound`),
4 for a prefix it does not originate, 10 for another label. P routers check the LDP FEC
at depth 1, as for a VPN FEC, and answer 8; they never look at the BGP FEC below.
Requests for IPv6 FECs are IPv6 packets (`lsr.oam.echo6`), hashed by the dataplane's
IPv6 flow hash (`ecmp6_for`).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Network

from forwarding.ip6 import flow_hash6
from forwarding.plane import flow_hash
from forwarding.tables import router_seed
from lsr.core.fib6 import Fib6, Route6
from lsr.core.labels import IMPLICIT_NULL, IPV6_EXPLICIT_NULL
from lsr.core.labels import IPV4_EXPLICIT_NULL as EXPLICIT_NULL
from lsr.core.lfib import IlmEntry, Lfib, Nhlfe, VpnIlmEntry, VrfEntry
from lsr.core.topology import Topology
from lsr.oam.echo import (
    ALL_ROUTERS,
    DS_FLAG_I,
    HEADER_LEN,
    LOCALHOST,
    UDP_PORT,
    BgpIpv6Fec,
    Ddmap,
    DecodeError,
    DsLabel,
    EchoMessage,
    ErroredTlvs,
    Fec,
    InterfaceLabelStack,
    LabelEntry,
    LabelProtocol,
    LdpIpv4Fec,
    MessageType,
    Multipath,
    MultipathType,
    Pad,
    PadAction,
    ReplyMode,
    ReturnCode,
    TargetFecStack,
    Timestamp,
    VpnIpv4Fec,
    VpnIpv6Fec,
    rd_octets,
    return_code_for,
)
from lsr.oam.echo6 import build_udp_ipv6, mapped

# An ECMP hash: destination address (the request's family) + candidate next hops -> the one used.
EcmpSelect = Callable[[IPv4Address | IPv6Address, Sequence[Nhlfe]], Nhlfe]


def default_ecmp_select(dst: IPv4Address | IPv6Address, nexthops: Sequence[Nhlfe]) -> Nhlfe:
    """Deterministic per-destination choice among sorted next hops (CRC32 of the address).

    The same at every router (so polarised: for tests of the engines). The simulator
    and the lab pass the dataplane's own hash (`ecmp_for`) so traceroute predicts what
    the packets really do.
    """
    ordered = sorted(nexthops)
    return ordered[zlib.crc32(dst.packed) % len(ordered)]


def ecmp_for(seed: int, src: IPv4Address, sport: int, dport: int = UDP_PORT) -> EcmpSelect:
    """The forwarding plane's ECMP choice (`forwarding.plane.flow_hash` with the router's
    `seed`) for an echo request UDP src:sport -> dst:dport (the 127/8 `dst` varies).

    The dataplane picks `nhs[flow_hash(ip) % len(nhs)]` (labelled packets hash the
    IPv4 header under the stack), with next hops in LFIB order.
    """
    def select(dst: IPv4Address, nexthops: Sequence[Nhlfe]) -> Nhlfe:
        if len(nexthops) == 1:
            return nexthops[0]
        hdr = bytes((0x45,)) + bytes(8) + bytes((17,)) + bytes(2) + src.packed + dst.packed
        key = hdr + struct.pack("!HH", sport, dport)
        return nexthops[flow_hash(key, 0, seed) % len(nexthops)]
    return select


def ecmp6_for(seed: int, src: IPv6Address, sport: int, dport: int = UDP_PORT) -> EcmpSelect:
    """As `ecmp_for` for an IPv6 echo request (`lsr.oam.echo6`) to `dst` in
    ::ffff:127.0.0.0/104 (an IPv4 `dst` is taken as ::ffff:`dst`): the dataplane hashes
    the IPv6 packet under the stack (`forwarding.ip6.flow_hash6`: addresses, flow label
    0, UDP and its ports past the Hop-by-Hop header)."""
    def select(dst: IPv4Address | IPv6Address, nexthops: Sequence[Nhlfe]) -> Nhlfe:
        if len(nexthops) == 1:
            return nexthops[0]
        d6 = dst if isinstance(dst, IPv6Address) else mapped(dst)
        pkt = build_udp_ipv6(b"", src, d6, sport, dport, hop_limit=1, router_alert=True)
        return nexthops[flow_hash6(pkt, 0, seed) % len(nexthops)]
    return select


def dataplane_ecmp6(router: str, src: IPv4Address) -> EcmpSelect:
    """`ecmp6_for` of `router`'s dataplane for IPv6 echo requests from ::ffff:`src`."""
    return ecmp6_for(router_seed(router), mapped(src), UDP_PORT)


def dataplane_ecmp(router: str, src: IPv4Address) -> EcmpSelect:
    """`ecmp_for` of `router`'s dataplane for echo requests from `src` (port 3503 both
    ways, as the lab's prober sends them): the simulator's LSP traceroute takes the
    branches a lab's packets take."""
    return ecmp_for(router_seed(router), src, UDP_PORT)


@dataclass(frozen=True)
class Port:
    """One interface of the router: its address and MTU."""

    address: IPv4Interface
    mtu: int = 1500


@dataclass(frozen=True)
class RouterTables:
    """Everything the responder needs from one router (simulator or lab).

    `own_fecs` are the prefixes this router is egress for (loopback,
    connected subnets it advertises); `explicit_null` says whether it
    advertised label 0 rather than implicit-null for them.
    """

    name: str
    lsr_id: IPv4Address
    lfib: Lfib
    own_fecs: frozenset[IPv4Network]
    ports: Mapping[str, Port] = field(default_factory=dict)
    explicit_null: bool = False
    ecmp: EcmpSelect = default_ecmp_select
    vrf_rds: Mapping[str, bytes] = field(default_factory=dict)  # VRF -> its RD (8 octets)
    fib6: Fib6 | None = None  # 6PE routes (an ingress's) and the 6PE labels we pop
    # 6PE: our own IPv6 prefixes -> the label we bound to them (6PE label or 2, RFC 4798)
    sixpe_bound: Mapping[IPv6Network, int] = field(default_factory=dict)

    @property
    def sixpe_labels(self) -> frozenset[int]:
        """The 6PE labels this router pops (IPv6 under them), reserved ones left out."""
        own = set(self.fib6.labels) if self.fib6 is not None else set()
        return frozenset(lbl for lbl in own | set(self.sixpe_bound.values()) if lbl >= 16)

    def addresses(self) -> set[IPv4Address]:
        return {self.lsr_id} | {p.address.ip for p in self.ports.values()}

    def binding(self, fec: IPv4Network) -> int | None:
        """The label this router advertised for `fec` (LDP local binding), if any."""
        if fec in self.own_fecs:
            return EXPLICIT_NULL if self.explicit_null else IMPLICIT_NULL
        for e in self.lfib.ilm.values():
            if e.fec == fec:
                return e.in_label
        return None

    def port_of(self, address: IPv4Address) -> str | None:
        for name, p in self.ports.items():
            if p.address.ip == address:
                return name
        return None

    def mtu(self, ifname: str) -> int:
        p = self.ports.get(ifname)
        return p.mtu if p else 0


def sixpe_bound(topo: Topology, name: str) -> dict[IPv6Network, int]:
    """A 6PE router's IPv6 prefixes -> the label it binds to them (`bgp.sixpe`): its 6PE
    label, or IPv6 Explicit Null with `ipv6_explicit_null`; {} for any other router."""
    from bgp import sixpe
    from bgp.config import from_topology

    cfg = from_topology(topo, name) if topo.nodes[name].is_router else None
    if cfg is None or not sixpe.enabled(topo, name, cfg.families):
        return {}
    label = sixpe.advertised_label(topo, name, cfg.ipv6_explicit_null)
    return {} if label is None else {p: label for p in sixpe.prefixes(topo, name)}


def tables_from_topology(topo: Topology, name: str, lfib: Lfib, ecmp: EcmpSelect = default_ecmp_select,
                         fib6: Fib6 | None = None,
                         bound6: Mapping[IPv6Network, int] | None = None) -> RouterTables:
    """RouterTables for router `name` of a `lsr.core.topology.Topology` (`fib6`: its 6PE
    routes; `bound6`: `sixpe_bound`, computed when not given)."""
    node = topo.nodes[name]
    own = {IPv4Network(f"{node.lsr_id}/32")}
    if node.ldp.fecs == "all":
        # LDP FECs: not a VRF's subnets (RFC 4364: those are in no global table)
        own |= {i.address.network for i in node.interfaces.values() if i.vrf is None}
    ports = {i.name: Port(i.address, i.mtu) for i in node.interfaces.values()}
    rds = {v.name: rd_octets(v.rd) for v in node.vrfs.values()}
    return RouterTables(name, node.lsr_id, lfib, frozenset(own), ports, node.ldp.explicit_null, ecmp,
                        rds, fib6, sixpe_bound(topo, name) if bound6 is None else bound6)


@dataclass(frozen=True)
class VpnTarget:
    """A VPN IPv4 FEC (§3.2.5), or VPN IPv6 FEC (§3.2.6) for an IPv6 prefix, as the
    ingress PE names it: one of its VRFs and a prefix of that VRF's FIB; the RD and the
    egress PE are the VRF route's."""

    vrf: str
    prefix: IPv4Network | IPv6Network

    def __str__(self) -> str:
        return f"{self.vrf}:{self.prefix}"


@dataclass(frozen=True)
class SixpeTarget:
    """A BGP labeled IPv6 FEC (§3.2.14) as a 6PE ingress names it: an IPv6 prefix of its
    6PE routes (`Fib6`); the egress PE and its label are the route's."""

    prefix: IPv6Network

    def __str__(self) -> str:
        return str(self.prefix)


# what an ingress probes: an LDP FEC, a VPN one or a 6PE one
Target = IPv4Network | VpnTarget | SixpeTarget


def is_ipv6(target: Target) -> bool:
    """The echo requests for `target` are IPv6 packets (`lsr.oam.echo6`): the egress pops
    the bottom label and finds IPv6 under it (6PE, a VRF's IPv6 route)."""
    return isinstance(target, SixpeTarget) or (
        isinstance(target, VpnTarget) and target.prefix.version == 6)


def ingress_nexthops(lfib: Lfib, target: Target, fib6: Fib6 | None = None) -> tuple[Nhlfe, ...]:
    """An ingress's next hops for `target` (() when it has no LSP): its FTN entry's for
    an LDP FEC; for a VPN one its VRF route's, each pushing the transport label(s) and
    the VPN label (RFC 4364 §5), when the route is another PE's; for a 6PE one its
    `fib6` route's, pushing [LDP label(s), the egress's 6PE label] (RFC 4798 §3)."""
    if isinstance(target, SixpeTarget):
        r = fib6.routes.get(target.prefix) if fib6 is not None else None
        return r.nexthops if r is not None else ()
    if isinstance(target, VpnTarget):
        e = lfib.vrfs.get(target.vrf, {}).get(target.prefix)
        return e.nexthops if e is not None and e.source == "vpn" else ()
    ftn = lfib.ftn.get(target)
    return ftn.nexthops if ftn is not None else ()


def vpn_fecs(route: VrfEntry) -> tuple[Fec, ...]:
    """The Target FEC Stack for a VPN route (§3.2: one FEC per label, top first): the LDP
    FEC of the egress PE's loopback (the transport label) over the VPN IPv4 FEC of the
    route distinguisher and prefix the egress exported (the VPN label, §3.2.5)."""
    assert route.pe is not None
    vpn: Fec = VpnIpv6Fec.from_text(route.rd, route.prefix) if isinstance(route.prefix, IPv6Network) \
        else VpnIpv4Fec.from_text(route.rd, route.prefix)
    return (LdpIpv4Fec(IPv4Network((route.pe, 32))), vpn)


def sixpe_fecs(route: Route6) -> tuple[Fec, ...]:
    """The Target FEC Stack for a 6PE route (§3.2): the LDP FEC of the egress PE's loopback
    (the BGP next hop, RFC 4798 §2) over the BGP labeled IPv6 FEC of the prefix (§3.2.14)."""
    return (LdpIpv4Fec(IPv4Network((route.next_hop, 32))), BgpIpv6Fec(route.prefix))


@dataclass(frozen=True)
class Decision:
    """The verdict with what produced it (for the simulator's explanations)."""

    return_code: ReturnCode
    subcode: int
    ddmaps: tuple[Ddmap, ...] = ()
    reason: str = ""


def _fec_at(stack: TargetFecStack, depth: int) -> Fec | None:
    return stack.fecs[depth - 1] if 1 <= depth <= len(stack.fecs) else None


def _prefix(fec: Fec | None) -> IPv4Network | None:
    return fec.prefix if isinstance(fec, LdpIpv4Fec) else None


def _multipath(addrs: Sequence[IPv4Address | IPv6Address]) -> Multipath:
    """The Multipath Information a DDMAP answers with (§3.4.1.1.1): one IPv4 address as
    type 2, else a bit-masked set (type 8). IPv6 always bit-masked: Wireshark 4.0 reads
    type 2 as exactly one 4-octet address and type 4 as one 8-octet pair, so anything
    longer is "malformed" there, while type 8 decodes cleanly whatever its length."""
    if len(addrs) == 1 and addrs[0].version == 4:
        return Multipath.ip_addresses(addrs)
    return Multipath.bitmask(addrs)


def _ddmap_for(tables: RouterTables, nh: Nhlfe,
               addrs: tuple[IPv4Address, ...] | tuple[IPv6Address, ...] | None, rq_flags: int,
               below: tuple[int, ...] = ()) -> Ddmap:
    labels = (nh.out_labels or (IMPLICIT_NULL,)) + below
    mp = None if addrs is None else _multipath(addrs)
    return Ddmap(
        downstream_address=nh.nexthop,
        downstream_interface=nh.nexthop,
        mtu=tables.mtu(nh.interface),
        ds_flags=rq_flags & DS_FLAG_I,
        multipath=mp,
        labels=tuple(
            DsLabel(lbl, LabelProtocol.LDP, 0, i == len(labels) - 1) for i, lbl in enumerate(labels)
        ),
    )


def downstream_maps(
    tables: RouterTables, nexthops: Sequence[Nhlfe], request_ddmap: Ddmap | None,
    below: Sequence[int] = (), v6: bool = False,
) -> tuple[Ddmap, ...]:
    """One DDMAP per next hop (§4.4), its labels the stack as it would leave (`below`:
    the received labels under the one switched); with multipath data in the request
    (IPv6 addresses for an IPv6 request, `v6`; DecodeError when it does not fit that
    family: `decide` checks first), each gets the destinations the ECMP hash sends its
    way, and next hops that get none are left out."""
    mp = request_ddmap.multipath if request_ddmap else None
    flags = request_ddmap.ds_flags if request_ddmap else 0
    under = tuple(below)
    if mp is None or mp.type == MultipathType.NONE:
        return tuple(_ddmap_for(tables, nh, None, flags, under) for nh in sorted(nexthops))
    share: dict[Nhlfe, list] = {nh: [] for nh in nexthops}
    for a in mp.addresses(v6):
        share[tables.ecmp(a, list(nexthops))].append(a)
    return tuple(
        _ddmap_for(tables, nh, tuple(addrs), flags, under)
        for nh, addrs in sorted(share.items()) if addrs
    )


def ingress_ddmaps(
    tables: RouterTables, fec: Target,
    destinations: Iterable[IPv4Address] | Iterable[IPv6Address] | None = None,
) -> tuple[Ddmap, ...]:
    """The DDMAPs an ingress puts in its first traceroute request (from its FTN, or its
    VRF route for a VPN FEC), with `destinations` split by its ECMP hash (§4.3 multipath):
    in 127/8, for an IPv6 FEC's requests in ::ffff:127.0.0.0/104 (§3.4.1.1.1)."""
    nexthops = ingress_nexthops(tables.lfib, fec, tables.fib6)
    if not nexthops:
        return ()
    v6 = is_ipv6(fec)
    rq = None
    if destinations is not None:
        dsts = list(destinations)
        if any((a.version == 6) != v6 for a in dsts):
            raise ValueError(f"multipath destinations of {fec} must be IPv{6 if v6 else 4}")
        rq = Ddmap(multipath=Multipath.bitmask(dsts))
    return downstream_maps(tables, nexthops, rq, v6=v6)


def decide(
    tables: RouterTables,
    request: EchoMessage,
    labels: Sequence[int],
    in_interface: str | None = None,
    v6: bool = False,
) -> Decision:
    """Return code, subcode and DDMAPs for a decoded request (§4.4); `v6`: it came as an
    IPv6 packet (its multipath data is IPv6, §3.4.1.1.1)."""
    errored = request.not_understood()
    if errored:
        return Decision(ReturnCode.TLV_NOT_UNDERSTOOD, 0, reason="mandatory TLV not understood")
    stack = request.fec_stack
    if stack is None:
        return Decision(ReturnCode.MALFORMED_REQUEST, 0, reason="no Target FEC Stack TLV")
    rq_maps = request.ddmaps
    rq_map = rq_maps[0] if rq_maps else None
    if rq_map is not None and rq_map.multipath is not None:
        try:  # the decoder took it as valid for some family: is it for the request's?
            rq_map.multipath.check(v6)
        except DecodeError as e:
            return Decision(return_code_for(e), 0, reason=f"malformed: {e}")
    # §4.4 interface and label validation against the DDMAP the upstream router sent
    mismatch = _ddmap_mismatch(tables, rq_map, labels, in_interface)
    if mismatch:
        return Decision(ReturnCode.DOWNSTREAM_MISMATCH, 1 if labels else 0, reason=mismatch)

    # The FEC stack lists one FEC per label of the stack the sender pushed; when
    # labels were popped on the way (PHP), the received stack is shorter and
    # its top corresponds to a deeper FEC (§4.4 FEC-stack-depth).
    fec_depth = len(stack.fecs) - len(labels) + 1
    sixpe_labels = tables.sixpe_labels
    for depth, label in enumerate(labels, start=1):
        fec = _fec_at(stack, fec_depth)
        if label == IPV6_EXPLICIT_NULL and isinstance(fec, BgpIpv6Fec):
            # RFC 4798 §3: a 6PE egress that bound IPv6 Explicit Null pops it, IPv6 below
            return _sixpe_egress(tables, request, fec, label, fec_depth)
        if label in (EXPLICIT_NULL, IPV6_EXPLICIT_NULL, IMPLICIT_NULL):
            # Popped here. Explicit-null ends the LSP of the FEC at this depth (we are
            # its egress: a label below is the next FEC's); a Nil FEC marks a label
            # pushed on its own.
            fec_depth += 1
            continue
        vpn = tables.lfib.vpn_ilm.get(label)
        if vpn is not None and label not in tables.lfib.ilm:
            if depth < len(labels):  # RFC 4364 §4.3.2: the VPN label is the bottom one
                return Decision(ReturnCode.NO_LABEL_ENTRY, depth,
                                reason=f"VPN label {label} above the bottom of the stack")
            return _vpn_egress(tables, request, fec, vpn, fec_depth)
        if label in sixpe_labels and label not in tables.lfib.ilm:
            if depth < len(labels):  # RFC 4798 §3: the 6PE label is the bottom one
                return Decision(ReturnCode.NO_LABEL_ENTRY, depth,
                                reason=f"6PE label {label} above the bottom of the stack")
            return _sixpe_egress(tables, request, fec, label, fec_depth)
        ilm: IlmEntry | None = tables.lfib.ilm.get(label)
        if ilm is None:
            return Decision(ReturnCode.NO_LABEL_ENTRY, depth, reason=f"no ILM entry for label {label}")
        prefix = _prefix(fec)
        if request.validate_fec and prefix is not None and prefix != ilm.fec:
            if tables.binding(prefix) is None:
                return Decision(ReturnCode.NO_MAPPING, depth, reason=f"no binding for {prefix}")
            return Decision(
                ReturnCode.NOT_GIVEN_LABEL,
                depth,
                reason=f"label {label} is bound to {ilm.fec}, not {prefix}",
            )
        if not ilm.nexthops:
            if depth < len(labels):  # pop and continue processing on the next label
                fec_depth += 1
                continue
            return Decision(ReturnCode.LABEL_SWITCHED_NO_MPLS, depth, reason="ILM entry has no next hop")
        if all(nh.op == "untagged" for nh in ilm.nexthops):
            # our label, but no next hop has mapped the FEC: popped and sent on as IP
            return Decision(ReturnCode.LABEL_SWITCHED_NO_MPLS, depth,
                            reason=f"label {label} untagged: no downstream label yet")
        # Swap, or pop towards the next hop (PHP, with a VPN label below it may be):
        # "label switched" either way (§4.4 "Swap or Pop and Switch").
        maps = downstream_maps(tables, ilm.nexthops, rq_map, labels[depth:], v6) if rq_maps else ()
        return Decision(ReturnCode.LABEL_SWITCHED, depth, maps, f"label {label} switched")

    # No label left: egress processing (§4.4 "Egress Processing").
    # With every label popped (PHP) the FEC is the deepest one left.
    fec_depth = max(1, min(fec_depth, len(stack.fecs)))
    fec = _fec_at(stack, fec_depth)
    if isinstance(fec, BgpIpv6Fec):  # reached unlabelled: an implicit-null 6PE binding
        return _sixpe_egress(tables, request, fec, IMPLICIT_NULL, fec_depth)
    prefix = _prefix(fec)
    if prefix is not None and prefix in tables.own_fecs:
        return Decision(ReturnCode.EGRESS, fec_depth, reason=f"egress for {prefix}")
    return Decision(ReturnCode.NO_MAPPING, fec_depth, reason=f"not egress for {fec}")


def _sixpe_egress(tables: RouterTables, request: EchoMessage, fec: Fec | None, label: int,
                  fec_depth: int) -> Decision:
    """§4.4.1 FEC validation where our 6PE label (or IPv6 Explicit Null) ends the LSP
    (RFC 4798 §3): the BGP labeled IPv6 FEC (§3.2.14) names one of the IPv6 prefixes we
    originate, and the label is the one we bound to it."""
    if not isinstance(fec, BgpIpv6Fec):
        prefix = _prefix(fec)
        if not request.validate_fec:
            return Decision(ReturnCode.EGRESS, fec_depth, reason=f"6PE label {label} popped")
        if prefix is not None and tables.binding(prefix) is None:
            return Decision(ReturnCode.NO_MAPPING, fec_depth, reason=f"no binding for {prefix}")
        return Decision(ReturnCode.NOT_GIVEN_LABEL, fec_depth,
                        reason=f"label {label} is our 6PE label, not bound to {fec}")
    bound = tables.sixpe_bound.get(fec.prefix)
    if bound is None:
        return Decision(ReturnCode.NO_MAPPING, fec_depth,
                        reason=f"{fec.prefix} is none of the IPv6 prefixes {tables.name} originates")
    if bound != label:
        return Decision(ReturnCode.NOT_GIVEN_LABEL, fec_depth,
                        reason=f"{tables.name} bound label {bound} to {fec.prefix}, not {label}")
    return Decision(ReturnCode.EGRESS, fec_depth, reason=f"6PE egress for {fec.prefix}")


def _vpn_egress(tables: RouterTables, request: EchoMessage, fec: Fec | None, vpn: VpnIlmEntry,
                fec_depth: int) -> Decision:
    """§4.4.1 FEC validation where our VPN label (RFC 4364 §4.3.2) ends the LSP: the VPN
    IPv4 FEC (§3.2.5) names a VRF of ours by its RD and a prefix that VRF exports (its
    own route: connected or static), and the label is the one we allocated for it."""
    label = vpn.in_label
    if not isinstance(fec, (VpnIpv4Fec, VpnIpv6Fec)):
        prefix = _prefix(fec)
        if not request.validate_fec or prefix is None:
            return Decision(ReturnCode.EGRESS, fec_depth, reason=f"VPN label {label} ({vpn.vrf}) popped")
        if tables.binding(prefix) is None:
            return Decision(ReturnCode.NO_MAPPING, fec_depth, reason=f"no binding for {prefix}")
        return Decision(ReturnCode.NOT_GIVEN_LABEL, fec_depth,
                        reason=f"label {label} is VRF {vpn.vrf}'s VPN label, not bound to {prefix}")
    vrf = next((name for name, rd in sorted(tables.vrf_rds.items()) if rd == fec.rd), None)
    if vrf is None:
        return Decision(ReturnCode.NO_MAPPING, fec_depth,
                        reason=f"no VRF with route distinguisher {fec.rd_text()}")
    own = tables.lfib.vrfs.get(vrf, {}).get(fec.prefix)
    if own is None or own.source not in ("connected", "static"):
        return Decision(ReturnCode.NO_MAPPING, fec_depth,
                        reason=f"VRF {vrf} ({fec.rd_text()}) has no route of its own for {fec.prefix}")
    if vpn.vrf != vrf or (vpn.prefix is not None and vpn.prefix != fec.prefix):
        what = f"{vpn.vrf} {vpn.prefix}" if vpn.prefix is not None else vpn.vrf
        return Decision(ReturnCode.NOT_GIVEN_LABEL, fec_depth,
                        reason=f"VPN label {label} is {what}'s, not {vrf} {fec.prefix}'s")
    return Decision(ReturnCode.EGRESS, fec_depth, reason=f"egress for {fec} (VRF {vrf})")


def _ddmap_mismatch(
    tables: RouterTables, rq_map: Ddmap | None, labels: Sequence[int], in_interface: str | None
) -> str | None:
    """§4.4 interface and label validation against the DDMAP the upstream router reported
    for us; None when it agrees (or names no one: ALL-ROUTERS / 127.0.0.1). The labels
    it listed, implicit-null left out, are the stack we should have received: their top
    is compared with the top one received."""
    if rq_map is None or rq_map.downstream_address in (ALL_ROUTERS, LOCALHOST):
        return None
    ours = tables.addresses()
    named = {rq_map.downstream_address}
    if isinstance(rq_map.downstream_interface, IPv4Address):
        named.add(rq_map.downstream_interface)
    if in_interface is not None and in_interface in tables.ports:
        if tables.ports[in_interface].address.ip not in named and tables.lsr_id not in named:
            return f"DDMAP names {rq_map.downstream_interface}, received on {in_interface}"
    elif not named & ours:
        return f"DDMAP names {rq_map.downstream_interface}, not an address of {tables.name}"
    if not rq_map.labels:
        return None
    sent = [lbl for lbl in rq_map.label_values if lbl != IMPLICIT_NULL]
    expected = sent[0] if sent else None
    got = labels[0] if labels else None
    # an upstream that listed explicit-null may have sent the packet unlabelled
    if expected != got and not (expected == EXPLICIT_NULL and got is None):
        return (f"DDMAP label {'none (pop)' if expected is None else expected}, received "
                f"{'no label' if got is None else got}")
    return None


def respond(
    tables: RouterTables,
    request: EchoMessage,
    labels: Sequence[int],
    in_interface: str | None = None,
    received: Timestamp = (0, 0),
    label_ttls: Sequence[int] | None = None,
    v6: bool = False,
) -> EchoMessage | None:
    """The echo reply to `request` (§4.4, §4.5), or None for reply mode 1; `v6`: the
    request was an IPv6 packet (`decide`)."""
    if request.msg_type != MessageType.ECHO_REQUEST or request.reply_mode == ReplyMode.NO_REPLY:
        return None
    d = decide(tables, request, labels, in_interface, v6)
    tlvs: list = []
    if d.return_code == ReturnCode.TLV_NOT_UNDERSTOOD:
        tlvs.append(ErroredTlvs(request.not_understood()))
    tlvs.extend(d.ddmaps)
    rq_map = request.ddmaps[0] if request.ddmaps else None
    if rq_map is not None and rq_map.ds_flags & DS_FLAG_I and in_interface in tables.ports:
        ttls = list(label_ttls or [0] * len(labels))
        entries = tuple(
            LabelEntry(lbl, 0, i == len(labels) - 1, ttls[i] if i < len(ttls) else 0)
            for i, lbl in enumerate(labels)
        )
        addr = tables.ports[in_interface].address.ip
        tlvs.append(InterfaceLabelStack(tables.lsr_id, addr, entries))
    tlvs.extend(p for p in request.find(Pad) if p.action == PadAction.COPY)
    return EchoMessage(
        msg_type=MessageType.ECHO_REPLY,
        reply_mode=request.reply_mode,
        return_code=d.return_code,
        return_subcode=d.subcode,
        sender_handle=request.sender_handle,
        sequence=request.sequence,
        ts_sent=request.ts_sent,
        ts_received=received,
        flags=request.flags,
        tlvs=tuple(tlvs),
    )


def respond_bytes(
    tables: RouterTables,
    payload: bytes,
    labels: Sequence[int],
    in_interface: str | None = None,
    received: Timestamp = (0, 0),
    v6: bool = False,
) -> EchoMessage | None:
    """Like `respond` but from the UDP payload: a malformed request gets return
    code 1 when its header is readable (§4.4), and nothing otherwise."""
    try:
        request = EchoMessage.decode(payload)
    except DecodeError as e:
        if len(payload) < HEADER_LEN:
            return None
        _v, flags, mt, rm, _rc, _rsc, handle, seq, s1, s2 = struct.unpack("!HHBBBBIIII", payload[:24])
        if mt != MessageType.ECHO_REQUEST or rm == ReplyMode.NO_REPLY:
            return None
        return EchoMessage(
            msg_type=MessageType.ECHO_REPLY,
            reply_mode=rm if rm in tuple(ReplyMode) else ReplyMode.UDP,
            return_code=return_code_for(e),
            sender_handle=handle,
            sequence=seq,
            ts_sent=(s1, s2),
            ts_received=received,
        )
    return respond(tables, request, labels, in_interface, received, v6=v6)
