"""Label Decision Engine: LIB, local bindings, FTN/ILM (RFC 5036 §2.6, §3.5.7-3.5.10).

Defaults: Downstream Unsolicited, independent control (§2.6.1), liberal
retention (§2.6.2.2); ordered control and conservative retention as options.

* FECs: every IGP prefix (LdpOptions.fecs == "all") or only /32s ("loopbacks").
* Local labels come from the router's label range, lowest free first; dirty
  FECs are processed in sorted order so allocation is reproducible. Our own
  prefixes (egress) get implicit-null (3), or explicit-null (0) if configured.
* IGP next hops are mapped to peers with the addresses the peers sent in
  Address messages (§3.5.5.1), never with outside knowledge.
* The LIB keeps every mapping received, per peer. NHLFEs exist only for next
  hops whose peer sent a mapping; one NHLFE per ECMP next hop.
* A label we withdrew is not reused until every peer released it (§3.5.10).

The code reads as RFC 5036 Appendix A (as FRR's and holo's ldpd do): one
method per event or received message, App. A steps tagged where they happen
(``# LMp.10a``), the steps skipped listed per procedure:

    event / message          App. A            method
    new FEC, next hop change A.1.6, A.1.7      rib_changed (+ finish)
    Address / Addr Withdraw  §3.5.5.1/§3.5.6.1 recv_address, recv_address_withdraw
    Label Mapping            A.1.2  LMp.*      recv_label_mapping
    Label Request            A.1.1  LRq.*      recv_label_request
    Label Withdraw           A.1.5  LWd.*      recv_label_withdraw
    Label Release            A.1.4  LRl.*      recv_label_release
    Label Abort Request      A.1.3             recv_label_abort
    FEC no longer switched   A.1.14            finish (_bind_local)
    commit                   SL.*, SWd.*       finish: _bind_local, _advertise, _program

Not implemented anywhere: loop detection (Check_Received_Attributes,
Prepare_Label_Mapping_Attributes: no Hop Count / Path Vector, §2.8 optional),
Downstream on Demand, Label Abort, No Label Resources (A.1.9, A.1.12, A.1.13).

Peers are identified by LSR ID; `Nhlfe.neighbor` is ``str(lsr_id)`` here and
the view layer translates it to a node name.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from ldp.lib import NONE, Lib
from ldp.messages import (
    Address,
    AddressWithdraw,
    LabelAbortRequest,
    LabelMapping,
    LabelRelease,
    LabelRequest,
    LabelWithdraw,
    Message,
    Notification,
    PrefixFec,
    Status,
    StatusCode,
    WildcardFec,
)
from lsr.core.igp import Route
from lsr.core.labels import IMPLICIT_NULL, IPV4_EXPLICIT_NULL, MIN_UNRESERVED
from lsr.core.lfib import FtnEntry, IlmEntry, Lfib, LfibDiff, Nhlfe
from lsr.core.prefix import Prefix, prefix
from lsr.core.topology import LdpOptions


def fec_key(p: IPv4Network) -> tuple[int, int]:
    return (int(p.network_address), p.prefixlen)


# The LDE keeps every prefix as the one shared, interned `Prefix` object (lsr.core.prefix:
# equal to, and hashing like, the plain IPv4Network, with its hash computed once); its
# int `key` sorts FECs in FEC order.
Fec = Prefix
intern_fec = prefix
_by_key = attrgetter("key")


@dataclass
class Peer:
    """What we know about one operational session's peer."""

    lsr_id: IPv4Address
    addresses: set[IPv4Address] = field(default_factory=set)
    lib: Lib = field(default_factory=Lib)  # mappings received (the LIB, `ldp.lib`)
    withdrawn: dict[IPv4Network, int] = field(default_factory=dict)  # awaiting Release
    requested: set[IPv4Network] = field(default_factory=set)  # Label Requests outstanding
    local: Mapping[IPv4Network, int] = field(default_factory=dict, repr=False)  # the LDE's
    # sends one message (or encoded message) to this peer; None: through `Lde.send`
    tx: Callable[[Any], None] | None = field(default=None, repr=False, compare=False)
    key: int = field(default=0, repr=False, compare=False)  # int(lsr_id)

    def __post_init__(self) -> None:
        self.key = int(self.lsr_id)

    @property
    def advertised(self) -> Mapping[IPv4Network, int]:
        """The mappings sent to this peer and not withdrawn: every local binding. SL.5
        records each one as it is sent, the peer gets them all when its session comes up,
        and a binding that changes is withdrawn and sent again at once (`Lde.finish`); so
        no per-peer copy is kept (it would be one dict entry per peer and FEC)."""
        return MappingProxyType(self.local)


class LabelPlan(Mapping[IPv4Network, int]):
    """`label_plan(lo, fecs)` without a dict per router: the labels base, base+1, ... of
    the FECs in FEC order, from one ranking of every prefix of the topology (shared by
    all routers) less the few that this router leaves out (its own)."""

    def __init__(self, base: int, order: Mapping[IPv4Network, int],
                 sorted_all: list[IPv4Network], skip: list[int]) -> None:
        self.base = max(base, MIN_UNRESERVED)
        self._order = order  # prefix -> rank in `sorted_all`
        self._all = sorted_all
        self._skip = sorted(skip)  # ranks left out
        self._skipped = frozenset(self._skip)

    def __getitem__(self, p: IPv4Network) -> int:
        k = self._order.get(p)
        if k is None or k in self._skipped:
            raise KeyError(p)
        return self.base + k - bisect_left(self._skip, k)

    def __iter__(self) -> Iterator[IPv4Network]:
        return (p for k, p in enumerate(self._all) if k not in self._skipped)

    def __len__(self) -> int:
        return len(self._all) - len(self._skip)


