"""IPsec in the router runtime: the dataplane stage and the IKEv2 UDP driver.

`IpsecRuntime.maybe(router)` returns None for routers without an IPsec role
(no SA, policy or IKE connection in the topology's `ipsec:` section), so the
runtime pays nothing for IPsec unless it is configured. Otherwise:

* `stage` (`forwarding.ipsec.dataplane.IpsecStage`) is called by
  `lsr.lab.node` for unicast IPv4 frames before the MPLS forwarding plane;
* one `IkeConn` per `ipsec.ike` entry naming this router runs a sans-I/O
  `ike.tunnel.Tunnel` (IKE SA, Child SAs, lifetimes, rekeys, keep-up) over UDP
  500 and 4500 on the router's loopback (RFC 7296 §2, RFC 3948 §2.2 non-ESP
  marker on 4500): it hands datagrams and the clock to the tunnel, sends what
  it returns, applies its SAD operations (the SPD's PROTECT entries pick the
  outbound SA up by name), arms one timer for the tunnel's next deadline, and
  keeps its notes for `lsr lab ipsec` and the log (lifecycle errors also go to
  the audit ring).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import dataclasses
import logging
import socket
import struct
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from forwarding.ipsec.dataplane import IKE_PORT, NATT_PORT, IpsecStage
from forwarding.ipsec.engine import IpsecEngine
from forwarding.ipsec.esp import EspDrop, SecurityAssociation
from ike import IkeConfig, SendIke, State
from ike.codec import TrafficSelector
from ike.config import IkeSpec, ike_for_router, ike_out_sa, ipsec_for_router
from ike.tunnel import (
    KEEP_UP_FALLBACK,
    AddInbound,
    ClearOutbound,
    Lifetimes,
    Note,
    RemoveInbound,
    SetOutbound,
    Tunnel,
)

log = logging.getLogger("lsr.node.ipsec")

NON_ESP_MARKER = b"\0\0\0\0"  # RFC 3948 §2.2
IPPROTO_ESP = 50
IPPROTO_AH = 51  # RFC 4302
SO_ATTACH_FILTER = 26
LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _ts(nets: tuple[IPv4Network, ...]) -> tuple[TrafficSelector, ...]:
    return tuple(TrafficSelector(n.network_address, n.broadcast_address) for n in nets)


class IkeConn:
    """One IKEv2 connection of this router: a `Tunnel` and its I/O."""

    def __init__(self, rt: IpsecRuntime, spec: IkeSpec, peer_kind: str = "lsr") -> None:
        self.rt = rt
        self.spec = spec
        v = spec.view(rt.name)
        self.local: IPv4Address = v["local_addr"]
        self.remote: IPv4Address = v["remote_addr"]
        self.initiator = spec.initiator == rt.name
        config = IkeConfig(
            psk=spec.psk, local_id=v["local_id"].encode(), remote_id=v["remote_id"].encode(),
            local_ts=_ts(v["local_subnets"]), remote_ts=_ts(v["remote_subnets"]),
            ike_key_bits=spec.ike_bits, esp_key_bits=spec.esp_bits, pfs=spec.pfs,
            nat_t=spec.nat_t, remote_addr=(self.remote, IKE_PORT),
        )
        # After the peer's Delete of a Child SA, who creates it again: the initiator at
        # once; the responder too when the peer is strongSwan (its close_action is none),
        # else a moment later, only if the initiator has not (no duplicate Child SAs).
        keep_up = 0.0 if self.initiator or peer_kind != "lsr" else KEEP_UP_FALLBACK
        self.tunnel = Tunnel(config, name=spec.name, initiator=self.initiator, local=self.local,
                             remote=self.remote,
                             lifetimes=Lifetimes.of(spec.rekey_seconds, spec.ike_rekey_seconds),
                             keep_up_delay=keep_up, sa_options={"replay_window": spec.replay_window})
        self.peer_port = IKE_PORT
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    @property
    def config(self) -> IkeConfig:
        return self.tunnel.config

    @config.setter
    def config(self, value: IkeConfig) -> None:
        self.tunnel.config = value  # the next IKE SA uses it

    @property
    def state(self) -> str:
        return self.tunnel.state

    # ------------------------------------------------------------ input

    def start(self) -> None:
        """Initiator: begin IKE_SA_INIT (again)."""
        self._apply(self.tunnel.start(time.monotonic()))

    def receive(self, data: bytes, port: int) -> None:
        outs = self.tunnel.receive(data, time.monotonic())
        if self.tunnel.accepted:  # a forged datagram must not move our idea of the peer's port
            self.peer_port = port
        self._apply(outs, reply_port=port)  # an answer goes where its request came from (§2.11)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        self._apply(self.tunnel.tick(time.monotonic()))

    def command(self, what: str) -> dict[str, Any]:
        """`rekey` (Child SA), `rekey-ike` or `delete` (the Child SA; it comes back)."""
        now = time.monotonic()
        fn = {"rekey": self.tunnel.rekey_child, "rekey-ike": self.tunnel.rekey_ike,
              "delete": self.tunnel.delete_child}[what]
        result, outs = fn(now)
        self._apply(outs)
        return result

    # ------------------------------------------------------------ output

    def _apply(self, outs: list[Any], reply_port: int | None = None) -> None:
        for o in outs:
            try:
                self._do(o, reply_port)
            except Exception as e:  # an action must never stop the router
                self.tunnel.counters["errors"] += 1
                log.exception("ike %s: %s failed: %s", self.spec.name, type(o).__name__, e)
        self._arm()

    def _do(self, o: Any, reply_port: int | None = None) -> None:
        sad = self.rt.engine.sad
        if isinstance(o, SendIke):
            self._send(o.data, reply_port)
        elif isinstance(o, AddInbound):
            sad.add_inbound(o.sa)
        elif isinstance(o, SetOutbound):
            assert o.sa.name == ike_out_sa(self.spec.name)
            old = sad.lookup_outbound(o.sa.name)
            if old is not None:
                sad.remove(old)
            sad.add_outbound(o.sa)
            if self.spec.nat_t:
                self.rt.stage.udp_encap[o.sa.name] = (NATT_PORT, NATT_PORT)
        elif isinstance(o, ClearOutbound):
            if sad.lookup_outbound(o.sa.name) is o.sa:
                sad.remove(o.sa)
        elif isinstance(o, RemoveInbound):
            sad.remove(o.sa)
            self.rt.retire(o.out, o.sa)
        elif isinstance(o, Note):
            self._note(o)

    def _note(self, n: Note) -> None:
        self.events.append({"time": round(time.time(), 3), "event": n.text})
        log.log(LEVELS.get(n.level, logging.INFO), "ike %s: %s", self.spec.name, n.text)
        if n.problem is not None:  # lifecycle errors go to the audit ring too
            self.rt.audit_record({"reason": n.problem, "detail": n.text, "spi": n.spi, "seq": None,
                                  "src": str(self.local), "dst": str(self.remote),
                                  "sa": self.spec.name})

    def _send(self, data: bytes, reply_port: int | None = None) -> None:
        s = self.tunnel.session
        port = NATT_PORT if (self.spec.nat_t and s is not None and s.state is not State.INIT_SENT
                             and s.state is not State.IDLE) else IKE_PORT
        if not self.initiator:
            port = reply_port or self.peer_port or port
        self.rt.send_ike(self.local, self.remote, port, data)

    def _arm(self) -> None:
        at = self.tunnel.next_deadline()
        if at == self._timer_at:
            return
        self.cancel_timers()
        if at is not None:
            self._timer_at = at
            self._timer = self.rt.loop.call_later(max(0.0, at - time.monotonic()), self._fire)

    def cancel_timers(self) -> None:
        if self._timer:
            self._timer.cancel()
        self._timer = self._timer_at = None

    # ------------------------------------------------------------ show

    def status(self) -> dict[str, Any]:
        st = self.tunnel.status(time.monotonic())
        return {
            "name": self.spec.name, "peer": self.spec.peer(self.rt.name),
            "local": str(self.local), "remote": str(self.remote),
            "role": "initiator" if self.initiator else "responder",
            "nat_t": self.spec.nat_t, "rekey_seconds": self.spec.rekey_seconds,
            "ike_rekey_seconds": self.spec.ike_rekey_seconds,
            **st, "events": list(self.events)[-10:],
        }


class IpsecRuntime:
    """IPsec of one router: SPD/SAD, dataplane stage, IKE connections, management."""

    def __init__(self, router: Any) -> None:
        self.router = router
        self.name: str = router.name
        self.loop: asyncio.AbstractEventLoop = router.loop
        topo = router.topo
        spd, sad = ipsec_for_router(topo, self.name, now=time.monotonic())
        self.engine = IpsecEngine(spd, sad)
        host_ifs = [i.name for i in router.node.interfaces.values()
                    if not topo.nodes[i.peer_node].is_router]
        self.stage = IpsecStage(self.engine, router.tables, host_ifs, audit=self._audit)
        self.audit_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)
        self.conns = {c.name: IkeConn(self, c, topo.nodes[c.peer(self.name)].kind)
                      for c in ike_for_router(topo, self.name)}
        self.retired: collections.Counter[str] = collections.Counter()  # counters of old SAs
        self.socks: dict[int, socket.socket] = {}

    @staticmethod
    def maybe(router: Any) -> IpsecRuntime | None:
        """An IpsecRuntime if the topology gives this router an IPsec role, else None."""
        cfg = router.topo.extra.get("ipsec")
        if cfg is None or router.tables is None:
            return None
        name = router.name
        role = (any(name in (s.src, s.dst) for s in cfg.sas)
                or any(p.router == name for p in cfg.policies)
                or any(name in (c.left, c.right) for c in cfg.ike))
        return IpsecRuntime(router) if role else None

    # ------------------------------------------------------------ dataplane glue

    def frame(self, frame: bytes, in_if: str) -> list[tuple[str, bytes]] | None:
        return self.stage.frame(frame, in_if, time.monotonic())

    def local(self, packet: bytes) -> list[tuple[str, bytes]] | None:
        """A packet that arrived labelled and is for this router (explicit null)."""
        return self.stage.local(packet, time.monotonic())

    def _audit(self, d: EspDrop) -> None:
        rec = d.to_dict()
        rec["time"] = round(time.time(), 3)
        self.audit_log.append(rec)
        n = self.stage.counters["audited"] = self.stage.counters["audited"] + 1
        if n <= 1000 or n % 1000 == 0:  # a flood must not fill the disk
            log.warning("ipsec drop %s: %s (sa=%s spi=%s seq=%s %s -> %s)", d.reason, d.detail,
                        d.sa, None if d.spi is None else f"0x{d.spi:08x}", d.seq, d.src, d.dst)

    def audit_record(self, rec: dict[str, Any]) -> None:
        """An SA lifecycle error (expired, rekey failed, deleted by peer) in the audit ring."""
        self.audit_log.append({**rec, "time": round(time.time(), 3)})
        self.stage.counters["lifecycle_errors"] += 1

    def retire(self, out: SecurityAssociation, inb: SecurityAssociation) -> None:
        for sa in (out, inb):
            for k, v in sa.counters.to_dict().items():
                self.retired[k] += v

    # ------------------------------------------------------------ IKE sockets

    def start(self) -> None:
        self._claim_esp()
        if not self.conns:
            return
        addrs = {c.local for c in self.conns.values()}
        (addr,) = addrs  # our IKE endpoint is the loopback
        for port in (IKE_PORT, NATT_PORT):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((str(addr), port))
            s.setblocking(False)
            self.socks[port] = s
            self.loop.add_reader(s.fileno(), self._readable, port, s)
        for c in self.conns.values():
            c.start()

    def _claim_esp(self) -> None:
        """Keep the kernel (which has neither ESP nor AH) from answering ICMP
        protocol-unreachable to the ESP and AH packets our dataplane opens: a raw socket
        per protocol makes the kernel consider them delivered (Linux
        ip_local_deliver_finish); its BPF filter drops them all, so nothing queues."""
        self._bpf = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))  # ret 0
        prog = struct.pack("HL", 1, ctypes.addressof(self._bpf))
        for proto in (IPPROTO_ESP, IPPROTO_AH):
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
            s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)
            self.socks[proto] = s

    def _readable(self, port: int, s: socket.socket) -> None:
        for _ in range(32):
            try:
                data, (src, sport) = s.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.debug("ike recv: %s", e)
                return
            if port == NATT_PORT:
                if len(data) == 1 and data == b"\xff":
                    continue  # NAT-keepalive (RFC 3948 §2.3)
                if data[:4] != NON_ESP_MARKER:
                    self.stage.counters["udp_esp_to_socket"] += 1  # the stage should have had it
                    continue
                data = data[4:]
            conn = self._dispatch(IPv4Address(src), data)
            if conn is None:
                self.stage.counters["ike_unknown_peer"] += 1
                continue
            try:
                conn.receive(data, sport)
            except Exception:
                conn.counters["errors"] += 1
                log.exception("ike %s: receive failed", conn.spec.name)

    def _dispatch(self, peer: IPv4Address, data: bytes) -> IkeConn | None:
        """The connection a datagram belongs to: by initiator SPI (RFC 7296 §2.6), else a new
        IKE_SA_INIT request goes to the connection that responds to this peer."""
        mine = [c for c in self.conns.values() if c.remote == peer]
        for c in mine:
            s = c.tunnel.session
            if s is not None and s.knows(data[:8]):  # also an IKE SA a rekey replaced
                return c
        return next((c for c in mine if not c.initiator), None)

    def send_ike(self, local: IPv4Address, remote: IPv4Address, port: int, data: bytes) -> None:
        src_port = NATT_PORT if port == NATT_PORT else IKE_PORT
        s = self.socks.get(src_port)
        if s is None:
            return
        if src_port == NATT_PORT:
            data = NON_ESP_MARKER + data
        try:
            s.sendto(data, (str(remote), port))
        except OSError as e:
            log.debug("ike send to %s:%d: %s", remote, port, e)

    def stop(self) -> None:
        for c in self.conns.values():
            c.cancel_timers()
        for s in self.socks.values():
            with contextlib.suppress(Exception):
                self.loop.remove_reader(s.fileno())
            s.close()

    # ------------------------------------------------------------ management

    def sas(self) -> dict[str, Any]:
        sad = self.engine.sad
        out = []
        for sa in sad.outbound.values():
            out.append({"direction": "out", **sa.status(),
                        "udp_encap": sa.name in self.stage.udp_encap})
        replaced = {id(ch.inb) for c in self.conns.values() for _t, ch in c.tunnel.lingering.values()}
        for sa in sad.inbound.values():  # replaced: a rekeyed SA kept for in-flight packets
            out.append({"direction": "in", **sa.status(), "replaced": id(sa) in replaced})
        ike = [c.status() for c in self.conns.values()]
        return {
            "router": self.name,
            "problems": [{"conn": c["name"], **p} for c in ike for p in c["problems"]],
            "sas": out,
            "sad": sad.counters.to_dict(),
            "stage": dict(sorted(self.stage.counters.items())),
            "retired": dict(sorted(self.retired.items())),
            "ike": ike,
        }

    def policies(self) -> dict[str, Any]:
        return {"router": self.name, **self.engine.spd.to_dict()}

    def answer(self, req: dict[str, Any]) -> Any:
        """Management op `ipsec`: view sas|policies|audit, or action rekey|rekey-ike|delete|..."""
        view = req.get("view", "sas")
        if view == "sas":
            return self.sas()
        if view == "policies":
            return self.policies()
        if view == "audit":
            return list(self.audit_log)
        if view in ("rekey", "rekey-ike", "delete"):
            conn = self.conns.get(req.get("conn", ""))
            if conn is None:
                raise ValueError(f"no IKE connection {req.get('conn')!r} on {self.name}")
            return conn.command(view)
        if view == "initiate":  # (re)start initiators that are not up, e.g. once a peer exists
            started = []
            for c in self.conns.values():
                if c.initiator and (c.state != "established" or req.get("force")) \
                        and req.get("conn") in (None, c.spec.name):
                    c.start()
                    started.append(c.spec.name)
            return {"started": started}
        if view == "set-psk":  # tests: emulate a mismatched pre-shared key on this side
            c = self.conns[str(req["conn"])]
            c.config = dataclasses.replace(c.config, psk=str(req["psk"]).encode())
            return {"conn": c.spec.name}
        if view == "set-seq":  # tests: start an SA near the end of its sequence space
            sa = self.engine.sad.lookup_outbound(str(req["sa"]))
            if sa is None:
                raise ValueError(f"no outbound SA {req['sa']!r}")
            sa.next_seq = int(req["seq"])
            return {"sa": sa.name, "next_seq": sa.next_seq}
        raise ValueError(f"unknown ipsec view {view!r} (sas, policies, audit, rekey, rekey-ike, "
                         "delete, initiate, set-psk, set-seq)")


ClientQuery = Callable[..., Any]


def show(lab: str, router: str, what: str, query: ClientQuery) -> Any:
    """Client side of `lsr lab ipsec NAME R sas|policies`."""
    return query(lab, router, "ipsec", view=what)


__all__ = ["IkeConn", "IpsecRuntime", "show"]
