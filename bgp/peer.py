"""The state the speaker keeps per configured peer and per TCP connection.

A `Peer` may have two connections while a collision is resolved (RFC 4271 §6.8);
each `Conn` runs its own copy of the §8 FSM (`bgp.fsm`). With no connection the
peer is Idle (not started, or waiting to restart) or Active (waiting for the
ConnectRetryTimer or for the peer to connect). `bgp.instance` performs the
actions; nothing here sends anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from bgp.attrs import Ctx, PathAttrs
from bgp.config import PeerConfig
from bgp.fsm import State
from bgp.messages import MessageReader, Open
from bgp.nlri import Family, Nlri
from bgp.rib import Path

_ORDER = {State.IDLE: 0, State.ACTIVE: 1, State.CONNECT: 2, State.OPEN_SENT: 3,
          State.OPEN_CONFIRM: 4, State.ESTABLISHED: 5}
Key = tuple[Family, Nlri]


@dataclass(frozen=True)
class Advert:
    """What we sent a peer for one destination (its Adj-RIB-Out entry)."""

    attrs: PathAttrs
    next_hop: IPv4Address | IPv6Address
    label: int | None


class Conn:
    def __init__(self, cid: int, outgoing: bool) -> None:
        self.id = cid
        self.outgoing = outgoing  # initiated by us (§6.8 needs to know)
        self.state = State.CONNECT if outgoing else State.ACTIVE
        self.reader = MessageReader()
        self.open: Open | None = None  # the peer's OPEN
        self.hold = 0  # negotiated Hold Time (§4.2)
        self.keepalive = 0.0


class Peer:
    def __init__(self, cfg: PeerConfig, local_asn: int) -> None:
        self.cfg = cfg
        self.address = cfg.address
        self.ebgp = cfg.asn != local_asn
        self.enabled = False  # ManualStart given and no ManualStop since
        self.base = State.IDLE  # the state when there is no connection: Idle or Active
        self.conns: dict[int, Conn] = {}
        self.counter = 0  # ConnectRetryCounter (§8.1.1)
        self.restart_delay = 0.0
        self.session: Conn | None = None  # the Established connection
        self.remote_id: IPv4Address | None = None
        self.families: set[Family] = set()
        self.ctx = Ctx(True)
        self.route_refresh = False
        self.adj_in: dict[Key, Path] = {}
        self.adj_out: dict[Key, Advert] = {}
        self.pending: dict[Key, Advert | None] = {}
        self.eor_due: bool = False
        self.eor_received: set[Family] = set()
        self.up_since: float | None = None
        self.last_error = ""  # why the session last went down
        self.connect_error = ""  # why our last connect failed ("" once one succeeds)
        self.established_count = 0
        self.treated_as_withdraw = 0
        self.attributes_discarded = 0

    @property
    def state(self) -> State:
        if not self.conns:
            return self.base
        return max((c.state for c in self.conns.values()), key=_ORDER.__getitem__)

    def connecting(self) -> Conn | None:
        return next((c for c in self.conns.values() if c.state == State.CONNECT), None)