class LabelAllocator:
    """Local labels of [lo, hi], never 0-15.

    A FEC the driver planned a label for gets that label, so a label is a function
    of the FEC and not of the order routes happened to arrive in (OSPF installs
    them one SPF run at a time; a router that restarts or a link that flaps gets
    the same labels back, and a lab equals its simulation label for label). Other
    FECs take the lowest free label above the plan.
    """

    def __init__(self, lo: int, hi: int, plan: Mapping[IPv4Network, int] | None = None) -> None:
        self.lo = max(lo, MIN_UNRESERVED)
        self.hi = hi
        if isinstance(plan, LabelPlan) and plan.base == self.lo:
            # contiguous: base .. base + len - 1, cut at hi
            self.plan: Mapping[IPv4Network, int] = plan
            last = min(plan.base + len(plan) - 1, hi)
            self._planned = range(plan.base, last + 1)
        else:
            self.plan = {p: lb for p, lb in (plan or {}).items() if self.lo <= lb <= hi}
            self._planned = set(self.plan.values())  # type: ignore[assignment]
        self.next = max(self._planned) + 1 if self._planned else self.lo
        self._used = bytearray(max(0, self.next - self.lo))  # label - lo -> in use
        self.freed: list[int] = []

    @property
    def planned(self) -> set[int]:
        return set(self._planned)

    @property
    def in_use(self) -> set[int]:
        return {self.lo + i for i, u in enumerate(self._used) if u}

    def alloc(self, fec: IPv4Network | None = None) -> int | None:
        """The FEC's planned label, else the lowest free one; None when every label of
        the range is bound or held (RFC 5036 A.2.1 SL.1: no label to allocate)."""
        want = self.plan.get(fec) if fec is not None else None
        if want is not None and want not in self._planned:
            want = None  # past hi: not planned
        if want is not None and not self._used[want - self.lo]:
            self._used[want - self.lo] = 1
            return want
        if self.freed and self.freed[0] < self.next:
            label = heapq.heappop(self.freed)
        elif self.next > self.hi:
            return None
        else:
            label = self.next
            self.next += 1
            self._used.append(0)
        self._used[label - self.lo] = 1
        return label

    def free(self, label: int) -> None:
        if 0 <= label - self.lo < len(self._used):
            self._used[label - self.lo] = 0
        if label not in self._planned:
            heapq.heappush(self.freed, label)


def label_plan(lo: int, fecs: list[IPv4Network]) -> dict[IPv4Network, int]:
    """Labels lo, lo+1, ... for `fecs` in FEC order: what allocation in sorted order
    gives when every route is known at once (the labels `lsr` has always shown)."""
    base = max(lo, MIN_UNRESERVED)
    return {p: base + k for k, p in enumerate(sorted(fecs, key=fec_key))}


