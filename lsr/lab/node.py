"""The router runtime: one process per router, started inside its namespace.

    ip netns exec lsr-<lab>.<router> python -m lsr.lab.node --state-dir DIR --router R

An asyncio loop drives the sans-I/O LDP speaker (`ldp.instance`) with real
sockets (UDP 646 hellos per interface, TCP 646 sessions from/to the loopback,
TCP MD5), timers (`loop.call_later`), installs the IGP RIB into the
namespace's kernel table (like zebra), and runs the userspace MPLS dataplane
(AF_PACKET on every veth -> `forwarding.plane` -> AF_PACKET). A management
unix socket answers JSON requests (see docs/cli.md, "lsr lab").

Nothing read from the network may stop the router: every handler catches,
counts and logs.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import logging
import os
import pickle
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from forwarding.afpacket import (
    ETH_P_ALL,
    ETH_P_IP,
    ETH_P_MPLS_UC,
    NOT_OTHERHOST,
    REST,
    PacketPort,
    RingPort,
    TxRing,
    mac_bytes,
)
from forwarding.plane import LOCAL_IF
from ldp import events as ev
from lsr.core.igp import Igp, connected_routes
from lsr.core.lfib import Lfib
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.lab.files import open_append, write_file
from lsr.lab.logcap import RateLimit
from lsr.lab.logcap import install as install_logging
from lsr.lab.netns import redo_routes_via, sweep_routes, sync_routes
from lsr.lab.sockopts import GTSM_TTL, gtsm_sockopt, md5_sockopt
from lsr.lab.state import node_of

log = logging.getLogger("lsr.node")

LDP_PORT = 646
ALL_ROUTERS = "224.0.0.2"
TCP_QUICKACK = 12
IP_MULTICAST_ALL = 49
IP_PKTINFO = 8  # not exported by Python 3.11 socket
BATCH = 64  # frames per wake-up per interface: bounds the work a flood can cause
FAST_BATCH = 512  # the same bound for the ring-to-ring fast path (forwarding.ioloop; a
# run this long goes through forwarding.vector in ~0.1-0.5 ms; a TX ring holds 512 frames)
FAST_ROUNDS = 2  # up to this many batches per wake-up (flushed each): <= 1024 frames, ~1 ms
# Receive coalescing, like a NIC's interrupt moderation: a wake-up costs tens of
# microseconds (epoll, the event loop, a context switch), so on a busy link -- the ring's
# previous wake-up, under COAL_GAP ago, found COAL_MIN frames or more -- with fewer frames
# waiting than a vector run (forwarding.vector), the router waits COAL_WAIT first and then
# takes the larger run in one go. Idle links and pings are never delayed. Measured (line3,
# three routers on one core, 60 k UDP frames/s): wake-ups 8,000 -> 3,400 a second, the
# core's idle share 6% -> 14%; 500 us gave more (17% idle at 90 k) but cost TCP
# throughput (iperf3 ~0.83 Gbit/s vs ~1.1 with 300 us).
COAL_WAIT = int(os.environ.get("LSR_COAL_US", "300")) * 1e-6
COAL_GAP = 0.002
COAL_MIN = 8
# Outgoing LDP connects in flight (sockets in SYN-SENT). The speaker bounds them itself
# (ldp.instance DEFAULT_MAX_CONNECTING); this is the runtime's own bound on the fds they
# take, whatever engine runs. Over it a connect fails at once (ldp_connect_refused).
MAX_CONNECTING = 16
LOG_FLUSH = 10.0  # s between reports of suppressed log lines (lsr.lab.logcap)


RING_BUDGET = 512 << 20  # bytes of RX rings all routers of a lab may take together
# Slots per RX ring. The floor is low enough for the budget to hold for a 200-router lab
# (~950 rings: 256 slots, 0.5 GB; with a 1,024 floor they took 2 GB, a fifth of its PSS).
RING_MIN, RING_MAX = 256, 4096


def ring_frames(topo: Topology, frame_size: int = 2048) -> int:
    """Slots per RX ring: as many as the lab's budget allows, 256 to 4,096.

    Where routers share a core, a router's ring must hold what arrives while the
    others run: deeper rings ride out longer scheduling gaps (line3 end to end, loss-free:
    ~100 k frames/s with 1,024 slots, ~135 k with 4,096). Each interface has two rings
    (MPLS, IPv4) of 2 KB slots, so small labs get 4,096 (16 MB an interface), 50 routers
    512 and 200 routers 256. LSR_RING_FRAMES overrides."""
    env = os.environ.get("LSR_RING_FRAMES")
    if env:
        return int(env)
    rings = 2 * sum(len(topo.nodes[r.name].interfaces) for r in topo.routers)
    n = RING_MIN
    while n * 2 <= RING_MAX and rings * n * 2 * frame_size <= RING_BUDGET:
        n *= 2
    return n


class Conn(asyncio.Protocol):
    """One LDP TCP connection; bytes in become TcpData events."""

    def __init__(self, node: Router, conn: int | None) -> None:
        self.node = node
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.closed_by_us = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.conn is None:  # accepted: we pick a negative id
            self.node.next_accept -= 1
            self.conn = self.node.next_accept
            self.node.conns[self.conn] = self
            local = IPv4Address(transport.get_extra_info("sockname")[0])
            remote = IPv4Address(transport.get_extra_info("peername")[0])
            self.node.feed(ev.TcpAccepted(self.conn, local, remote))

    def data_received(self, data: bytes) -> None:
        self.node.counters["tcp_rx_bytes"] += len(data)
        # ACK now, not after the 40 ms delayed-ACK timer: a peer without TCP_NODELAY (FRR's
        # ldpd) holds its next small write (Nagle) until we ACK, e.g. its Label Mappings
        # right after its Address message. TCP_QUICKACK is not sticky: set it per read.
        with contextlib.suppress(OSError, AttributeError):
            self.transport.get_extra_info("socket").setsockopt(  # type: ignore[union-attr]
                socket.IPPROTO_TCP, TCP_QUICKACK, 1)
        self.node.feed(ev.TcpData(self.conn, data))  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.node.conns.get(self.conn) is self:  # type: ignore[arg-type]
            del self.node.conns[self.conn]  # type: ignore[arg-type]
        if not self.closed_by_us:
            self.node.feed(ev.TcpClosed(self.conn, str(exc or "closed")))  # type: ignore[arg-type]


_MGMT_LIMIT = 1 << 16  # asyncio.StreamReader's default line limit


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """The next management request line; b"" at EOF; None for a line over the reader's
    limit, which is read and dropped up to its newline so the next request still parses."""
    too_long = False
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:  # EOF: a last line without newline counts
            line = e.partial
        except asyncio.LimitOverrunError as e:
            too_long = True
            await reader.readexactly(e.consumed)  # already buffered: drop it, read on
            continue
        return None if too_long else line


class Router:
    def __init__(self, topo: Topology, name: str, state_dir: Path, ring: bool = True,
                 static_lfib: Lfib | None = None) -> None:
        self.topo = topo
        self.name = name
        self.node = topo.nodes[name]
        self.state_dir = state_dir
        self.use_ring = ring
        self.ring_frames = ring_frames(topo)
        self.rings: dict[str, tuple[RingPort, RingPort]] = {}  # ring mode: (MPLS, IPv4) per interface
        self.loop = asyncio.get_event_loop()
        self.started = time.time()
        self.counters: collections.Counter[str] = collections.Counter()
        self.down_links: set[int] = set()
        # The IGP: OSPF on the wire (lsr.lab.node_ospf); until its first SPF run the RIB
        # holds our connected prefixes. A static LFIB (benchmarks) keeps the centrally
        # computed routes (`igp`: the whole topology's graph and SPF, which a router
        # running OSPF never needs: not built there).
        self.igp: Igp | None = None
        self.ospf: Any = None
        if static_lfib is None:
            from lsr.lab.node_ospf import NodeOspf

            self.ospf = NodeOspf(self, self.routes_changed, self.carrier_event)
            self.rib = connected_routes(topo, name)
        else:
            self.igp = Igp(topo)
            self.rib = self.igp.rib(name)
        # BGP (lsr.lab.node_bgp) where the topology's `bgp:` section names this router.
        self.bgp: Any = None
        if static_lfib is None:
            from lsr.lab.node_bgp import NodeBgp

            self.bgp = NodeBgp.maybe(self)
        # 6PE (lsr.lab.node_sixpe) where BGP carries labelled IPv6 and a link has IPv6
        self.sixpe: Any = None
        if self.bgp is not None:
            from lsr.lab.node_sixpe import NodeSixpe

            self.sixpe = NodeSixpe.maybe(self)
        self.kernel_routes: dict = {}  # prefix -> netns.route_key (what is installed)
        self.lfib = static_lfib if static_lfib is not None else Lfib()
        # VRFs (RFC 4364, lsr.lab.node_vpn): export into BGP, import into VRF FIBs.
        self.vpn: Any = None
        if static_lfib is None and self.node.vrfs:  # (a router without VRFs: no import)
            from lsr.lab.node_vpn import NodeVpn

            self.vpn = NodeVpn.maybe(self)
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.conns: dict[int, Conn] = {}
        self.connecting: dict[int, asyncio.Task] = {}
        self.next_accept = 0
        self.queue: collections.deque = collections.deque()
        self.busy = False
        self.hello_socks: dict[str, socket.socket] = {}
        self.listener: socket.socket | None = None
        self.ports: dict[str, PacketPort] = {}
        self.rest: dict[str, PacketPort] = {}  # ring mode: what the rings do not take (afpacket)
        # The interfaces LDP runs on: Hello sockets, and where labelled frames are accepted
        self.ldp_ifs = self.topo.ldp_interfaces(name)
        self.tx: dict[str, PacketPort | TxRing] = {}  # egress per interface (TX ring or the port)
        self.my_macs = {i.name: mac_bytes(i.mac) for i in self.node.interfaces.values()}
        # A static LFIB (benchmarks) replaces LDP with an engine that does nothing.
        self.ldp = make_ldp(topo, name) if static_lfib is None else _NoLdp()
        self.tables: Any = None
        self.process: Callable[[bytes, str], list] | None = None
        self.fast: Any = None  # forwarding.ioloop.FastPath once tables exist (ring mode)
        self._woke: dict[int, tuple[float, int]] = {}  # RX ring fd -> (last wake-up, frames)
        self._coal_next = 0.0  # no coalescing wait before this time (one per COAL_WAIT)
        self.raw: socket.socket | None = None
        self.ipsec: Any = None  # lsr.lab.ipsec.IpsecRuntime when the topology gives us an IPsec role
        self.log_limit: RateLimit | None = None  # lsr.lab.logcap, when main() set logging up
        self.stopping = asyncio.Event()
        self.go = asyncio.Event()  # lab start barrier: every router's sockets exist before any hello
        from lsr.lab.node_oam import NodeOam

        self.oam = NodeOam(self)  # RFC 8029 responder/sender, event timeline
        # RX readers of each interface: fd -> (port, callback) in force (ingress impairment
        # swaps them: lsr.lab.node_impair)
        self.readers: dict[str, dict[int, tuple[Any, Callable[[str, Any], None]]]] = {}
        self.ingress_hooks: dict[str, Callable[[list[bytes]], None]] = {}
        from lsr.lab.node_impair import NodeImpair

        self.impair = NodeImpair(self)  # link delay / jitter / loss / rate

    # ------------------------------------------------------------ LDP driver

    def feed(self, event: Any) -> None:
        """Queue an event; process in order, never re-entrantly."""
        self.queue.append(event)
        if self.busy:
            return
        self.busy = True
        try:
            while self.queue:
                e = self.queue.popleft()
                try:
                    actions = self.ldp.handle(e, time.monotonic())
                except Exception:  # a bad PDU or engine bug must not stop the router
                    self.counters["ldp_errors"] += 1
                    log.error("ldp.handle(%s) failed:\n%s", type(e).__name__, traceback.format_exc())
                    continue
                for a in actions or ():
                    try:
                        self.do(a)
                    except Exception:
                        self.counters["action_errors"] += 1
                        log.error("action %s failed:\n%s", type(a).__name__, traceback.format_exc())
                if self.ospf is not None and self.ospf.inst.cfg.ldp_sync:
                    self.ospf.ldp_status(self.ldp.operational_interfaces())
        finally:
            self.busy = False

    def do(self, a: Any) -> None:
        self.oam.on_action(a)
        if isinstance(a, ev.SendHello):
            s = self.hello_socks.get(a.ifname)
            if s is None:
                return
            try:
                s.sendto(a.data, (ALL_ROUTERS, LDP_PORT))
                self.counters["hello_tx"] += 1
            except OSError as e:  # interface down: the speaker keeps its timer
                self.counters["hello_tx_errors"] += 1
                log.debug("hello on %s: %s", a.ifname, e)
        elif isinstance(a, ev.TcpSend):
            c = self.conns.get(a.conn)
            if c and c.transport and not c.transport.is_closing():
                c.transport.write(a.data)
                self.counters["tcp_tx_bytes"] += len(a.data)
        elif isinstance(a, ev.StartTimer):
            old = self.timers.pop(a.timer, None)
            if old:
                old.cancel()
            self.timers[a.timer] = self.loop.call_later(a.seconds, self._timer, a.timer)
        elif isinstance(a, ev.CancelTimer):
            old = self.timers.pop(a.timer, None)
            if old:
                old.cancel()
        elif isinstance(a, ev.TcpConnect):
            if len(self.connecting) >= MAX_CONNECTING:
                self.counters["ldp_connect_refused"] += 1
                self.feed(ev.TcpClosed(a.conn, "connect: too many connects in flight"))
                return
            self.connecting[a.conn] = self.loop.create_task(self._connect(a))
        elif isinstance(a, ev.TcpClose):
            t = self.connecting.pop(a.conn, None)
            if t:
                t.cancel()
            c = self.conns.pop(a.conn, None)
            if c and c.transport:
                c.closed_by_us = True
                c.transport.close()
        elif isinstance(a, ev.TcpListen):
            self._listen(a)
        elif isinstance(a, ev.TcpSetGtsm):
            c = self.conns.get(a.conn)
            sock = c.transport.get_extra_info("socket") if c and c.transport else None
            if sock is not None:
                gtsm_sockopt(sock, a.enabled)
        elif isinstance(a, ev.ApplyLfib):
            self.counters["lfib_updates"] += 1
            self.apply_lfib(a.diff)
        elif isinstance(a, ev.LogEvent):
            log.log(getattr(logging, a.level.upper(), logging.INFO), "%s", a.text)

    def _timer(self, name: str) -> None:
        self.timers.pop(name, None)
        self.feed(ev.TimerExpired(name))

    async def _connect(self, a: ev.TcpConnect) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if a.password:
                md5_sockopt(s, a.remote, a.password)
            if getattr(a, "gtsm", False):
                gtsm_sockopt(s, True)
            s.bind((str(a.local), 0))
            s.setblocking(False)
            await asyncio.wait_for(self.loop.sock_connect(s, (str(a.remote), LDP_PORT)), 10)
            proto = Conn(self, a.conn)
            self.conns[a.conn] = proto
            await self.loop.create_connection(lambda: proto, sock=s)
        except asyncio.CancelledError:
            s.close()
            raise
        except Exception as e:
            s.close()
            self.connecting.pop(a.conn, None)
            # str(): an exception object is always true, and a timeout's text is ''
            self.feed(ev.TcpClosed(a.conn, f"connect: {str(e) or type(e).__name__}"))
            return
        self.connecting.pop(a.conn, None)
        self.feed(ev.TcpConnected(a.conn))

    def _listen(self, a: ev.TcpListen) -> None:
        if self.listener is not None:
            return
        # listen() now, synchronously: a peer's connect must not race an async set-up (RST
        # and a retry timer); asyncio only takes over accepting.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for peer, key in a.passwords:
            md5_sockopt(s, IPv4Address(peer), key)
        if getattr(a, "gtsm", False):
            # RFC 6720: send with TTL 255 (accepted sockets inherit it); the IP_MINTTL
            # check is per connection (TcpSetGtsm), peers without GTSM must get in.
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, GTSM_TTL)
        s.bind((str(a.address), LDP_PORT))
        s.listen(64)
        s.setblocking(False)
        self.listener = s
        self.loop.create_task(self.loop.create_server(lambda: Conn(self, None), sock=s))

    # ------------------------------------------------------------ hellos

    def open_hello_socket(self, ifname: str) -> socket.socket:
        iface = self.node.interfaces[ifname]
        idx = socket.if_nametoindex(ifname)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        s.bind(("0.0.0.0", LDP_PORT))
        mreqn = socket.inet_aton(ALL_ROUTERS) + iface.address.ip.packed + struct.pack("=i", idx)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        s.setblocking(False)
        return s  # read only after Start: hellos that arrive earlier wait in the socket

    def _hello_readable(self, ifname: str, s: socket.socket) -> None:
        for _ in range(32):
            try:
                data, anc, _flags, src = s.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.counters["hello_rx_errors"] += 1
                log.debug("hello recv on %s: %s", ifname, e)
                return
            dst = IPv4Address(ALL_ROUTERS)
            for level, typ, cdata in anc:
                if level == socket.IPPROTO_IP and typ == IP_PKTINFO and len(cdata) >= 12:
                    dst = IPv4Address(cdata[8:12])
            self.counters["hello_rx"] += 1
            self.feed(ev.HelloReceived(ifname, IPv4Address(src[0]), dst, data))

    # ------------------------------------------------------------ IGP / kernel

    def recompute_igp(self) -> None:
        self.igp = Igp(self.topo, self.down_links)
        self.rib = self.igp.rib(self.name)
        self.kernel_routes = sync_routes(self.rib, self.kernel_routes)
        self.rebuild_tables()
        self.feed(ev.RibChanged(dict(self.rib)))
        if self.bgp is not None:
            self.bgp.rib_changed(self.rib)

    def routes_changed(self, rib: dict) -> None:
        """OSPF's SPF changed our RIB: kernel table, forwarding tables, then LDP."""
        self.rib = dict(rib)
        self.kernel_routes = sync_routes(self.rib, self.kernel_routes)
        self.rebuild_tables()
        self.feed(ev.RibChanged(dict(self.rib)))
        if self.bgp is not None:  # next-hop reachability and IGP cost (RFC 4271 §9.1.2.1)
            self.bgp.rib_changed(self.rib)

    def carrier_event(self, ifname: str, up: bool) -> None:
        """Carrier changed on one of our interfaces (netlink): LDP's Hello adjacency goes
        or comes now, as OSPF's does; the IGP routes follow from OSPF."""
        iface = self.node.interfaces[ifname]
        (self.down_links.discard if up else self.down_links.add)(iface.link)
        redo_routes_via(self.kernel_routes, ifname)  # admin down flushed them
        sock = self.hello_socks.get(ifname)
        if not up and sock is not None:
            self.loop.remove_reader(sock.fileno())
        self.feed(ev.InterfaceUp(ifname) if up else ev.InterfaceDown(ifname))
        if up and sock is not None:
            self.loop.add_reader(sock.fileno(), self._hello_readable, ifname, sock)
            self._hello_readable(ifname, sock)
        if self.vpn is not None and iface.vrf is not None:
            self.vpn.links_changed()  # a customer port: its routes are exported or withdrawn
        if self.sixpe is not None and iface.address6 is not None and iface.vrf is None:
            self.sixpe.links_changed()  # a 6PE customer port: its IPv6 subnet likewise

    def link_event(self, link: int, up: bool) -> None:
        if up:
            self.down_links.discard(link)
        else:
            self.down_links.add(link)
        mine = [i.name for i in self.node.interfaces.values() if i.link == link]
        for ifname in mine:
            redo_routes_via(self.kernel_routes, ifname)  # admin down flushed them
        if up:
            # Routes before Hellos: a peer that answers our first Hello with a SYN at once
            # (FRR does) needs our route back to its transport address, or our SYN-ACK is
            # unroutable and the session waits for its 1 s SYN retransmission.
            self.recompute_igp()
        for ifname in mine:
            sock = self.hello_socks.get(ifname)
            if not up and sock is not None:
                # Hellos that arrive while our LDP believes the interface is down would be
                # dropped by it; leave them queued in the socket until the interface is up.
                self.loop.remove_reader(sock.fileno())
            self.feed(ev.InterfaceUp(ifname) if up else ev.InterfaceDown(ifname))
        if not up:
            self.recompute_igp()
        if up:
            for ifname in mine:
                sock = self.hello_socks.get(ifname)
                if sock is not None:
                    self.loop.add_reader(sock.fileno(), self._hello_readable, ifname, sock)
                    self._hello_readable(ifname, sock)
        if self.vpn is not None:
            self.vpn.links_changed()
        if self.sixpe is not None:
            self.sixpe.links_changed()
        log.info("link %d %s", link, "up" if up else "down")

    # ------------------------------------------------------------ dataplane

    def rebuild_tables(self) -> None:
        """(Re)compile the forwarding tables from the current RIB and LFIB."""
        from forwarding.plane import Dataplane
        from forwarding.tables import RouterTables

        try:
            if self.tables is None:
                self.tables = RouterTables.build(self.topo, self.name, self.rib, self.lfib,
                                                 mpls_input=self.ldp_ifs)
                self.process = Dataplane(self.tables).process
                if self.use_ring:
                    from forwarding.ioloop import FastPath

                    self.fast = FastPath(self.tables, self.tx)
                if self.sixpe is not None:
                    self.sixpe.changed()
            else:
                self.tables.set_rib(self.rib)
        except Exception:
            self.counters["table_errors"] += 1
            log.error("building forwarding tables failed:\n%s", traceback.format_exc())

    def apply_lfib(self, diff: Any) -> None:
        self.lfib.apply(diff)
        if self.sixpe is not None and (diff.ftn_set or diff.ftn_del):
            self.sixpe.changed()  # 6PE routes push LDP's labels
        if self.tables is None:
            self.rebuild_tables()
        else:
            self.tables.apply_diff(diff)
        if self.vpn is not None and (diff.ftn_set or diff.ftn_del):
            self.vpn.ftn_changed()  # transport LSPs to the egress PEs (RFC 4364 §5)

    def deliver_local(self, packet: bytes) -> None:
        """A packet that arrived labelled and is for this router: hand it to the kernel stack."""
        if self.ipsec is not None and (out := self.ipsec.local(packet)) is not None:
            self.send_frames(out)  # ESP to us: the kernel has no ESP
            return
        if self.raw is None:
            self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            self.raw.setblocking(False)
        try:
            self.raw.sendto(packet, (socket.inet_ntoa(packet[16:20]), 0))
            self.counters["delivered_local"] += 1
        except OSError:
            self.counters["deliver_errors"] += 1

    def open_ports(self) -> None:
        """Per interface: ring mode has an MPLS (0x8847) and an IPv4 (0x0800) RX ring, so
        label-switched frames never meet IPv4-only checks, a TX ring, and a plain socket for
        the frames the rings do not take (VLAN-tagged, for another MAC, other ethertypes:
        forwarding.afpacket), so that every frame gets an outcome and a counter; without
        rings (or if they fail) one ETH_P_ALL socket does all."""
        for ifname in self.node.interfaces:
            if self.use_ring:
                opened: list[Any] = []
                try:
                    for kind in (ETH_P_MPLS_UC, ETH_P_IP):
                        opened.append(RingPort(ifname, kind, frames=self.ring_frames,
                                               bpf=NOT_OTHERHOST))
                    opened.append(PacketPort(ifname, ETH_P_ALL, bpf=REST))
                    opened.append(TxRing(ifname))
                except OSError:
                    log.warning("rings on %s failed, falling back to a plain socket", ifname)
                    for p in opened:
                        p.close()
                else:
                    mring, iring, rest, tx = opened
                    self.ports[ifname] = mring
                    self.rings[ifname] = (mring, iring)
                    self.rest[ifname] = rest
                    self.tx[ifname] = tx
                    self._reader(ifname, mring, self._mpls_readable)
                    self._reader(ifname, iring, self._ip_readable)
                    self.loop.add_reader(rest.fileno(), self._frames_readable, ifname, rest)
                    continue
            port: PacketPort
            try:
                port = RingPort(ifname, ETH_P_ALL) if self.use_ring else PacketPort(ifname)
            except OSError:
                port = PacketPort(ifname)
            self.ports[ifname] = port
            self.tx[ifname] = port
            if self.use_ring:
                try:
                    self.tx[ifname] = TxRing(ifname)
                except OSError:
                    pass
            self._reader(ifname, port, self._frames_readable)

    def _reader(self, ifname: str, port: Any, cb: Callable[[str, Any], None]) -> None:
        """Read `port` with `cb` (recorded, so an ingress impairment can take it over)."""
        self.readers.setdefault(ifname, {})[port.fileno()] = (port, cb)
        self.loop.add_reader(port.fileno(), cb, ifname, port)

    def set_ingress_hook(self, ifname: str, hook: Callable[[list[bytes]], None] | None) -> None:
        """Hand every frame read on `ifname` to `hook` (the ingress impairment's queue, which
        gives them back through `receive_general`), or with None read it the usual way."""
        if hook is None:
            self.ingress_hooks.pop(ifname, None)
        else:
            self.ingress_hooks[ifname] = hook
        for fd, (port, cb) in self.readers.get(ifname, {}).items():
            self.loop.remove_reader(fd)
            self.loop.add_reader(fd, self._hooked_readable if hook else cb, ifname, port)

    def _hooked_readable(self, ifname: str, port: PacketPort) -> None:
        frames = port.recv_batch(BATCH)
        if not frames and port.take_error():
            self.counters["rx_socket_errors_" + ifname] += 1
        self.counters["rx_" + ifname] += len(frames)
        hook = self.ingress_hooks.get(ifname)
        if hook is not None:
            hook(frames)
        else:
            self._general(ifname, frames)

    def receive_general(self, ifname: str, frames: list[bytes]) -> None:
        """Frames received on `ifname` earlier (held by an ingress impairment), processed now."""
        self.counters["rx_general"] += len(frames)
        self._general(ifname, frames)

    def _ring_watchdog(self) -> None:
        """Once a second, read every RX ring even without a wake-up (rx_ring_missed counts
        frames found this way: normally a few frames that had just arrived), and let a ring
        whose slot at our index stayed unready for a second while later slots are ready
        resynchronise (RingPort.unstick; rx_ring_resyncs, should stay 0)."""
        try:
            c = self.counters
            for ifname, (mring, iring) in self.rings.items():
                hooked = ifname in self.ingress_hooks
                for ring, fn in ((mring, self._mpls_readable), (iring, self._ip_readable)):
                    if hooked:
                        fn = self._hooked_readable
                    skipped = ring.unstick()
                    if skipped:
                        c["rx_ring_resyncs"] += 1
                        log.warning("%s: RX ring resynchronised, %d slots skipped", ifname, skipped)
                    if not ring.ready():
                        continue  # nothing waiting: an idle router does no reading
                    before = c["rx_" + ifname]
                    fn(ifname, ring)
                    if c["rx_" + ifname] != before:
                        c["rx_ring_missed"] += c["rx_" + ifname] - before
        except Exception:
            self.counters["watchdog_errors"] += 1
            log.warning("ring watchdog:\n%s", traceback.format_exc())
        finally:
            self.loop.call_later(1.0, self._ring_watchdog)

    def _log_flush(self) -> None:
        """Say what the log rate limit held back ("suppressed K similar")."""
        try:
            if self.log_limit is not None:
                self.log_limit.flush(log)
        finally:
            self.loop.call_later(LOG_FLUSH, self._log_flush)

    def _frames_readable(self, ifname: str, port: PacketPort) -> None:
        frames = port.recv_batch(BATCH)
        if not frames and port.take_error():  # POLLERR, not frames: forwarding.afpacket
            self.counters["rx_socket_errors_" + ifname] += 1
        self.counters["rx_" + ifname] += len(frames)
        self._general(ifname, frames)

    def _mpls_readable(self, ifname: str, port: RingPort) -> None:
        """MPLS ring: swap / PHP ring-to-ring (forwarding.ioloop), the rest the general way."""
        if self.fast is None:
            return self._frames_readable(ifname, port)
        return self._ring_readable(ifname, port, self.fast.mpls)

    def _ip_readable(self, ifname: str, port: RingPort) -> None:
        """IPv4 ring: push / IP forwarding ring-to-ring unless a hook (IPsec) wants every frame."""
        if self.fast is None or self.ipsec is not None:
            return self._frames_readable(ifname, port)
        return self._ring_readable(ifname, port, self.fast.ipv4)

    def _ring_readable(self, ifname: str, port: RingPort, step: Any) -> None:
        """One wake-up of a ring: `step` (FastPath.mpls or .ipv4) in batches, the frames it
        leaves to the general path, TX rings flushed after each batch."""
        c = self.counters
        c["rx_wakeups"] += 1  # rx_<if> / rx_wakeups: frames per wake-up (batching)
        woke = self._coalesce(port)
        total = 0
        for _ in range(FAST_ROUNDS):  # more rounds while frames keep coming: fewer epoll trips
            got, fwd, slow = step(port, self.my_macs[ifname], FAST_BATCH)
            total += got
            c["rx_" + ifname] += got
            c["forwarded"] += fwd
            if slow:
                c["rx_general"] += len(slow)
                self._general(ifname, slow)
            else:
                for p in self.tx.values():
                    if p.pending:
                        p.flush()
            if got < FAST_BATCH or self.ipsec is not None:
                break
        if not total and port.take_error():  # POLLERR, not frames: forwarding.afpacket
            c["rx_socket_errors_" + ifname] += 1
        self._woke[port.fileno()] = (woke, total)
        return None

    def _coalesce(self, port: RingPort) -> float:
        """Receive coalescing (see COAL_WAIT): wait a moment on a busy link, at most once per
        COAL_WAIT of work (several busy rings share one wait). Returns the wake-up time."""
        now = time.monotonic()
        last, got = self._woke.get(port.fileno(), (0.0, 0))
        if (COAL_WAIT and got >= COAL_MIN and now - last < COAL_GAP and now >= self._coal_next
                and not self.fast.long_run(port, FAST_BATCH)):
            time.sleep(COAL_WAIT)
            self.counters["rx_coalesced"] += 1
            self._coal_next = time.monotonic() + COAL_WAIT
        return now

    def _general(self, ifname: str, frames: list[bytes]) -> None:
        """The per-frame path: RFC 8029 echo and IPsec hooks, then `forwarding.plane`, which
        gives every other frame its outcome and counter (forwarded, delivered -- for us,
        broadcast, multicast: the kernel has its own copy --, or dropped for a reason)."""
        my_mac = self.my_macs[ifname]
        process = self.process
        ports = self.tx
        c = self.counters
        # Labelled echo requests only where labelled frames are accepted at all (LDP links)
        oam_mpls = ifname in self.ldp_ifs
        for f in frames:
            et = f[12:14]
            mine = f[:6] == my_mac
            # RFC 8029 echo requests: label TTL expiring here, explicit-null, IP to 127/8
            # under one (bottom) label (a VPN label ending the LSP here; IPv6 to
            # ::ffff:127/104 under a 6PE or VPN label, lsr.oam.echo6), or IP to 127/8
            if mine and len(f) > 34 and (f[30] == 127 if et == b"\x08\x00" else (
                    oam_mpls and et == b"\x88\x47" and (
                        f[17] <= 1 or f[14:16] == b"\0\0" or (
                            f[16] & 1 and len(f) > 38 and f[34] == 127) or (
                            f[16] & 1 and len(f) > 58 and f[54] == 127 and f[18] >> 4 == 6)))) \
                    and self.oam.intercept(f, ifname):
                continue
            out = None
            if mine and et == b"\x08\x00" and self.ipsec is not None:
                try:  # ESP in/out at an edge router (lsr.lab.ipsec)
                    out = self.ipsec.frame(f, ifname)
                except Exception:
                    c["ipsec_errors"] += 1
                    log.warning("ipsec error on %s:\n%s", ifname, traceback.format_exc())
                    continue
            if process is None:
                c["no_tables"] += 1
                continue
            try:
                if out is None:
                    out = process(f, ifname)
            except Exception:
                c["dataplane_errors"] += 1
                if c["dataplane_errors"] <= 20:
                    log.warning("dataplane error on %s:\n%s", ifname, traceback.format_exc())
                continue
            for out_if, data in out:
                p = ports.get(out_if)
                if p is not None:
                    if p.send(data):
                        c["forwarded"] += 1
                    else:
                        c["tx_errors"] += 1
                elif out_if == LOCAL_IF:
                    self.deliver_local(data)
                else:
                    c["tx_errors"] += 1
        for p in ports.values():
            if p.pending:
                p.flush()

    def send_frames(self, out: list[tuple[str, bytes]]) -> None:
        """Send frames the dataplane produced outside the receive loop (flushing TX rings)."""
        for out_if, data in out:
            p = self.tx.get(out_if)
            if p is not None:
                if not p.send(data):
                    self.counters["tx_errors"] += 1
                elif p.pending:
                    p.flush()
            elif out_if == LOCAL_IF:
                self.deliver_local(data)

    # ------------------------------------------------------------ management

    async def _mgmt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (line := await _read_request(reader)) != b"":
                try:
                    if line is None:
                        raise ValueError(f"request line longer than {_MGMT_LIMIT} bytes")
                    try:
                        req = json.loads(line)
                    except ValueError as e:
                        raise ValueError(f"bad request (not JSON): {e}") from None
                    if not isinstance(req, dict):
                        raise ValueError("bad request: expected a JSON object")
                    result = self.answer(req)
                    if asyncio.iscoroutine(result):
                        result = await result
                    resp = {"ok": True, "result": result}
                except (ValueError, LsrError) as e:  # the request's fault: a plain one-line message
                    resp = {"ok": False, "error": " ".join(str(e).split()) or type(e).__name__}
                except Exception as e:  # our bug: keep the class, traceback to the router log
                    log.error("management request failed:\n%s", traceback.format_exc())
                    resp = {"ok": False, "error": f"internal error: {type(e).__name__}: {e}"}
                writer.write((json.dumps(resp, sort_keys=True) + "\n").encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def refused(self) -> dict[str, dict[str, int]]:
        """What the flood bounds refused, per protocol (reason -> count, non-zero only):
        LDP's Hello and TCP bounds (`LdpInstance.refusals`) and the runtime's connect bound,
        OSPF's Hellos from an extra or too-new neighbor and packets on non-OSPF interfaces."""
        out: dict[str, dict[str, int]] = {}
        ldp = dict(getattr(self.ldp, "refusals", dict)())
        if self.counters["ldp_connect_refused"]:
            ldp["runtime-connect-limit"] = self.counters["ldp_connect_refused"]
        if ldp:
            out["ldp"] = dict(sorted(ldp.items()))
        if self.ospf is not None:
            ospf = {k.removeprefix("drop-"): v for k, v in self.ospf.inst.counters.items()
                    if k.startswith(("drop-hello-second", "drop-hello-neighbor",
                                     "drop-not-ospf"))}
            if self.counters["ospf_rx_foreign"]:
                ospf["not-ospf-interface"] = (ospf.get("not-ospf-interface", 0)
                                              + self.counters["ospf_rx_foreign"])
            if ospf:
                out["ospf"] = dict(sorted(ospf.items()))
        if self.bgp is not None and self.bgp.refused:
            out["bgp"] = dict(sorted(self.bgp.refused.items()))
        return out

    def answer(self, req: dict[str, Any]) -> Any:
        op = req.get("op")
        if str(op).startswith("oam_"):
            return self.oam.answer(req)
        if op == "status":
            return {
                "router": self.name, "pid": os.getpid(), "uptime": round(time.time() - self.started, 3),
                "lsr_id": str(self.node.lsr_id), "down_links": sorted(self.down_links),
                "sessions": ldp_sessions(self.ldp), "dataplane": self.process is not None,
                "ring": self.use_ring, "igp": "ospf" if self.ospf is not None else "reference",
                **({"ospf_full": self.ospf.inst.full_neighbors(),
                    "carrier_down": sorted(i for i, up in self.ospf.carrier.items() if not up)}
                   if self.ospf is not None else {}),
                "refused": self.refused(),
                **({"bgp": self.bgp.sessions()} if self.bgp is not None else {}),
            }
        if op == "bgp":
            if self.bgp is None:
                raise ValueError(f"{self.name} runs no BGP (not in the topology's bgp: section)")
            return self.bgp.answer(req)
        if op == "vrf":
            if self.vpn is None:
                raise ValueError(f"{self.name} has no VRFs")
            return self.vpn.answer(req)
        if op == "ospf":
            if self.ospf is None:
                raise ValueError(f"{self.name} runs no OSPF (a static LFIB)")
            what = req.get("what", "status")
            if what == "lsdb":
                return {"lsdb": self.ospf.inst.lsdb_json()}
            return self.ospf.status()
        if op == "lfib":
            j = self.lfib.to_json()
            six = self.sixpe.json() if self.sixpe is not None else None
            return {**j, "ipv6": six} if six is not None else j
        if op == "neighbors":
            return ldp_neighbors(self.ldp)
        if op == "bindings":
            return ldp_bindings(self.ldp)
        if op == "counters":
            out = dict(self.counters)
            for name, p in self.tx.items():
                out["port_tx_errors_" + name] = p.tx_errors
                if getattr(p, "tx_dropped", 0):  # queued while the interface was down
                    out["tx_dropped_" + name] = p.tx_dropped
            for name, rings in self.rings.items():  # RX ring full: the kernel dropped frames
                out["rx_ring_drops_" + name] = sum(r.drops() for r in rings)
            if self.log_limit is not None and self.log_limit.suppressed:
                out["log_suppressed"] = self.log_limit.suppressed
            res: dict[str, Any] = {"runtime": dict(sorted(out.items()))}
            if hasattr(self.ldp, "counters"):
                res["ldp"] = _plain(self.ldp.counters())
            if self.bgp is not None:
                res["bgp"] = self.bgp.counters_json()
            if self.tables is not None and hasattr(self.tables, "counters_json"):
                res["dataplane"] = _plain(self.tables.counters_json())
            imp = self.impair.counters_json()
            if imp:  # per impaired interface and direction (lsr.lab.node_impair)
                res["impair"] = imp
            return res
        if op == "rib":
            return [r.to_json() for r in self.rib.values()]
        if op == "link":
            link, up = req.get("link"), req.get("up")
            if type(link) is not int or not 0 <= link < len(self.topo.links):
                raise ValueError(f"no link {link!r} in this topology "
                                 f"(links 0..{len(self.topo.links) - 1})")
            if not isinstance(up, bool):
                raise ValueError(f"link 'up' must be true or false, not {up!r}")
            if self.ospf is None:  # central IGP: told of the change; with OSPF, carrier tells
                self.link_event(link, up)
            return {"down_links": sorted(self.down_links)}
        if op == "impair":
            return self._impair_request(req)
        if op == "ipsec":
            if self.ipsec is None:
                raise ValueError(f"{self.name} has no IPsec role in this topology")
            return self.ipsec.answer(req)
        if op == "process":
            # (igp: the whole topology's graph and SPF, held only without OSPF)
            return {**process_view(req.get("top", 0)), "igp": self.igp is not None}
        if op == "start":
            self.go.set()
            return {}
        if op == "stop":
            self.loop.call_soon(self.stopping.set)
            return {}
        raise ValueError(f"unknown op {op!r}")

    def _impair_request(self, req: dict[str, Any]) -> Any:
        """`{"op": "impair", "link": N, "impair": {...} | null}`: set or clear the link's
        impairment on our end (lsr.lab.node_impair); without "impair": what is in force."""
        from lsr.core.impair import Impairment

        link = req.get("link")
        if type(link) is not int or not 0 <= link < len(self.topo.links):
            raise ValueError(f"no link {link!r} in this topology")
        if "impair" not in req:
            imp = self.impair.params.get(link)
            return {"link": link, "impair": imp.to_json() if imp else None}
        raw = req["impair"]
        if raw is not None and not isinstance(raw, dict):
            raise ValueError("impair must be an object or null")
        imp = Impairment.from_json(raw) if raw else None
        return self.impair.set(link, imp)

    # ------------------------------------------------------------ run

    async def run(self, wait_start: bool = False, restart: bool = False,
                  start_fd: int | None = None) -> None:
        sock_path = self.state_dir / f"{self.name}.sock"
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        server = await asyncio.start_unix_server(self._mgmt, path=str(sock_path))
        os.chmod(sock_path, 0o600)  # root's alone (connect needs write permission)
        for ifname in self.ldp_ifs:
            self.hello_socks[ifname] = self.open_hello_socket(ifname)
        if self.ospf is not None:
            self.ospf.open()
        self.open_ports()
        if start_fd is None:  # (behind a start gate: `lab up`'s new namespace, nothing to sweep)
            sweep_routes()  # a predecessor's routes (after a crash): ours start from our RIB
        self.kernel_routes = sync_routes(self.rib, set())
        self.rebuild_tables()
        if self.topo.extra.get("ipsec") is not None:  # (a lab without IPsec: no import)
            from lsr.lab.ipsec import IpsecRuntime

            self.ipsec = IpsecRuntime.maybe(self)
        self.impair.start()  # after the tables: the fast path must learn which ports are wrapped
        if self.rings:
            self.loop.call_later(1.0, self._ring_watchdog)
        self.loop.call_later(LOG_FLUSH, self._log_flush)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.stopping.set)
        write_file(self.state_dir / f"{self.name}.ready", str(os.getpid()), 0o600)
        if wait_start:
            # Hellos sent before a neighbour has its socket are lost and cost a
            # whole hello interval; the lab starts every router at once instead.
            waiter = self.loop.create_task(self.go.wait())
            if start_fd is not None:  # EOF when `lab up` opens the start gate
                self.loop.add_reader(start_fd, self.go.set)
            await asyncio.wait([waiter, self.loop.create_task(self.stopping.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
        if start_fd is not None:
            self.loop.remove_reader(start_fd)
            os.close(start_fd)
        self.feed(ev.Start())
        self.feed(ev.RibChanged(dict(self.rib)))
        for ifname, s in self.hello_socks.items():
            self.loop.add_reader(s.fileno(), self._hello_readable, ifname, s)
            self._hello_readable(ifname, s)
        if self.ospf is not None:
            self.ospf.start(restart)
        if self.bgp is not None:
            self.bgp.start(self.rib)
        if self.sixpe is not None:
            self.sixpe.start()
        if self.vpn is not None:
            self.vpn.start()
        log.info("router %s up (pid %d)%s", self.name, os.getpid(), " (restart)" if restart else "")
        if self.ipsec is not None:
            self.ipsec.start()  # IKE: after the start barrier, like LDP
        await self.stopping.wait()
        log.info("stopping")
        with contextlib.suppress(Exception):
            self.feed(ev.Stop())
        if self.bgp is not None:
            with contextlib.suppress(Exception):
                self.bgp.stop()  # NOTIFICATION Cease to every peer
        if self.ospf is not None:
            with contextlib.suppress(Exception):
                self.ospf.stop()  # flush our router-LSA (premature aging, RFC 2328 §14.1)
        await asyncio.sleep(0.05)  # let Shutdown notifications leave
        server.close()


# The modules a forked router had from its parent (None: not forked, `ip netns exec`)
_MODULES_AT_FORK: frozenset[str] | None = None


def process_view(top: Any = 0) -> dict[str, Any]:
    """`{"op": "process"}`: what this router process holds (docs/scale.md, "A big lab on
    one machine"): its modules (and those imported since it was forked), the objects gc.freeze() left out of collection (inherited
    from the process it was forked from), its memory (smaps_rollup, kB) and CPU seconds;
    with `"top": N` and LSR_TRACEMALLOC set, the N largest allocation sites since start."""
    mem: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
            k, _, v = line.partition(":")
            if v.strip().endswith("kB"):
                mem[k] = int(v.split()[0])
    t = os.times()
    late = None if _MODULES_AT_FORK is None else sorted(set(sys.modules) - _MODULES_AT_FORK)
    out: dict[str, Any] = {"pid": os.getpid(), "modules": sorted(sys.modules),
                           "imported_after_fork": late,
                           "gc_frozen": gc.get_freeze_count(), "gc_counts": list(gc.get_count()),
                           "memory_kb": mem, "cpu_seconds": round(t.user + t.system, 3)}
    if type(top) is int and top > 0:
        import tracemalloc

        if tracemalloc.is_tracing():
            stats = tracemalloc.take_snapshot().statistics("lineno")[:top]
            out["tracemalloc_kb"] = round(tracemalloc.get_traced_memory()[0] / 1024)
            out["top"] = [{"site": str(s.traceback[0]), "kb": round(s.size / 1024),
                           "count": s.count} for s in stats]
    return out


class _NoLdp:
    def handle(self, event: Any, now: float) -> list:
        return []


# ---------------------------------------------------------------- LDP glue
# The speaker's constructor and introspection, in one place.


def make_ldp(topo: Topology, name: str) -> Any:
    from ldp.instance import LdpInstance

    # A shorter first retry than FRR's 15 s: a connect that races the peer's
    # listener at lab start should not cost 15 s of convergence.
    return LdpInstance.from_topology(topo, name, retry_initial=2.0, retry_max=30.0)


def ldp_sessions(inst: Any) -> dict[str, str]:
    """peer LSR ID -> session state name."""
    fn = getattr(inst, "session_states", None)
    if callable(fn):
        return {str(k): str(v) for k, v in fn().items()}
    out: dict[str, str] = {}
    for n in ldp_neighbors(inst):
        out[str(n.get("lsr_id", n.get("peer")))] = str(n.get("state"))
    return out


def ldp_neighbors(inst: Any) -> list[dict[str, Any]]:
    for attr in ("neighbors_json", "neighbors"):
        fn = getattr(inst, attr, None)
        if callable(fn):
            return _plain(fn())
    return []


def ldp_bindings(inst: Any) -> Any:
    for attr in ("bindings_json", "bindings"):
        fn = getattr(inst, attr, None)
        if callable(fn):
            return _plain(fn())
    return []


def _plain(v: Any) -> Any:
    return json.loads(json.dumps(ev.plain(v), default=str))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lsr.lab.node")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--router", required=True)
    ap.add_argument("--no-ring", action="store_true", help="plain recv loop instead of TPACKET_V2")
    ap.add_argument("--debug", action="store_true")
    ap.add_argument("--wait-start", action="store_true", help="start LDP on a 'start' request")
    ap.add_argument("--start-fd", type=int, help="with --wait-start: or when this pipe's "
                    "write end closes (lsr.lab.routers.StartGate)")
    ap.add_argument("--restart", action="store_true",
                    help="a restart into a running lab (lsr lab node start): OSPF stub router "
                         "for a while (RFC 6987)")
    ap.add_argument("--static-lfib", help="pickled lsr.core.lfib.Lfib; no LDP (benchmarks)")
    args = ap.parse_args(argv)
    if os.environ.get("LSR_TRACEMALLOC", "").isdigit():  # memory study (process_view)
        import tracemalloc

        tracemalloc.start(int(os.environ["LSR_TRACEMALLOC"]) or 1)
    state_dir = Path(args.state_dir)
    # Rate-limited lines, size-capped file (lsr.lab.logcap): an attack cannot fill /run.
    limit = install_logging(state_dir / f"{args.router}.log",
                            f"%(asctime)s {args.router} %(levelname)s %(message)s",
                            logging.DEBUG if args.debug else logging.INFO)
    shared = _forked_topology
    topo: Topology = shared[1] if shared is not None and shared[0] == state_dir else \
        pickle.loads((state_dir / "topology.pickle").read_bytes())

    async def amain() -> None:
        static = pickle.loads(Path(args.static_lfib).read_bytes()) if args.static_lfib else None
        router = Router(topo, args.router, state_dir, ring=not args.no_ring, static_lfib=static)
        router.log_limit = limit
        await router.run(wait_start=args.wait_start, restart=args.restart,
                         start_fd=args.start_fd)

    asyncio.run(amain())
    return 0


CLONE_NEWNET = 0x40000000
# (state dir, topology) of the lab whose routers this process is forking: each router
# uses the parent's copy, shared, instead of unpickling its own (~1 MB a router at 200).
_forked_topology: tuple[Path, Topology] | None = None


def share_topology(state_dir: Path | None, topo: Topology | None = None) -> None:
    """Routers forked from now on (for lab `state_dir`) use `topo` as it is in memory;
    None: they read topology.pickle again."""
    global _forked_topology
    _forked_topology = None if state_dir is None or topo is None else (Path(state_dir), topo)


def spawn_forked(ns: str, argv: list[str], log_path: Path, close: tuple[int, ...] = ()) -> int:
    """Fork a router process into namespace `ns` (the parent has the modules imported already).

    Much faster and lighter than `ip netns exec python -m lsr.lab.node` for big labs:
    no interpreter start-up, and the imported code is shared copy-on-write.
    The child never returns: it runs `main(argv)` and `_exit`s, with the file
    descriptors `close` closed (the start gate's write end: lsr.lab.routers.StartGate).
    """
    import ctypes

    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    logfd = open_append(log_path)
    pid = os.fork()
    if pid:
        os.close(fd)
        os.close(logfd)
        return pid
    code = 1
    global _MODULES_AT_FORK
    _MODULES_AT_FORK = frozenset(sys.modules)
    try:
        for c in close:
            os.close(c)
        os.setsid()  # a Ctrl-C at the terminal is for `lsr lab up`, not for us
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        os.close(fd)
        libc.prctl(15, f"lsr-{node_of(ns)}"[:15].encode(), 0, 0, 0)  # PR_SET_NAME: ps/top
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(logfd, 1)
        os.dup2(logfd, 2)
        os.chdir("/")
        # Fresh stdio objects: a thread of the parent may have held their locks at fork time.
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        for h in logging.root.handlers[:]:
            logging.root.removeHandler(h)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # `up`'s handlers: not ours
            signal.signal(sig, signal.SIG_DFL)
        code = main(argv)
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    return -1  # not reached


if __name__ == "__main__":
    sys.exit(main())
