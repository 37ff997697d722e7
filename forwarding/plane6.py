"""IPv6 in the forwarding plane: the decisions `forwarding.plane` hands over for IPv6.

Where IPv6 comes from (RFC 4798, 6PE): a host on a customer port (ethertype 0x86dd,
accepted only on interfaces with IPv6: IPv6 on a core link is IPV6_UNSUPPORTED, the
core is IPv4), or from the core under a 6PE label of ours or IPv6 Explicit Null (2)
at the bottom of the stack, popped at the egress (`egress`).

- Validation (`forwarding.ip6.check`): malformed headers and extension header chains
  are dropped with their reason (IPV6_MALFORMED, IPV6_EXT_CHAIN, IPV6_CHAIN_TOO_LONG).
- For us (our addresses, and link-scope multicast): Echo Request -> Echo Reply,
  Neighbor Solicitation for one of our addresses -> Neighbor Advertisement (RFC 4861
  §7.2.4, the edge router answers its hosts; an invalid one is ICMPV6_MALFORMED), UDP
  -> Port Unreachable (so traceroute to a router ends), the rest delivered unanswered.
  These are `Deliver` results whose `replies` the router sends; the routers' kernels
  have IPv6 off.
- Never forwarded: multicast (delivered), link-local, unspecified and loopback
  addresses (RFC 4291 §2.5.6: MARTIAN_SOURCE / MARTIAN_DESTINATION).
- Hop limit (RFC 8200 §3): decremented once per router; at 1 or 0 the packet is dropped
  with ICMPv6 Time Exceeded (TTL_EXPIRED). Labelled (RFC 3443, as IPv4): uniform copies
  the hop limit into pushed labels and takes the smaller of label TTL and hop limit at
  the egress; pipe / short-pipe push 255.
- Lookup: connected subnet (straight to the host's MAC) or a 6PE route (`Fib6`): push
  [LDP label, 6PE label] (RFC 4798 §3; the TC from the traffic class's top 3 bits),
  ECMP by `flow_hash6`. No route: ICMPv6 Destination Unreachable, no route (NO_ROUTE).
- MTU: a router never fragments IPv6 (RFC 8200 §5): labels + packet over the link MTU
  is dropped with ICMPv6 Packet Too Big, MTU = link MTU - 4 x labels (PACKET_TOO_BIG).
- ICMPv6 errors about a labelled packet carry the RFC 4950 label stack as received
  (RFC 4884 form) and go on along the LSP (RFC 3032 §2.3.2, `onward6`): a P router's
  error reaches the egress, which routes it back to the source as any IPv6 packet.
- 6VPE (RFC 4659): a VRF port's IPv6, and IPv6 under a VPN label the egress pops, is
  looked up in that VRF's table (`VrfTable.v6`, passed as `v6`), where its errors are
  routed too; everything else uses the router's own (`RouterTables.v6`).
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

from forwarding.icmp6 import (
    ICMP6_ECHO_REQUEST,
    ND_NEIGHBOR_SOLICIT,
    UNREACH_PORT,
    echo_reply6,
    icmp6_ok,
    may_send_error6,
    neighbor_advert,
    packet_too_big6,
    parse_ns,
    time_exceeded6,
    unreachable6,
)
from forwarding.ip6 import (
    NH_ICMPV6,
    NH_UDP,
    Bad6,
    Parsed6,
    check,
    flow_hash6,
    martian_destination6,
    martian_source6,
    multicast_mac,
)
from forwarding.labelops import encode_stack
from forwarding.nexthop import A_CONNECTED, A_NHLFE, CNhlfe
from forwarding.results import Deliver, Drop, DropReason, Forward, Result
from forwarding.tables import IfInfo, RouterTables
from forwarding.tables6 import Tables6
from lsr.core.ipv6 import text as text6

ALL_NODES = b"\xff\x02" + bytes(13) + b"\x01"


def _pick(nhs: tuple[CNhlfe, ...], h: int | None) -> CNhlfe:
    return nhs[0] if len(nhs) == 1 or h is None else nhs[h % len(nhs)]


def _a6(b: bytes) -> str:
    return text6(IPv6Address(b))


def ipv6(frame: bytes, off: int, ifi: IfInfo, t: RouterTables, group: bool,
         rx_stack: bytes | None = None, labels_in: tuple[int, ...] = (),
         decrement: bool = True, ttl_cap: int | None = None, popped: bool = False,
         v6: Tables6 | None = None) -> Result:
    """IPv6 forwarding of the packet at `off`: from a customer port, or after a pop
    (`rx_stack`: the stack as received). `ifi`: forwarding.tables.IfInfo; `t`: RouterTables;
    `v6`: the table to look up in (a VRF's), by default the router's."""
    v6 = t.v6 if v6 is None else v6
    labelled = rx_stack is not None
    if not labelled and ifi.name not in v6.ifs:
        return Drop(DropReason.IPV6_UNSUPPORTED, f"no IPv6 on {ifi.name} (the core is IPv4: "
                    "IPv6 crosses it labelled)")
    r = check(frame, off)
    if isinstance(r, Bad6):
        return Drop(DropReason(r.reason), r.detail, labels_in)
    pkt = bytearray(frame[off:off + r.total])
    if ttl_cap is not None and pkt[7] > ttl_cap:  # uniform egress: label TTL if smaller
        pkt[7] = ttl_cap
    hl = pkt[7]
    dst = bytes(pkt[24:40])
    if dst in v6.own:
        return _local(t, frame[6:12], pkt, r, ifi, labelled, labels_in, hl, v6)
    if dst[0] == 0xFF:  # multicast is delivered (link scope: ND), never routed
        return _multicast(t, frame, pkt, r, ifi, labels_in, hl, v6)
    if group:
        return Drop(DropReason.NOT_FOR_US, "unicast IPv6 in a group-addressed frame", labels_in, hl)
    why = martian_destination6(dst)
    if why:
        return Drop(DropReason.MARTIAN_DESTINATION, why, labels_in, hl)
    why = martian_source6(bytes(pkt[8:24]))
    if why:
        return Drop(DropReason.MARTIAN_SOURCE, why, labels_in, hl)
    a = v6.lookup(dst)
    if a is None:
        return _unreachable(t, pkt, ifi, rx_stack, labels_in, hl, v6)
    if a.kind == A_CONNECTED:
        nh = v6.connected_nh(a.out_if, dst)
    else:
        nh = _pick(a.nhs, flow_hash6(pkt, 0, t.seed, r) if len(a.nhs) > 1 else None)
    if not nh.resolved:
        return Drop(DropReason.NO_NEIGHBOR, f"no station {_a6(dst)} on {nh.out_if}", labels_in, hl)
    if decrement:
        if hl <= 1:
            return expired6(t, bytes(pkt), ifi, rx_stack, labels_in, hl, None, (), v6)
        pkt[7] = hl - 1
    if a.kind == A_NHLFE:
        if nh.out_labels:  # 6PE: [LDP label, 6PE label] (RFC 4798 §3); 6VPE: the VPN label
            lttl = pkt[7] if t.uniform else 255
            tc = (((pkt[0] & 0x0F) << 4) | (pkt[1] >> 4)) >> 5
            stack = encode_stack(nh.out_labels, tc, lttl)
            return emit6(t, a.counter, nh, nh.hdr_mpls, stack, bytes(pkt), "push", labels_in,
                         nh.out_labels, lttl, ifi, rx_stack, (), v6)
        # no labels: a 6PE egress that is a neighbour, or a VRF's static route to its CE
        return emit6(t, a.counter, nh, v6.unlabelled(nh), b"", bytes(pkt),
                     "pop" if popped else "forward", labels_in, (), pkt[7], ifi, rx_stack, (), v6)
    return emit6(t, a.counter, nh, nh.hdr_ip, b"", bytes(pkt), "pop" if popped else "forward",
                 labels_in, (), pkt[7], ifi, rx_stack, (), v6)


def egress(t: RouterTables, frame: bytes, poff: int, ifi: IfInfo, rx_stack: bytes,
           labels_in: tuple[int, ...], ttl: int, v6: Tables6 | None = None) -> Result:
    """Our 6PE label or IPv6 Explicit Null popped at the bottom: the IPv6 packet under
    it is looked up (RFC 4798 §3), with the TTL model of an explicit-null egress
    (RFC 3443: uniform and short-pipe forward on the IPv6 header, uniform with the
    label's TTL if smaller; pipe checks the label's TTL and keeps the hop limit).
    A router without IPv6 (none of its links has any) is no 6PE egress: IPV6_UNSUPPORTED.
    With `v6` (a VRF's table): a VPN label popped with IPv6 under it (6VPE, RFC 4659)."""
    if v6 is None and not t.v6.ifs:
        return Drop(DropReason.IPV6_UNSUPPORTED, f"IPv6 under label {labels_in[-1]}: "
                    "this router has no IPv6", labels_in, ttl)
    if t.ttl_model == "pipe":
        if ttl <= 1:
            return expired6(t, frame[poff:], ifi, rx_stack, labels_in, ttl, None, (), v6)
        return ipv6(frame, poff, ifi, t, False, rx_stack, labels_in, decrement=False, popped=True,
                    v6=v6)
    return ipv6(frame, poff, ifi, t, False, rx_stack, labels_in,
                ttl_cap=ttl if t.uniform else None, popped=True, v6=v6)


def php6(t: RouterTables, counter: list[int], nh: CNhlfe, frame: bytes, poff: int,
         ifi: IfInfo, rx_stack: bytes, labels_in: tuple[int, ...], out_ttl: int) -> Result:
    """The bottom label popped (penultimate hop) with IPv6 under it, as an egress that
    advertised implicit null for its IPv6 prefixes asks: the IPv6 packet goes to the
    NHLFE's next hop as it is (no IPv6 lookup here), hop limit = label TTL if smaller
    (uniform)."""
    r = check(frame, poff)
    if isinstance(r, Bad6):
        return Drop(DropReason(r.reason), f"after pop: {r.detail}", labels_in, out_ttl + 1)
    pkt = bytearray(frame[poff:poff + r.total])
    if t.uniform and pkt[7] > out_ttl:
        pkt[7] = out_ttl
    return emit6(t, counter, nh, t.v6.unlabelled(nh), b"", bytes(pkt), "pop", labels_in, (),
                 pkt[7], ifi, rx_stack, ())


def emit6(t: RouterTables, counter: list[int], nh: CNhlfe, hdr: bytes, stack: bytes,
          payload: bytes, op: str, labels_in: tuple[int, ...], labels_out: tuple[int, ...],
          ttl: int, ifi: IfInfo, rx_stack: bytes | None, rest: tuple | list,
          v6: Tables6 | None = None) -> Result:
    """Build the frame; over the MTU: Packet Too Big (IPv6 is never fragmented on the way)."""
    if len(stack) + len(payload) <= nh.mtu:
        frame = hdr + stack + payload
        counter[0] += 1
        counter[1] += len(frame)
        return Forward(nh.out_if, frame, op, labels_in, labels_out, ttl, nh.neighbor)
    return too_big6(t, payload, nh.mtu - len(stack), ifi, rx_stack, nh, rest, labels_in, ttl,
                    v6)


def too_big6(t: RouterTables, payload: bytes, mtu: int, ifi: IfInfo, rx_stack: bytes | None,
             nh: CNhlfe | None, rest: tuple | list, labels_in: tuple[int, ...],
             ttl: int, v6: Tables6 | None = None) -> Drop:
    """ICMPv6 Packet Too Big (RFC 4443 §3.2, RFC 3032 §3: MTU less the label stack), along
    the LSP if the packet came labelled."""
    v6 = t.v6 if v6 is None else v6
    replies: tuple[Forward, ...] = ()
    if may_send_error6(payload, too_big=True):
        icmp = packet_too_big6(payload, v6.error_source(ifi.name), mtu)
        fw = onward6(t, icmp, nh, rest, v6) if rx_stack is not None and nh is not None \
            else originate6(t, icmp, v6)
        replies = (fw,) if fw is not None else ()
    return Drop(DropReason.PACKET_TOO_BIG, f"next-hop MTU {mtu}", labels_in, ttl, replies)


def expired6(t: RouterTables, pkt: bytes | bytearray, ifi: IfInfo, rx_stack: bytes | None,
             labels_in: tuple[int, ...], ttl: int, nh: CNhlfe | None,
             rest: tuple | list, v6: Tables6 | None = None) -> Drop:
    """Hop limit (or the TTL of the labels over an IPv6 packet) expired: ICMPv6 Time
    Exceeded with the RFC 4950 label stack if it came labelled, on along the LSP when
    there is an onward label (RFC 3032 §2.3.2), else routed."""
    v6 = t.v6 if v6 is None else v6
    replies: tuple[Forward, ...] = ()
    if may_send_error6(pkt):
        icmp = time_exceeded6(pkt, v6.error_source(ifi.name), rx_stack)
        fw = onward6(t, icmp, nh, rest, v6) if nh is not None else originate6(t, icmp, v6)
        replies = (fw,) if fw is not None else ()
    return Drop(DropReason.TTL_EXPIRED, "", labels_in, ttl, replies)


def _unreachable(t: RouterTables, pkt: bytearray, ifi: IfInfo, rx_stack: bytes | None,
                 labels_in: tuple[int, ...], hl: int, v6: Tables6) -> Drop:
    replies: tuple[Forward, ...] = ()
    if may_send_error6(pkt):
        fw = originate6(t, unreachable6(pkt, v6.error_source(ifi.name), label_stack=rx_stack),
                        v6)
        replies = (fw,) if fw is not None else ()
    return Drop(DropReason.NO_ROUTE, f"no route to {_a6(bytes(pkt[24:40]))}", labels_in, hl,
                replies)


def onward6(t: RouterTables, ip: bytes, nh: CNhlfe | None, rest: tuple | list,
            v6: Tables6 | None = None) -> Forward | None:
    """An ICMPv6 error along the LSP (RFC 3032 §2.3.2): the outgoing stack, TTL 255."""
    labels = (nh.out_labels if nh is not None else ()) + tuple(x.label for x in rest)
    if nh is None or not labels or not nh.resolved:
        return originate6(t, ip, v6)
    stack = encode_stack(labels, 0, 255)
    return Forward(nh.out_if, nh.hdr_mpls + stack + ip, "push", (), labels, 255, nh.neighbor)


def originate6(t: RouterTables, ip: bytes, v6: Tables6 | None = None) -> Forward | None:
    """Route an IPv6 packet this router generates (no hop limit decrement), in the
    router's table or a VRF's (`v6`). None if unroutable or ours."""
    v6 = t.v6 if v6 is None else v6
    dst = bytes(ip[24:40])
    if dst in v6.own:
        return None
    a = v6.lookup(dst)
    if a is None:
        return None
    if a.kind == A_CONNECTED:
        nh = v6.connected_nh(a.out_if, dst)
    else:
        nh = _pick(a.nhs, flow_hash6(ip, 0, t.seed) if len(a.nhs) > 1 else None)
    if not nh.resolved:
        return None
    if a.kind == A_NHLFE and nh.out_labels:
        lttl = ip[7] if t.uniform else 255
        stack = encode_stack(nh.out_labels, 0, lttl)
        return Forward(nh.out_if, nh.hdr_mpls + stack + ip, "push", (), nh.out_labels, lttl,
                       nh.neighbor)
    hdr = v6.unlabelled(nh) if a.kind == A_NHLFE else nh.hdr_ip
    return Forward(nh.out_if, hdr + ip, "forward", (), (), ip[7], nh.neighbor)


# ---------------------------------------------------------------- for us


def _local(t: RouterTables, eth_src: bytes, pkt: bytearray, r: Parsed6, ifi: IfInfo,
           labelled: bool,
           labels_in: tuple[int, ...], hl: int, v6: Tables6) -> Result:
    """A packet to one of our addresses: answered here (the router's kernel has no IPv6)."""
    p = bytes(pkt)
    me = bytes(pkt[24:40])
    if r.proto == NH_ICMPV6:
        bad = icmp6_ok(p, 0, r)
        if bad:
            return Drop(DropReason.ICMPV6_MALFORMED, bad, labels_in, hl)
        typ = p[r.l4]
        if typ == ICMP6_ECHO_REQUEST:
            fw = originate6(t, echo_reply6(p, r, me), v6)
            return Deliver(p, "local", labelled, labels_in, hl, (fw,) if fw else ())
        if typ == ND_NEIGHBOR_SOLICIT and not labelled:  # unicast NS: NUD (RFC 4861 §7.3)
            return _solicited(t, eth_src, p, r, ifi, labels_in, hl, v6)
    elif r.proto == NH_UDP and not r.later_fragment and may_send_error6(p):
        # what a host does: traceroute's probe to a router's address ends here
        fw = originate6(t, unreachable6(p, me, UNREACH_PORT), v6)
        return Deliver(p, "local", labelled, labels_in, hl, (fw,) if fw else ())
    return Deliver(p, "local", labelled, labels_in, hl)


def _multicast(t: RouterTables, frame: bytes, pkt: bytearray, r: Parsed6, ifi: IfInfo,
               labels_in: tuple[int, ...], hl: int, v6: Tables6) -> Result:
    p = bytes(pkt)
    if r.proto == NH_ICMPV6 and not r.later_fragment and r.total - r.l4 >= 1 \
            and p[r.l4] == ND_NEIGHBOR_SOLICIT:
        bad = icmp6_ok(p, 0, r)
        if bad:
            return Drop(DropReason.ICMPV6_MALFORMED, bad, labels_in, hl)
        return _solicited(t, frame[6:12], p, r, ifi, labels_in, hl, v6)
    return Deliver(p, "local", False, labels_in, hl)


def _solicited(t: RouterTables, eth_src: bytes, p: bytes, r: Parsed6, ifi: IfInfo,
               labels_in: tuple[int, ...], hl: int, v6: Tables6) -> Result:
    """A Neighbor Solicitation: an Advertisement if it asks for our address on the link
    it came in on (RFC 4861 §7.2.3-7.2.4), to its source (or all nodes if that is ::)."""
    ns = parse_ns(p, 0, r)
    if isinstance(ns, str):
        return Drop(DropReason.ICMPV6_MALFORMED, f"Neighbor Solicitation: {ns}", labels_in, hl)
    target, slla = ns
    i = v6.ifs.get(ifi.name)
    if i is None or i.address.ip.packed != target:
        return Deliver(p, "nd", False, labels_in, hl)  # not ours (another host's, DAD)
    src = p[8:24]
    dst = src if src != bytes(16) else ALL_NODES
    mac = slla or eth_src or (v6.neigh.get(src, ("", b"", ""))[1])
    if dst == ALL_NODES or not mac:
        mac = multicast_mac(ALL_NODES) if dst == ALL_NODES else bytes(6)
    na = neighbor_advert(target, dst, i.mac, src != bytes(16))
    fw = Forward(ifi.name, v6.hdr6(ifi.name, mac) + na, "nd", (), (), 255, i.peer_node)
    return Deliver(p, "nd", False, labels_in, hl, (fw,))


# ---------------------------------------------------------------- fast paths (Dataplane.process)

_H6 = struct.Struct("!IHBB")  # version/class/flow, payload length, next header, hop limit
_W = struct.Struct("!I")
_FAST_PROTOS = (6, 17, 58)  # no extension headers: nothing to walk


def fast_push6(t: RouterTables, frame: bytes | bytearray | memoryview, in_if: str,
               n: int) -> list[tuple[str, bytes]] | None:
    """6PE ingress on struct and dict lookups: an IPv6 packet without extension headers
    from a customer port to a 6PE route with one next hop, pushed with one or two labels.
    None: anything else (`decide` does it, with the same outcome and counters)."""
    v6 = t.v6
    if in_if not in v6.ifs or n < 54:
        return None
    vtf, plen, nxt, hl = _H6.unpack_from(frame, 14)
    if vtf >> 28 != 6 or hl <= 1 or 54 + plen > n or nxt not in _FAST_PROTOS:
        return None
    s0 = frame[22]
    if s0 == 0xFF or s0 == 0xFE or s0 == 0:  # multicast, link-local, ::, ::1 (decide says which)
        return None
    dst = bytes(frame[38:54])
    a = v6.cache.get(dst)
    if a is None:
        a = v6.lookup(dst)
    if a is None or a.kind != A_NHLFE or len(a.nhs) != 1:
        return None
    nh = a.nhs[0]
    labels = nh.out_labels
    k = len(labels)
    if not nh.resolved or not 1 <= k <= 2 or 40 + plen + 4 * k > nh.mtu:
        return None
    hl -= 1
    bits = ((vtf >> 25) & 7) << 9 | (hl if t.uniform else 255)
    if k == 1:
        stack = _W.pack(labels[0] << 12 | bits | 0x100)
    else:
        stack = _W.pack(labels[0] << 12 | bits) + _W.pack(labels[1] << 12 | bits | 0x100)
    out = nh.hdr_mpls + stack + bytes(frame[14:21]) + bytes((hl,)) + bytes(frame[22:54 + plen])
    c = a.counter
    c[0] += 1
    c[1] += len(out)
    return [(nh.out_if, out)]


def fast_egress6(t: RouterTables, frame: bytes | bytearray | memoryview, w: int,
                 n: int) -> list[tuple[str, bytes]] | None:
    """6PE egress: our 6PE label, alone at the bottom (`w` the entry), over an IPv6
    packet without extension headers to a host on a connected subnet, uniform or
    short-pipe TTL model. None: anything else (`decide`)."""
    if w & 0x100 == 0 or n < 58 or t.ttl_model == "pipe":
        return None
    v6 = t.v6
    vtf, plen, nxt, hl = _H6.unpack_from(frame, 18)
    if vtf >> 28 != 6 or 58 + plen > n or nxt not in _FAST_PROTOS:
        return None
    if t.uniform and hl > (w & 0xFF):
        hl = w & 0xFF  # RFC 3443: the label's TTL if smaller
    if hl <= 1:
        return None
    s0 = frame[26]
    if s0 == 0xFF or s0 == 0xFE or s0 == 0:
        return None
    dst = bytes(frame[42:58])
    a = v6.cache.get(dst)
    if a is None:
        a = v6.lookup(dst)
    if a is None or a.kind != A_CONNECTED or dst in v6.own:
        return None
    nh = v6.connected_nh(a.out_if, dst)
    if not nh.resolved or 40 + plen > nh.mtu:
        return None
    out = nh.hdr_ip + bytes(frame[18:25]) + bytes((hl - 1,)) + bytes(frame[26:58 + plen])
    c = a.counter
    c[0] += 1
    c[1] += len(out)
    return [(nh.out_if, out)]