class Lde:
    """One router's label decisions, as the procedures of RFC 5036 Appendix A.

    Inputs are one method per App. A event (`rib_changed`, `peer_up`/`peer_down`,
    `receive` -> one `recv_*` method per message). They change the LIB and mark
    FECs dirty; `finish` (the commit step) then processes the dirty FECs in FEC
    order: local binding, advertisements, LFIB diff. Steps are tagged where they
    happen (``# LMp.10a``); each procedure lists the steps it skips and why.

    What is kept per FEC is little (a large simulation has millions of router-FEC
    pairs): the RIB is the IGP's own dict, the local binding, and the inputs of the
    last FTN/ILM decision (`_rows`); the LFIB is a view that builds its entries from
    those when asked (`lfib.ftn`, `lfib.ilm`), and the diffs carry real entries.
    """

    def __init__(
        self,
        lsr_id: IPv4Address,
        label_range: tuple[int, int],
        options: LdpOptions,
        send: Callable[[IPv4Address, Message], None],
        next_msg_id: Callable[[], int],
        log: Callable[[str, str], None] = lambda level, text: None,
        plan: Mapping[IPv4Network, int] | None = None,
        *,
        sender: Callable[[IPv4Address], Callable[[Any], None]] | None = None,
        encode_mapping: Callable[[int, IPv4Network, int], bytes] | None = None,
    ) -> None:
        """`send(lsr_id, message)` sends to a peer. A host may add `sender(lsr_id)`, the
        function that sends to that peer while its session lasts (asked when it comes up),
        and `encode_mapping(msg_id, prefix, label)` (`ldp.codec.encode_label_mapping`):
        Label Mappings then go out as their bytes, with no message object made."""
        self.sender = sender
        self.encode_mapping = encode_mapping
        self.lsr_id = lsr_id
        self.options = options
        self.send = send
        self.next_msg_id = next_msg_id
        self.log = log
        self.labels = LabelAllocator(*label_range, plan)
        self.rib: dict[IPv4Network, Route] = {}
        self._rib_in: dict[IPv4Network, Route] | None = None  # the RIB as last handed in
        self._all_fecs = options.fecs == "all"  # else /32s only
        self.local: dict[IPv4Network, int] = {}  # local bindings
        self.holds: dict[int, set[IPv4Address]] = {}  # withdrawn label -> peers yet to release
        self.peers: dict[IPv4Address, Peer] = {}
        self.addr_peer: dict[int, IPv4Address] = {}  # int(peer address) -> peer LSR ID
        self._addr_peer: dict[int, Peer] = {}  # the same, to the Peer
        # id(next-hop tuple) -> (tuple, int LSR IDs of the peers of its next hops): which
        # peers are a FEC's next hops, for each mapping received (emptied when
        # `addr_peer` changes)
        self._nh_peers: dict[int, tuple[tuple, frozenset[int]]] = {}
        # a route's next hops with int(address), per next-hop tuple (routes share them)
        self._nh_ints: dict[int, tuple[tuple, tuple]] = {}
        # FEC -> (route, local label, is a FEC, ((next hop, peer, label), ...)): the
        # inputs of its last FTN/ILM decision, from which its entries are built
        self._rows: dict[IPv4Network, tuple] = {}
        self._ftns = 0  # rows with an FTN entry
        self._ilms = 0  # rows with an ILM entry
        self._names: dict[IPv4Address, str] = {}  # peer LSR ID -> str, cached
        self.lfib = Lfib(_FtnView(self), _IlmView(self))  # type: ignore[arg-type]
        self.dirty: set[IPv4Network] = set()
        self.starved: set[IPv4Network] = set()  # FECs waiting for a free label (SL.12)

    @property
    def fecs(self) -> set[IPv4Network]:
        """The prefixes we label: every route (fecs: all) or the /32s (loopbacks)."""
        return {p for p in self.rib if self._all_fecs or p.prefixlen == 32}

    def _is_fec(self, p: IPv4Network) -> bool:
        return p in self.rib and (self._all_fecs or p.prefixlen == 32)

    def _nhs(self, p: IPv4Network) -> tuple:
        """((Nexthop, int(address)), ...) of FEC's route; () if `p` is not a FEC."""
        r = self.rib.get(p)
        if r is None or not (self._all_fecs or p.prefixlen == 32):
            return ()
        return self._nh_pairs(r.nexthops)

    def _nh_pairs(self, nexthops: tuple) -> tuple:
        hit = self._nh_ints.get(id(nexthops))
        if hit is not None and hit[0] is nexthops:
            return hit[1]
        pairs = tuple((nh, int(nh.address)) for nh in nexthops)
        if len(self._nh_ints) >= 4096:
            self._nh_ints.clear()
        self._nh_ints[id(nexthops)] = (nexthops, pairs)  # the tuple is held: its id stays its
        return pairs

    def _routed_via(self, addrs: set[int]) -> set[IPv4Network]:
        """The FECs with a next hop at one of these addresses (ints)."""
        if not addrs:
            return set()
        hits: dict[int, bool] = {}
        out = set()
        for p, r in self.rib.items():
            t = r.nexthops
            if not t:
                continue
            h = hits.get(id(t))
            if h is None:
                h = hits[id(t)] = any(a in addrs for _, a in self._nh_pairs(t))
            if h and (self._all_fecs or p.prefixlen == 32):
                out.add(intern_fec(p))
        return out

    # ============================================================== events from the router

    def rib_changed(self, rib: dict[IPv4Network, Route],
                    changed: Collection[IPv4Network] | None = None,
                    base: dict[IPv4Network, Route] | None = None) -> None:
        """A.1.6 Recognize new FEC, A.1.7 Detect change in FEC next hop, A.1.14 no longer
        label switch a FEC: every FEC whose route changed is recomputed at commit.

        FEC.1 (label distribution: SL.1-5 to every peer), NH.2 / NH.10-12 (leave the old
        next hop's label, use the new one's retained mapping) and A.1.14 (SWd.1-2 to
        every peer) all happen in `finish`. Here only what conservative retention adds.
        Skipped: FEC.3-4 and NH.6-9 (Downstream on Demand / Label Abort: DU only).

        `changed` and `base` (OSPF's `RoutesChanged` hint): the prefixes whose route
        differs from `base`; when `base` is the RIB we were given last (the same object),
        only those are looked at -- the same outcome as comparing the whole RIBs. The RIB
        is kept as given (no copy) when its keys are interned prefixes, as OSPF's are.
        """
        old = self.rib
        if changed is not None and base is not None and base is self._rib_in:
            hint = [intern_fec(p) for p in changed]
            self._rib_in = self.rib = rib
        else:
            self._rib_in = rib
            if not all(type(p) is Prefix for p in rib):
                rib = {intern_fec(p): r for p, r in rib.items()}
            self.rib = rib
            hint = [p for p, r in rib.items() if old.get(p) is not r]
            hint += [p for p in old if p not in rib]
        want_all = self._all_fecs
        dirty = set()
        for p in hint:
            o, r = old.get(p), rib.get(p)
            # a FEC before or after (fecs | self.fecs) whose route changed
            if (want_all or p.prefixlen == 32) and o != r:
                dirty.add(p)
        self.dirty |= dirty
        if self.options.retention == "conservative":
            self._nexthop_changed_conservative(dirty)

    def _nexthop_changed_conservative(self, changed: set[IPv4Network]) -> None:
        """A.1.7 with conservative retention: release what the old next hop gave us,
        ask the new next hop for what we released earlier."""
        for peer in self.peers.values():
            for p in sorted(changed & peer.lib.keys(), key=fec_key):
                # NH.1: a mapping from a peer that is no longer a next hop;
                # NH.4-5: conservative retention releases it and forgets it.
                if not self._is_nexthop(peer, p):
                    self._send_release(peer, p, peer.lib.pop(p))
        for p in sorted((p for p in changed if self._is_fec(p)), key=fec_key):
            for _, a in self._nhs(p):
                pid = self.addr_peer.get(a)
                peer = self.peers.get(pid) if pid is not None else None
                # NH.11: no mapping from the new next hop (we released it);
                # NH.13-15: Label Request to it, once (the record is LMp.1's).
                if peer is not None and p not in peer.lib and p not in peer.requested:
                    peer.requested.add(p)
                    self.send(peer.lsr_id, LabelRequest(self.next_msg_id(), (PrefixFec(p),)))

    def peer_up(self, lsr_id: IPv4Address, addresses: list[IPv4Address]) -> None:
        """Session OPERATIONAL: our Address list (§2.5.5, §3.5.5), then, DU (§2.6.3),
        FEC.1 for every current local binding in FEC order (SL.4 send, SL.5 record).

        The new peer has sent no mapping yet, so the FTN/ILM cannot change: no FEC
        becomes dirty.
        """
        peer = self.peers[lsr_id] = Peer(lsr_id, local=self.local)
        if self.sender is not None:
            peer.tx = self.sender(lsr_id)
        self._tx(peer, Address(self.next_msg_id(), tuple(addresses)))
        local = self.local
        for p in sorted(local, key=_by_key):
            self._send_mapping(peer, p, local[p])

    def peer_down(self, lsr_id: IPv4Address) -> None:
        """Session gone: its mappings leave forwarding use (as LWd.1 / LWd.4 for all of
        them), its addresses stop naming next hops, and it will release nothing more
        (§3.5.10: its label holds end)."""
        peer = self.peers.pop(lsr_id, None)
        if peer is None:
            return
        self.dirty |= {intern_fec(p) for p in peer.lib}
        gone = set()
        for addr in sorted(peer.addresses):
            gone.add(self._unbind_address(addr, lsr_id))
        self.dirty |= self._routed_via(gone)
        for label, waiting in list(self.holds.items()):
            waiting.discard(lsr_id)
            if not waiting:
                del self.holds[label]
                self._maybe_free(label)

    def addresses_added(self, addresses: list[IPv4Address]) -> None:
        """New local addresses: an Address message to every peer (§3.5.5, §2.5.5)."""
        if addresses:
            for pid in sorted(self.peers):
                self.send(pid, Address(self.next_msg_id(), tuple(addresses)))

    def addresses_removed(self, addresses: list[IPv4Address]) -> None:
        """Local addresses gone: an Address Withdraw to every peer (§3.5.6)."""
        if addresses:
            for pid in sorted(self.peers):
                self.send(pid, AddressWithdraw(self.next_msg_id(), tuple(addresses)))

    # ============================================================== messages from a peer

    def receive(self, lsr_id: IPv4Address, msg: Message) -> None:
        """A label distribution message from an OPERATIONAL session: one procedure each."""
        peer = self.peers.get(lsr_id)
        if peer is None:
            return
        proc = _PROCEDURES.get(type(msg))
        if proc is not None:
            proc(self, peer, msg)
        # Notifications never get here: the session logs the advisory ones. Skipped so:
        # A.1.8-A.1.12 (Label Request Aborted, No Label Resources, No Route, Loop
        # Detected, Label Resources Available). The only requests we send are
        # conservative retention's (NH.13-15); one answered by No Route stays recorded
        # as outstanding and is not sent again until the peer maps the FEC.

    def receive_mappings(self, lsr_id: IPv4Address, run: Sequence[tuple[int, tuple, int]]) -> None:
        """Label Mappings of one IPv4 prefix each, in order, as (message ID, FEC elements,
        label) (`ldp.codec.MappingRun`): `receive` of each. With liberal retention and no
        Label Request outstanding (always, but for conservative retention's) the steps
        of `recv_label_mapping` that remain are inlined here."""
        peer = self.peers.get(lsr_id)
        if peer is None:
            return
        if self.options.retention == "conservative":
            for mid, fec, label in run:
                self.recv_label_mapping(peer, LabelMapping(mid, fec, label))
            return
        lib, dirty, requested = peer.lib, self.dirty, peer.requested
        labels = lib.labels  # `lib.get(p)` / `lib[p] = label`, inlined
        for mid, fec, label in run:
            p = fec[0].prefix  # interned by the codec
            if requested and p in requested:
                self.recv_label_mapping(peer, LabelMapping(mid, fec, label))
                labels = lib.labels
                continue
            i = p.idx
            if i >= len(labels):
                lib[p] = label  # (grows the array)
                labels = lib.labels
            else:
                old = labels[i]  # LMp.9
                if old != NONE and old != label:  # LMp.10, LMp.10a
                    del lib[p]
                    dirty.add(p)
                    self._send_release(peer, p, old)
                    old = NONE
                if old == NONE:
                    lib.count += 1
                labels[i] = label  # LMp.13 liberal / LMp.16
            if self._is_nexthop(peer, p):
                dirty.add(p)

    def recv_address(self, peer: Peer, msg: Address) -> None:
        """§3.5.5.1: the peer's addresses name IGP next hops (§2.7). A FEC routed over
        one of them now has that peer as next hop: A.1.7 (NH.10-12) at commit."""
        bound = set()
        for a in msg.addresses:
            if isinstance(a, IPv4Address):
                peer.addresses.add(a)
                self.addr_peer[int(a)] = peer.lsr_id
                self._addr_peer[int(a)] = peer
                bound.add(int(a))
        self._nh_peers.clear()
        self.dirty |= self._routed_via(bound)

    def recv_address_withdraw(self, peer: Peer, msg: AddressWithdraw) -> None:
        """§3.5.6.1: the peer no longer has these addresses. Next hops that used them
        no longer map to it (or map to another peer that lists them): A.1.7 (NH.2,
        NH.10-12) for the FECs routed through them, at commit."""
        gone = set()
        for a in msg.addresses:
            if isinstance(a, IPv4Address) and a in peer.addresses:
                peer.addresses.discard(a)
                gone.add(self._unbind_address(a, peer.lsr_id))
        self.dirty |= self._routed_via(gone)

    def recv_label_mapping(self, peer: Peer, msg: LabelMapping) -> None:
        """A.1.2 Receive Label Mapping, per FEC element.

        At commit (`finish`): LMp.14-15 (install for forwarding) and LMp.17 / LMp.24-26
        (ordered control: advertise upstream, SL.1-5, once the next hop's label is
        there). Skipped: LMp.3-8 (loop detection: no Hop Count / Path Vector, optional
        in frame mode, §2.8); LMp.18-23 and LMp.27 (attribute propagation, for loop
        detection); LMp.28-30 (we merge: one local label per FEC, §2.6.1).
        """
        conservative = self.options.retention == "conservative"
        for p in _ipv4_prefixes(msg.fec):
            requested = p in peer.requested  # LMp.1: answers our Label Request?
            peer.requested.discard(p)  # LMp.2: delete the record of the request
            old = peer.lib.get(p)  # LMp.9: an earlier mapping for FEC from MsgSource?
            # LMp.10: a different label, not asked for (Note 6: an answer is a new LSP)
            if old is not None and old != msg.label and not requested:
                # LMp.10a: release the old label and take it out of forwarding use
                # (the commit rebuilds the NHLFEs) -- in use or merely retained alike.
                del peer.lib[p]
                self.dirty.add(p)
                self._send_release(peer, p, old)
            # LMp.11-12: is MsgSource a next hop for FEC (any ECMP next hop)?
            if conservative and not self._is_nexthop(peer, p):
                # LMp.13 conservative -> LMp.32: release the label (§2.6.2.2)
                self._send_release(peer, p, msg.label)
                continue
            # LMp.13 liberal / LMp.16: record the mapping; LMp.14-15 at commit
            peer.lib[p] = msg.label
            if self._is_nexthop(peer, p):  # else nothing of FEC's changes at commit
                self.dirty.add(p)

    def recv_label_request(self, peer: Peer, msg: LabelRequest) -> None:
        """A.1.1 Receive Label Request, per FEC element. DoD is not used on our links
        (§3.5.3 A bit), but a request is answered from the local binding.

        Skipped: LRq.1 (loop detection); LRq.3-4 (a request from our next hop is
        answered, not refused as a loop); LRq.6-8 (the request is answered at once,
        never recorded as pending); LRq.10-12 (no request onward: DU, merging).
        """
        for f in msg.fec:
            # LRq.2: a route for FEC? -- a local binding exists iff we label switch it
            if isinstance(f, PrefixFec) and f.prefix in self.local:
                # LRq.9: label distribution: SL.4 (answering the request, SL.6-7), SL.5
                self._send_mapping(peer, f.prefix, self.local[f.prefix], msg.msg_id)
            else:
                # LRq.5: No Route
                self.send(peer.lsr_id, Notification(self.next_msg_id(), Status.of(
                    StatusCode.NO_ROUTE, msg.msg_id, 0x0401)))

    def recv_label_withdraw(self, peer: Peer, msg: LabelWithdraw) -> None:
        """A.1.5 Receive Label Withdraw (§3.5.10): remove the mappings, answer with one
        Label Release carrying the same FEC TLV and label.

        LWd.1 (remove from forwarding use) and LWd.8-12 (ordered control: withdraw
        upstream, SWd.1-2, once the FEC has no downstream label) run at commit.
        Skipped: LWd.6-7 (Downstream on Demand: no new request).
        """
        if any(isinstance(f, WildcardFec) for f in msg.fec):
            gone = [intern_fec(p) for p in peer.lib]
        else:
            gone = _ipv4_prefixes(msg.fec)
        for p in gone:
            # LWd.3: a mapping for FEC from MsgSource (with that label, if one is given)?
            if msg.label is None or peer.lib.get(p) == msg.label:
                peer.lib.pop(p, None)  # LWd.4: delete it
            self.dirty.add(p)  # LWd.1 at commit
        # LWd.2: Label Release to MsgSource
        self.send(peer.lsr_id, LabelRelease(self.next_msg_id(), msg.fec, msg.label))

    def recv_label_release(self, peer: Peer, msg: LabelRelease) -> None:
        """A.1.4 Receive Label Release: the peer no longer uses a label we withdrew;
        once every peer has released it, it may be reused (§3.5.10).

        LRl.6 (forget the mapping sent) already happened when we sent the Withdraw
        (SWd.2). Skipped: LRl.6 for a mapping still advertised (a conservative peer's
        release: we keep the record, so a later change still sends it a Withdraw);
        LRl.7-9 (no release downstream: independent control keeps the next hop's
        label); LRl.11-13 (the label left forwarding use when the FEC did).
        """
        if any(isinstance(f, WildcardFec) for f in msg.fec):
            done = list(peer.withdrawn)
        else:
            done = _ipv4_prefixes(msg.fec)
        for p in done:
            # LRl.1 / LRl.3: a FEC whose label we withdrew from MsgSource?
            label = peer.withdrawn.pop(p, None)  # LRl.4: delete the outstanding withdraw
            if label is not None:
                self._unhold(label, peer.lsr_id)

    def recv_label_abort(self, peer: Peer, msg: LabelAbortRequest) -> None:
        """A.1.3 Receive Label Abort Request: nothing to abort. We answer every Label
        Request at once (no LRq.8 record), so none is ever pending here."""

    # ============================================================== commit

    def finish(self) -> LfibDiff | None:
        """The commit step: process the dirty FECs in FEC order -- local binding,
        advertisements, FTN/ILM -- and return the LFIB diff (None if nothing changed)."""
        if not self.dirty:
            return None
        out = _DiffBuilder(self)
        peers = [self.peers[k] for k in sorted(self.peers)]
        while self.dirty:  # again for FECs a freed label lets have one (`_label_freed`)
            dirty = sorted(self.dirty, key=_by_key)
            self.dirty = set()
            self._commit(dirty, peers, out)
        return out.diff()

    def _commit(self, dirty: list[IPv4Network], peers: list[Peer], out: _DiffBuilder) -> None:
        for p in dirty:
            # LMp.11-12 / NH.10-12: the label of every next hop whose peer mapped FEC
            usable = self._nexthop_label(p)
            old, new = self._bind_local(p, usable)
            if old != new:
                # Every peer has our binding (`Peer.advertised`), so only a changed
                # binding sends anything.
                self._advertise(p, old, new, peers)
            # the old local label is free unless a peer still has to release it (§3.5.10)
            if old is not None and old != new and old >= MIN_UNRESERVED and old not in self.holds:
                self.labels.free(old)
                self._label_freed()
            self._program(p, new, usable, out)

    def _bind_local(self, p: IPv4Network, usable: list) -> tuple[int | None, int | None]:
        """SL.1-2 (allocate and bind a label) or A.1.14 (unbind): the local binding FEC
        should have now. Returns (old, new)."""
        old = self.local.get(p)
        new = self._desired_local(p, usable)
        if new != old:
            if new is None:
                del self.local[p]
            else:
                self.local[p] = new
        return old, new

    def _desired_local(self, p: IPv4Network, usable: list) -> int | None:
        route = self.rib.get(p)
        if route is None or not (self._all_fecs or p.prefixlen == 32):
            return None  # A.1.14: no longer label switch FEC
        if route.connected:  # egress (§2.6.1): our own prefix
            return IPV4_EXPLICIT_NULL if self.options.explicit_null else IMPLICIT_NULL
        if self.options.control == "ordered" and not usable:
            return None  # §2.6.1.2 (FEC.1 DUO, LWd.8): wait for the next hop's mapping
        cur = self.local.get(p)
        if cur is not None and cur >= MIN_UNRESERVED:
            return cur
        label = self.labels.alloc(p)  # SL.1-2
        if label is None:
            # SL.9-12, DU: no label resources: no binding and no mapping for FEC (an
            # ingress still pushes the next hop's label); it gets one when a label frees
            # (not one planned for a FEC whose route is gone: that stays its FEC's, so a
            # lab after a flap equals a simulation of the new state, label for label)
            if not self.starved:
                self.log("warning", f"label range [{self.labels.lo}, {self.labels.hi}] "
                                    f"exhausted: {p} and any FEC after it get no local "
                                    "label until one is freed (RFC 5036 A.2.1 SL.9-12)")
            self.starved.add(p)
        return label

    def _advertise(self, p: IPv4Network, have: int | None, new: int | None,
                   peers: list[Peer]) -> None:
        """DU label distribution (§2.6.3) to every peer: FEC.1 / LMp.17-31 / LWd.8-12.
        A changed binding (`have` -> `new`) is withdrawn first (one Withdraw per FEC per
        peer)."""
        for peer in peers:
            if have is not None:
                self._send_withdraw(peer, p, have)
            if new is not None:
                self._send_mapping(peer, p, new)

    def _program(self, p: IPv4Network, new: int | None, usable: list, out: _DiffBuilder) -> None:
        """FTN and ILM of FEC (RFC 3031 §3.10-3.12): LMp.14-15 (install the next hops'
        labels for forwarding), LWd.1 / LMp.10a / NH.2 (remove the ones gone).

        The entries are functions of the row, (route, local label, then next hop, peer
        and label for each next hop with a label), kept for the FECs that have one: a row
        equal to the last one (next hops compared by peer and label, as ever) changes
        nothing; else the entries of the new and the old row are compared by what they
        are made of, and only the changes become entries (in the diff). The ILM entry at
        our label can only be this FEC's: labels are bound to one FEC at a time, and a
        FEC's old entry goes when its label does."""
        route = self.rib.get(p)
        in_fecs = route is not None and (self._all_fecs or p.prefixlen == 32)
        old = self._rows.get(p)  # a kept row was a FEC's
        if old is not None and in_fecs and (old[0] is route or old[0] == route) \
                and old[1] == new and _same_labels(old, usable):
            return  # same route, local label and downstream labels: LFIB unchanged
        if in_fecs:
            row: tuple = (route, new, *[x for u in usable for x in u])
            ftn_new = _ftn_key(row)
            ilm_new = _ilm_key(row, ftn_new)
        else:
            row = (route, new)
            ftn_new = ilm_new = None
        if old is None:
            ftn_old = ilm_old = None
        elif in_fecs and old[2:] == row[2:] and (old[0] is route or (
                bool(old[0].nexthops) == bool(route.nexthops))):  # type: ignore[union-attr]
            # the same next hops, peers and labels (the same objects: this compares fast),
            # and a route to them in both: the same FTN; the ILM differs by its label only
            ftn_old = ftn_new
            ilm_old = _ilm_key(old, ftn_old)
        else:
            ftn_old = _ftn_key(old)
            ilm_old = _ilm_key(old, ftn_old)
        if ftn_new is not None or ilm_new is not None:
            self._rows[p] = row
        elif old is not None:
            del self._rows[p]  # no entry to build: nothing to keep (a later row is new)
        if ftn_new is not None:
            if ftn_new != ftn_old:
                out.ftn_set.append((p, row))
                if ftn_old is None:
                    self._ftns += 1
        elif ftn_old is not None:
            out.ftn_del.append(p)
            self._ftns -= 1
        in_label = new
        old_in = old[1] if ilm_old is not None else None  # the label of the installed ILM
        if old_in is not None and (old_in != in_label or ilm_new is None):
            out.ilm_del.append(old_in)
            self._ilms -= 1
        if ilm_new is not None and (old_in != in_label or ilm_new != ilm_old):
            out.ilm_set.append((p, row))
            if old_in != in_label:
                self._ilms += 1

    def _name(self, pid: IPv4Address) -> str:
        return self._names.get(pid) or self._names.setdefault(pid, str(pid))

    def _ftn_entry(self, p: IPv4Network, row: tuple) -> FtnEntry:
        return FtnEntry(p, tuple(Nhlfe(self._name(pid), nh.interface, nh.address,
                                       _out_labels(label), "push")
                                 for nh, pid, label in _hops(row)))

    def _ilm_entry(self, p: IPv4Network, row: tuple) -> IlmEntry:
        if len(row) > 2:
            nhs = tuple(Nhlfe(self._name(pid), nh.interface, nh.address, _out_labels(label),
                              "pop" if label == IMPLICIT_NULL else "swap")
                        for nh, pid, label in _hops(row))
        else:
            nhs = tuple(_untagged(row[0]))
        return IlmEntry(row[1], p, nhs)

    # ============================================================== A.2 common procedures

    def _tx(self, peer: Peer, msg: Any) -> None:
        if peer.tx is not None:
            peer.tx(msg)
        else:
            self.send(peer.lsr_id, msg)

    def _send_mapping(self, peer: Peer, p: IPv4Network, label: int,
                      request_msg_id: int | None = None) -> None:
        """Send_Label (A.2.1): SL.4 send the mapping (SL.6-7: answering a request
        carries its message ID), SL.5 record it (`Peer.advertised`: our binding).
        Skipped: SL.9-14 (no label resources: a range runs out with an error instead)."""
        if request_msg_id is None and self.encode_mapping is not None and peer.tx is not None:
            peer.tx(self.encode_mapping(self.next_msg_id(), p, label))
            return
        self._tx(peer, LabelMapping(self.next_msg_id(), (PrefixFec(p),), label,
                                    request_msg_id=request_msg_id))

    def _send_withdraw(self, peer: Peer, p: IPv4Network, label: int) -> None:
        """Send_Label_Withdraw (A.2.3): SWd.2 record it -- the label waits for the
        peer's Release before reuse (§3.5.10) -- and SWd.1 send it."""
        peer.withdrawn[p] = label
        if label >= MIN_UNRESERVED:
            self.holds.setdefault(label, set()).add(peer.lsr_id)
        self._tx(peer, LabelWithdraw(self.next_msg_id(), (PrefixFec(p),), label))

    def _send_release(self, peer: Peer, p: IPv4Network, label: int) -> None:
        """Send_Message (A.2.5) of a Label Release for one FEC and label."""
        self._tx(peer, LabelRelease(self.next_msg_id(), (PrefixFec(p),), label))

    # ============================================================== helpers

    def _unbind_address(self, addr: IPv4Address, lsr_id: IPv4Address) -> int:
        """`lsr_id` no longer owns `addr`; another peer that still lists it takes over.
        Returns int(addr): the caller marks the FECs routed through it (`_routed_via`)."""
        a = int(addr)
        if self.addr_peer.get(a) == lsr_id:
            other = next((pid for pid in sorted(self.peers)
                          if pid != lsr_id and addr in self.peers[pid].addresses), None)
            if other is None:
                del self.addr_peer[a]
                self._addr_peer.pop(a, None)
            else:
                self.addr_peer[a] = other
                self._addr_peer[a] = self.peers[other]
            self._nh_peers.clear()
        return a

    def _is_nexthop(self, peer: Peer, p: IPv4Network) -> bool:
        """Is `peer` a next hop of FEC (any of its ECMP next hops' addresses is one the
        peer sent)?"""
        r = self.rib.get(p)
        if r is None or not r.nexthops or not (self._all_fecs or p.prefixlen == 32):
            return False
        t = r.nexthops
        hit = self._nh_peers.get(id(t))
        if hit is None or hit[0] is not t:
            peers = frozenset(x.key for _, a in self._nh_pairs(t)
                              if (x := self._addr_peer.get(a)) is not None)
            if len(self._nh_peers) >= 4096:
                self._nh_peers.clear()
            hit = self._nh_peers[id(t)] = (t, peers)  # the tuple is held: its id stays its
        return peer.key in hit[1]

    def _unhold(self, label: int, lsr_id: IPv4Address) -> None:
        waiting = self.holds.get(label)
        if waiting is None:
            return
        waiting.discard(lsr_id)
        if not waiting:
            del self.holds[label]
            self._maybe_free(label)

    def _maybe_free(self, label: int) -> None:
        if label >= MIN_UNRESERVED and label not in self.holds and label not in self._bound:
            self.labels.free(label)
            self._label_freed()

    def _label_freed(self) -> None:
        """A label is free again: the FECs that found none try again at commit (SL.12)."""
        if self.starved:
            self.dirty |= self.starved
            self.starved = set()

    @property
    def _bound(self) -> set[int]:
        return set(self.local.values())

    def _nexthop_label(self, p: IPv4Network) -> list[tuple[object, IPv4Address, int]]:
        """(IGP next hop, peer LSR ID, label) for each next hop whose peer mapped `p`."""
        out = []
        i = p.idx  # type: ignore[attr-defined]  # (dirty FECs are interned)
        for nh, a in self._nhs(p):
            peer = self._addr_peer.get(a)
            if peer is None:
                continue
            labels = peer.lib.labels  # peer.lib.get(p), inlined
            if i < len(labels):
                label = labels[i]
                if label != NONE:
                    out.append((nh, peer.lsr_id, label))
        return out

    # ============================================================== views

    def bindings(self) -> list[dict]:
        """LIB view: per FEC our local label and every peer's label (peers as LSR IDs)."""
        fecs = set(self.local)
        for peer in self.peers.values():
            fecs |= set(peer.lib)
        out = []
        for p in sorted(fecs, key=fec_key):
            remote = [
                {"neighbor": str(pid), "label": self.peers[pid].lib[p]}
                for pid in sorted(self.peers)
                if p in self.peers[pid].lib
            ]
            out.append({"fec": str(p), "local_label": self.local.get(p), "remote": remote})
        return out


