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

Peers are identified by LSR ID; `Nhlfe.neighbor` is ``str(lsr_id)`` here and
the view layer translates it to a node name.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from ldp.messages import (
    Address,
    AddressWithdraw,
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
from lsr.core.topology import LdpOptions


def fec_key(p: IPv4Network) -> tuple[int, int]:
    return (int(p.network_address), p.prefixlen)


def _sort_key(p: IPv4Network) -> tuple[int, int]:
    return p.sort_key  # type: ignore[attr-defined]


class Fec(IPv4Network):
    """An interned IPv4 prefix FEC with a cached hash (ipaddress hashes are slow).

    Equal to, and hashes like, the plain IPv4Network; the LDE converts every
    prefix it keeps to one shared `Fec` object, so dict lookups are cheap.
    """

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"IPv4Network('{self}')"


_FECS: dict[IPv4Network, Fec] = {}


def intern_fec(p: IPv4Network) -> Fec:
    f = _FECS.get(p)
    if f is None:
        f = Fec(p)
        f._hash = IPv4Network.__hash__(f)
        f.sort_key = fec_key(f)
        _FECS[f] = f
    return f


@dataclass
class Peer:
    """What we know about one operational session's peer."""

    lsr_id: IPv4Address
    addresses: set[IPv4Address] = field(default_factory=set)
    lib: dict[IPv4Network, int] = field(default_factory=dict)  # mappings received (LIB)
    advertised: dict[IPv4Network, int] = field(default_factory=dict)  # mappings sent
    withdrawn: dict[IPv4Network, int] = field(default_factory=dict)  # awaiting Release
    requested: set[IPv4Network] = field(default_factory=set)  # Label Requests outstanding


class LabelAllocator:
    """Lowest free label of [lo, hi] first; never 0-15."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo = max(lo, MIN_UNRESERVED)
        self.hi = hi
        self.next = self.lo
        self.freed: list[int] = []

    def alloc(self) -> int:
        if self.freed and self.freed[0] < self.next:
            return heapq.heappop(self.freed)
        if self.next > self.hi:
            raise RuntimeError("label range exhausted")
        self.next += 1
        return self.next - 1

    def free(self, label: int) -> None:
        heapq.heappush(self.freed, label)


class Lde:
    def __init__(
        self,
        lsr_id: IPv4Address,
        label_range: tuple[int, int],
        options: LdpOptions,
        send: Callable[[IPv4Address, Message], None],
        next_msg_id: Callable[[], int],
        log: Callable[[str, str], None] = lambda level, text: None,
    ) -> None:
        self.lsr_id = lsr_id
        self.options = options
        self.send = send
        self.next_msg_id = next_msg_id
        self.log = log
        self.labels = LabelAllocator(*label_range)
        self.rib: dict[IPv4Network, Route] = {}
        self.fecs: set[IPv4Network] = set()
        self.local: dict[IPv4Network, int] = {}  # local bindings
        self.holds: dict[int, set[IPv4Address]] = {}  # withdrawn label -> peers yet to release
        self.peers: dict[IPv4Address, Peer] = {}
        self.addr_peer: dict[int, IPv4Address] = {}  # int(peer address) -> peer LSR ID
        self.nh_index: dict[int, set[IPv4Network]] = {}  # int(next-hop address) -> FECs
        self.route_nh: dict[IPv4Network, tuple] = {}  # FEC -> ((Nexthop, int(address)), ...)
        self._sig: dict[IPv4Network, tuple] = {}
        self._names: dict[IPv4Address, str] = {}  # FEC -> inputs of its last FTN/ILM
        self.ilm_of: dict[IPv4Network, int] = {}
        self.lfib = Lfib()
        self.dirty: set[IPv4Network] = set()
        self._diff: dict[str, dict] = {"ftn_set": {}, "ftn_del": {}, "ilm_set": {}, "ilm_del": {}}

    # -------------------------------------------------------------- inputs

    def rib_changed(self, rib: dict[IPv4Network, Route]) -> None:
        old = self.rib
        rib = {intern_fec(p): r for p, r in rib.items()}
        self.rib = rib
        want = self.options.fecs
        fecs = {p for p in rib if want == "all" or p.prefixlen == 32}
        changed = {p for p in fecs | self.fecs if old.get(p) != rib.get(p)}
        self.fecs = fecs
        self.nh_index = {}
        self.route_nh = {}
        for p in fecs:
            nhs = tuple((nh, int(nh.address)) for nh in rib[p].nexthops)
            self.route_nh[p] = nhs
            for _, a in nhs:
                self.nh_index.setdefault(a, set()).add(p)
        self.dirty |= changed
        if self.options.retention == "conservative":
            for peer in self.peers.values():
                for p in sorted(changed & peer.lib.keys(), key=fec_key):
                    if not self._is_nexthop(peer, p):
                        self._release(peer, p, peer.lib.pop(p))
            # A new next hop whose mapping we released: ask for it again (RFC 5036 A.1.7).
            for p in sorted(changed & fecs, key=fec_key):
                for _, a in self.route_nh[p]:
                    pid = self.addr_peer.get(a)
                    peer = self.peers.get(pid) if pid is not None else None
                    if peer is not None and p not in peer.lib and p not in peer.requested:
                        peer.requested.add(p)
                        self.send(peer.lsr_id, LabelRequest(self.next_msg_id(), (PrefixFec(p),)))

    def peer_up(self, lsr_id: IPv4Address, addresses: list[IPv4Address]) -> None:
        """Session OPERATIONAL: send our Address list (§2.5.5 / §3.5.5), then mappings."""
        peer = self.peers[lsr_id] = Peer(lsr_id)
        self.send(lsr_id, Address(self.next_msg_id(), tuple(addresses)))
        # DU (§2.6.3): every current local binding, in FEC order. The new peer has
        # sent no mapping yet, so the FTN/ILM cannot change: no FEC becomes dirty.
        for p in sorted(self.local, key=fec_key):
            label = self.local[p]
            peer.advertised[p] = label
            self.send(lsr_id, LabelMapping(self.next_msg_id(), (PrefixFec(p),), label))

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

    def peer_down(self, lsr_id: IPv4Address) -> None:
        peer = self.peers.pop(lsr_id, None)
        if peer is None:
            return
        self.dirty |= set(peer.lib)
        for addr in sorted(peer.addresses):
            self._unbind_address(addr, lsr_id)
        for label, waiting in list(self.holds.items()):
            waiting.discard(lsr_id)
            if not waiting:
                del self.holds[label]
                self._maybe_free(label)

    def receive(self, lsr_id: IPv4Address, msg: Message) -> None:
        """A label distribution message from an OPERATIONAL session."""
        peer = self.peers.get(lsr_id)
        if peer is None:
            return
        if isinstance(msg, Address):
            for a in msg.addresses:
                if isinstance(a, IPv4Address):
                    peer.addresses.add(a)
                    self.addr_peer[int(a)] = lsr_id
                    self.dirty |= self.nh_index.get(int(a), set())
        elif isinstance(msg, AddressWithdraw):
            # §3.5.6: the peer no longer has these addresses: drop them from its
            # address set, so the IGP next hops that used them no longer map to
            # it (the FECs routed through them are recomputed: LFIB diff).
            for a in msg.addresses:
                if isinstance(a, IPv4Address) and a in peer.addresses:
                    peer.addresses.discard(a)
                    self._unbind_address(a, lsr_id)
        elif isinstance(msg, LabelMapping):
            for fec in msg.fec:
                if not isinstance(fec, PrefixFec) or not isinstance(fec.prefix, IPv4Network):
                    continue
                p = intern_fec(fec.prefix)
                if self.options.retention == "conservative" and not self._is_nexthop(peer, p):
                    self._release(peer, p, msg.label)  # §2.6.2.2
                    continue
                peer.lib[p] = msg.label
                peer.requested.discard(p)
                self.dirty.add(p)
        elif isinstance(msg, LabelWithdraw):
            # §3.5.10: remove the mapping and answer with a Label Release.
            if any(isinstance(f, WildcardFec) for f in msg.fec):
                gone = list(peer.lib)
            else:
                gone = [intern_fec(f.prefix) for f in msg.fec if isinstance(f, PrefixFec)]
            for p in gone:
                if msg.label is None or peer.lib.get(p) == msg.label:
                    peer.lib.pop(p, None)
                self.dirty.add(p)
            self.send(lsr_id, LabelRelease(self.next_msg_id(), msg.fec, msg.label))
        elif isinstance(msg, LabelRelease):
            if any(isinstance(f, WildcardFec) for f in msg.fec):
                done = list(peer.withdrawn)
            else:
                done = [intern_fec(f.prefix) for f in msg.fec if isinstance(f, PrefixFec)]
            for p in done:
                label = peer.withdrawn.pop(p, None)
                if label is not None:
                    self._unhold(label, lsr_id)
        elif isinstance(msg, LabelRequest):
            # DoD is not used on our links (§3.5.3 A bit): answer from the local binding.
            for f in msg.fec:
                if isinstance(f, PrefixFec) and f.prefix in self.local:
                    label = self.local[f.prefix]
                    peer.advertised[f.prefix] = label
                    self.send(lsr_id, LabelMapping(self.next_msg_id(), (f,), label,
                                                   request_msg_id=msg.msg_id))
                else:
                    self.send(lsr_id, Notification(self.next_msg_id(), Status.of(
                        StatusCode.NO_ROUTE, msg.msg_id, 0x0401)))
        # Label Abort Request, Notifications: nothing to do in DU mode.

    # -------------------------------------------------------------- helpers

    def _unbind_address(self, addr: IPv4Address, lsr_id: IPv4Address) -> None:
        """`lsr_id` no longer owns `addr`; another peer that still lists it takes over."""
        a = int(addr)
        if self.addr_peer.get(a) == lsr_id:
            other = next((pid for pid in sorted(self.peers)
                          if pid != lsr_id and addr in self.peers[pid].addresses), None)
            if other is None:
                del self.addr_peer[a]
            else:
                self.addr_peer[a] = other
        self.dirty |= self.nh_index.get(a, set())

    def _is_nexthop(self, peer: Peer, p: IPv4Network) -> bool:
        return any(self.addr_peer.get(a) == peer.lsr_id for _, a in self.route_nh.get(p, ()))

    def _release(self, peer: Peer, p: IPv4Network, label: int) -> None:
        self.send(peer.lsr_id, LabelRelease(self.next_msg_id(), (PrefixFec(p),), label))

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

    @property
    def _bound(self) -> set[int]:
        return set(self.local.values())

    def _nexthop_label(self, p: IPv4Network) -> list[tuple[object, IPv4Address, int]]:
        """(IGP next hop, peer LSR ID, label) for each next hop whose peer mapped `p`."""
        out = []
        for nh, a in self.route_nh.get(p, ()):
            pid = self.addr_peer.get(a)
            if pid is None:
                continue
            label = self.peers[pid].lib.get(p)
            if label is not None:
                out.append((nh, pid, label))
        return out

    def _desired_local(self, p: IPv4Network, usable: list) -> int | None:
        if p not in self.fecs:
            return None
        route = self.rib[p]
        if route.connected:  # egress (§2.6.1): our own prefix
            return IPV4_EXPLICIT_NULL if self.options.explicit_null else IMPLICIT_NULL
        if self.options.control == "ordered" and not usable:
            return None  # §2.6.1.2: wait for the next hop's mapping
        cur = self.local.get(p)
        if cur is not None and cur >= MIN_UNRESERVED:
            return cur
        return self.labels.alloc()

    # -------------------------------------------------------------- decisions

    def finish(self) -> LfibDiff | None:
        """Process dirty FECs (sorted): bindings, advertisements, LFIB. Returns the diff."""
        if not self.dirty:
            return None
        dirty = sorted(self.dirty, key=_sort_key)
        self.dirty = set()
        ftn_set: list[FtnEntry] = []
        ftn_del: list[IPv4Network] = []
        ilm_set: list[IlmEntry] = []
        ilm_del: list[int] = []
        peers = [self.peers[k] for k in sorted(self.peers)]
        for p in dirty:
            usable = self._nexthop_label(p)
            # --- local binding
            old = self.local.get(p)
            new = self._desired_local(p, usable)
            if new != old:
                if new is None:
                    del self.local[p]
                else:
                    self.local[p] = new
            # --- advertisements (DU: to every peer, §2.6.3)
            for peer in peers:
                have = peer.advertised.get(p)
                if have == new:
                    continue
                if have is not None:
                    # one Withdraw per FEC per peer; the label waits for the Release
                    del peer.advertised[p]
                    peer.withdrawn[p] = have
                    if have >= MIN_UNRESERVED:
                        self.holds.setdefault(have, set()).add(peer.lsr_id)
                    self.send(peer.lsr_id, LabelWithdraw(self.next_msg_id(), (PrefixFec(p),), have))
                if new is not None:
                    peer.advertised[p] = new
                    self.send(peer.lsr_id, LabelMapping(self.next_msg_id(), (PrefixFec(p),), new))
            if old is not None and old != new and old >= MIN_UNRESERVED and old not in self.holds:
                self.labels.free(old)
            # --- FTN and ILM (RFC 3031 §3.10-3.12)
            route = self.rib.get(p)
            sig = (route, new, p in self.fecs, tuple((pid, lbl) for _, pid, lbl in usable))
            if self._sig.get(p) == sig:
                continue  # same route, local label and downstream labels: LFIB unchanged
            self._sig[p] = sig
            ftn_nh: list[Nhlfe] = []
            ilm_nh: list[Nhlfe] = []
            if route is not None and p in self.fecs and not route.connected:
                for nh, pid, label in usable:
                    out = () if label == IMPLICIT_NULL else (label,)
                    nbr = self._names.get(pid) or self._names.setdefault(pid, str(pid))
                    ftn_nh.append(Nhlfe(nbr, nh.interface, nh.address, out, "push"))
                    ilm_nh.append(Nhlfe(nbr, nh.interface, nh.address, out,
                                        "pop" if label == IMPLICIT_NULL else "swap"))
            cur_ftn = self.lfib.ftn.get(p)
            if ftn_nh:
                e = FtnEntry(p, tuple(ftn_nh))
                if cur_ftn != e:
                    ftn_set.append(e)
                    self.lfib.ftn[p] = e
            elif cur_ftn is not None:
                ftn_del.append(p)
                del self.lfib.ftn[p]
            in_label = self.local.get(p)
            old_in = self.ilm_of.get(p)
            if old_in is not None and old_in != in_label or (old_in is not None and not ilm_nh):
                ilm_del.append(old_in)
                self.lfib.ilm.pop(old_in, None)
                del self.ilm_of[p]
            if ilm_nh and in_label is not None and in_label >= MIN_UNRESERVED:
                e2 = IlmEntry(in_label, p, tuple(ilm_nh))
                if self.lfib.ilm.get(in_label) != e2:
                    ilm_set.append(e2)
                    self.lfib.ilm[in_label] = e2
                    self.ilm_of[p] = in_label
        ilm_del = [x for x in ilm_del if x not in {e.in_label for e in ilm_set}]
        diff = LfibDiff(tuple(ftn_set), tuple(ftn_del), tuple(ilm_set), tuple(ilm_del))
        return diff if diff else None

    # -------------------------------------------------------------- views

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
