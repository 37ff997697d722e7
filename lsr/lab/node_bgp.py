"""BGP inside a lab router's runtime (`lsr.lab.node`): the I/O around `bgp.instance`.

The same speaker the simulator runs (`bgp.instance.BgpInstance`), on real sockets:

* TCP 179 between loopbacks: one listener bound to the router's loopback, and
  outgoing connections sourced from it (bound before connect), so the peer sees the
  address it has configured (RFC 4271 §8: a connection from any other address is
  refused by the speaker);
* TCP MD5 (RFC 2385, `passwords`): the key of every peer that has one on the
  listener and on that peer's connecting socket, as for LDP;
* GTSM (RFC 5082, `ttl_security`): only for eBGP peers on a shared link. It sends
  with TTL 255 and sets IP_MINTTL 255 on the connecting socket, and on an accepted
  one before any BGP message is read. iBGP sessions between loopbacks cross
  several routers, each of which lowers the TTL, so one-hop GTSM cannot apply to
  them (RFC 5082 §3 leaves multi-hop to configured hop counts; we offer none);
* timers on the asyncio loop with the real clock (`time.monotonic`);
* next hops resolved against the router's IGP RIB (OSPF's routes), handed over as
  `RibChanged` on every SPF change, as LDP gets them.

An idle router does nothing but send KEEPALIVEs and take its peers' (no polling).
Everything read from the network goes through `feed`, which counts and logs an
exception rather than let it stop the router. `listeners` get every
`BestPathChanged` (the hook a VPN layer imports VRF routes from), and
`originate` / `withdraw` hand routes in (`bgp.events.Originate`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

from bgp import events as bev
from bgp.config import from_topology
from bgp.instance import BgpInstance
from bgp.nlri import Family, Nlri
from lsr.lab.pump import drain
from lsr.lab.sockopts import gtsm_sockopt, md5_sockopt

log = logging.getLogger("lsr.node.bgp")

BGP_PORT = 179
TCP_QUICKACK = 12
CONNECT_TIMEOUT = 10.0  # s; the speaker's ConnectRetryTimer is the real retry
# Connections at once (in flight, accepted and not yet Established, sessions): a few
# per configured peer (§6.8 allows two while a collision is resolved). Over it an
# accepted connection is closed before the speaker sees it (counted: "accept-limit").
CONNS_PER_PEER = 3
CONNS_SPARE = 8


class BgpConn(asyncio.Protocol):
    """One TCP connection of the speaker; bytes in become `TcpData` events."""

    def __init__(self, owner: NodeBgp, conn: int | None) -> None:
        self.owner = owner
        self.conn = conn  # None until accepted: then a negative id
        self.transport: asyncio.Transport | None = None
        self.closed_by_us = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.conn is None:
            self.owner.accepted(self, transport)

    def data_received(self, data: bytes) -> None:
        o = self.owner
        o.counters["bgp_tcp_rx_bytes"] += len(data)
        # ACK at once: a peer's next small write must not wait for our delayed ACK.
        with contextlib.suppress(OSError, AttributeError):
            self.transport.get_extra_info("socket").setsockopt(  # type: ignore[union-attr]
                socket.IPPROTO_TCP, TCP_QUICKACK, 1)
        if self.conn is not None:
            o.feed(bev.TcpData(self.conn, data))

    def connection_lost(self, exc: Exception | None) -> None:
        o = self.owner
        if self.conn is None:
            return
        if o.conns.get(self.conn) is self:
            del o.conns[self.conn]
        if not self.closed_by_us:
            o.feed(bev.TcpClosed(self.conn, str(exc or "closed by peer")))


class NodeBgp:
    """The BGP speaker of one router process, its sockets and timers."""

    def __init__(self, router: Any, inst: BgpInstance) -> None:
        self.r = router
        self.inst = inst
        self.loop: asyncio.AbstractEventLoop = router.loop
        self.counters: collections.Counter[str] = router.counters
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.conns: dict[int, BgpConn] = {}
        self.connecting: dict[int, asyncio.Task] = {}
        self.next_accept = 0
        self.listener: socket.socket | None = None
        self.server: asyncio.AbstractServer | None = None
        self.queue: collections.deque = collections.deque()
        self.busy = False
        self.listeners: list[Callable[[bev.BestPathChanged], None]] = []
        self.refused: collections.Counter[str] = collections.Counter()
        self.max_conns = CONNS_PER_PEER * len(inst.peers) + CONNS_SPARE
        self.gtsm = {p.address for p in inst.cfg.peers if p.ttl_security}

    @classmethod
    def maybe(cls, router: Any) -> NodeBgp | None:
        """The router's BGP, or None when the topology gives it no `bgp:` role."""
        cfg = from_topology(router.topo, router.name)
        return None if cfg is None else cls(router, BgpInstance(cfg))

    # ------------------------------------------------------------ life

    def start(self, rib: dict) -> None:
        """After the lab's start barrier: the IGP RIB first (so a peer without a route
        waits for one rather than failing a connect), then ManualStart every peer."""
        self.feed(bev.RibChanged(dict(rib)))
        self.feed(bev.Start())

    def stop(self) -> None:
        """Cease to every peer (RFC 4486 Administrative Shutdown), then quiet."""
        self.feed(bev.Stop())
        for h in self.timers.values():
            h.cancel()
        self.timers.clear()

    def rib_changed(self, rib: dict) -> None:
        self.feed(bev.RibChanged(dict(rib)))

    def originate(self, routes: tuple[bev.LocalRoute, ...]) -> None:
        self.feed(bev.Originate(routes))

    def withdraw(self, family: Family, nlris: tuple[Nlri, ...]) -> None:
        self.feed(bev.WithdrawLocal(family, nlris))

    # ------------------------------------------------------------ the instance

    def feed(self, event: Any) -> None:
        """Process in order, never re-entrantly (an action may lead to another event)."""
        self.queue.append(event)
        if self.busy:
            return
        self.busy = True
        try:
            drain(self.queue, lambda e: self.inst.handle(e, time.monotonic()), self._do,
                  self.counters, "bgp")
        finally:
            self.busy = False

    def _do(self, a: Any) -> None:
        if isinstance(a, bev.TcpSend):
            c = self.conns.get(a.conn)
            if c is not None and c.transport is not None and not c.transport.is_closing():
                c.transport.write(a.data)
                self.counters["bgp_tcp_tx_bytes"] += len(a.data)
        elif isinstance(a, bev.StartTimer):
            old = self.timers.pop(a.timer, None)
            if old:
                old.cancel()
            self.timers[a.timer] = self.loop.call_later(a.seconds, self._timer, a.timer)
        elif isinstance(a, bev.CancelTimer):
            old = self.timers.pop(a.timer, None)
            if old:
                old.cancel()
        elif isinstance(a, bev.TcpConnect):
            if len(self.conns) + len(self.connecting) >= self.max_conns:
                self.refused["connect-limit"] += 1
                self.queue.append(bev.TcpClosed(a.conn, "connect: too many connections"))
                return
            self.connecting[a.conn] = self.loop.create_task(self._connect(a))
        elif isinstance(a, bev.TcpClose):
            t = self.connecting.pop(a.conn, None)
            if t:
                t.cancel()
            c = self.conns.pop(a.conn, None)
            if c is not None and c.transport is not None:
                c.closed_by_us = True
                c.transport.close()
        elif isinstance(a, bev.TcpListen):
            self._listen(a)
        elif isinstance(a, bev.BestPathChanged):
            for fn in self.listeners:
                fn(a)
        elif isinstance(a, bev.PeerStateChanged):
            name = self.inst.cfg.names.get(str(a.peer), str(a.peer))
            log.info("bgp neighbor %s: %s -> %s (%s)", name, a.old, a.new, a.event)
            self.r.oam.events.append({"t": time.time(), "event": "bgp",
                                      "text": f"neighbor {name} {a.old} -> {a.new}"})
        elif isinstance(a, bev.LogEvent):
            log.log(getattr(logging, a.level.upper(), logging.INFO), "bgp: %s", a.text)

    def _timer(self, name: str) -> None:
        self.timers.pop(name, None)
        self.feed(bev.TimerExpired(name))

    # ------------------------------------------------------------ sockets

    def _listen(self, a: bev.TcpListen) -> None:
        if self.listener is not None:
            return
        # listen() now, synchronously: a peer's SYN must not race an asynchronous set-up.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for peer, key in a.passwords:  # RFC 2385: a keyed peer's SYN must carry its MD5
            md5_sockopt(s, IPv4Address(peer), key)
        s.bind((str(a.address), BGP_PORT))
        s.listen(32)
        s.setblocking(False)
        self.listener = s
        self.loop.create_task(self._serve(s))

    async def _serve(self, s: socket.socket) -> None:
        self.server = await self.loop.create_server(lambda: BgpConn(self, None), sock=s)

    def accepted(self, proto: BgpConn, transport: asyncio.BaseTransport) -> None:
        """A connection to our port 179: GTSM first if the peer has it, then the speaker
        decides (it closes one from an address it has no peer for)."""
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        remote = IPv4Address(peer[0])
        if len(self.conns) + len(self.connecting) >= self.max_conns:
            self.refused["accept-limit"] += 1
            transport.close()
            return
        if remote not in self.inst.peers:
            self.refused["unknown-peer"] += 1
            log.info("bgp: connection from %s refused: not a configured peer", remote)
            transport.close()
            return
        if remote in self.gtsm:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                gtsm_sockopt(sock, True)
        self.next_accept -= 1
        proto.conn = self.next_accept
        self.conns[proto.conn] = proto
        self.counters["bgp_accepted"] += 1
        self.feed(bev.TcpAccepted(proto.conn, IPv4Address(local[0]), remote))

    async def _connect(self, a: bev.TcpConnect) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if a.password:
                md5_sockopt(s, a.remote, a.password)
            if a.remote in self.gtsm:
                gtsm_sockopt(s, True)
            s.bind((str(a.local), 0))  # sourced from the loopback (the update source)
            s.setblocking(False)
            await asyncio.wait_for(self.loop.sock_connect(s, (str(a.remote), BGP_PORT)),
                                   CONNECT_TIMEOUT)
            proto = BgpConn(self, a.conn)
            self.conns[a.conn] = proto
            await self.loop.create_connection(lambda: proto, sock=s)
        except asyncio.CancelledError:
            s.close()
            raise
        except Exception as e:
            s.close()
            self.conns.pop(a.conn, None)
            self.connecting.pop(a.conn, None)
            self.counters["bgp_connect_failed"] += 1
            self.feed(bev.TcpClosed(a.conn, f"connect: {e or type(e).__name__}"))
            return
        self.connecting.pop(a.conn, None)
        self.feed(bev.TcpConnected(a.conn))

    def close(self) -> None:
        """Release every socket (the process is ending)."""
        for t in self.connecting.values():
            t.cancel()
        for c in list(self.conns.values()):
            if c.transport is not None:
                c.closed_by_us = True
                c.transport.close()
        if self.server is not None:
            self.server.close()
        elif self.listener is not None:
            self.listener.close()

    # ------------------------------------------------------------ views (management)

    def sessions(self) -> dict[str, str]:
        """peer address -> state (`lsr lab status`)."""
        return {str(a): p.state.value for a, p in sorted(self.inst.peers.items())}

    def answer(self, req: dict[str, Any]) -> Any:
        """The `bgp` management request: `what` = summary | vpn | unicast | counters."""
        from bgp import views

        what = req.get("what", "summary")
        if what == "summary":
            return views.summary(self.inst, time.monotonic())
        if what in views.VIEWS:
            return {"routes": views.routes(self.inst, views.VIEWS[what])}
        if what == "counters":
            return self.counters_json()
        raise ValueError(f"unknown BGP view {what!r} (summary, vpn, unicast, counters)")

    def counters_json(self) -> dict[str, Any]:
        c = self.inst.counters()
        peers = self.inst.peers.values()
        return {**c, "refused": dict(sorted(self.refused.items())),
                "treated_as_withdraw": sum(p.treated_as_withdraw for p in peers),
                "attributes_discarded": sum(p.attributes_discarded for p in peers)}