def _hops(row: tuple) -> Iterator[tuple]:
    """(next hop, peer, label) of each next hop with a label, in a row."""
    return zip(row[2::3], row[3::3], row[4::3], strict=True)


def _same_labels(row: tuple, usable: list) -> bool:
    """A row's next hops have the same (peer, label) as `usable`'s, in order."""
    if len(row) != 2 + 3 * len(usable):
        return False
    k = 3
    for _, pid, label in usable:
        if row[k] != pid or row[k + 1] != label:
            return False
        k += 3
    return True


def _ftn_key(row: tuple) -> tuple | None:
    """What a FEC's FTN entry is made of (None: no entry), from a row of a FEC: per next
    hop that has a label, (peer, interface, address, label); the NHLFE is a function of
    exactly these."""
    route = row[0]
    if route is None or not route.nexthops or len(row) == 2:
        return None
    return tuple([(pid, nh.interface, nh.address, label) for nh, pid, label in _hops(row)])


def _ilm_key(row: tuple, ftn: tuple | None) -> tuple | None:
    """What a FEC's ILM entry is made of (None: no entry): its in-label, and the FTN's
    next hops (swap or pop) or, before any downstream label, the route's (untagged)."""
    route, new = row[0], row[1]
    if new is None or new < MIN_UNRESERVED:
        return None
    if ftn is not None:
        return (new, ftn)
    if route is None or not route.nexthops or len(row) > 2:
        return None
    return (new, "untagged", tuple([(nh.neighbor, nh.interface, nh.address)
                                    for nh in route.nexthops]))


