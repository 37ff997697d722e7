"""Kernel routes of a router runtime over one NETLINK_ROUTE socket (rtnetlink(7)).

What `ip -force -batch` did with `route replace PREFIX via A dev D proto 188 metric 20`
(or `nexthop via ... dev ...` for ECMP) and `route del PREFIX proto 188 metric 20`, as
the same RTM_NEWROUTE / RTM_DELROUTE messages, all of one sync in one datagram, from
the router's own process: while a 200-router lab converges, every SPF run's few changed
routes had cost a fork and exec of `ip` (thousands of them on two cores). Each message
is acknowledged on its own, so a failure (a route via an interface just gone down) is
known per route, where `ip -force` only said that some line failed.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network

RTM_NEWROUTE, RTM_DELROUTE = 24, 25
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_CREATE = 0x100, 0x400
NETLINK_CAP_ACK = 10  # acks without a copy of the request
RT_TABLE_MAIN, RT_SCOPE_UNIVERSE, RT_SCOPE_NOWHERE, RTN_UNICAST = 254, 0, 255, 1
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_MULTIPATH = 1, 4, 5, 6, 9
_NLMSG = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTNH = struct.Struct("=HBBi")

Hop = tuple[IPv4Address, str]  # (gateway, interface)

_sock: socket.socket | None = None
_seq = 0


def _packed(gw: IPv4Address | str) -> bytes:
    return gw.packed if isinstance(gw, IPv4Address) else IPv4Address(gw).packed


def _attr(kind: int, data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * (-n % 4)


def route_message(seq: int, prefix: IPv4Network, hops: Sequence[Hop] | None, proto: int,
                  metric: int, ifindex: dict[str, int]) -> bytes:
    """One RTM_NEWROUTE (replace or create: `hops`) or RTM_DELROUTE (`hops` None)."""
    if hops is None:
        kind, flags = RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK
        rt = _RTMSG.pack(socket.AF_INET, prefix.prefixlen, 0, 0, RT_TABLE_MAIN, proto,
                         RT_SCOPE_NOWHERE, 0, 0)  # as `ip route del`: any scope, any type
        attrs = b""
    else:
        kind = RTM_NEWROUTE
        flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
        rt = _RTMSG.pack(socket.AF_INET, prefix.prefixlen, 0, 0, RT_TABLE_MAIN, proto,
                         RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        if len(hops) == 1:
            gw, dev = hops[0]
            attrs = _attr(RTA_GATEWAY, _packed(gw)) + _attr(RTA_OIF, struct.pack("=i", ifindex[dev]))
        else:
            nh = b""
            for gw, dev in hops:
                inner = _attr(RTA_GATEWAY, _packed(gw))
                nh += _RTNH.pack(_RTNH.size + len(inner), 0, 0, ifindex[dev]) + inner
            attrs = _attr(RTA_MULTIPATH, nh)
    body = rt + _attr(RTA_DST, prefix.network_address.packed) + \
        _attr(RTA_PRIORITY, struct.pack("=I", metric)) + attrs
    return _NLMSG.pack(_NLMSG.size + len(body), kind, flags, seq, 0) + body


def _socket() -> socket.socket:
    global _sock
    if _sock is None:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                          socket.NETLINK_ROUTE)
        try:
            s.setsockopt(270, NETLINK_CAP_ACK, 1)  # SOL_NETLINK
        except OSError:
            pass
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((0, 0))
        s.settimeout(10)
        _sock = s
    return _sock


def apply(changes: Sequence[tuple[IPv4Network, Sequence[Hop] | None]], proto: int,
          metric: int) -> dict[IPv4Network, int]:
    """Replace (hops) or delete (None) each prefix's route in this namespace's main
    table; returns the prefixes that failed, with their errno. Raises OSError if netlink
    itself cannot be used (the caller falls back to `ip`)."""
    global _seq
    if not changes:
        return {}
    s = _socket()
    ifindex: dict[str, int] = {}
    msgs: list[tuple[int, IPv4Network, bytes]] = []
    failed: dict[IPv4Network, int] = {}
    for prefix, hops in changes:
        try:
            for _, dev in hops or ():
                if dev not in ifindex:
                    ifindex[dev] = socket.if_nametoindex(dev)
        except OSError:  # the interface is gone: as `ip` would fail this line
            failed[prefix] = errno.ENODEV
            continue
        _seq = _seq % 0x7FFFFFFF + 1
        msgs.append((_seq, prefix, route_message(_seq, prefix, hops, proto, metric, ifindex)))
    # Up to 200 messages a datagram (well within the socket buffers), then their acks
    for i in range(0, len(msgs), 200):
        chunk = msgs[i:i + 200]
        s.send(b"".join(m for _, _, m in chunk))
        _acks(s, {seq: p for seq, p, _ in chunk}, failed)
    return failed


def _acks(s: socket.socket, pending: dict[int, IPv4Network], failed: dict[IPv4Network, int]) -> None:
    """Read the acks of `pending` (seq -> prefix); the failed ones go to `failed`."""
    want = set(pending)
    while want:
        data = s.recv(1 << 20)
        off = 0
        while off + _NLMSG.size <= len(data):
            length, kind, _flags, seq, _pid = _NLMSG.unpack_from(data, off)
            if length < _NLMSG.size:
                break
            if kind == NLMSG_ERROR and seq in want:
                (err,) = struct.unpack_from("=i", data, off + _NLMSG.size)
                want.discard(seq)
                prefix = pending.pop(seq)
                if err:
                    failed[prefix] = -err
            off += (length + 3) & ~3


def close() -> None:
    """Forget the socket (a forked child must open its own, in its own namespace)."""
    global _sock
    if _sock is not None:
        _sock.close()
        _sock = None


os.register_at_fork(after_in_child=close)
