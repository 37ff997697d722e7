"""Carrier across machines: an end of a crossing link set down on one machine takes the
carrier of the other end away, as a veth does on one machine.

A VXLAN tunnel has no carrier. So each end of a crossing link is a veth, as on one
machine (lsr.lab.vxlan: its peer, in the part's transit namespace, is stitched to the
VXLAN device), and each machine's agent watches the node-side ends of its crossing
links: when one goes admin down or up (`ip link set` in the node's namespace, `lsr lab
link`), the agent tells the other machine's agent, which sets its transit peer of the
link down or up, and the node there sees NO-CARRIER, or its carrier back. What is
relayed is the admin state (IFF_UP) of the node-side end, never a carrier the relay
itself caused, so two machines never echo each other.

The watch is one NETLINK_ROUTE socket per node namespace (RTMGRP_LINK), opened by a
thread that enters the namespace (setns) only to open it; a dump at the start reports
the current state, so an agent that starts again tells the other side where things are.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import struct
import threading
from collections.abc import Callable, Sequence

from lsr.lab.nsctl import entered
from lsr.lab.state import ns_name
from lsr.lab.vxlan import End

log = logging.getLogger(__name__)

RTMGRP_LINK = 1
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
NLMSG_DONE, NLMSG_ERROR = 3, 2
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFLA_IFNAME = 3
IFF_UP = 0x1
_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_RTA = struct.Struct("=HH")


def parse_links(data: bytes) -> list[tuple[str, bool]]:
    """(interface name, admin up) of each RTM_NEWLINK / RTM_DELLINK message in a netlink
    datagram (a deleted link is down)."""
    out = []
    off = 0
    while off + _NLMSG.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(data, off)
        if length < _NLMSG.size or off + length > len(data):
            break
        if kind in (RTM_NEWLINK, RTM_DELLINK) and length >= _NLMSG.size + _IFINFO.size:
            _fam, _type, _index, flags, _change = _IFINFO.unpack_from(data, off + _NLMSG.size)
            a = off + _NLMSG.size + _IFINFO.size
            while a + _RTA.size <= off + length:
                rlen, rtype = _RTA.unpack_from(data, a)
                if rlen < _RTA.size:
                    break
                if rtype == IFLA_IFNAME:
                    name = data[a + _RTA.size:a + rlen].split(b"\0", 1)[0].decode()
                    out.append((name, kind == RTM_NEWLINK and bool(flags & IFF_UP)))
                    break
                a += (rlen + 3) & ~3
        off += (length + 3) & ~3
    return out


def netlink_in(ns: str) -> socket.socket:
    """A NETLINK_ROUTE socket subscribed to link events inside namespace `ns` (a socket
    stays in the namespace it was made in; the calling thread goes back to its own)."""
    with entered(ns):
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        s.bind((0, RTMGRP_LINK))
    # the current state: a dump, answered as RTM_NEWLINK messages
    req = _NLMSG.pack(_NLMSG.size + 16, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) \
        + struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
    s.send(req)
    return s


Tell = Callable[[End, bool], None]


class CarrierRelay:
    """Watches the node-side ends of this machine's crossing links; `tell(end, up)` on
    each change of an end's admin state (and once for each at the start)."""

    def __init__(self, lab: str, ends: Sequence[End], tell: Tell) -> None:
        self.lab = lab
        self.ends = {(ns_name(lab, e.node), e.ifname): e for e in ends}
        self.tell = tell
        self.state: dict[tuple[str, str], bool] = {}
        self._stop_r, self._stop_w = os.pipe()
        self.thread = threading.Thread(target=self._run, name=f"carrier-{lab}", daemon=True)
        self.ready = threading.Event()

    def start(self) -> CarrierRelay:
        self.thread.start()
        self.ready.wait(10)
        return self

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(5)
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self) -> None:
        socks: dict[int, tuple[socket.socket, str]] = {}
        try:
            for ns in sorted({ns for ns, _ in self.ends}):
                try:
                    s = netlink_in(ns)
                except OSError as e:
                    log.warning("carrier relay: no watch in %s: %s", ns, e)
                    continue
                socks[s.fileno()] = (s, ns)
            self.ready.set()
            while True:
                r, _, _ = select.select([self._stop_r, *socks], [], [])
                if self._stop_r in r:
                    return
                for fd in r:
                    s, ns = socks[fd]
                    try:
                        data = s.recv(1 << 16)
                    except OSError:
                        continue
                    for ifname, up in parse_links(data):
                        self._seen(ns, ifname, up)
        except Exception:  # the relay must never take the agent down
            log.exception("carrier relay of %s stopped", self.lab)
        finally:
            self.ready.set()
            for s, _ in socks.values():
                s.close()

    def _seen(self, ns: str, ifname: str, up: bool) -> None:
        key = (ns, ifname)
        end = self.ends.get(key)
        if end is None or self.state.get(key) == up:
            return
        self.state[key] = up
        try:
            self.tell(end, up)
        except Exception:
            log.exception("carrier relay: telling the other end of %s %s", ns, ifname)
