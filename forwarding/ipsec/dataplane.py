"""The IPsec stage of an edge router's userspace dataplane (pure: bytes in, frames out).

`IpsecStage.frame(frame, in_if, now)` is called by the router runtime for
every unicast IPv4 frame addressed to the router's MAC, *before* the MPLS
forwarding plane (`forwarding.plane.Dataplane.process`) and before anything
is handed to the kernel (which has no ESP). It returns `None` when the frame
is not IPsec's business (the caller goes on as without IPsec) or the list of
`(out_if, frame)` to send (possibly empty: consumed or dropped).

* **Outbound** (RFC 4301 §5.1), frames from a host-facing interface (`host_ifs`):
  SPD lookup on the customer packet (a martian source or destination, RFC 1812
  §5.3.7, is not looked up: `None`, the forwarding plane drops and counts it).
  BYPASS -> `None` (normal FTN push);
  DISCARD -> dropped and audited; PROTECT -> inner TTL - 1 (the router
  forwards the inner packet, RFC 1812 §5.3.1), ESP (or AH) tunnel-mode encapsulation
  (outer src/dst = the SA's endpoints, our loopbacks) and the outer packet is
  routed like any packet this router originates (`plane.originate`: FTN
  lookup on the far loopback -> label push). With `udp_encap` the ESP packet
  is carried in UDP 4500 (RFC 3948 §2.1, UDP checksum 0 per §3.1.1).
* **MTU** (RFC 4301 §8): the outer packet plus the ingress label stack must
  fit the core link MTU. The room left for the inner packet is
  `mtu - 4*labels - sa.overhead (- 8 for UDP)`. A bigger inner packet with DF
  set gets ICMP 3/4 (fragmentation needed) back to the host with that MTU
  (PMTUD, RFC 1191), so TCP adapts its segment size; with DF clear it is
  fragmented *before* encryption (each fragment its own ESP packet), so the
  far edge never has to reassemble.
* **Router-originated** (RFC 4301 §5.1 applies to locally generated traffic too):
  `originated(ip, now)` takes a packet the router itself made -- from its kernel
  (pings, echo replies, TCP, ICMP errors: the runtime routes the remote
  selectors of its PROTECT policies into a TUN device, `kernel_routes()`), or
  from the runtime (RFC 8029 echo replies, the ICMP errors below) -- through
  the same SPD lookup, without a TTL decrement. PROTECT seals it, BYPASS routes
  it as `plane.originate` does, DISCARD drops it; a DF packet too big for the
  SA's path gets ICMP fragmentation-needed handed back to the router's own
  stack (`LOCAL_IF`), which learns the path MTU.
* **Inbound** (RFC 4301 §5.2): ESP (protocol 50), or ESP in UDP 4500 with a
  non-zero first word (RFC 3948 §2.2; a zero "non-ESP marker" is IKE and goes
  to the kernel socket), or AH (protocol 51, RFC 4302), addressed to one of
  the router's own addresses, is opened here (`Sad.decapsulate`: anti-replay, ICV, selectors); the inner
  packet's TTL is decremented and it is routed (normally to the connected
  host); an inner packet whose TTL runs out here gets ICMP Time Exceeded,
  itself router-originated (so sealed when the SPD says so: traceroute through
  the tunnel shows the far edge). Clear packets from the core that match an inbound PROTECT policy are
  discarded (they should have come through an SA).

Every drop is counted (per SA in `SecurityAssociation.counters`, else in
`IpsecStage.counters`) and passed to the `audit` callback, except silent
ones (RFC 4303 §2.6 dummy packets).
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Callable, Iterable

from forwarding.icmp import frag_needed, may_send_error, time_exceeded
from forwarding.ipsec.ah import IPPROTO_AH
from forwarding.ipsec.engine import IpsecEngine
from forwarding.ipsec.esp import (
    IPPROTO_ESP,
    Decapsulated,
    DropReason,
    EspDrop,
    SecurityAssociation,
    addr_str,
    check_ipv4,
    ipv4_checksum,
)
from forwarding.ipsec.sad import plain_esp
from forwarding.ipsec.spd import Action, Policy
from forwarding.plane import LOCAL_IF, fragment, originate
from forwarding.tables import (
    A_NHLFE,
    RouterTables,
    martian_destination,
    martian_source,
)

IPPROTO_UDP = 17
NATT_PORT = 4500  # RFC 3948 §2.1
IKE_PORT = 500
UDP_ENCAP_OVERHEAD = 8

Out = list[tuple[str, bytes]]


def udp_wrap(outer: bytes, sport: int = NATT_PORT, dport: int = NATT_PORT) -> bytes:
    """IPv4/ESP -> IPv4/UDP/ESP (RFC 3948 §2.1); UDP checksum 0 (§3.1.1)."""
    esp = outer[20:]
    hdr = bytearray(outer[:20])
    struct.pack_into("!H", hdr, 2, 28 + len(esp))
    hdr[9] = IPPROTO_UDP
    hdr[10] = hdr[11] = 0
    struct.pack_into("!H", hdr, 10, ipv4_checksum(bytes(hdr)))
    return bytes(hdr) + struct.pack("!HHHH", sport, dport, 8 + len(esp), 0) + esp


def udp_unwrap(ip: bytes, hlen: int, total: int) -> bytes:
    """IPv4/UDP/ESP -> IPv4/ESP for the ESP decapsulation (RFC 3948 §3.2)."""
    hdr = bytearray(ip[:hlen])
    struct.pack_into("!H", hdr, 2, total - 8)
    hdr[9] = IPPROTO_ESP
    hdr[10] = hdr[11] = 0
    struct.pack_into("!H", hdr, 10, ipv4_checksum(bytes(hdr)))
    return bytes(hdr) + ip[hlen + 8 : total]


def is_udp_esp(ip: bytes | memoryview, hlen: int, total: int) -> bool:
    """UDP to port 4500 carrying ESP (non-zero SPI), not IKE (zero non-ESP marker) nor a
    NAT-keepalive (one 0xFF byte): RFC 3948 §2.2/§2.3."""
    if total < hlen + 8 + 8 or ip[hlen + 2 : hlen + 4] != b"\x11\x94":
        return False
    return bytes(ip[hlen + 8 : hlen + 12]) != b"\0\0\0\0"


def dec_ttl(ip: bytes) -> bytes | None:
    """The packet with TTL - 1 and its checksum recomputed; None if the TTL is used up."""
    if ip[8] <= 1:
        return None
    hlen = (ip[0] & 0x0F) * 4
    h = bytearray(ip[:hlen])
    h[8] -= 1
    h[10] = h[11] = 0
    struct.pack_into("!H", h, 10, ipv4_checksum(bytes(h)))
    return bytes(h) + ip[hlen:]


class IpsecStage:
    """One router's IPsec stage (see the module docstring)."""

    def __init__(
        self,
        engine: IpsecEngine,
        tables: RouterTables,
        host_ifs: Iterable[str],
        audit: Callable[[EspDrop], None] | None = None,
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.host_ifs = frozenset(host_ifs)
        self.audit = audit
        self.udp_encap: dict[str, tuple[int, int]] = {}  # outbound SA name -> (sport, dport)
        self.counters: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------ helpers

    def _own(self, packed: bytes) -> bool:
        return int.from_bytes(packed, "big") in self.tables.own

    def _drop(self, d: EspDrop) -> Out:
        self.counters["drop_" + d.reason.value.replace("-", "_")] += 1
        if self.audit is not None and not d.silent:
            self.audit(d)
        return []

    def _route(self, ip: bytes) -> Out | None:
        fw = originate(self.tables, ip)
        if fw is None:
            return None
        return [(fw.out_if, f) for f in fw.frames]

    def room(self, sa: SecurityAssociation) -> int | None:
        """Largest inner packet that fits the path to the SA's peer (None: no route)."""
        a = self.tables.lookup(int(sa.dst))
        if a is None:
            return None
        if a.kind == A_NHLFE:
            nh = a.nhs[0]
            mtu, labels = nh.mtu, len(nh.out_labels)
        else:
            nh = self.tables.connected_nhlfe(a.out_if, int(sa.dst)) if a.out_if else None
            if nh is None:
                return None
            mtu, labels = nh.mtu, 0
        udp = UDP_ENCAP_OVERHEAD if sa.name in self.udp_encap else 0
        return mtu - 4 * labels - sa.overhead - udp

    # ------------------------------------------------------------ entry points

    def frame(self, frame: bytes, in_if: str, now: float = 0.0) -> Out | None:
        """An IPv4 frame for our MAC (see the module docstring). Never raises on bad input."""
        ip = frame[14:]
        if len(ip) < 20 or ip[0] >> 4 != 4:
            return None
        if self._own(ip[16:20]):
            return self.local(ip, now)
        if in_if in self.host_ifs:
            return self.outbound(ip, in_if, now)
        return self.clear_inbound(ip, now)

    def local(self, ip: bytes, now: float = 0.0) -> Out | None:
        """A packet to one of our addresses: ESP (or ESP in UDP 4500) and AH are ours, the rest
        the kernel's."""
        proto = ip[9]
        if proto != IPPROTO_ESP and proto != IPPROTO_UDP and proto != IPPROTO_AH:
            return None
        if proto == IPPROTO_ESP and plain_esp(ip):  # the usual packet: its header is checked once
            r = self.engine.sad.open_plain_esp(ip, now)
            if isinstance(r, EspDrop):
                return self._drop(r)
            self.counters["esp_in"] += 1
            return self._deliver(r, now)
        ok = check_ipv4(ip)
        if isinstance(ok, str):
            return None  # the kernel drops it as it likes
        hlen, total, _ = ok
        if proto == IPPROTO_UDP:
            if not self.udp_encap and not self.engine.sad.inbound:
                return None
            if not is_udp_esp(ip, hlen, total):
                return None  # IKE with the non-ESP marker, keepalives: the IKE socket's
            pkt = udp_unwrap(ip, hlen, total)
            self.counters["udp_esp_in"] += 1
        else:
            pkt = ip[:total]
        r = self.engine.sad.decapsulate(pkt, now)
        if isinstance(r, EspDrop):
            return self._drop(r)
        self.counters["ah_in" if proto == IPPROTO_AH else "esp_in"] += 1
        return self._deliver(r, now)

    def _deliver(self, r: Decapsulated, now: float) -> Out:
        inner = dec_ttl(r.inner)
        if inner is None:
            self.counters["inner_ttl_expired"] += 1
            return self._expired(r.inner, now)
        if self._own(inner[16:20]):
            return [(LOCAL_IF, inner)]
        out = self._route(inner)
        if out is None:
            return self._drop(EspDrop(DropReason.MALFORMED, "no route for the inner packet",
                                      sa=r.sa, spi=r.spi, seq=r.seq,
                                      src=addr_str(inner[12:16]), dst=addr_str(inner[16:20]),
                                      time=now))
        return out

    def _expired(self, inner: bytes, now: float) -> Out:
        """ICMP Time Exceeded for a decapsulated packet whose TTL ran out here (RFC 792), from
        the address of the interface it would have left by (RFC 1812 §4.3.2.4 names the
        arrival interface; the tunnel has none), sent as this router's own packet."""
        if not may_send_error(inner):
            return []
        dst = int.from_bytes(inner[16:20], "big")
        a = self.tables.lookup(dst)
        out_if = "" if a is None else a.out_if or (a.nhs[0].out_if if a.nhs else "")
        ifi = self.tables.interfaces.get(out_if)
        src = ifi.ip if ifi is not None else int(self.tables.loopback or 0)
        if not src:
            return []
        self.counters["icmp_time_exceeded_sent"] += 1
        return self.originated(time_exceeded(inner, src), now)

    def clear_inbound(self, ip: bytes, now: float = 0.0) -> Out | None:
        """A clear packet from the core: discard it if an inbound PROTECT policy covers it."""
        if not self.engine.spd.inbound:
            return None
        r = self.engine.inbound(ip, now)
        if isinstance(r, EspDrop):
            if r.reason is DropReason.MALFORMED:
                return None  # the forwarding plane counts it
            return self._drop(r)
        return None

    def outbound(self, ip: bytes, in_if: str, now: float = 0.0) -> Out | None:
        """A customer packet entering the core here (RFC 4301 §5.1)."""
        ok = check_ipv4(ip)
        if isinstance(ok, str):
            return None  # the forwarding plane drops and counts malformed packets
        hlen, total, proto = ok
        ip = ip[:total]
        src, dst = ip[12:16], ip[16:20]
        isrc, idst = int.from_bytes(src, "big"), int.from_bytes(dst, "big")
        if martian_source(isrc) or martian_destination(idst):
            return None  # never forwarded, sealed or not: the forwarding plane drops it
        policy = self.engine.spd.lookup(isrc, idst, proto)
        if policy.action is Action.BYPASS:
            return None
        if policy.action is Action.DISCARD:
            return self._discard(policy, ip, now)
        if ip[8] <= 1:
            return None  # the forwarding plane answers ICMP Time Exceeded
        sa = self._sa_for(policy, ip, now)
        if sa is None:
            return []
        inner = dec_ttl(ip)
        assert inner is not None

        def too_big(room: int) -> Out:  # tell the host the MTU it can use (RFC 1191)
            ifi = self.tables.interfaces[in_if]
            return self._route(frag_needed(ip, ifi.ip, room, None)) or []

        return self._protect(sa, inner, too_big, now)

    def originated(self, ip: bytes, now: float = 0.0) -> Out:
        """A packet this router made itself (RFC 4301 §5.1: outbound processing covers locally
        generated traffic too): SPD lookup, then sealed, routed or dropped; no TTL decrement.
        Never raises on bad input; never returns None (the packet has nowhere else to go)."""
        ok = check_ipv4(ip)
        if isinstance(ok, str):
            self.counters["originated_malformed"] += 1
            return []
        _, total, proto = ok
        ip = ip[:total]
        self.counters["originated"] += 1
        policy = self.engine.spd.lookup(int.from_bytes(ip[12:16], "big"),
                                        int.from_bytes(ip[16:20], "big"), proto)
        if policy.action is Action.BYPASS:
            out = self._route(ip)
            if out is None:
                self.counters["originated_no_route"] += 1
                return []
            self.counters["originated_bypass"] += 1
            return out
        if policy.action is Action.DISCARD:
            return self._discard(policy, ip, now)
        sa = self._sa_for(policy, ip, now)
        if sa is None:
            return []

        def too_big(room: int) -> Out:  # our own stack learns the path MTU (RFC 1191)
            return [(LOCAL_IF, frag_needed(ip, int(sa.src), room, None))]

        self.counters["originated_protected"] += 1
        return self._protect(sa, ip, too_big, now)

    def kernel_routes(self) -> list[tuple[str, str | None]]:
        """(remote prefix, preferred source) for every PROTECT policy of the outbound SPD: the
        runtime routes these prefixes into its TUN device so that what the router's kernel
        sends there passes `originated` (RFC 4301 §5.1). The source is one of this router's
        addresses inside the policy's local selector, as strongSwan's routes in table 220
        have (so a plain `ping` from the router uses the tunnel); None if it has none."""
        mine = sorted(self.tables.own)
        out: dict[str, str | None] = {}
        for p in self.engine.spd.outbound:
            if p.action is not Action.PROTECT:
                continue
            net = p.selector.src
            lo, mask = int(net.network_address), int(net.netmask)
            src = next((a for a in mine if a & mask == lo), None)
            key = str(p.selector.dst)
            if out.get(key) is None:
                out[key] = addr_str(src.to_bytes(4, "big")) if src is not None else None
        return list(out.items())

    # ------------------------------------------------------------ outbound helpers

    def _discard(self, policy: Policy, ip: bytes, now: float) -> Out:
        return self._drop(EspDrop(DropReason.POLICY_DISCARD, f"policy {policy.name}",
                                  src=addr_str(ip[12:16]), dst=addr_str(ip[16:20]), time=now))

    def _sa_for(self, policy: Policy, ip: bytes, now: float) -> SecurityAssociation | None:
        """The outbound SA of a PROTECT policy, or None (dropped as no-sa, RFC 4301 §5.1)."""
        sa = self.engine.sad.lookup_outbound(policy.sa or "")
        if sa is None:
            self._drop(EspDrop(DropReason.NO_SA, f"policy {policy.name}: no SA {policy.sa!r}",
                               sa=policy.sa, src=addr_str(ip[12:16]), dst=addr_str(ip[16:20]),
                               time=now))
        return sa

    def _protect(self, sa: SecurityAssociation, inner: bytes, too_big: Callable[[int], Out],
                 now: float) -> Out:
        """Seal `inner` on `sa` and route the outer packet(s) (RFC 4301 §8: MTU first)."""
        room = self.room(sa)
        if room is None:
            self.counters["no_route_to_peer"] += 1
            return []
        pieces = [inner]
        if len(inner) > room:
            if inner[6] & 0x40:  # DF
                self.counters["frag_needed_sent"] += 1
                if not may_send_error(inner):
                    return []
                return too_big(room)
            frags = fragment(inner, room)
            if frags is None:
                return self._drop(EspDrop(DropReason.MALFORMED, f"cannot fragment to {room}",
                                          sa=sa.name, time=now))
            self.counters["inner_fragmented"] += 1
            pieces = frags
        out: Out = []
        encap = self.udp_encap.get(sa.name)
        for piece in pieces:
            r = sa.encapsulate(piece, now)
            if isinstance(r, EspDrop):
                return self._drop(r)
            pkt = r.packet if encap is None else udp_wrap(r.packet, *encap)
            routed = self._route(pkt)
            if routed is None:
                self.counters["no_route_to_peer"] += 1
                return out
            out += routed
            self.counters["ah_out" if sa.protocol == "ah" else "esp_out"] += 1
        return out
