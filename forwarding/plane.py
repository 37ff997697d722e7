"""The userspace MPLS forwarding plane: pure decisions on Ethernet frames.

Two entry points over the same `RouterTables` (`forwarding.tables`):

- `decide(frame, in_if, tables) -> Forward | Deliver | Drop(reason)`: the full
  semantics, explainable (used by tests and the hop-by-hop walk).
- `Dataplane(tables).process(frame, in_if) -> list[(out_if, frame)]`: the hot
  loop. Single-label swap, PHP pop and single-label push run on struct /
  dict lookups with prebuilt 14-byte Ethernet headers; everything else falls
  back to `decide`. Deliveries of packets that arrived *labelled* come out as
  `(LOCAL_IF, ipv4_packet)` (the kernel never saw them as IP); deliveries of
  plain IP frames come out as nothing (the router's kernel received them
  itself). ICMP errors generated come out as ordinary frames.

Behaviour (RFC 3031, RFC 3032, RFC 4182, RFC 3443, RFC 4950):

- Every frame ends in exactly one outcome, each with a counter: forwarded (the
  ILM / FTN / RIB entry's), delivered, or dropped for one reason
  (`RouterTables.counters_json`: forwarded + delivered + drops = frames).
- Ethertypes: 0x8847 MPLS unicast and 0x0800 IPv4 are forwarded; 0x8848
  (MPLS multicast) is dropped (MPLS_MULTICAST); IPv6 is dropped
  (IPV6_UNSUPPORTED); ARP is delivered (kind "kernel": the router's kernel
  answers it); a VLAN tag (0x8100, 0x88a8, 0x9100) is dropped (VLAN_TAGGED:
  router ports are untagged; the lab puts back the tag the kernel takes off,
  `forwarding.afpacket`); anything else: NOT_IP. Frames whose destination MAC
  is neither the interface's nor a group address: NOT_FOR_US.
  Broadcast/multicast frames are only delivered (IP to a
  local/broadcast/multicast address), never forwarded.
- MPLS input: a labelled frame is accepted only on an interface LDP runs on
  (`RouterTables.mpls_input`, like Linux's net.mpls.conf.<if>.input); on a
  customer port it is dropped, MPLS_INPUT_DISABLED, whatever its labels, so
  a host cannot put a packet on an LSP past the ingress's IP checks (SPD).
- Martians (RFC 1812 §5.3.7): a packet to be IP-forwarded (at the ingress,
  or after an explicit-null pop) whose source is on network 0 or 127, or is
  multicast, class E or limited broadcast, is dropped (MARTIAN_SOURCE); one
  whose destination is on network 0 or 127 or in class E: MARTIAN_DESTINATION.
  Packets for this router are delivered first (the kernel judges those).
  Label switching (swap, PHP) looks at no IP address.
- Reserved labels on top (RFC 3032 §2.1, RFC 4182): 0 (IPv4 explicit null) at
  the bottom -> pop, IPv4 lookup; 0 or 2 above the bottom -> pop and continue
  with the next entry; 2 at the bottom -> IPV6_UNSUPPORTED; 1 (router alert)
  -> Deliver(kind="router-alert"); 3 (implicit null, never on the wire) ->
  MALFORMED; 4..15 -> RESERVED_LABEL. Unknown label -> NO_ILM_ENTRY (never
  IP-forwarded, RFC 3031 §3.18). An "untagged" ILM entry (our label, no
  downstream label yet: ldp.lde) pops and forwards the IPv4 packet under it
  like PHP; with labels below it, UNTAGGED_LABELLED.
- Ingress (IPv4 in): one longest-prefix match over RIB+FTN; an FTN entry with
  out labels pushes them, with out_labels == () or a plain RIB route it IP
  forwards; connected subnets go straight to the station's MAC. The pushed TC
  is the IP precedence (ToS >> 5), i.e. DSCP class selector -> TC.
- TTL (RFC 3032 §2.4, RFC 3443). Every router decrements exactly once.
  uniform: push: IP TTL - 1 into the IP header and every pushed entry; swap:
  label TTL - 1; pop: the exposed entry / IP header takes the outgoing TTL if
  smaller (never increased). pipe / short-pipe: pushed entries get 255 and
  the IP TTL is never overwritten from a label. At an explicit-null egress,
  short-pipe and uniform forward on the IP header as normal IP forwarding
  (decrement); pipe checks the label TTL and forwards without touching the
  IP TTL. IPv4 checksums are updated incrementally (RFC 1624).
- TTL expiry on a labelled packet: ICMP Time Exceeded from the incoming
  interface's address to the inner source, with the RFC 4950 label stack as
  received, sent onward along the LSP (RFC 3032 §2.3.2: the outgoing stack
  the packet would have had, TTL 255) or, with no onward label (PHP at this
  hop), routed by IP. IP TTL expiry: plain ICMP Time Exceeded, routed by IP.
  No ICMP about ICMP errors, non-first fragments or non-unicast sources
  (RFC 1812 §4.3.2.7).
- MTU (RFC 3032 §3): labels + IP bigger than the out-link MTU: DF set ->
  ICMP 3/4 with next-hop MTU = link MTU - 4 x outgoing stack depth (RFC 4950
  extension if it arrived labelled), Drop(FRAG_NEEDED); DF clear -> the IP
  packet is fragmented (RFC 791) and every fragment labelled identically
  (Forward.more); payload not IPv4 -> MTU_EXCEEDED.
- ECMP: the NHLFE is `nhs[hash % len(nhs)]` with hash = fmix32(CRC-32(key)
  XOR seed), the seed CRC-32(router name), the key: IPv4 source (4 bytes) |
  destination (4) | protocol (1) | first 4 bytes of the L4 header (source and
  destination ports) when the protocol is TCP (6), UDP (17) or SCTP (132) and
  the packet is not a fragment. For a labelled packet the IPv4 header under
  the bottom-of-stack entry is hashed; if the payload is not IPv4, the
  non-reserved labels of the stack are hashed instead (reserved labels are
  never hash keys, RFC 6790). A flow therefore keeps one path. The seed is
  mixed in after the CRC by MurmurHash3's finaliser, not as the CRC's initial
  value: CRC-32 is affine in its initial value (crc(key, s) = crc(key, 0) XOR
  a constant of s and the key's length), so a seeded CRC only flips the same
  bits of every hash and every router would pick the same branch (or the
  opposite one) for a flow - the flows one router sends to a neighbour would
  all take one of that neighbour's branches (hash polarisation).
"""

