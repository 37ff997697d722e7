"""Two `ike.tunnel.Tunnel`s on a virtual clock, for tests.

IKE datagrams and ESP packets cross a network with a random delay (so requests
cross and may arrive out of order); each side's SAD (`forwarding.ipsec.Sad`)
follows its tunnel's SAD operations, as the lab runtime's does; a packet stream
each way counts what is lost (no outbound SA at the sender, or dropped at the
receiver: unknown SPI, replay, ICV). Nothing sleeps: an hour takes seconds.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from scapy.layers.inet import IP, UDP

from forwarding.ipsec.esp import Decapsulated, Encapsulated, SecurityAssociation
from forwarding.ipsec.sad import Sad
from ike import IkeConfig, SendIke
from ike.codec import TrafficSelector
from ike.tunnel import (
    AddInbound,
    ClearOutbound,
    Lifetimes,
    Note,
    RemoveInbound,
    SetOutbound,
    Tunnel,
)

SITE1 = TrafficSelector(IPv4Address("192.168.1.0"), IPv4Address("192.168.1.255"))
SITE2 = TrafficSelector(IPv4Address("192.168.2.0"), IPv4Address("192.168.2.255"))
PE1, PE2 = "10.255.0.1", "10.255.0.3"
INNER = {1: bytes(IP(src="192.168.1.2", dst="192.168.2.3") / UDP(dport=7) / (b"x" * 64)),
         2: bytes(IP(src="192.168.2.3", dst="192.168.1.2") / UDP(dport=7) / (b"y" * 64))}


def config(side: int, **kw: Any) -> IkeConfig:
    base: dict[str, Any] = dict(
        psk=b"lsr-ipsec-test-psk", local_id=f"pe{side}.lsr.test".encode(),
        remote_id=f"pe{3 - side}.lsr.test".encode(),
        local_ts=(SITE1,) if side == 1 else (SITE2,), remote_ts=(SITE2,) if side == 1 else (SITE1,))
    base.update(kw)
    return IkeConfig(**base)


@dataclass
class Side:
    n: int  # 1 or 2
    tunnel: Tunnel
    sad: Sad = field(default_factory=Sad)
    outbound: SecurityAssociation | None = None
    sent: int = 0
    delivered: int = 0  # of this side's packets, at the peer
    lost: Counter = field(default_factory=Counter)
    lost_at: list[float] = field(default_factory=list)
    notes: list[tuple[float, Note]] = field(default_factory=list)
    out_history: list[tuple[float, int, int]] = field(default_factory=list)  # (t, spi_out, spi_in)
    ike_spis: list[tuple[float, str]] = field(default_factory=list)
    max_children: int = 0
    max_inbound: int = 0
    max_ike_sas: int = 0
    tick_at: float | None = None

    @property
    def notes_text(self) -> list[str]:
        return [n.text for _, n in self.notes]


class Net:
    """Side 1 (IKE initiator) and side 2, a clock, and the wire between them."""

    def __init__(self, lifetimes: Lifetimes, *, seed: int = 1, delay: tuple[float, float] = (0.001, 0.02),
                 cfg1: dict | None = None, cfg2: dict | None = None, keep_up2: float = 1.0,
                 drop: Callable[[int, bytes], bool] | None = None,
                 lifetimes2: Lifetimes | None = None) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.delay = delay
        self.drop = drop  # drop(from_side, ike_datagram) -> True: lost on the wire
        self._q: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        mk = random.Random(seed * 7919)
        self.sides = {
            1: Side(1, Tunnel(config(1, **(cfg1 or {})), name="site", initiator=True, local=PE1,
                              remote=PE2, lifetimes=lifetimes, rng=random.Random(mk.random()),
                              session_rng=random.Random(mk.random()).randbytes)),
            2: Side(2, Tunnel(config(2, **(cfg2 or {})), name="site", initiator=False, local=PE2,
                              remote=PE1, lifetimes=lifetimes2 or lifetimes, keep_up_delay=keep_up2,
                              rng=random.Random(mk.random()),
                              session_rng=random.Random(mk.random()).randbytes)),
        }
        self.ike_datagrams = 0

    # ------------------------------------------------------------ the clock

    def at(self, t: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._q, (t, self._seq, fn))

    def run_until(self, t_end: float) -> None:
        while self._q and self._q[0][0] <= t_end:
            t, _, fn = heapq.heappop(self._q)
            self.now = t
            fn()
        self.now = t_end

    def wire(self) -> float:
        return self.rng.uniform(*self.delay)

    # ------------------------------------------------------------ the tunnels

    def start(self) -> None:
        self.apply(1, self.sides[1].tunnel.start(self.now))

    def apply(self, n: int, outs: list[Any]) -> None:
        side, peer = self.sides[n], self.sides[3 - n]
        for o in outs:
            if isinstance(o, SendIke):
                self.ike_datagrams += 1
                if self.drop is not None and self.drop(n, o.data):
                    continue
                self.at(self.now + self.wire(), lambda d=o.data, p=peer: self.apply(
                    p.n, p.tunnel.receive(d, self.now)))
            elif isinstance(o, AddInbound):
                side.sad.add_inbound(o.sa)
            elif isinstance(o, SetOutbound):
                side.outbound = o.sa
                side.out_history.append((self.now, o.sa.spi, side.tunnel.out_spi or 0))
            elif isinstance(o, ClearOutbound):
                if side.outbound is o.sa:
                    side.outbound = None
            elif isinstance(o, RemoveInbound):
                side.sad.remove(o.sa)
            elif isinstance(o, Note):
                side.notes.append((self.now, o))
        s = side.tunnel.session
        if s is not None and (not side.ike_spis or side.ike_spis[-1][1] != s.spi_i.hex() + s.spi_r.hex()):
            side.ike_spis.append((self.now, s.spi_i.hex() + s.spi_r.hex()))
        side.max_children = max(side.max_children, len(side.tunnel.children))
        side.max_inbound = max(side.max_inbound, len(side.sad.inbound))
        side.max_ike_sas = max(side.max_ike_sas, len(s.ike_sas()) if s else 0)
        self._schedule(side)

    def _schedule(self, side: Side) -> None:
        t = side.tunnel.next_deadline()
        if t is None or t == side.tick_at:
            return
        side.tick_at = t

        def fire(t: float = t) -> None:
            if side.tick_at == t:
                side.tick_at = None
            self.apply(side.n, side.tunnel.tick(self.now))
        self.at(max(t, self.now), fire)

    def command(self, n: int, what: str) -> dict:
        fn = {"rekey": self.sides[n].tunnel.rekey_child, "rekey-ike": self.sides[n].tunnel.rekey_ike,
              "delete": self.sides[n].tunnel.delete_child}[what]
        result, outs = fn(self.now)
        self.apply(n, outs)
        return result

    # ------------------------------------------------------------ the packet streams

    def stream(self, interval: float, until: float, start: float | None = None) -> None:
        """Both sides send one packet every `interval` s from `start` to `until`."""
        t0 = self.now if start is None else start

        def send(n: int, t: float) -> None:
            side, peer = self.sides[n], self.sides[3 - n]
            side.sent += 1
            sa = side.outbound
            if sa is None:
                side.lost["no-sa"] += 1
                side.lost_at.append(self.now)
            else:
                r = sa.encapsulate(INNER[n], self.now)
                if not isinstance(r, Encapsulated):
                    side.lost[f"encap:{r.reason}"] += 1
                    side.lost_at.append(self.now)
                else:
                    self.at(self.now + self.wire(), lambda p=r.packet: self.arrive(peer, side, p))
            if t + interval <= until:
                self.at(t + interval, lambda: send(n, t + interval))

        for n in (1, 2):
            self.at(t0 + n * interval / 3, lambda n=n: send(n, t0 + n * interval / 3))

    def arrive(self, at: Side, sender: Side, packet: bytes) -> None:
        r = at.sad.decapsulate(packet, self.now)
        if isinstance(r, Decapsulated):
            sender.delivered += 1
        else:
            sender.lost[str(r.reason)] += 1
            sender.lost_at.append(self.now)

    def losses(self) -> dict[int, dict[str, int]]:
        return {n: dict(s.lost) for n, s in self.sides.items()}