def _out_labels(label: int) -> tuple[int, ...]:
    return () if label == IMPLICIT_NULL else (label,)


class _FtnView(Mapping[IPv4Network, FtnEntry]):
    """The FTN of an `Lde`, its entries built from the rows when read."""

    def __init__(self, lde: Lde) -> None:
        self._lde = lde

    def __getitem__(self, p: IPv4Network) -> FtnEntry:
        row = self._lde._rows[p]
        if _ftn_key(row) is None:
            raise KeyError(p)
        return self._lde._ftn_entry(intern_fec(p), row)

    def __iter__(self) -> Iterator[IPv4Network]:
        return (p for p, row in list(self._lde._rows.items()) if _ftn_key(row) is not None)

    def __len__(self) -> int:
        return self._lde._ftns


class _IlmView(Mapping[int, IlmEntry]):
    """The ILM of an `Lde` (in-label -> entry), built from the rows when read (the label
    of each FEC with an ILM entry, found by a pass over the rows, kept while they stay)."""

    def __init__(self, lde: Lde) -> None:
        self._lde = lde
        self._index: tuple[dict, dict[int, IPv4Network]] | None = None

    def _by_label(self) -> dict[int, IPv4Network]:
        rows = self._lde._rows
        if self._index is None or self._index[0] != rows:  # rows changed since: again
            idx = {row[1]: p for p, row in rows.items() if _ilm_key(row, _ftn_key(row))}
            self._index = (dict(rows), idx)
        return self._index[1]

    def __getitem__(self, label: int) -> IlmEntry:
        p = self._by_label()[label]
        return self._lde._ilm_entry(p, self._lde._rows[p])

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._by_label()))

    def __len__(self) -> int:
        return self._lde._ilms