from __future__ import annotations

import struct
import zlib

from forwarding import plane6
from forwarding.ecmphash import mix32
from forwarding.icmp import frag_needed, may_send_error, time_exceeded
from forwarding.ip6 import flow_hash6
from forwarding.labelops import (
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    ETH_P_VLAN_TAGS,
    IMPLICIT_NULL,
    IPV4_EXPLICIT_NULL,
    IPV6_EXPLICIT_NULL,
    ROUTER_ALERT,
    LabelEntry,
    LabelError,
    checksum16,
    encode_entry,
    encode_stack,
    ip_set_ttl,
    parse_stack,
)
from forwarding.results import Deliver, Drop, DropReason, Forward, Result
from forwarding.tables import (
    A_CONNECTED,
    A_LOCAL,
    A_NHLFE,
    FAST_SWAP,
    SOURCE_OK,
    CNhlfe,
    IfInfo,
    RouterTables,
    VrfTable,
    martian_destination,
    martian_source,
    router_seed,
)

__all__ = [
    "decide", "Dataplane", "originate", "flow_hash", "labelled_hash", "mix32", "router_seed", "fragment", "LOCAL_IF",
    "ttl_checksum_update",
    "Forward", "Deliver", "Drop", "DropReason", "Result", "RouterTables",
]

LOCAL_IF = "@local"  # process() out_if for packets to hand to the router's own IP stack

_I = struct.Struct("!I")
_MPLS = ETH_P_MPLS_UC.to_bytes(2, "big")
_IPV4 = ETH_P_IP.to_bytes(2, "big")
_L4_PORTS = (6, 17, 132)
_ETH = struct.Struct("!6s6xHI")  # destination MAC, ethertype, the 4 bytes after
_IPH = struct.Struct("!BBHHHBBHII")  # IPv4 header without options
_MIPH = struct.Struct("!IBBHHHBBHII")  # one label stack entry + IPv4 header
_MISS = object()


def ttl_checksum_update(ck: int, old_ttl: int, new_ttl: int, proto: int) -> int:
    """The IPv4 header checksum after the TTL changed from old_ttl to new_ttl (RFC 1624
    eqn. 3: the TTL and protocol share a 16-bit word)."""
    x = (~ck & 0xFFFF) + (~((old_ttl << 8) | proto) & 0xFFFF) + ((new_ttl << 8) | proto)
    x = (x & 0xFFFF) + (x >> 16)
    x = (x & 0xFFFF) + (x >> 16)
    return ~x & 0xFFFF


# ---------------------------------------------------------------- hashing (ECMP)


def flow_hash(b: bytes | bytearray | memoryview, off: int, seed: int = 0) -> int:
    """ECMP hash of the IPv4 5-tuple of the header at `off` (see module docstring)."""
    ihl = (b[off] & 0x0F) << 2
    proto = b[off + 9]
    key = bytes(b[off + 12:off + 20]) + bytes((proto,))
    if proto in _L4_PORTS and not (((b[off + 6] << 8) | b[off + 7]) & 0x3FFF) \
            and len(b) >= off + ihl + 4:
        key += bytes(b[off + ihl:off + ihl + 4])
    return mix32(zlib.crc32(key), seed)


