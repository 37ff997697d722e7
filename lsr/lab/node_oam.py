"""RFC 8029 LSP ping / traceroute inside a lab router's runtime (`lsr.lab.node`).

Responder side (§4.4, §4.5): the node hands `intercept()` every unicast frame
for it that may be an MPLS echo request - labelled with the top label's TTL
expiring here (transit, traceroute), with explicit-null on top, with IPv4 to
127/8 under a bottom label (a VPN label of this PE ends the LSP whatever its
TTL: RFC 4364 §4.3.2, the request is not looked up in the VRF), or plain IPv4
to 127/8 (the LSP ended here after penultimate-hop popping). The request is
answered by `lsr.oam.responder` against the router's real tables (its LFIB as
installed in the dataplane, its own FECs and interfaces) with the dataplane's
own ECMP hash (`forwarding.plane.flow_hash`, per-router seed), so the
multipath bitmaps in the DDMAPs it returns predict what the forwarding plane
really does. The reply (reply mode 2, §4.5: UDP to the request's source
address and port, from port 3503 and the address of the core interface the
request came in on - also for a VPN FEC: a reply is the global table's, never
a VRF's) is routed by our dataplane (`originate`):
the kernel of a router namespace does not forward. Requests to 127/8 are never
IP-forwarded beyond the LSP: they are answered or dropped here.

IPv6 FECs (a 6PE route's BGP labeled IPv6 FEC, a VRF's IPv6 route's VPN IPv6 FEC): the
request is IPv6 to ::ffff:127.0.0.0/104 (`lsr.oam.echo6`: what the egress's dataplane
expects under the label it pops), from the ingress's loopback as ::ffff:a.b.c.d; the
frames it is intercepted in are the IPv4 ones' with IPv6 under the stack (label TTL
expiring, explicit null, our 6PE or VPN label at the bottom). Every replier answers
over IPv4 UDP to the embedded IPv4 address (the core has no IPv6, RFC 4798), so the
ingress's one UDP 3503 socket gets every reply. Multipath data is IPv6 for these requests,
both ways (RFC 8029 §3.4.1.1.1: ::ffff:127.0.0.0/104): the destinations `oam_ddmaps`
splits, the `dst` of `oam_probe` and the DDMAPs of the replies.

Sender side (§4.3): the management requests `oam_probe` and `oam_ddmaps` let a
client (`lsr lsp ping/traceroute`, `lsr lab validate`) inject real echo
requests at this router: the runtime builds the IP packet (127/8, IP TTL 1,
Router Alert, UDP 3503), pushes the FTN labels for the FEC (for a VPN FEC the
VRF route's transport and VPN labels) with the label TTL the client asks for
(1..N for traceroute, 255 for ping: every label of the stack alike), sends the frame on
the FTN's interface and awaits the matching reply (Sender's Handle and
Sequence Number, §4.6) on a UDP 3503 socket, with a timeout.

`oam_events` returns the runtime's timestamped protocol events (LDP sessions
going down, Label Withdraws sent, LFIB updates) for convergence timelines.

The same class answers in FRR nodes (`lsr.lab.frrplane`: our dataplane fed
from FRR's routes and LDP bindings): there the LFIB is the one built from
FRR's bindings and the FECs it is egress for are those FRR advertises
implicit- or explicit-null for (`own_fecs`), so the replies speak for FRR's
label decisions.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from forwarding.labelops import LabelError, encode_stack, parse_stack
from forwarding.plane import originate
from lsr.core.lfib import Nhlfe
from lsr.oam.echo import (
    LOOPBACK_NET,
    LOOPBACK_NET6,
    UDP_PORT,
    DecodeError,
    EchoMessage,
    MessageType,
    build_echo_reply_packet,
    build_echo_request_packet,
    ntp_from_unix,
    parse_udp_ipv4,
)
from lsr.oam.echo6 import (
    build_echo_request_packet6,
    mapped,
    parse_udp_ipv6,
    reply_address,
)
from lsr.oam.responder import (
    EcmpSelect,
    SixpeTarget,
    Target,
    VpnTarget,
    ecmp6_for,
    ecmp_for,
    ingress_ddmaps,
    ingress_nexthops,
    is_ipv6,
    respond,
    sixpe_bound,
    tables_from_topology,
)
from lsr.oam.responder import RouterTables as RespTables
from lsr.oam.trace import home, multipath_destinations

__all__ = ["NodeOam", "ecmp_for", "ldp_message_types"]

log = logging.getLogger("lsr.node.oam")

LDP_LABEL_WITHDRAW = 0x0402
LDP_LABEL_MAPPING = 0x0400
MAX_EVENTS = 20000


def ldp_message_types(data: bytes) -> list[int]:
    """Message types in a TCP chunk of LDP PDUs (best effort: chunks may split PDUs)."""
    out: list[int] = []
    off = 0
    while off + 10 <= len(data):
        plen = struct.unpack_from("!H", data, off + 2)[0]
        end = min(len(data), off + 4 + plen)
        m = off + 10
        while m + 4 <= end:
            mtype, mlen = struct.unpack_from("!HH", data, m)
            out.append(mtype & 0x7FFF)
            m += 4 + mlen
        off = off + 4 + plen
    return out


class NodeOam:
    """The OAM part of one router runtime (`lsr.lab.node.Router`)."""

    def __init__(self, router: Any,
                 own_fecs: Callable[[], frozenset[IPv4Network]] | None = None) -> None:
        """`router` has `topo`, `name`, `node`, `loop`, `tables` (forwarding tables) and
        `tx` (egress ports); `own_fecs` overrides the FECs it is egress for (default:
        from the topology, as its LDP advertises them)."""
        self.r = router
        self.own_fecs = own_fecs
        self.sock: socket.socket | None = None
        self.waiters: dict[tuple[int, int], asyncio.Future] = {}
        self.events: collections.deque = collections.deque(maxlen=MAX_EVENTS)
        self.counters: collections.Counter[str] = collections.Counter()
        self._bound6: dict[IPv6Network, int] | None = None  # `sixpe_bound`, once

    # ------------------------------------------------------------ events (convergence timeline)

    def on_action(self, a: Any) -> None:
        """Called by the runtime for every LDP engine action: keep the timeline ones."""
        name = type(a).__name__
        now = time.time()
        if name == "ApplyLfib":
            d = a.diff
            self.events.append({"t": now, "event": "lfib", "ftn_set": len(d.ftn_set),
                                "ftn_del": len(d.ftn_del), "ilm_set": len(d.ilm_set),
                                "ilm_del": len(d.ilm_del)})
        elif name == "TcpSend":
            types = ldp_message_types(a.data)
            w = types.count(LDP_LABEL_WITHDRAW)
            if w:
                self.events.append({"t": now, "event": "withdraw_sent", "count": w})
            m = types.count(LDP_LABEL_MAPPING)
            if m:
                self.events.append({"t": now, "event": "mapping_sent", "count": m})
        elif name == "LogEvent":
            text = str(a.text)
            if " down" in text or "adjacency" in text or "OPERATIONAL" in text:
                self.events.append({"t": now, "event": "ldp", "text": text})

    # ------------------------------------------------------------ responder

    def _fib6(self) -> Any:
        """Our 6PE routes and labels (`lsr.core.fib6.Fib6`), None without 6PE."""
        six = getattr(self.r, "sixpe", None)
        return six.fib if six is not None else None

    def _tables(self, ecmp: EcmpSelect) -> RespTables:
        t = self.r.tables
        if self._bound6 is None:
            self._bound6 = sixpe_bound(self.r.topo, self.r.name)
        tables = tables_from_topology(self.r.topo, self.r.name, t.lfib, ecmp, self._fib6(),
                                      self._bound6)
        if self.own_fecs is not None:
            tables = replace(tables, own_fecs=self.own_fecs())
        return tables

    def _resp_tables(self, src: IPv4Address | IPv6Address, sport: int) -> RespTables:
        seed = self.r.tables.seed
        if isinstance(src, IPv6Address):  # an IPv6 request: the dataplane's IPv6 hash
            return self._tables(ecmp6_for(seed, src, sport))
        return self._tables(ecmp_for(seed, src, sport))

    def intercept(self, frame: bytes, in_if: str) -> bool:
        """Answer `frame` if it is an MPLS echo request this router must answer (§4.4).

        Returns False (let the dataplane have it) for anything else.
        """
        if self.r.tables is None:
            return False
        try:
            if frame[12:14] == b"\x88\x47":
                entries, poff = parse_stack(frame, 14)
                top = entries[0]
                lfib = self.r.tables.lfib
                # a VPN or 6PE label of ours at the bottom ends the LSP whatever its TTL
                ours = top.s and (top.label in lfib.vpn_ilm or top.label in self._sixpe_labels())
                if top.ttl > 1 and top.label not in (0, 2) and not ours:
                    return False
            else:
                entries, poff = [], 14
            pkt: Any
            if frame[poff] >> 4 == 6 and entries:  # IPv6 under labels: an IPv6 FEC's request
                if frame[poff + 36] != 127 or frame[poff + 34:poff + 36] != b"\xff\xff":
                    return False
                pkt = parse_udp_ipv6(bytes(frame[poff:]))
                if pkt.dst not in LOOPBACK_NET6:
                    return False
            elif frame[poff] >> 4 != 4 or frame[poff + 9] != 17 or frame[poff + 16] != 127:
                return False
            else:
                pkt = parse_udp_ipv4(bytes(frame[poff:]))
                if pkt.dst not in LOOPBACK_NET:
                    return False
        except (LabelError, DecodeError, IndexError, struct.error):
            return False
        if pkt.dport != UDP_PORT:
            return False
        self.counters["echo_requests_rx"] += 1
        try:
            self._answer_request(pkt, [e.label for e in entries], [e.ttl for e in entries], in_if)
        except Exception:  # nothing from the network may stop the router
            self.counters["echo_errors"] += 1
            log.exception("echo request on %s", in_if)
        return True

    def _sixpe_labels(self) -> frozenset[int]:
        f = self._fib6()
        if self._bound6 is None:
            self._bound6 = sixpe_bound(self.r.topo, self.r.name)
        own = set(f.labels) if f is not None else set()
        return frozenset(lbl for lbl in own | set(self._bound6.values()) if lbl >= 16)

    def _answer_request(self, pkt: Any, labels: list[int], ttls: list[int], in_if: str) -> None:
        from lsr.oam.responder import respond_bytes

        # §4.5: the reply goes to the request's source; an IPv6 request's (IPv4-mapped,
        # lsr.oam.echo6) over IPv4 to the address it embeds
        to = reply_address(pkt.src) if isinstance(pkt.src, IPv6Address) else pkt.src
        if to is None:
            self.counters["echo_no_reply_path"] += 1
            return
        tables = self._resp_tables(pkt.src, pkt.sport)
        received = ntp_from_unix(time.time())
        v6 = isinstance(pkt.dst, IPv6Address)  # its multipath data is IPv6 (§3.4.1.1.1)
        try:
            request = EchoMessage.decode(pkt.payload)
        except DecodeError:
            reply = respond_bytes(tables, pkt.payload, labels, in_if, received, v6)
        else:
            reply = respond(tables, request, labels, in_if, received, ttls, v6)
        if reply is None:
            return
        port = tables.ports.get(in_if)
        src = port.address.ip if port is not None else tables.lsr_id
        ip = build_echo_reply_packet(reply, src, to, pkt.sport)
        self.counters["echo_replies_tx"] += 1
        self._send_ip(ip)

    def _send_ip(self, ip: bytes) -> None:
        if self.r.ipsec is not None:  # an edge router's own packets pass its SPD (RFC 4301 §5.1)
            self.r.ipsec.originate(ip)
            return
        fw = originate(self.r.tables, ip)
        if fw is None:
            self.counters["echo_unroutable"] += 1
            return
        self._tx(fw.out_if, fw.frame)

    def _tx(self, out_if: str, frame: bytes) -> None:
        p = self.r.tx.get(out_if)
        if p is None:
            self.counters["echo_tx_errors"] += 1
            return
        if not p.send(frame):
            self.counters["echo_tx_errors"] += 1
        if getattr(p, "pending", False):
            p.flush()

    # ------------------------------------------------------------ sender

    def _open(self) -> None:
        if self.sock is not None:
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", UDP_PORT))
        s.setblocking(False)
        self.sock = s
        self.r.loop.add_reader(s.fileno(), self._readable)

    def _readable(self) -> None:
        assert self.sock is not None
        now = time.monotonic()
        for _ in range(64):
            try:
                data, (addr, _port) = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.counters["echo_rx_errors"] += 1
                return
            try:
                m = EchoMessage.decode(data)
            except DecodeError:
                self.counters["echo_bad_replies"] += 1
                continue
            if m.msg_type != MessageType.ECHO_REPLY:
                continue
            fut = self.waiters.pop((m.sender_handle, m.sequence), None)
            if fut is not None and not fut.done():
                fut.set_result((data, addr, now))
            else:
                self.counters["echo_late_replies"] += 1

    def _ftn_nexthop(self, fec: Target, src: IPv4Address,
                     dst: IPv4Address | IPv6Address) -> Nhlfe | None:
        t = self.r.tables
        nexthops = ingress_nexthops(t.lfib, fec, self._fib6())
        if not nexthops:
            return None
        ecmp = ecmp6_for(t.seed, mapped(src), UDP_PORT) if is_ipv6(fec) else \
            ecmp_for(t.seed, src, UDP_PORT)
        return ecmp(dst, list(nexthops))

    async def probe(self, fec: Target, ttl: int, request: bytes, dst: IPv4Address | IPv6Address,
                    timeout: float) -> dict[str, Any]:
        """Send one echo request down the LSP of `fec` with label TTL `ttl` (every label of
        the stack: a uniform-model push, RFC 3443, so no label outlives the top one);
        await the reply."""
        if self.r.tables is None:
            return {"reply": None, "reason": "no forwarding tables"}
        self._open()
        src = self.r.node.lsr_id
        nh = self._ftn_nexthop(fec, src, dst)
        if nh is None:
            what = (f"no LSP for VRF {fec.vrf} {fec.prefix}" if isinstance(fec, VpnTarget)
                    else f"no 6PE route (with an LSP) for {fec}" if isinstance(fec, SixpeTarget)
                    else f"no FTN entry for {fec}")
            return {"reply": None, "reason": f"{self.r.name} has {what}"}
        msg = EchoMessage.decode(request)
        msg = replace(msg, ts_sent=ntp_from_unix(time.time()))
        if isinstance(dst, IPv6Address):  # an IPv6 FEC's: IPv6 under the labels (echo6)
            ip = build_echo_request_packet6(msg, mapped(src), UDP_PORT, dst)
        else:
            ip = build_echo_request_packet(msg, src, UDP_PORT, dst)
        c = self.r.tables.compile_nhlfe(nh)
        if not c.resolved:
            return {"reply": None, "reason": f"next hop {nh.nexthop} unresolved"}
        if c.out_labels:
            frame = c.hdr_mpls + encode_stack(c.out_labels, 0, ttl) + ip
        else:  # the next hop is the egress (implicit-null): the request goes as IP (§4.3)
            frame = c.hdr_ip + ip
        key = (msg.sender_handle, msg.sequence)
        fut = self.r.loop.create_future()
        old = self.waiters.pop(key, None)
        if old is not None and not old.done():
            old.cancel()
        self.waiters[key] = fut
        t0 = time.monotonic()
        self._tx(c.out_if, frame)
        self.counters["echo_requests_tx"] += 1
        out: dict[str, Any] = {"out_interface": c.out_if, "labels": list(c.out_labels),
                               "nexthop": str(nh.nexthop)}
        try:
            data, addr, t1 = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self.waiters.pop(key, None)
            return {**out, "reply": None, "reason": "timeout"}
        return {**out, "reply": data.hex(), "from": addr, "rtt_ms": round((t1 - t0) * 1000, 3)}

    def ddmaps(self, fec: Target,
               destinations: Sequence[IPv4Address] | Sequence[IPv6Address]) -> str:
        """The ingress's DDMAPs for `fec` (hex of an echo message carrying them)."""
        t = self.r.tables
        lo = self.r.node.lsr_id
        tables = self._tables(ecmp6_for(t.seed, mapped(lo), UDP_PORT) if is_ipv6(fec)
                              else ecmp_for(t.seed, lo, UDP_PORT))
        maps = ingress_ddmaps(tables, fec, destinations)
        return EchoMessage(msg_type=MessageType.ECHO_REQUEST, tlvs=tuple(maps)).encode().hex()

    # ------------------------------------------------------------ management

    def answer(self, req: dict[str, Any]) -> Any:
        op = req["op"]
        if op == "oam_probe":
            fec = _target(req)
            dst = ip_address(req["dst"]) if req.get("dst") else home(fec)
            if dst not in (LOOPBACK_NET6 if is_ipv6(fec) else LOOPBACK_NET):  # §4.3
                raise ValueError(f"destination {dst} of an echo request for {fec}")
            return self.probe(fec, int(req["ttl"]), bytes.fromhex(req["request"]),
                              dst, float(req.get("wait", 1.0)))
        if op == "oam_ddmaps":
            fec = _target(req)
            n = int(req.get("destinations", 0))
            # 127.0.0.1 up, ::ffff:127.0.0.1 up for an IPv6 FEC's requests (§3.4.1.1.1)
            dsts = multipath_destinations(fec, n) if n else (home(fec),)
            return {"message": self.ddmaps(fec, dsts)}
        if op == "oam_events":
            since = float(req.get("since", 0))
            return {"events": [e for e in self.events if e["t"] >= since],
                    "counters": dict(self.counters), "now": time.time()}
        raise ValueError(f"unknown op {op!r}")



def _target(req: dict[str, Any]) -> Target:
    """The FEC of an `oam_probe` / `oam_ddmaps` request: `fec`, in VRF `vrf` if given;
    an IPv6 prefix outside a VRF is a 6PE FEC."""
    prefix = ip_network(req["fec"])
    vrf = req.get("vrf")
    if vrf is not None:
        return VpnTarget(str(vrf), prefix)
    return SixpeTarget(prefix) if isinstance(prefix, IPv6Network) else IPv4Network(prefix)
