"""TCP socket options the routers' control-plane sessions share (LDP, BGP): TCP MD5
signatures (RFC 2385) and GTSM (RFC 5082 / RFC 6720)."""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address

TCP_MD5SIG = 14  # linux/tcp.h
IP_MINTTL = 21  # linux/in.h; GTSM receive check (RFC 5082 / RFC 6720)
GTSM_TTL = 255


def gtsm_sockopt(sock: socket.socket, enabled: bool) -> None:
    """GTSM on a TCP socket: send with TTL 255 and drop anything that arrives with less
    (IP_MINTTL), or back to the defaults."""
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, GTSM_TTL if enabled else 64)
    sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, GTSM_TTL if enabled else 0)


def md5_sockopt(sock: socket.socket, peer: IPv4Address, key: str) -> None:
    """TCP_MD5SIG for one peer (struct tcp_md5sig, RFC 2385 / RFC 5036 §2.9)."""
    raw = key.encode()
    addr = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + peer.packed
    addr = addr.ljust(128, b"\0")
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG,
                    addr + struct.pack("=BBHI", 0, 0, len(raw), 0) + raw.ljust(80, b"\0"))
