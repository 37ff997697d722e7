"""LDP Basic Discovery: Link Hellos and Hello adjacencies (RFC 5036 §2.4.1, §3.5.2).

Pure: `Discovery` builds Hello PDUs, validates received ones and keeps the
adjacency table keyed by (interface, LSR ID). It returns what changed; the
instance turns that into session work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from ldp.events import Action, CancelTimer, LogEvent, SendHello, StartTimer
from ldp.messages import Hello, LdpId, Pdu

DEFAULT_LINK_HOLDTIME = 15  # §3.5.2: Hold Time 0 in a Link Hello means 15 s
INFINITE_HOLDTIME = 0xFFFF


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
            return None
        try:
            pdu = self.codec.decode_pdu(data)
        except Exception as e:  # codec.DecodeError: a bad Hello is dropped (§3.5.1.1)
            out.append(LogEvent("debug", f"{ifname}: bad Hello from {src}: {e}"))
            return None
        if pdu.ldp_id.label_space != 0 or pdu.ldp_id.lsr_id == self.ldp_id.lsr_id:
            return None
        if not pdu.messages or not isinstance(pdu.messages[0], Hello):
            return None  # FRR also looks only at the first message of a UDP PDU
        hello: Hello = pdu.messages[0]
        if hello.targeted:
            return None  # only Basic Discovery is implemented
        transport = hello.transport_address or src
        if not isinstance(transport, IPv4Address) or not usable_transport(transport):
            out.append(LogEvent("warning", f"{ifname}: Hello from {src} with bad transport {transport}"))
            return None
        self.hellos_received += 1
        lsr_id = pdu.ldp_id.lsr_id
        hold = negotiate_holdtime(self.hello_holdtime, hello.holdtime)
        key = (ifname, lsr_id)
        adj = self.adjacencies.get(key)
        is_new = adj is None
        if adj is None:
            adj = Adjacency(ifname, lsr_id, src, transport, hold, now, now, hello.gtsm)
            self.adjacencies[key] = adj
        else:
            adj.last_seen = now
            adj.source = src
            adj.transport = transport
            adj.holdtime = hold
            adj.gtsm = hello.gtsm
        if hold != INFINITE_HOLDTIME:
            out.append(StartTimer(adj.timer, float(hold)))
        return adj, is_new

    def expire(self, ifname: str, lsr_id: IPv4Address) -> Adjacency | None:
        """Hold timer ran out (§2.4): the adjacency goes."""
        return self.adjacencies.pop((ifname, lsr_id), None)

    def interface_down(self, ifname: str, out: list[Action]) -> list[Adjacency]:
        """Stop Hellos on `ifname`; return its adjacencies, now removed."""
        self.up.discard(ifname)
        out.append(CancelTimer(hello_timer(ifname)))
        gone = [a for k, a in sorted(self.adjacencies.items()) if k[0] == ifname]
        for a in gone:
            del self.adjacencies[(a.ifname, a.lsr_id)]
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