def labelled_hash(b: bytes | bytearray | memoryview, off: int, seed: int = 0) -> int:
    """ECMP hash of a labelled packet whose stack starts at `off`."""
    n = len(b)
    labels = bytearray()
    while off + 4 <= n:
        w = _I.unpack_from(b, off)[0]
        off += 4
        if w >> 12 >= 16:
            labels += (w >> 12).to_bytes(3, "big")
        if w & 0x100:
            if off + 20 <= n and b[off] >> 4 == 4 and (b[off] & 0x0F) >= 5:
                return flow_hash(b, off, seed)
            if off + 40 <= n and b[off] >> 4 == 6:
                return flow_hash6(b, off, seed)
            break
    return mix32(zlib.crc32(bytes(labels)), seed)


def _pick(nhs: tuple[CNhlfe, ...], h: int | None) -> CNhlfe:
    return nhs[0] if len(nhs) == 1 or h is None else nhs[h % len(nhs)]


# ---------------------------------------------------------------- IPv4 helpers


def _ipv4_error(b: bytes | bytearray | memoryview, off: int) -> str | None:
    """Why the IPv4 header at `off` is unusable (RFC 1812 §5.2.2), or None."""
    n = len(b) - off
    if n < 20:
        return "truncated IPv4 header"
    if b[off] >> 4 != 4:
        return "not IPv4"
    ihl = (b[off] & 0x0F) * 4
    if ihl < 20 or ihl > n:
        return "bad IPv4 header length"
    total = (b[off + 2] << 8) | b[off + 3]
    if total < ihl or total > n:
        return "bad IPv4 total length"
    if checksum16(b[off:off + ihl]) != 0:
        return "bad IPv4 header checksum"
    return None


def _copied_options(hdr: bytes) -> bytes:
    """Options a non-first fragment keeps: those with the copied flag (RFC 791)."""
    out = bytearray()
    i = 20
    while i < len(hdr):
        t = hdr[i]
        if t == 0:
            break
        if t == 1:
            i += 1
            continue
        ln = hdr[i + 1] if i + 1 < len(hdr) else 0
        if ln < 2:
            break
        if t & 0x80:
            out += hdr[i:i + ln]
        i += ln
    while len(out) % 4:
        out.append(0)
    return bytes(out)


