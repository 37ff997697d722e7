"""A TUN device in a router's namespace: how the kernel's own packets reach the IPsec stage.

The kernel of a router namespace has no ESP, and what it sends (pings, echo
replies, ICMP errors, TCP) leaves by its routes, past the userspace dataplane's
IPsec stage. An edge router with PROTECT policies therefore opens a TUN device
(`lsrsec0`) and routes the remote selectors of those policies into it, with a
preferred source inside the local selector (as strongSwan's table 220 does);
the runtime reads each packet the kernel writes there and hands it to
`IpsecStage.originated` (RFC 4301 §5.1). The routes have metric 10, below the
IGP's 20, so they win for the same prefix; they vanish with the device when the
runtime exits (the file descriptor is the device: IFF_TUN without persistence).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import subprocess

TUN_NAME = "lsrsec0"
TUN_METRIC = 10  # below the IGP routes' 20 (lsr.lab.netns.route_commands)
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name: str = TUN_NAME) -> int:
    """Create the TUN device in the current namespace and bring it up; its non-blocking fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        # no IPv6 on it (router solicitations, MLD): only the routed IPv4 selectors come out
        with contextlib.suppress(OSError), open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
            f.write("1")
        _ip(["link", "set", "dev", name, "up"])
    except OSError:
        os.close(fd)
        raise
    return fd


def route_lines(routes: list[tuple[str, str | None]], name: str = TUN_NAME) -> list[str]:
    """`ip -batch` lines routing each (prefix, preferred source) into the device."""
    return [f"route replace {prefix} dev {name}" + (f" src {src}" if src else "")
            + f" metric {TUN_METRIC}" for prefix, src in routes]


def install_routes(routes: list[tuple[str, str | None]], name: str = TUN_NAME) -> str:
    """Install the routes (all or as many as the kernel takes); stderr of `ip`, empty if fine."""
    if not routes:
        return ""
    r = subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(route_lines(routes, name)) + "\n",
                       capture_output=True, text=True, timeout=30)
    return r.stderr.strip()


def _ip(args: list[str]) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {r.stderr.strip()}")
