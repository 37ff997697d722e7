"""The links of a lab that cross machines: Linux VXLAN devices (RFC 7348), one VNI each.

A crossing link's end is a VXLAN device with the topology's interface name and MAC,
born in its node's namespace (`ip link add NAME netns NODE ... type vxlan`), while its
UDP socket stays in the namespace the command ran in: the machine's own network (the
underlay; a namespace of its own when a test plays two machines on one). Point to
point: `remote` is the other machine's underlay address, so every frame goes there;
no multicast, no learning. Our dataplane sees an Ethernet device as on a veth.

What differs from a veth (docs/multihost.md): 50 more bytes on the underlay (outer
IPv4 20, UDP 8, VXLAN 8, and the inner Ethernet header 14 the device MTU leaves out),
and no carrier: an end set down on one machine is not seen by the other end's kernel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lsr.errors import LsrError
from lsr.lab.netns import ip_batch, run
from lsr.lab.state import ns_name

OVERHEAD = 50  # outer IPv4 + UDP + VXLAN headers + the inner Ethernet header


@dataclass(frozen=True)
class End:
    """This machine's end of one crossing link."""

    node: str
    ifname: str
    mac: str
    mtu: int  # the device's (the inner frame's IP MTU, as on a veth)
    vni: int
    local: str  # underlay addresses
    remote: str
    port: int


def add_command(lab: str, end: End) -> str:
    """The `ip -batch` line that makes the device in the node's namespace."""
    return (f"link add name {end.ifname} netns {ns_name(lab, end.node)} address {end.mac} "
            f"mtu {end.mtu} type vxlan id {end.vni} local {end.local} remote {end.remote} "
            f"dstport {end.port} nolearning")


def create(lab: str, ends: Sequence[End], underlay_ns: str | None) -> None:
    """Every crossing end of this machine, in one batch run in the underlay namespace."""
    try:
        ip_batch([add_command(lab, e) for e in ends], underlay_ns)
    except LsrError as e:
        if "exists" in str(e):  # another device has this VNI and port on this machine
            raise LsrError(f"VXLAN: {e} (a VNI of {', '.join(str(x.vni) for x in ends)} is in "
                           "use here: set placement.vni_base)") from None
        raise


def _ip(underlay_ns: str | None, *argv: str) -> str:
    return run(["ip", *(["-n", underlay_ns] if underlay_ns else []), *argv])


def check_underlay(underlay_ns: str | None, local: str, ends: Sequence[End]) -> list[str]:
    """One line (LsrError) if `local` is not an address here; warnings for each remote the
    underlay cannot carry a full frame to without fragmenting the outer packet."""
    addrs = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", _ip(underlay_ns, "-o", "-4", "addr", "show"))
    if local not in addrs:
        where = f" (namespace {underlay_ns})" if underlay_ns else ""
        raise LsrError(f"VXLAN: the underlay address {local} is not an address of this "
                       f"machine{where}: set placement.machines.<m>.underlay or "
                       "LSR_UNDERLAY_ADDRESS")
    warnings = []
    need: dict[str, int] = {}
    for e in ends:
        need[e.remote] = max(need.get(e.remote, 0), e.mtu + OVERHEAD)
    for remote, want in sorted(need.items()):
        route = _ip(underlay_ns, "-o", "route", "get", remote)
        dev = re.search(r"\bdev (\S+)", route)
        if not dev:
            continue
        m = re.search(r"\bmtu (\d+)", route) or \
            re.search(r"\bmtu (\d+)", _ip(underlay_ns, "-o", "link", "show", "dev", dev[1]))
        if m and int(m[1]) < want:
            warnings.append(
                f"underlay {dev[1]} towards {remote}: MTU {m[1]} < {want} (a full frame plus "
                f"{OVERHEAD} bytes of VXLAN): outer packets are fragmented; raise the underlay "
                f"MTU to {want} or lower the crossing links' mtu by {want - int(m[1])}")
    return warnings
