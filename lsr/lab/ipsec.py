"""IPsec in the router runtime: the dataplane stage and the IKEv2 UDP driver.

`IpsecRuntime.maybe(router)` returns None for routers without an IPsec role
(no SA, policy or IKE connection in the topology's `ipsec:` section), so the
runtime pays nothing for IPsec unless it is configured. Otherwise:

* `stage` (`forwarding.ipsec.dataplane.IpsecStage`) is called by
  `lsr.lab.node` for unicast IPv4 frames before the MPLS forwarding plane;
* one `IkeConn` per `ipsec.ike` entry naming this router drives a sans-I/O
  `IkeSession` over UDP 500 and 4500 on the router's loopback (RFC 7296 §2,
  RFC 3948 §2.2 non-ESP marker on 4500), retransmits (§2.1), installs Child
  SAs into the SAD and the SPD's PROTECT entries pick them up by name,
  rekeys them with CREATE_CHILD_SA (§1.3.3) every `rekey_seconds` (or on
  demand), and records AUTH_FAILED and other failures for `lsr lab ipsec`.

Make-before-break on rekey: the new inbound SA is installed at once on both
sides; the rekey initiator switches its outbound SA when the response
arrives, the responder when the old Child SA is deleted (RFC 7296 §2.8
leaves the timing to the implementation; this order loses no packet).
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
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from forwarding.ipsec.dataplane import IKE_PORT, NATT_PORT, IpsecStage
from forwarding.ipsec.engine import IpsecEngine
from forwarding.ipsec.esp import EspDrop, SecurityAssociation
from ike import (
    ChildSaDown,
    ChildSaFailed,
    ChildSaUp,
    Ignored,
    IkeConfig,
    IkeError,
    IkeFailed,
    IkeSaDown,
    IkeSaUp,
    IkeSession,
    PeerAlive,
    SendIke,
    State,
)
from ike.codec import Notify, TrafficSelector
from ike.config import IkeSpec, ike_for_router, ike_out_sa, ipsec_for_router

log = logging.getLogger("lsr.node.ipsec")

NON_ESP_MARKER = b"\0\0\0\0"  # RFC 3948 §2.2
IPPROTO_ESP = 50
IPPROTO_AH = 51  # RFC 4302
SO_ATTACH_FILTER = 26
RETRANSMIT_BASE = 0.5  # seconds; doubled per try up to RETRANSMIT_CAP (RFC 7296 §2.1)
RETRANSMIT_CAP = 4.0
RETRANSMIT_TRIES = 10
RETRY_AFTER_FAILURE = 5.0
# A rekeyed Child SA's inbound half stays in the SAD this long after its DELETE: ESP the
# peer sent on it may still be on its way (strongSwan with kernel-libipsec was seen sending
# one packet that arrived after its DELETE). strongSwan does the same for its own
# (charon.delete_rekeyed_delay, 5 s); RFC 7296 §2.8 leaves the timing open.
REKEYED_INBOUND_GRACE = 2.0


def _ts(nets: tuple[IPv4Network, ...]) -> tuple[TrafficSelector, ...]:
    return tuple(TrafficSelector(n.network_address, n.broadcast_address) for n in nets)


def _notify_name(n: int | None) -> str:
    if n is None:
        return ""
    try:
        return Notify(n).name
    except ValueError:
        return str(n)


@dataclass
class _Pair:
    out: SecurityAssociation
    inb: SecurityAssociation
    created: float = field(default_factory=time.monotonic)


class IkeConn:
    """One IKEv2 connection of this router (one IKE SA at a time)."""

    def __init__(self, rt: IpsecRuntime, spec: IkeSpec) -> None:
        self.rt = rt
        self.spec = spec
        v = spec.view(rt.name)
        self.local: IPv4Address = v["local_addr"]
        self.remote: IPv4Address = v["remote_addr"]
        self.initiator = spec.initiator == rt.name
        self.config = IkeConfig(
            psk=spec.psk, local_id=v["local_id"].encode(), remote_id=v["remote_id"].encode(),
            local_ts=_ts(v["local_subnets"]), remote_ts=_ts(v["remote_subnets"]),
            ike_key_bits=spec.ike_bits, esp_key_bits=spec.esp_bits, pfs=spec.pfs,
            nat_t=spec.nat_t, remote_addr=(self.remote, IKE_PORT),
        )
        self.session: IkeSession | None = None
        self.state = "idle"
        self.error: str | None = None
        self.peer_port = IKE_PORT
        self.children: dict[int, _Pair] = {}
        self.pending_out: dict[int, SecurityAssociation] = {}  # old spi_in -> new outbound
        self.my_rekeys: set[int] = set()
        self.replaced: set[int] = set()  # spi_in of Child SAs a rekey replaced
        self.lingering: dict[int, tuple[asyncio.TimerHandle, _Pair]] = {}  # spi_in -> removal
        self.counters: collections.Counter[str] = collections.Counter()
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self._rtx: asyncio.TimerHandle | None = None
        self._rtx_tries = 0
        self._rekey: asyncio.TimerHandle | None = None
        self._retry: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ events

    def _event(self, text: str, level: int = logging.INFO) -> None:
        self.events.append({"time": round(time.time(), 3), "event": text})
        log.log(level, "ike %s: %s", self.spec.name, text)

    def start(self) -> None:
        """Initiator: begin IKE_SA_INIT (again)."""
        if not self.initiator:
            return
        self.cancel_timers()
        self._teardown_children()
        self.session = IkeSession(self.config, initiator=True)
        self.state = "connecting"
        self.counters["ike_sa_init"] += 1
        self._handle(self.session.start())

    def receive(self, data: bytes, port: int) -> None:
        if len(data) < 28:
            self.counters["ignored"] += 1
            return
        spi_r, exchange, flags, mid = data[8:16], data[18], data[19], data[20:24]
        new_init = exchange == 34 and flags & 0x08 and not flags & 0x20 and mid == bytes(4) \
            and spi_r == bytes(8)
        if new_init and not self.initiator and (
            self.session is None or self.session.spi_i != data[:8]
        ):
            # a (new) IKE_SA_INIT from the initiator: the previous IKE SA, if any, is gone
            self.cancel_timers()
            self._teardown_children()
            self.session = IkeSession(self.config, initiator=False)
            self.state = "connecting"
        if self.session is None:
            self.counters["ignored"] += 1
            return
        self.peer_port = port
        self._handle(self.session.receive(data))

    def _send(self, data: bytes) -> None:
        s = self.session
        port = NATT_PORT if (self.spec.nat_t and s is not None and s.state is not State.INIT_SENT
                             and s.state is not State.IDLE) else IKE_PORT
        if not self.initiator:
            port = self.peer_port if self.peer_port else port
        self.rt.send_ike(self.local, self.remote, port, data)
        self.counters["tx"] += 1

    def _handle(self, actions: list[Any]) -> None:
        for a in actions:
            try:
                self._do(a)
            except Exception as e:  # an action must never stop the router
                self.counters["errors"] += 1
                log.exception("ike %s: %s failed: %s", self.spec.name, type(a).__name__, e)
        self._arm_retransmit()

    def _do(self, a: Any) -> None:
        if isinstance(a, SendIke):
            self._send(a.data)
        elif isinstance(a, IkeSaUp):
            self.state = "established"
            self.error = None
            self._event(f"IKE SA established (SPIs {a.spi_i}/{a.spi_r}, "
                        f"{'initiator' if self.initiator else 'responder'})")
        elif isinstance(a, ChildSaUp):
            self._child_up(a)
        elif isinstance(a, ChildSaDown):
            self._child_down(a.spi_in)
        elif isinstance(a, ChildSaFailed):
            self.counters["child_failed"] += 1
            self.error = f"CHILD_SA failed: {_notify_name(a.notify)}"
            self._event(self.error, logging.WARNING)
        elif isinstance(a, IkeFailed):
            self.counters["ike_failed"] += 1
            name = _notify_name(a.notify)
            self.state = "failed"
            self.error = f"{name}: {a.reason}" if name else a.reason
            self._event(f"IKE failed: {self.error}", logging.ERROR)
            self._teardown_children()
            self._schedule_retry()
        elif isinstance(a, IkeSaDown):
            self.state = "down"
            self._event(f"IKE SA down: {a.reason}")
            self._teardown_children()
            self._schedule_retry()
        elif isinstance(a, PeerAlive):
            self.counters["peer_alive"] += 1
        elif isinstance(a, Ignored):
            self.counters["ignored"] += 1
            log.debug("ike %s: ignored: %s", self.spec.name, a.reason)

    # ------------------------------------------------------------ Child SAs

    def _child_up(self, a: ChildSaUp) -> None:
        sad = self.rt.engine.sad
        now = time.monotonic()
        out, inb = a.child.to_sas(self.local, self.remote, name=self.spec.name,
                                  replay_window=self.spec.replay_window, created=now)
        assert out.name == ike_out_sa(self.spec.name)
        sad.add_inbound(inb)
        self.children[a.child.spi_in] = _Pair(out, inb)
        if self.spec.nat_t:
            self.rt.stage.udp_encap[out.name] = (NATT_PORT, NATT_PORT)
        if a.replaces is not None:
            self.replaced.add(a.replaces)
        if a.replaces is None or a.replaces in self.my_rekeys:
            self._use_outbound(out)
            self.my_rekeys.discard(a.replaces or 0)
        else:
            self.pending_out[a.replaces] = out  # switch when the old Child SA is deleted
        self.counters["child_up"] += 1
        what = f"rekeyed 0x{a.replaces:08x} ->" if a.replaces else "up:"
        self._event(f"CHILD_SA {what} in 0x{a.child.spi_in:08x} out 0x{a.child.spi_out:08x} "
                    f"{a.child.encryption}{' in UDP 4500' if self.spec.nat_t else ''}")
        if self.initiator and self.spec.rekey_seconds and a.child.spi_in in self.children:
            if self._rekey:
                self._rekey.cancel()
            self._rekey = self.rt.loop.call_later(self.spec.rekey_seconds, self.rekey)

    def _use_outbound(self, out: SecurityAssociation) -> None:
        sad = self.rt.engine.sad
        old = sad.lookup_outbound(out.name)
        if old is not None:
            sad.remove(old)
        sad.add_outbound(out)

    def _child_down(self, spi_in: int, linger: bool = True) -> None:
        sad = self.rt.engine.sad
        pair = self.children.pop(spi_in, None)
        if pair is None:
            return
        new = self.pending_out.pop(spi_in, None)
        if new is not None:
            self._use_outbound(new)
        elif sad.lookup_outbound(pair.out.name) is pair.out:
            sad.remove(pair.out)
        if linger and spi_in in self.replaced:
            self.lingering[spi_in] = (self.rt.loop.call_later(
                REKEYED_INBOUND_GRACE, self._drop_inbound, spi_in, pair), pair)
        else:
            self._drop_inbound(spi_in, pair)
        self.replaced.discard(spi_in)
        self._event(f"CHILD_SA in 0x{spi_in:08x} deleted")

    def _drop_inbound(self, spi_in: int, pair: _Pair) -> None:
        self.lingering.pop(spi_in, None)
        self.rt.engine.sad.remove(pair.inb)
        self.rt.retire(pair.out, pair.inb)

    def _teardown_children(self) -> None:
        """The IKE SA is gone: every Child SA goes at once, lingering inbound halves too."""
        for spi in list(self.children):
            self._child_down(spi, linger=False)
        for spi, (timer, pair) in list(self.lingering.items()):
            timer.cancel()
            self._drop_inbound(spi, pair)
        self.pending_out.clear()
        self.replaced.clear()
        if self._rekey:
            self._rekey.cancel()
            self._rekey = None

    def rekey(self) -> dict[str, Any]:
        """CREATE_CHILD_SA for the newest Child SA (on the timer, or `lsr lab ipsec ... rekey`)."""
        self._rekey = None
        if self.session is None or self.session.state is not State.ESTABLISHED or not self.children:
            return {"rekeyed": False, "reason": f"IKE SA is {self.state}"}
        spi = max(self.children, key=lambda k: self.children[k].created)
        self.my_rekeys.add(spi)
        try:
            self._handle(self.session.rekey_child(spi))
        except IkeError as e:
            return {"rekeyed": False, "reason": str(e)}
        self.counters["rekeys"] += 1
        return {"rekeyed": True, "spi_in": f"0x{spi:08x}"}

    # ------------------------------------------------------------ timers

    def cancel_timers(self) -> None:
        for t in (self._rtx, self._retry):
            if t:
                t.cancel()
        self._rtx = self._retry = None

    def _arm_retransmit(self) -> None:
        s = self.session
        outstanding = s is not None and s.awaiting_reply
        if not outstanding:
            if self._rtx:
                self._rtx.cancel()
                self._rtx = None
            self._rtx_tries = 0
            return
        if self._rtx is None:
            delay = min(RETRANSMIT_CAP, RETRANSMIT_BASE * (2 ** self._rtx_tries))
            self._rtx = self.rt.loop.call_later(delay, self._retransmit)

    def _retransmit(self) -> None:
        self._rtx = None
        if self.session is None:
            return
        self._rtx_tries += 1
        if self._rtx_tries > RETRANSMIT_TRIES:
            self._rtx_tries = 0
            self.error = "peer does not answer"
            self._event("no answer after retransmissions: starting over", logging.WARNING)
            if self.initiator:
                self.start()
            return
        self.counters["retransmits"] += 1
        for a in self.session.retransmit():
            self._do(a)
        self._arm_retransmit()

    def _schedule_retry(self) -> None:
        if self.initiator and self._retry is None:
            self._retry = self.rt.loop.call_later(RETRY_AFTER_FAILURE, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self.start()

    # ------------------------------------------------------------ show

    def status(self) -> dict[str, Any]:
        s = self.session
        return {
            "name": self.spec.name, "peer": self.spec.peer(self.rt.name),
            "local": str(self.local), "remote": str(self.remote),
            "role": "initiator" if self.initiator else "responder",
            "state": self.state, "error": self.error, "nat_t": self.spec.nat_t,
            "ike_spis": [s.spi_i.hex(), s.spi_r.hex()] if s is not None else None,
            "child_sas": [f"0x{k:08x}" for k in self.children],
            "rekey_seconds": self.spec.rekey_seconds,
            "counters": dict(sorted(self.counters.items())), "events": list(self.events)[-10:],
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
        self.conns = {c.name: IkeConn(self, c) for c in ike_for_router(topo, self.name)}
        self.audit_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)
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
            if c.session is not None and c.session.spi_i == data[:8]:
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
        replaced = {id(pair.inb) for c in self.conns.values() for _t, pair in c.lingering.values()}
        for sa in sad.inbound.values():  # replaced: a rekeyed SA kept for in-flight packets
            out.append({"direction": "in", **sa.status(), "replaced": id(sa) in replaced})
        return {
            "router": self.name,
            "sas": out,
            "sad": sad.counters.to_dict(),
            "stage": dict(sorted(self.stage.counters.items())),
            "retired": dict(sorted(self.retired.items())),
            "ike": [c.status() for c in self.conns.values()],
        }

    def policies(self) -> dict[str, Any]:
        return {"router": self.name, **self.engine.spd.to_dict()}

    def answer(self, req: dict[str, Any]) -> Any:
        """Management op `ipsec`: view sas|policies|audit, or action rekey|set-seq."""
        view = req.get("view", "sas")
        if view == "sas":
            return self.sas()
        if view == "policies":
            return self.policies()
        if view == "audit":
            return list(self.audit_log)
        if view == "rekey":
            conn = self.conns.get(req.get("conn", ""))
            if conn is None:
                raise ValueError(f"no IKE connection {req.get('conn')!r} on {self.name}")
            return conn.rekey()
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
        raise ValueError(f"unknown ipsec view {view!r} (sas, policies, audit, rekey, set-seq)")


ClientQuery = Callable[..., Any]


def show(lab: str, router: str, what: str, query: ClientQuery) -> Any:
    """Client side of `lsr lab ipsec NAME R sas|policies`."""
    return query(lab, router, "ipsec", view=what)


__all__ = ["IkeConn", "IpsecRuntime", "show"]
