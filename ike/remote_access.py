"""Remote access, sans-I/O: one responder connection answering many roaming clients.

RFC 7296 §1.1.3 ("endpoint to security gateway"): a client somewhere on the
network sets up an IKE SA with our gateway, asks in IKE_AUTH for an address
on the protected side (CFG_REQUEST, §3.15, §2.19), and gets one from the
connection's `AddressPool` in the CFG_REPLY; its Child SA then carries
(its virtual IP) <-> (the gateway's subnets). Each client is an
`ike.tunnel.Tunnel` in the responder role (lifetimes, rekeys, keep-up and
health as for a site-to-site connection), created by the client's first
IKE_SA_INIT and found again by its initiator SPI (§2.6).

* A client's address goes back to the pool when its IKE SA goes (Delete,
  retransmissions given up, failure) or is replaced.
* One IKE SA per client identity: a new one that authenticates replaces the
  older ones (their SAs go; the client sent INITIAL_CONTACT, §2.4, or simply
  reconnected), as strongSwan's `unique = replace`.
* A half-open IKE SA (IKE_SA_INIT answered, no IKE_AUTH) is forgotten after
  `HALF_OPEN` seconds, and at most `max_clients` exist at once (further
  IKE_SA_INITs are ignored and counted).
* Failed authentications (`AUTH_FAILED`) are kept in `failures` for the
  operator; the client is forgotten.

Every output is paired with its `Client`, whose address and port the driver
sends that client's IKE datagrams to; its SAs are named `<conn>#<n>-out` and
`-in`.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from ike.pool import AddressPool
from ike.session import IkeConfig, IkeSession
from ike.tunnel import Lifetimes, Note, Out, Tunnel

HALF_OPEN = 30.0  # seconds an IKE SA may wait for its IKE_AUTH
FAILURES_KEPT = 10
IKE_SA_INIT = 34
FLAG_I, FLAG_R = 0x08, 0x20


@dataclass
class Client:
    key: int
    name: str  # <conn>#<key>: names its SAs
    addr: IPv4Address  # where its IKE datagrams come from and go to
    port: int
    tunnel: Tunnel
    since: float
    identity: bytes | None = None  # once authenticated
    vip: IPv4Address | None = None
    owner: IkeSession | None = None  # the session holding its lease

    @property
    def established(self) -> bool:
        return self.tunnel.state == "established"


def is_new_init(data: bytes) -> bool:
    """An IKE_SA_INIT request starting a new IKE SA (§1.2: responder SPI zero, Message ID 0)."""
    return (len(data) >= 28 and data[18] == IKE_SA_INIT and bool(data[19] & FLAG_I)
            and not data[19] & FLAG_R and data[20:24] == bytes(4) and data[8:16] == bytes(8))


class RemoteAccess:
    def __init__(self, config: IkeConfig, *, name: str, local: IPv4Address, pool: AddressPool,
                 lifetimes: Lifetimes | None = None, sa_options: dict[str, Any] | None = None,
                 max_clients: int | None = None, rng: random.Random | None = None,
                 session_rng: Callable[[int], bytes] = os.urandom) -> None:
        self.config = config
        self.name = name
        self.local = local
        self.pool = pool
        self.lifetimes = lifetimes
        self.sa_options = sa_options or {}
        self.max_clients = max_clients if max_clients is not None else 2 * pool.size + 16
        self.rng = rng or random.Random()
        self.session_rng = session_rng
        self.clients: dict[int, Client] = {}
        self.counters: collections.Counter[str] = collections.Counter()
        self.failures: collections.deque[dict[str, Any]] = collections.deque(maxlen=FAILURES_KEPT)
        self._next = 1

    # ------------------------------------------------------------ input

    def find(self, spi_i: bytes) -> Client | None:
        """The client whose IKE SA (current or replaced by a rekey) has this initiator SPI."""
        for c in self.clients.values():
            s = c.tunnel.session
            if s is not None and s.knows(spi_i):
                return c
        return None

    def receive(self, data: bytes, addr: IPv4Address, port: int, now: float) -> list[tuple[Client, Out]]:
        """One IKE datagram (without the non-ESP marker) from `addr`:`port`."""
        if len(data) < 28:
            self.counters["ignored"] += 1
            return []
        c = self.find(data[:8])
        if c is None:
            if not is_new_init(data):
                self.counters["unknown_spi"] += 1  # e.g. a client's DPD after our restart
                return []
            if len(self.clients) >= self.max_clients:
                self.counters["refused_full"] += 1
                return []
            c = self._new(addr, port, now)
        outs = c.tunnel.receive(data, now)
        if c.tunnel.accepted:  # §2.23: only authenticated messages move the client's port
            c.port = port
        return self._after(c, outs, now)

    def _new(self, addr: IPv4Address, port: int, now: float) -> Client:
        key = self._next
        self._next += 1
        name = f"{self.name}#{key}"
        cfg = _with_remote(self.config, addr, port)
        t = Tunnel(cfg, name=name, initiator=False, local=self.local, remote=addr,
                   lifetimes=self.lifetimes, keep_up_delay=0.0, sa_options=self.sa_options,
                   rng=self.rng, session_rng=self.session_rng, session_kw={"pool": self.pool})
        c = Client(key, name, addr, port, t, now)
        self.clients[key] = c
        self.counters["ike_sa_init"] += 1
        return c

    def tick(self, now: float) -> list[tuple[Client, Out]]:
        out: list[tuple[Client, Out]] = []
        for c in list(self.clients.values()):
            if c.tunnel.state == "connecting" and now >= c.since + HALF_OPEN:
                self.counters["half_open_dropped"] += 1
                out += self._remove(c, f"no IKE_AUTH within {HALF_OPEN:g} s")
                continue
            due = c.tunnel.next_deadline()
            if due is not None and now >= due:
                out += self._after(c, c.tunnel.tick(now), now)
        return out

    def next_deadline(self) -> float | None:
        times = []
        for c in self.clients.values():
            t = c.tunnel.next_deadline()
            if t is not None:
                times.append(t)
            if c.tunnel.state == "connecting":
                times.append(c.since + HALF_OPEN)
        return min(times) if times else None

    # ------------------------------------------------------------ bookkeeping

    def _after(self, c: Client, outs: list[Out], now: float) -> list[tuple[Client, Out]]:
        res = [(c, o) for o in outs]
        t = c.tunnel
        if t.session is not None:
            c.owner = t.session
        if t.state == "established" and c.identity is None and t.session is not None:
            c.identity, c.vip = t.session.peer_id, t.session.vip
            self.counters["clients_up"] += 1
            who = (c.identity or b"").decode(errors="replace")
            res.append((c, Note(f"client {who} from {c.addr}: virtual IP {c.vip}")))
            for other in list(self.clients.values()):
                if other is not c and other.identity == c.identity:
                    # §2.4: one IKE SA per client; a reconnect (INITIAL_CONTACT) ends the old one
                    self.counters["replaced"] += 1
                    res += [(other, o) for o in other.tunnel.drop(f"replaced by {c.name} of {who}")]
                    res += self._remove(other, f"replaced by {c.name}")
        if t.state in ("down", "failed"):
            if t.state == "failed":
                self.counters["failed"] += 1
                self.failures.append({"time": now, "client": c.name, "remote": str(c.addr),
                                      "identity": (c.identity or b"").decode(errors="replace") or None,
                                      "error": t.error})
            res += self._remove(c, t.error or t.state)
        return res

    def _remove(self, c: Client, why: str) -> list[tuple[Client, Out]]:
        self.clients.pop(c.key, None)
        res: list[tuple[Client, Out]] = []
        freed = self.pool.release(c.owner) if c.owner is not None else None
        if freed is not None:
            self.counters["released"] += 1
            res.append((c, Note(f"virtual IP {freed} released ({why})")))
        return res

    # ------------------------------------------------------------ views

    def status(self, now: float) -> dict[str, Any]:
        clients = []
        for c in sorted(self.clients.values(), key=lambda x: x.key):
            clients.append({
                "name": c.name, "remote": str(c.addr), "port": c.port,
                "identity": c.identity.decode(errors="replace") if c.identity else None,
                "virtual_ip": str(c.vip) if c.vip is not None else None,
                "since": round(now - c.since, 3), **c.tunnel.status(now),
            })
        return {"name": self.name, "local": str(self.local), "pool": self.pool.to_dict(),
                "clients": clients, "failures": list(self.failures),
                "counters": dict(sorted(self.counters.items()))}


def _with_remote(config: IkeConfig, addr: IPv4Address, port: int) -> IkeConfig:
    return dataclasses.replace(config, remote_addr=(addr, port))


__all__ = ["HALF_OPEN", "Client", "RemoteAccess", "is_new_init"]