@dataclass
class _DiffBuilder:
    """The LFIB changes of one commit, in the order they were decided: the entries set as
    (FEC, row), built when the diff is read (`_PendingDiff`)."""

    lde: Lde
    ftn_set: list[tuple[IPv4Network, tuple]] = field(default_factory=list)
    ftn_del: list[IPv4Network] = field(default_factory=list)
    ilm_set: list[tuple[IPv4Network, tuple]] = field(default_factory=list)
    ilm_del: list[int] = field(default_factory=list)

    def diff(self) -> LfibDiff | None:
        # an in-label removed for one FEC and reused by another in the same commit stays
        reused = {row[1] for _, row in self.ilm_set}  # each entry's in-label
        ilm_del = [x for x in self.ilm_del if x not in reused]
        if not (self.ftn_set or self.ftn_del or self.ilm_set or ilm_del):
            return None
        return _PendingDiff(self.lde, tuple(self.ftn_set), tuple(self.ftn_del),
                            tuple(self.ilm_set), tuple(ilm_del))


class _PendingDiff(LfibDiff):
    """An `LfibDiff` whose set entries are built from their rows when first read: a
    simulator that only notes that the LFIB changed never builds them (several objects
    an entry). Rows are immutable, so the entries are those of the commit."""

    def __init__(self, lde: Lde, ftn: tuple, ftn_del: tuple, ilm: tuple, ilm_del: tuple) -> None:
        object.__setattr__(self, "_lde", lde)
        object.__setattr__(self, "_rows", (ftn, ilm))
        object.__setattr__(self, "_built", None)
        object.__setattr__(self, "_dels", (ftn_del, ilm_del))

    def _entries(self) -> tuple[tuple[FtnEntry, ...], tuple[IlmEntry, ...]]:
        built = self._built  # type: ignore[has-type]
        if built is None:
            lde = self._lde  # type: ignore[has-type]
            ftn, ilm = self._rows  # type: ignore[has-type]
            built = (tuple(lde._ftn_entry(p, row) for p, row in ftn),
                     tuple(lde._ilm_entry(p, row) for p, row in ilm))
            object.__setattr__(self, "_built", built)
        return built  # type: ignore[no-any-return]

    @property  # type: ignore[override]
    def ftn_set(self) -> tuple[FtnEntry, ...]:
        return self._entries()[0]

    @property  # type: ignore[override]
    def ilm_set(self) -> tuple[IlmEntry, ...]:
        return self._entries()[1]

    @property  # type: ignore[override]
    def ftn_del(self) -> tuple[IPv4Network, ...]:
        return self._dels[0]  # type: ignore[has-type, no-any-return]

    @property  # type: ignore[override]
    def ilm_del(self) -> tuple[int, ...]:
        return self._dels[1]  # type: ignore[has-type, no-any-return]

    def __bool__(self) -> bool:
        return True  # made only when something changed

    def __repr__(self) -> str:
        return (f"LfibDiff(ftn_set={self.ftn_set!r}, ftn_del={self.ftn_del!r}, "
                f"ilm_set={self.ilm_set!r}, ilm_del={self.ilm_del!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LfibDiff):
            return NotImplemented
        return (self.ftn_set, self.ftn_del, self.ilm_set, self.ilm_del) == \
            (other.ftn_set, other.ftn_del, other.ilm_set, other.ilm_del)

    def __hash__(self) -> int:
        return hash((self.ftn_set, self.ftn_del, self.ilm_set, self.ilm_del))


def _untagged(route: Route) -> list[Nhlfe]:
    """The ILM of a FEC we advertise a label for while no next hop has mapped it yet.

    Independent control (RFC 5036 §2.6.1.1) advertises a label "whenever [the LSR] is
    prepared to label-switch that FEC", so the label must forward from the moment it is
    advertised, not only once the next hop's mapping arrives: after a restart our
    sessions come up in any order, and an upstream peer that got our label before our
    downstream peer gave us its own would push into a label we drop (no-ilm-entry).
    Until a downstream label exists the label is "untagged" (RFC 8029's return code 9,
    "label switched but no MPLS forwarding"; Cisco's "untagged", FRR's
    allow-broken-lsps): pop it and send the packet as IP to the IGP next hops -- an
    NHLFE whose operation is to pop the stack (RFC 3031 §3.10), which is what the LSP
    would have done one hop later. The label is bound to this FEC, so this is not the
    invalid-label case of RFC 3031 §3.18; the dataplane still discards an untagged
    label with labels below it (the next hop would read a label it never allocated).
    Ordered control (§2.6.1.2) never gets here: it binds no label before the next
    hop's mapping.
    """
    return [Nhlfe(nh.neighbor, nh.interface, nh.address, (), "untagged")
            for nh in route.nexthops]


def _ipv4_prefixes(fecs: tuple) -> list[Fec]:
    """The IPv4 Prefix FEC elements of a FEC TLV, interned; other elements are not ours."""
    return [intern_fec(f.prefix) for f in fecs
            if isinstance(f, PrefixFec) and isinstance(f.prefix, IPv4Network)]


# Receive procedures of App. A (and §3.5.5.1 / §3.5.6.1), by message type.
_PROCEDURES: dict[type, Callable[[Lde, Peer, Any], None]] = {
    Address: Lde.recv_address,
    AddressWithdraw: Lde.recv_address_withdraw,
    LabelMapping: Lde.recv_label_mapping,
    LabelRequest: Lde.recv_label_request,
    LabelWithdraw: Lde.recv_label_withdraw,
    LabelRelease: Lde.recv_label_release,
    LabelAbortRequest: Lde.recv_label_abort,
}
