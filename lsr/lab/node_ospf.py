"""OSPF inside a lab router's runtime (`lsr.lab.node`): the I/O around `ospf.instance`.

One raw IP socket (protocol 89) per router namespace carries every interface's
packets: it joins AllSPFRouters (224.0.0.5) on each router-facing interface,
learns the arrival interface and destination from IP_PKTINFO, and sends with
IP_PKTINFO naming the interface, TTL 1 and precedence 6 (TOS 0xC0, RFC 2328
A.1), as FRR's ospfd does. Timers run on the asyncio loop; SPF results become
the router's RIB (kernel routes, forwarding tables, LDP's next hops).

Carrier comes from netlink (pyroute2): RTM_NEWLINK / RTM_DELLINK for the
router's own interfaces. Losing IFF_LOWER_UP - `ip link set down` here or on
the peer, the veth deleted, `lsr lab link` - takes the OSPF adjacency and the
LDP Hello adjacency down at once (carrier-delay 0); regaining it brings them
back. Nothing outside the router tells it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import struct
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address
from typing import Any

from lsr.lab.netns import kernel_mtu
from lsr.lab.pump import drain
from ospf import events as oev
from ospf.config import from_topology
from ospf.instance import OspfInstance
from ospf.packets import ALL_SPF_ROUTERS, IP_PROTO_OSPF

log = logging.getLogger("lsr.node.ospf")

IP_PKTINFO = 8
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
IFF_RUNNING = 0x40  # RFC 2863 operational state up: carrier (what ifr_flags has of it)
SIOCGIFFLAGS = 0x8913
RTMGRP_LINK = 0x1
TOS_INTERNETWORK_CONTROL = 0xC0
ADDR_CACHE = 1024  # addresses parsed / printed, kept


class NodeOspf:
    """The OSPF instance of one router process and its socket, timers and carrier watch."""

    def __init__(self, router: Any, on_routes: Callable[[dict], None],
                 on_carrier: Callable[[str, bool], None]) -> None:
        self.r = router
        self.loop: asyncio.AbstractEventLoop = router.loop
        topo, name = router.topo, router.name
        cfg = from_topology(topo, name)
        # DDs carry the interface's real MTU (the veth's, label headroom included), as FRR's
        # do: a peer rejects a DD whose MTU exceeds its own interface's (RFC 2328 §10.6).
        cfg.interfaces = tuple(replace(i, mtu=kernel_mtu(topo, router.node.interfaces[i.name].link))
                               for i in cfg.interfaces)
        self.inst = OspfInstance(cfg)
        self.on_routes = on_routes
        self.on_carrier = on_carrier
        self.ifaces = {i.name: i for i in self.inst.cfg.interfaces if not i.passive}
        self.ospf_ifaces = {i.name for i in self.inst.cfg.interfaces}  # passive ones too
        self.index: dict[str, int] = {}
        self.by_index: dict[int, str] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.sock: socket.socket | None = None
        self.nl: Any = None
        self.carrier: dict[str, bool] = {}
        self.ldp_operational: frozenset[str] = frozenset()
        self.busy = False
        self.queue: collections.deque = collections.deque()
        self.counters = router.counters
        # (AllSPFRouters as the very object ospf.instance compares by identity first)
        self._addrs: dict[str | bytes, IPv4Address] = {
            ALL_SPF_ROUTERS.packed: ALL_SPF_ROUTERS, str(ALL_SPF_ROUTERS): ALL_SPF_ROUTERS}
        self._strs: dict[IPv4Address, str] = {}

    # ------------------------------------------------------------ sockets

    def open(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, IP_PROTO_OSPF)
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, TOS_INTERNETWORK_CONTROL)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for name, cfg in self.ifaces.items():
            idx = socket.if_nametoindex(name)
            self.index[name] = idx
            self.by_index[idx] = name
            mreqn = ALL_SPF_ROUTERS.packed + cfg.address.ip.packed + struct.pack("=i", idx)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        s.setblocking(False)
        self.sock = s

    def start(self, restart: bool = False) -> None:
        """After the lab's start barrier: read packets, watch carrier, bring OSPF up
        (`restart`: into a running network, `lsr lab node R start`: RFC 6987 stub router
        for a while, ospf.instance)."""
        assert self.sock is not None
        self.loop.add_reader(self.sock.fileno(), self._readable)
        self.feed(oev.Start(restart=restart))
        self._watch_carrier()  # an interface found without carrier goes down when seen

    def stop(self) -> None:
        if self.nl is not None:
            self.nl.cancel()
        self.feed(oev.Stop())
        for h in self.timers.values():
            h.cancel()
        self.timers.clear()

    def _readable(self) -> None:
        assert self.sock is not None
        for _ in range(64):
            try:
                data, anc, _flags, src = self.sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.counters["ospf_rx_errors"] += 1
                log.debug("ospf recv: %s", e)
                return
            ifname, dst = None, ALL_SPF_ROUTERS
            for level, typ, cdata in anc:
                if level == socket.IPPROTO_IP and typ == IP_PKTINFO and len(cdata) >= 12:
                    (idx,) = struct.unpack_from("=i", cdata)
                    ifname = self.by_index.get(idx)
                    dst = self._addr(cdata[8:12])
            if ifname is None or len(data) < 20:
                self.counters["ospf_rx_foreign"] += 1
                continue
            if not self.carrier.get(ifname, True) and self._lower_up(ifname):
                # A packet on a link we think is down: netlink has not told us yet that it
                # is back (FRR's first Hello beats the notification). Take the carrier
                # now, or the Hello is dropped and FRR, which does not answer a new
                # neighbor's Hello, lists us only a HelloInterval later.
                self._carrier(ifname, True)
            ihl = (data[0] & 0x0F) * 4  # raw IPv4 sockets hand us the IP header too
            self.counters["ospf_rx"] += 1
            self.feed(oev.PacketReceived(ifname, self._addr(src[0]), dst, data[ihl:]))

    def _addr(self, raw: str | bytes) -> IPv4Address:
        """IPv4Address(raw), from a cache: parsing a dotted quad per packet was a tenth of
        a converging router's CPU. Bounded (a flood of spoofed sources)."""
        a = self._addrs.get(raw)
        if a is None:
            if len(self._addrs) >= ADDR_CACHE:
                self._addrs.clear()
            a = self._addrs[raw] = IPv4Address(raw)
        return a

    def _str(self, addr: IPv4Address) -> str:
        if len(self._strs) >= ADDR_CACHE:
            self._strs.clear()
        s = self._strs[addr] = str(addr)
        return s

    def _send(self, a: oev.SendPacket) -> None:
        idx = self.index.get(a.ifname)
        cfg = self.ifaces.get(a.ifname)
        if self.sock is None or idx is None or cfg is None:
            return
        pktinfo = struct.pack("=i4s4s", idx, cfg.address.ip.packed, a.dst.packed)
        try:
            self.sock.sendmsg([a.data], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0,
                               (self._strs.get(a.dst) or self._str(a.dst), 0))
            self.counters["ospf_tx"] += 1
        except OSError as e:  # no carrier: the instance learns it from netlink
            self.counters["ospf_tx_errors"] += 1
            log.debug("ospf send on %s: %s", a.ifname, e)

    # ------------------------------------------------------------ the instance

    def feed(self, event: Any) -> None:
        """Process in order, never re-entrantly (an action may lead to another event)."""
        self.queue.append(event)
        if self.busy:
            return
        self.busy = True
        try:
            drain(self.queue, lambda e: self.inst.handle(e, time.monotonic()), self._do,
                  self.counters, "ospf")
        finally:
            self.busy = False

    def _do(self, a: Any) -> None:
        if isinstance(a, oev.SendPacket):
            self._send(a)
        elif isinstance(a, oev.StartTimer):
            old = self.timers.pop(a.timer, None)
            if old:
                old.cancel()
            self.timers[a.timer] = self.loop.call_later(a.seconds, self._timer, a.timer)
        elif isinstance(a, oev.CancelTimer):
            old = self.timers.pop(a.timer, None)
            if old:
                old.cancel()
        elif isinstance(a, oev.RoutesChanged):
            self.counters["spf_rib_changes"] += 1
            self.on_routes(a.rib)
        elif isinstance(a, oev.NeighborChange):
            name = self.inst.cfg.names.get(a.router_id, str(a.router_id))
            log.info("ospf neighbor %s on %s: %s -> %s (%s)", name, a.ifname, a.old, a.new,
                     a.event)
            self.r.oam.events.append({"t": time.time(), "event": "ospf",
                                      "text": f"neighbor {name} on {a.ifname} {a.old} -> {a.new}"})

    def ldp_status(self, operational: frozenset[str]) -> None:
        """RFC 5443: LDP's operational interfaces, passed on when they change."""
        if operational != self.ldp_operational:
            self.ldp_operational = operational
            self.feed(oev.LdpStatus(operational))

    def _timer(self, name: str) -> None:
        self.timers.pop(name, None)
        self.feed(oev.TimerExpired(name))

    # ------------------------------------------------------------ carrier (netlink)

    def _watch_carrier(self) -> None:
        self.nl = self.loop.create_task(self._carrier_task())

    async def _carrier_task(self) -> None:
        """Every link message of this namespace (pyroute2's asyncio netlink socket)."""
        try:
            from pyroute2 import AsyncIPRoute

            ipr = AsyncIPRoute()
            await ipr.setup_endpoint()
            await ipr.bind(groups=RTMGRP_LINK)
            async for msg in await ipr.link("dump"):
                self._link_msg(msg)
            while True:
                async for msg in ipr.get():
                    self._link_msg(msg)
        except asyncio.CancelledError:
            raise
        except Exception:  # without netlink the router still runs; carrier changes go unseen
            self.counters["netlink_errors"] += 1
            log.error("netlink carrier watch failed:\n%s", traceback.format_exc())

    def _link_msg(self, msg: Any) -> None:
        event = msg.get("event")
        if event not in ("RTM_NEWLINK", "RTM_DELLINK"):
            return
        ifname = msg.get_attr("IFLA_IFNAME")
        if ifname not in self.r.node.interfaces:
            return
        flags = msg.get("flags", 0)
        self._carrier(ifname, event == "RTM_NEWLINK" and bool(flags & IFF_UP)
                      and bool(flags & IFF_LOWER_UP))

    def _lower_up(self, ifname: str) -> bool:
        """The kernel's view of one interface now: up and running (IFF_RUNNING is the
        carrier in SIOCGIFFLAGS' 16-bit flags, where IFF_LOWER_UP does not fit)."""
        import fcntl

        assert self.sock is not None
        try:
            req = struct.pack("16sH14x", ifname.encode(), 0)
            (flags,) = struct.unpack_from("H", fcntl.ioctl(self.sock.fileno(), SIOCGIFFLAGS,
                                                           req), 16)
        except OSError:
            return False
        return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)

    def _carrier(self, ifname: str, up: bool) -> None:
        was = self.carrier.get(ifname, True)  # the runtime starts out assuming carrier
        self.carrier[ifname] = up
        if was == up:
            return
        self.counters["carrier_changes"] += 1
        log.info("carrier %s on %s", "up" if up else "down", ifname)
        self.on_carrier(ifname, up)
        # a passive (host-facing) interface too: down, its stub leaves the router-LSA
        # (RFC 2328 §12.4.1: an interface in state Down adds no link)
        if ifname in self.ospf_ifaces:
            self.feed(oev.InterfaceUp(ifname) if up else oev.InterfaceDown(ifname))

    # ------------------------------------------------------------ views

    def status(self) -> dict[str, Any]:
        inst = self.inst
        return {"router_id": str(inst.rid), "neighbors": inst.neighbors_json(),
                "full": inst.full_neighbors(), "lsdb": len(inst.lsdb),
                "spf_runs": inst.spf_runs, "stub": inst.stub,
                "counters": dict(sorted(inst.counters.items())),
                "carrier": dict(sorted(self.carrier.items()))}
