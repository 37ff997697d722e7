"""LDP Basic Discovery: Link Hellos and Hello adjacencies (RFC 5036 §2.4.1, §3.5.2).

Pure: `Discovery` builds Hello PDUs, validates received ones and keeps the
adjacency table keyed by (interface, LSR ID). It returns what changed; the
instance turns that into session work.

Flood bounds: a Hello from a new LSR ID costs a session, maybe a TCP connect and
an fd, so new adjacencies are policed per interface -- at most `max_adjacencies`
at once and `adjacency_rate` new ones a second (a token bucket on the driver's
`now`, a burst of ADJ_BURST). Hellos that refresh an existing adjacency are never
refused, so a flood of made-up LSR IDs cannot take a real neighbour down. Every
refused or dropped Hello is counted in `refused` (reason -> count).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from ldp.events import Action, CancelTimer, LogEvent, SendHello, StartTimer
from ldp.messages import Hello, LdpId, Pdu
from lsr.core.bucket import TokenBucket

DEFAULT_LINK_HOLDTIME = 15  # §3.5.2: Hold Time 0 in a Link Hello means 15 s
INFINITE_HOLDTIME = 0xFFFF
ADJ_BURST = 4  # new adjacencies an interface may take at once before `adjacency_rate` applies
REFUSAL_LOG_INTERVAL = 10.0  # s: one log line per (interface, reason) at most this often

# `Discovery.refused` keys: why a received Hello formed no adjacency.
HELLO_ADJACENCY_LIMIT = "hello-adjacency-limit"  # the interface has max_adjacencies already
HELLO_RATE_LIMIT = "hello-rate-limit"  # new adjacencies over adjacency_rate on the interface
HELLO_NOT_LDP = "hello-not-ldp-interface"  # LDP is not enabled on the interface
HELLO_IF_DOWN = "hello-interface-down"  # LDP interface down (a Hello that raced the carrier)
HELLO_MALFORMED = "hello-malformed"  # not a decodable Link Hello PDU (§3.5.1.1)
HELLO_BAD_TRANSPORT = "hello-bad-transport"  # unusable Transport Address (§3.5.2), or ours


@dataclass
class Adjacency:
    """A Hello adjacency (§2.4): one per (interface, peer LSR ID)."""

    ifname: str
    lsr_id: IPv4Address
    source: IPv4Address  # IP source of the Hellos
    transport: IPv4Address  # Transport Address TLV, or the source (§3.5.2)
    holdtime: int  # negotiated: min(ours, theirs)
    created: float
    last_seen: float
    gtsm: bool = False  # G bit of the peer's last Link Hello (RFC 6720 §3)

    @property
    def timer(self) -> str:
        return adj_timer(self.ifname, self.lsr_id)


def adj_timer(ifname: str, lsr_id: IPv4Address) -> str:
    return f"adj:{ifname}:{lsr_id}"


def hello_timer(ifname: str) -> str:
    return f"hello:{ifname}"


def negotiate_holdtime(ours: int, theirs: int) -> int:
    """§3.5.2: 0 means the default (15 s for link Hellos); the smaller proposal wins."""
    ours = ours or DEFAULT_LINK_HOLDTIME
    theirs = theirs or DEFAULT_LINK_HOLDTIME
    return min(ours, theirs)


def usable_transport(addr: IPv4Address) -> bool:
    return not (addr.is_unspecified or addr.is_multicast or addr.is_loopback
                or addr == IPv4Address("255.255.255.255"))


class Discovery:
    """Link Hellos on our LDP interfaces and the adjacencies they form."""

    def __init__(
        self,
        ldp_id: LdpId,
        transport: IPv4Address,
        interfaces: dict[str, IPv4Interface],
        hello_interval: float,
        hello_holdtime: int,
        codec: Any,
        next_msg_id: Callable[[], int],
        gtsm: bool = False,
        max_adjacencies: int = 16,
        adjacency_rate: float = 2.0,
    ) -> None:
        self.ldp_id = ldp_id
        self.transport = transport
        self.interfaces = dict(interfaces)
        self.hello_interval = hello_interval
        self.hello_holdtime = hello_holdtime
        self.codec = codec
        self.next_msg_id = next_msg_id
        self.gtsm = gtsm  # RFC 6720: set G in our Link Hellos
        self.up: set[str] = set()
        self.adjacencies: dict[tuple[str, IPv4Address], Adjacency] = {}
        self.hellos_sent = 0
        self.hellos_received = 0
        self.max_adjacencies = max_adjacencies
        self.adjacency_rate = adjacency_rate
        self.buckets: dict[str, TokenBucket] = {}
        self.per_if: dict[str, int] = {}  # interface -> adjacencies on it
        self.refused: dict[str, int] = {}  # reason -> Hellos refused or dropped
        self._refusal_logged: dict[tuple[str, str], tuple[float, int]] = {}

    # -------------------------------------------------------------- sending

    def hello(self, ifname: str) -> SendHello:
        """One Link Hello PDU (§3.5.2) with our transport address (§2.5.2)."""
        msg = Hello(self.next_msg_id(), self.hello_holdtime, gtsm=self.gtsm,
                    transport_address=self.transport)
        self.hellos_sent += 1
        data = self.codec.encode_pdu(Pdu(self.ldp_id, (msg,)))
        return SendHello(ifname, data, self.interfaces[ifname].ip)

    def start_interface(self, ifname: str, out: list[Action]) -> None:
        if ifname not in self.interfaces or ifname in self.up:
            return
        self.up.add(ifname)
        out.append(self.hello(ifname))
        out.append(StartTimer(hello_timer(ifname), self.hello_interval))

    def hello_timer_expired(self, ifname: str, out: list[Action]) -> None:
        if ifname not in self.up:
            return
        out.append(self.hello(ifname))
        out.append(StartTimer(hello_timer(ifname), self.hello_interval))

    # -------------------------------------------------------------- receiving

    def receive(
        self, ifname: str, src: IPv4Address, data: bytes, now: float, out: list[Action]
    ) -> tuple[Adjacency, bool] | None:
        """Process one received Hello datagram; (adjacency, is_new) or None if ignored."""
        if ifname not in self.up:
            if ifname not in self.interfaces:
                # §2.4.1: Basic Discovery runs on the interfaces configured for LDP only.
                self._refuse(ifname, HELLO_NOT_LDP, now, out)
            else:  # down, or no address: a Hello that raced the carrier event
                self.refused[HELLO_IF_DOWN] = self.refused.get(HELLO_IF_DOWN, 0) + 1
            return None
        try:
            pdu = self.codec.decode_pdu(data)
        except Exception as e:  # codec.DecodeError: a bad Hello is dropped (§3.5.1.1)
            self._refuse(ifname, HELLO_MALFORMED, now, out, f"from {src}: {e}")
            return None
        if pdu.ldp_id.label_space != 0 or pdu.ldp_id.lsr_id == self.ldp_id.lsr_id:
            return None
        if not pdu.messages or not isinstance(pdu.messages[0], Hello):
            return None  # FRR also looks only at the first message of a UDP PDU
        hello: Hello = pdu.messages[0]
        if hello.targeted:
            return None  # only Basic Discovery is implemented
        transport = hello.transport_address or src
        if not isinstance(transport, IPv4Address) or not usable_transport(transport) \
                or self._ours(transport):  # one of ours: we would connect to ourselves
            self._refuse(ifname, HELLO_BAD_TRANSPORT, now, out, f"from {src}: {transport}")
            return None
        lsr_id = pdu.ldp_id.lsr_id
        key = (ifname, lsr_id)
        adj = self.adjacencies.get(key)
        is_new = adj is None
        if adj is None:
            # A new adjacency: within the interface's bounds, or refused (counted).
            if self.per_if.get(ifname, 0) >= self.max_adjacencies:
                self._refuse(ifname, HELLO_ADJACENCY_LIMIT, now, out)
                return None
            bucket = self.buckets.get(ifname)
            if bucket is None:
                bucket = self.buckets[ifname] = TokenBucket(
                    self.adjacency_rate, max(1.0, min(ADJ_BURST, self.max_adjacencies)))
            if not bucket.take(now):
                self._refuse(ifname, HELLO_RATE_LIMIT, now, out)
                return None
        self.hellos_received += 1
        hold = negotiate_holdtime(self.hello_holdtime, hello.holdtime)
        if adj is None:
            adj = Adjacency(ifname, lsr_id, src, transport, hold, now, now, hello.gtsm)
            self.adjacencies[key] = adj
            self.per_if[ifname] = self.per_if.get(ifname, 0) + 1
        else:
            adj.last_seen = now
            adj.source = src
            adj.transport = transport
            adj.holdtime = hold
            adj.gtsm = hello.gtsm
        if hold != INFINITE_HOLDTIME:
            out.append(StartTimer(adj.timer, float(hold)))
        return adj, is_new

    def _ours(self, addr: IPv4Address) -> bool:
        return addr == self.transport or any(i.ip == addr for i in self.interfaces.values())

    def _refuse(self, ifname: str, reason: str, now: float, out: list[Action],
                detail: str = "") -> None:
        """Count a refused Hello; log it at most once per REFUSAL_LOG_INTERVAL per
        (interface, reason), with how many were refused since (never a line per packet)."""
        self.refused[reason] = self.refused.get(reason, 0) + 1
        k = (ifname, reason)
        last, count = self._refusal_logged.get(k, (None, 0))
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            self._refusal_logged[k] = (last, count + 1)
            return
        self._refusal_logged[k] = (now, 0)
        since = f" ({count} more since the last report)" if count else ""
        out.append(LogEvent("warning", f"{ifname}: Hello refused: {reason}"
                                       f"{': ' + detail if detail else ''}{since}"))

    def _forget(self, adj: Adjacency) -> None:
        n = self.per_if.get(adj.ifname, 0) - 1
        if n > 0:
            self.per_if[adj.ifname] = n
        else:
            self.per_if.pop(adj.ifname, None)

    def expire(self, ifname: str, lsr_id: IPv4Address) -> Adjacency | None:
        """Hold timer ran out (§2.4): the adjacency goes."""
        adj = self.adjacencies.pop((ifname, lsr_id), None)
        if adj is not None:
            self._forget(adj)
        return adj

    def interface_down(self, ifname: str, out: list[Action]) -> list[Adjacency]:
        """Stop Hellos on `ifname`; return its adjacencies, now removed."""
        self.up.discard(ifname)
        out.append(CancelTimer(hello_timer(ifname)))
        gone = [a for k, a in sorted(self.adjacencies.items()) if k[0] == ifname]
        for a in gone:
            del self.adjacencies[(a.ifname, a.lsr_id)]
            self._forget(a)
            out.append(CancelTimer(a.timer))
        return gone

    def gtsm_negotiated(self, lsr_id: IPv4Address) -> bool:
        """RFC 6720 §3: GTSM is used for the session with `lsr_id` when we set G and
        the peer set G in its Link Hellos (every adjacency's last one, here).

        Only Link Hellos exist in this speaker; a Targeted Hello adjacency (its G
        bit is meaningless, the peer may be several hops away) would disable it.
        """
        adjs = self.of_peer(lsr_id)
        return self.gtsm and bool(adjs) and all(a.gtsm for a in adjs)

    def of_peer(self, lsr_id: IPv4Address) -> list[Adjacency]:
        return [a for (_, lid), a in sorted(self.adjacencies.items()) if lid == lsr_id]