def fragment(ip: bytes, mtu: int) -> list[bytes] | None:
    """Split an IPv4 packet into fragments of at most `mtu` octets (RFC 791 §3.2)."""
    ihl = (ip[0] & 0x0F) * 4
    total = (ip[2] << 8) | ip[3]
    hdr, data = ip[:ihl], ip[ihl:total]
    ff = (ip[6] << 8) | ip[7]
    base, mf_orig = ff & 0x1FFF, ff & 0x2000
    later_hdr = hdr[:20] + _copied_options(hdr)
    out: list[bytes] = []
    start = 0
    while start < len(data) or not out:
        h = bytearray(hdr if start == 0 else later_hdr)
        step = (mtu - len(h)) // 8 * 8
        if step < 8:
            return None
        chunk = data[start:start + step]
        last = start + step >= len(data)
        h[0] = 0x40 | (len(h) // 4)
        struct.pack_into("!H", h, 2, len(h) + len(chunk))
        flags = (ff & 0x4000) | (0 if last and not mf_orig else 0x2000)
        struct.pack_into("!H", h, 6, flags | (base + start // 8))
        h[10] = h[11] = 0
        struct.pack_into("!H", h, 10, checksum16(h))
        out.append(bytes(h) + chunk)
        start += step
    return out


# ---------------------------------------------------------------- decide


def decide(frame: bytes | bytearray | memoryview, in_if: str, tables: RouterTables) -> Result:
    """What this router does with `frame` received on `in_if`. Never raises on bad input."""
    r = _decide(bytes(frame), in_if, tables)
    t = tables
    if isinstance(r, Drop):
        t.drops[r.reason.value] += 1
        t.icmp_sent += len(r.replies)
    elif isinstance(r, Deliver):
        t.delivered += 1
        t.icmp_sent += len(r.replies)
    return r


def _decide(frame: bytes, in_if: str, t: RouterTables) -> Result:
    if len(frame) < 14:
        return Drop(DropReason.MALFORMED, "runt frame")
    ifi = t.interfaces.get(in_if)
    if ifi is None:
        return Drop(DropReason.UNKNOWN_INTERFACE, in_if)
    group = bool(frame[0] & 1)
    if frame[0:6] != ifi.mac and not group:
        return Drop(DropReason.NOT_FOR_US, "destination MAC is not ours")
    et = (frame[12] << 8) | frame[13]
    if et == ETH_P_MPLS_UC:
        if in_if not in t.mpls_input:  # a customer port: no label is trusted here
            return Drop(DropReason.MPLS_INPUT_DISABLED, f"no LDP on {in_if}", _labels(frame))
        if group:
            return Drop(DropReason.NOT_FOR_US, "MPLS unicast in a group-addressed frame")
        return _mpls(frame, ifi, t)
    if et == ETH_P_IP:  # a VRF port's packets are looked up in its VRF (RFC 4364 §3)
        return _ip(frame, 14, ifi, t, group, fib=t.port_vrf.get(in_if))
    if et == ETH_P_ARP:
        return Deliver(frame[14:], "kernel")
    if et in ETH_P_VLAN_TAGS:
        vid = ((frame[14] << 8) | frame[15]) & 0xFFF if len(frame) >= 16 else 0
        return Drop(DropReason.VLAN_TAGGED, f"ethertype 0x{et:04x}, VLAN {vid}")
    if et == ETH_P_MPLS_MC:
        return Drop(DropReason.MPLS_MULTICAST)
    if et == ETH_P_IPV6:  # a customer port's IPv6 (forwarding.plane6), a VRF's in the VRF
        v = t.port_vrf.get(in_if)
        return plane6.ipv6(frame, 14, ifi, t, group, v6=None if v is None else v.v6)
    return Drop(DropReason.NOT_IP, f"ethertype 0x{et:04x}")


def _labels(frame: bytes) -> tuple[int, ...]:
    """The labels of a frame's stack, top first; () if it does not parse."""
    try:
        return tuple(e.label for e in parse_stack(frame, 14)[0])
    except LabelError:
        return ()


def _mpls(frame: bytes, ifi: IfInfo, t: RouterTables) -> Result:
    try:
        entries, poff = parse_stack(frame, 14)
    except LabelError as e:
        return Drop(DropReason.MALFORMED, str(e))
    rx_stack = frame[14:poff]  # as received, for the RFC 4950 object
    labels_in = tuple(e.label for e in entries)
    carry: int | None = None  # TTL of popped explicit-null entries (RFC 4182)
    i = 0
    while True:
        e = entries[i]
        lbl = e.label
        ttl = e.ttl if carry is None or not t.uniform else min(e.ttl, carry)
        if lbl < 16:
            if lbl in (IPV4_EXPLICIT_NULL, IPV6_EXPLICIT_NULL):
                if not e.s:  # RFC 4182: explicit null above the bottom: pop, continue
                    carry = ttl
                    i += 1
                    continue
                if lbl == IPV6_EXPLICIT_NULL:  # egress: IPv6 under it (RFC 4798 §3, RFC 3032 §2.1)
                    return plane6.egress(t, frame, poff, ifi, rx_stack, labels_in, ttl)
                # Egress: pop explicit null, forward on the IPv4 header (RFC 3032 §2.1).
                if t.ttl_model == "pipe":
                    if ttl <= 1:
                        return _expired(t, frame, poff, ifi, rx_stack, labels_in, ttl, None, ())
                    return _ip(frame, poff, ifi, t, False, rx_stack, labels_in, decrement=False,
                               popped=True)
                cap = ttl if t.uniform else None
                return _ip(frame, poff, ifi, t, False, rx_stack, labels_in, ttl_cap=cap,
                           popped=True)
            if lbl == ROUTER_ALERT:
                return Deliver(frame[14:], "router-alert", True, labels_in, ttl)
            if lbl == IMPLICIT_NULL:
                return Drop(DropReason.MALFORMED, "implicit null (3) on the wire", labels_in, ttl)
            return Drop(DropReason.RESERVED_LABEL, f"reserved label {lbl}", labels_in, ttl)
        ilm = t.ilm.get(lbl)
        if ilm is None and lbl in t.v6.labels:  # our 6PE label: pop, IPv6 lookup (RFC 4798)
            if not e.s:
                return Drop(DropReason.MALFORMED, f"6PE label {lbl} above the bottom", labels_in,
                            ttl)
            return plane6.egress(t, frame, poff, ifi, rx_stack, labels_in, ttl)
        fib = None if ilm is None or ilm.vrf is None else t.vrfs.get(ilm.vrf)
        if fib is not None and not ilm.nhs:  # a VPN label: pop, IPv4 lookup in its VRF
            if not e.s:  # RFC 4364 §4.3.2: the VPN label is the bottom of the stack
                return Drop(DropReason.MALFORMED, f"VPN label {lbl} above the bottom",
                            labels_in, ttl)
            if frame[poff:poff + 1] and frame[poff] >> 4 == 6:  # 6VPE (RFC 4659): IPv6 in it
                return plane6.egress(t, frame, poff, ifi, rx_stack, labels_in, ttl, fib.v6)
            # As an explicit-null egress (RFC 3443): uniform and short-pipe forward on the
            # IPv4 header (uniform with the label's TTL if smaller), pipe on the label's.
            if t.ttl_model == "pipe":
                if ttl <= 1:
                    return _expired(t, frame, poff, ifi, rx_stack, labels_in, ttl, None, (), fib)
                return _ip(frame, poff, ifi, t, False, rx_stack, labels_in, decrement=False,
                           popped=True, fib=fib)
            return _ip(frame, poff, ifi, t, False, rx_stack, labels_in,
                       ttl_cap=ttl if t.uniform else None, popped=True, fib=fib)
        if ilm is None or not ilm.nhs:
            return Drop(DropReason.NO_ILM_ENTRY, f"label {lbl}", labels_in, ttl)
        nh = _pick(ilm.nhs, labelled_hash(frame, 14, t.seed) if len(ilm.nhs) > 1 else None)
        rest = entries[i + 1:]
        if not nh.resolved:
            return Drop(DropReason.NO_NEIGHBOR, f"next hop {nh.nexthop} unresolved", labels_in, ttl)
        if ttl <= 1:  # RFC 3032 §2.4.1 / §2.3.2
            return _expired(t, frame, poff, ifi, rx_stack, labels_in, ttl, nh, rest, fib)
        out_ttl = ttl - 1
        if nh.out_labels:  # swap (and push, when there are several out labels)
            k = len(nh.out_labels)
            words = [encode_entry(lab, e.tc, e.s if j == k - 1 else 0,
                                  out_ttl if (j == k - 1 or t.uniform) else 255)
                     for j, lab in enumerate(nh.out_labels)]
            stack = b"".join(_I.pack(w) for w in words) + frame[14 + 4 * (i + 1):poff]
            return _emit(t, ilm.counter, nh, nh.hdr_mpls, stack, frame[poff:], "swap",
                         labels_in, nh.out_labels + tuple(x.label for x in rest), out_ttl,
                         ifi, rx_stack, rest)
        if rest:  # pop, more labels underneath
            if nh.source is not None and nh.source.op == "untagged":
                # No downstream label yet (ldp.lde._untagged): popping would hand the next
                # hop a label it never allocated (RFC 3031 §3.18): discard instead.
                return Drop(DropReason.UNTAGGED_LABELLED, f"label {lbl} untagged, "
                            f"label {rest[0].label} below", labels_in, ttl)
            r0 = rest[0]
            nttl = min(r0.ttl, out_ttl) if t.uniform else r0.ttl
            stack = _I.pack(encode_entry(r0.label, r0.tc, r0.s, nttl)) + frame[14 + 4 * (i + 2):poff]
            return _emit(t, ilm.counter, nh, nh.hdr_mpls, stack, frame[poff:], "pop", labels_in,
                         tuple(x.label for x in rest), nttl, ifi, rx_stack, rest)
        # PHP: last label popped, IPv4 to the NHLFE's next hop
        err = _ipv4_error(frame, poff)
        if err is not None:
            if len(frame) > poff and frame[poff] >> 4 == 6:  # IPv6 under it: on as it is
                return plane6.php6(t, ilm.counter, nh, frame, poff, ifi, rx_stack, labels_in,
                                   out_ttl)
            return Drop(DropReason.MALFORMED if frame[poff:poff + 1] == b"\x45" else DropReason.NOT_IP,
                        f"after pop: {err}", labels_in, ttl)
        total = (frame[poff + 2] << 8) | frame[poff + 3]
        ip = bytearray(frame[poff:poff + total])
        if t.uniform and ip[8] > out_ttl:  # RFC 3443 §3.1: copy, never increase
            ip_set_ttl(ip, 0, out_ttl)
        return _emit(t, ilm.counter, nh, nh.hdr_ip, b"", bytes(ip), "pop", labels_in, (), ip[8],
                     ifi, rx_stack, (), fib)


def _ip(frame: bytes, off: int, ifi: IfInfo, t: RouterTables, group: bool,
        rx_stack: bytes | None = None, labels_in: tuple[int, ...] = (), decrement: bool = True,
        ttl_cap: int | None = None, popped: bool = False, fib: VrfTable | None = None) -> Result:
    """IPv4 forwarding of the packet at `off` (ingress, or egress after a pop), in the
    global table or, `fib`, in a VRF."""
    f: RouterTables | VrfTable = t if fib is None else fib
    err = _ipv4_error(frame, off)
    if err is not None:
        if len(frame) > off and frame[off] >> 4 == 6:
            return Drop(DropReason.IPV6_UNSUPPORTED, "", labels_in)
        return Drop(DropReason.MALFORMED, err, labels_in)
    total = (frame[off + 2] << 8) | frame[off + 3]
    ip = bytearray(frame[off:off + total])
    labelled = rx_stack is not None
    dst = int.from_bytes(ip[16:20], "big")
    if ttl_cap is not None and ip[8] > ttl_cap:  # uniform egress: label TTL if smaller
        ip_set_ttl(ip, 0, ttl_cap)
    ttl = ip[8]
    if dst in f.own or dst in f.local_bcast or dst >> 28 == 0xE:
        return Deliver(bytes(ip), "local", labelled, labels_in, ttl)
    if group:
        return Drop(DropReason.NOT_FOR_US, "unicast IP in a group-addressed frame", labels_in, ttl)
    if martian_destination(dst):  # RFC 1812 §5.3.7: never forwarded
        return Drop(DropReason.MARTIAN_DESTINATION, f"destination {_dq(dst)}", labels_in, ttl)
    src = int.from_bytes(ip[12:16], "big")
    if martian_source(src):
        return Drop(DropReason.MARTIAN_SOURCE, f"source {_dq(src)}", labels_in, ttl)
    a = f.lookup(dst)
    if a is None:
        where = "" if fib is None else f" in VRF {fib.name}"
        return Drop(DropReason.NO_ROUTE, f"no route to {_dq(dst)}{where}", labels_in, ttl)
    if a.kind == A_LOCAL:
        return Deliver(bytes(ip), "local", labelled, labels_in, ttl)
    if a.kind == A_CONNECTED:
        nh = t.connected_nhlfe(a.out_if, dst)
    else:
        nh = _pick(a.nhs, flow_hash(ip, 0, t.seed) if len(a.nhs) > 1 else None)
    if not nh.resolved:
        return Drop(DropReason.NO_NEIGHBOR, f"no station {_dq(nh.nexthop)} on {nh.out_if}",
                    labels_in, ttl)
    if decrement:
        if ttl <= 1:
            return _expired(t, ip, 0, ifi, rx_stack, labels_in, ttl, None, (), fib)
        ip_set_ttl(ip, 0, ttl - 1)
    if a.kind == A_NHLFE and nh.out_labels:  # FTN (or a VRF's VPN route): label imposition
        lttl = ip[8] if t.uniform else 255  # RFC 3443: uniform copies, pipe uses 255
        stack = encode_stack(nh.out_labels, ip[1] >> 5, lttl)
        return _emit(t, a.counter, nh, nh.hdr_mpls, stack, bytes(ip), "push", labels_in,
                     nh.out_labels, lttl, ifi, rx_stack, (), fib)
    return _emit(t, a.counter, nh, nh.hdr_ip, b"", bytes(ip), "pop" if popped else "forward",
                 labels_in, (), ip[8], ifi, rx_stack, (), fib)


def _icmp_source(ifi: IfInfo, fib: VrfTable | None) -> int:
    """The source of an ICMP error: the interface the packet came in on, or, for a VRF's
    packet that came from the core (after its VPN label), an address of that VRF."""
    if fib is None or ifi.vrf == fib.name:
        return ifi.ip
    return fib.source


def _emit(t: RouterTables, counter: list[int], nh: CNhlfe, hdr: bytes, stack: bytes,
          payload: bytes, op: str, labels_in: tuple[int, ...], labels_out: tuple[int, ...],
          ttl: int, ifi: IfInfo, rx_stack: bytes | None, rest: tuple | list,
          fib: VrfTable | None = None) -> Result:
    """Build the frame; MTU check and fragmentation (RFC 3032 §3). `fib`: the VRF the
    packet is forwarded in (where an ICMP error about it is routed)."""
    if len(stack) + len(payload) <= nh.mtu:
        frame = hdr + stack + payload
        counter[0] += 1
        counter[1] += len(frame)
        return Forward(nh.out_if, frame, op, labels_in, labels_out, ttl, nh.neighbor)
    if _ipv4_error(payload, 0) is not None:
        if payload[:1] and payload[0] >> 4 == 6:  # IPv6 is never fragmented on the way
            return plane6.too_big6(t, payload, nh.mtu - len(stack), ifi, rx_stack, nh, rest,
                                   labels_in, ttl, None if fib is None else fib.v6)
        return Drop(DropReason.MTU_EXCEEDED, "too big, payload is not IPv4", labels_in, ttl)
    avail = nh.mtu - len(stack)
    if payload[6] & 0x40:  # DF
        replies: tuple[Forward, ...] = ()
        if may_send_error(payload):
            icmp = frag_needed(payload, _icmp_source(ifi, fib), avail, rx_stack)
            fw = _onward(t, icmp, nh, rest, fib) if rx_stack is not None \
                else originate(t, icmp, fib)
            replies = (fw,) if fw is not None else ()
        return Drop(DropReason.FRAG_NEEDED, f"DF set, next-hop MTU {avail}", labels_in, ttl,
                    replies)
    total = (payload[2] << 8) | payload[3]
    frags = fragment(payload[:total], avail)
    if frags is None:
        return Drop(DropReason.MTU_EXCEEDED, "MTU too small to fragment", labels_in, ttl)
    frames = [hdr + stack + f for f in frags]
    t.fragments += len(frames) - 1
    counter[0] += len(frames)
    counter[1] += sum(len(f) for f in frames)
    return Forward(nh.out_if, frames[0], op, labels_in, labels_out, ttl, nh.neighbor,
                   tuple(frames[1:]))


def _expired(t: RouterTables, buf: bytes | bytearray, poff: int, ifi: IfInfo,
             rx_stack: bytes | None, labels_in: tuple[int, ...], ttl: int, nh: CNhlfe | None,
             rest: tuple | list, fib: VrfTable | None = None) -> Drop:
    """TTL expired: ICMP Time Exceeded (RFC 792; RFC 3032 §2.3.2; RFC 4950 if labelled).
    A P router sends it on along the LSP, so it reaches the egress PE, which routes it
    in the VRF back to the source (as any VPN packet); a PE routes it in `fib`."""
    inner = bytes(buf[poff:])
    if inner[:1] and inner[0] >> 4 == 6:  # ICMPv6 about the IPv6 packet under the labels
        return plane6.expired6(t, inner, ifi, rx_stack, labels_in, ttl, nh, rest,
                               None if fib is None else fib.v6)
    replies: tuple[Forward, ...] = ()
    if _ipv4_error(inner, 0) is None and may_send_error(inner):
        icmp = time_exceeded(inner, _icmp_source(ifi, fib), rx_stack)
        fw = _onward(t, icmp, nh, rest, fib) if nh is not None else originate(t, icmp, fib)
        replies = (fw,) if fw is not None else ()
    return Drop(DropReason.TTL_EXPIRED, "", labels_in, ttl, replies)


def _onward(t: RouterTables, ip: bytes, nh: CNhlfe, rest: tuple | list,
            fib: VrfTable | None = None) -> Forward | None:
    """Send an ICMP error along the LSP (RFC 3032 §2.3.2): the outgoing stack, TTL 255."""
    labels = nh.out_labels + tuple(x.label for x in rest)
    if not labels or not nh.resolved:
        return originate(t, ip, fib)
    stack = encode_stack(labels, 0, 255)
    return Forward(nh.out_if, nh.hdr_mpls + stack + ip, "push", (), labels, 255, nh.neighbor)


def originate(t: RouterTables, ip: bytes, fib: VrfTable | None = None) -> Forward | None:
    """Route a packet this router generates (no TTL decrement), in the global table or in
    VRF `fib`. None if unroutable/local."""
    if _ipv4_error(ip, 0) is not None:
        return None
    dst = int.from_bytes(ip[16:20], "big")
    f: RouterTables | VrfTable = t if fib is None else fib
    a = f.lookup(dst)
    if a is None or a.kind == A_LOCAL or dst in f.own:
        return None
    if a.kind == A_CONNECTED:
        nh = t.connected_nhlfe(a.out_if, dst)
    else:
        nh = _pick(a.nhs, flow_hash(ip, 0, t.seed) if len(a.nhs) > 1 else None)
    if not nh.resolved:
        return None
    if a.kind == A_NHLFE and nh.out_labels:
        lttl = ip[8] if t.uniform else 255
        stack = encode_stack(nh.out_labels, ip[1] >> 5, lttl)
        return Forward(nh.out_if, nh.hdr_mpls + stack + ip, "push", (), nh.out_labels, lttl,
                       nh.neighbor)
    return Forward(nh.out_if, nh.hdr_ip + ip, "forward", (), (), ip[8], nh.neighbor)


def _dq(a: int) -> str:
    return ".".join(str((a >> s) & 0xFF) for s in (24, 16, 8, 0))


# ---------------------------------------------------------------- fast path


class Dataplane:
    """The hot loop of one router: `process(frame, in_if) -> [(out_if, frame), ...]`.

    Handles without allocating result objects: single-label swap (ILM), PHP
    pop of the bottom label to IPv4, single-label push of an IPv4 packet
    (FTN), 6PE push of an IPv6 packet and 6PE pop to a host (`forwarding.plane6`),
    all with MTU and TTL > 1; everything else goes through `decide`.
    Counters are the same as `decide`'s. `tables` may be updated in place
    (`set_lfib`, `apply_diff`, `set_rib`) between calls.
    """

    __slots__ = ("tables",)

    def __init__(self, tables: RouterTables) -> None:
        self.tables = tables

    def process(self, frame: bytes | bytearray | memoryview, in_if: str,
                _eth=_ETH.unpack_from, _iphu=_IPH.unpack_from, _iph=_IPH.pack,
                _mip=_MIPH.unpack_from, _pack=_I.pack,
                _src_ok=SOURCE_OK) -> list[tuple[str, bytes]]:
        t = self.tables
        n = len(frame)
        if n < 34:
            return self._slow(frame, in_if)
        dmac, et, w = _eth(frame)
        if et == 0x8847:
            if dmac != t.mpls_mac.get(in_if):  # not for us, or no MPLS input on in_if
                return self._slow(frame, in_if)
            e = t.fast_ilm.get(w >> 12)
            if e is not None and (w & 0xFF) > 1:
                kind, ch, ctr = e  # forwarding.tables: FAST_KIND, FAST_NHS, FAST_COUNTER
                out_if, hdr, lbits, mtu = (  # FNH_OUT_IF, FNH_HDR, FNH_LABEL, FNH_MTU
                    ch[0] if len(ch) == 1 else ch[labelled_hash(frame, 14, t.seed) % len(ch)])
                if kind == FAST_SWAP:  # TC, S kept; TTL - 1 (no borrow: TTL > 1)
                    if n - 14 <= mtu:
                        ctr[0] += 1
                        ctr[1] += n
                        return [(out_if, hdr + _pack(lbits | ((w & 0xFFF) - 1)) + frame[18:])]
                elif w & 0x100 and n >= 38:  # FAST_PHP of the bottom label: IPv4 out
                    _w, vihl, tos, total, ident, frag, ttl, proto, ck, src, dst = _mip(frame, 14)
                    if vihl == 0x45 and 20 <= total <= mtu and 18 + total <= n:
                        s_ = ((vihl << 8) + tos + total + ident + frag + (ttl << 8) + proto + ck
                              + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF))
                        s_ = (s_ & 0xFFFF) + (s_ >> 16)
                        if (s_ & 0xFFFF) + (s_ >> 16) == 0xFFFF:  # header checksum OK
                            out_ttl = (w & 0xFF) - 1
                            if t.uniform and ttl > out_ttl:  # RFC 3443: copy, never increase
                                ck = ttl_checksum_update(ck, ttl, out_ttl, proto)
                                out = (hdr + _iph(vihl, tos, total, ident, frag, out_ttl, proto,
                                                   ck, src, dst) + frame[38:18 + total])
                            else:
                                out = hdr + frame[18:18 + total]
                            ctr[0] += 1
                            ctr[1] += len(out)
                            return [(out_if, out)]
        elif et == 0x0800 and w >> 24 == 0x45 and dmac == t.ip_mac.get(in_if):
            # IPv4 ingress: FTN push of one label
            vihl, tos, total, ident, frag, ttl, proto, ck, src, dst = _iphu(frame, 14)
            if ttl > 1 and 20 <= total <= n - 14 and _src_ok[src >> 24]:  # RFC 1812 §5.3.7
                a = t.lpm_cache.get(dst, _MISS)
                if a is _MISS:
                    a = t.lookup(dst)
                if a is not None and a.kind == A_NHLFE:
                    nhs = a.nhs
                    nh = nhs[0] if len(nhs) == 1 else nhs[flow_hash(frame, 14, t.seed) % len(nhs)]
                    labels = nh.out_labels
                    if nh.resolved and len(labels) == 1 and total + 4 <= nh.mtu:
                        s_ = ((vihl << 8) + tos + total + ident + frag + (ttl << 8) + proto + ck
                              + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF))
                        s_ = (s_ & 0xFFFF) + (s_ >> 16)
                        if (s_ & 0xFFFF) + (s_ >> 16) == 0xFFFF:
                            ttl -= 1
                            ck = ttl_checksum_update(ck, ttl + 1, ttl, proto)
                            lw = (labels[0] << 12) | ((tos >> 5) << 9) | 0x100 \
                                | (ttl if t.uniform else 255)
                            out = (nh.hdr_mpls + _pack(lw)
                                   + _iph(vihl, tos, total, ident, frag, ttl, proto, ck, src, dst)
                                   + frame[34:14 + total])
                            ctr = a.counter
                            ctr[0] += 1
                            ctr[1] += len(out)
                            return [(nh.out_if, out)]
        elif et == 0x86DD and dmac == t.if_mac.get(in_if):  # 6PE ingress push
            out6 = plane6.fast_push6(t, frame, in_if, n)
            if out6 is not None:
                return out6
        if et == 0x8847 and (w >> 12) in t.v6.labels and dmac == t.mpls_mac.get(in_if):
            out6 = plane6.fast_egress6(t, frame, w, n)  # 6PE egress to a host
            if out6 is not None:
                return out6
        return self._slow(frame, in_if)

    def _slow(self, frame: bytes | bytearray | memoryview, in_if: str) -> list[tuple[str, bytes]]:
        r = decide(frame, in_if, self.tables)
        if isinstance(r, Forward):
            return [(r.out_if, f) for f in r.frames]
        if isinstance(r, Drop):
            return [(f.out_if, f.frame) for f in r.replies]
        out = [(f.out_if, f.frame) for f in r.replies]  # what we answer ourselves (IPv6)
        if r.labelled and r.packet[:1] and r.packet[0] >> 4 == 4:
            out.append((LOCAL_IF, r.packet))
        return out


def process(frame: bytes | bytearray | memoryview, in_if: str,
            tables: RouterTables) -> list[tuple[str, bytes]]:
    """Convenience: `Dataplane(tables).process(frame, in_if)` (keep a Dataplane in hot loops)."""
    return Dataplane(tables).process(frame, in_if)


def top_entry(frame: bytes) -> LabelEntry | None:
    """The top label stack entry of an MPLS frame, for display."""
    try:
        return parse_stack(frame, 14)[0][0] if frame[12:14] == _MPLS else None
    except LabelError:
        return None
