"""The links of a lab that cross machines: Linux VXLAN (RFC 7348), one VNI per link.

Each end of a crossing link is, in its node's namespace, a veth with the topology's
interface name and MAC, exactly as on one machine; its peer `t<vni>` is in the part's
transit namespace (`lsr-<lab>.0vx-<machine>`: no node name starts with a digit), where
tc (ingress, u32 match-all, mirred redirect, as containerlab stitches its VXLAN links)
joins it to the VXLAN device `vx<vni>` both ways. The VXLAN device is born in the
transit namespace (`ip link add ... netns TRANSIT type vxlan`) while its UDP socket
stays in the namespace the command ran in: the machine's own network (the underlay; a
namespace of its own when a test plays two machines on one). Point to point: `remote`
is the other machine's underlay address, no multicast, no learning.

Why the veth: a VXLAN device has no carrier. With the veth, the agent of the other
machine takes the carrier of a node's end away by setting its transit peer down
(lsr.lab.carrier), as a veth peer going down does on one machine.

What differs from one machine (docs/multihost.md): 50 more bytes on the underlay (outer
IPv4 20, UDP 8, VXLAN 8, and the inner Ethernet header 14 the device MTU leaves out).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from lsr.errors import LsrError
from lsr.lab.netns import ip_batch, run
from lsr.lab.state import LabState, namespace_exists, ns_name

OVERHEAD = 50  # outer IPv4 + UDP + VXLAN headers + the inner Ethernet header
TRANSIT_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "1",  # no ND/MLD into the links
                   "net.ipv6.conf.default.disable_ipv6": "1"}


@dataclass(frozen=True)
class End:
    """This machine's end of one crossing link."""

    node: str
    ifname: str
    mac: str
    mtu: int  # the kernel MTU of the link (as on one machine)
    vni: int
    local: str  # underlay addresses
    remote: str
    port: int
    peer_machine: str = ""  # where the other end runs (its agent hears of carrier changes)


def transit_ns(lab: str, machine: str) -> str:
    return ns_name(lab, f"0vx-{machine}")


def vxlan_command(lab: str, machine: str, end: End) -> str:
    """The `ip -batch` line (run in the underlay namespace) making the VXLAN device."""
    return (f"link add name vx{end.vni} netns {transit_ns(lab, machine)} mtu {end.mtu} type "
            f"vxlan id {end.vni} local {end.local} remote {end.remote} dstport {end.port} "
            "nolearning")


def veth_command(lab: str, machine: str, end: End) -> str:
    """The node's end (its name and MAC, as on one machine) and its transit peer."""
    return (f"link add name {end.ifname} netns {ns_name(lab, end.node)} address {end.mac} "
            f"mtu {end.mtu} type veth peer name t{end.vni} netns {transit_ns(lab, machine)} "
            f"mtu {end.mtu}")


def stitch_commands(end: End) -> list[str]:
    """`tc -batch` lines joining t<vni> and vx<vni> both ways (every frame, as it is)."""
    out = []
    for a, b in ((f"t{end.vni}", f"vx{end.vni}"), (f"vx{end.vni}", f"t{end.vni}")):
        out += [f"qdisc add dev {a} ingress",
                f"filter add dev {a} ingress protocol all prio 1 u32 match u8 0 0 "
                f"action mirred egress redirect dev {b}"]
    return out


def create(lab: str, machine: str, ends: Sequence[End], underlay_ns: str | None,
           state: LabState) -> None:
    """This machine's crossing ends: the transit namespace (recorded first), VXLAN devices,
    veths, the stitching, all up. Nothing here is in the underlay namespace but sockets."""
    if not ends:
        return
    tns = transit_ns(lab, machine)
    if namespace_exists(tns):
        raise LsrError(f"namespace {tns} already exists and lab '{lab}' did not make it "
                       f"(a leftover? ip netns del {tns})")
    state.add_namespace(tns)
    run(["ip", "netns", "add", tns])
    run(["ip", "netns", "exec", tns, "sysctl", "-q", "-w",
         *(f"{k}={v}" for k, v in TRANSIT_SYSCTLS.items())])
    try:
        ip_batch([vxlan_command(lab, machine, e) for e in ends], underlay_ns)
    except LsrError as e:
        if "exists" in str(e):  # another device has this VNI and port on this machine
            raise LsrError(f"VXLAN: {e} (a VNI of {', '.join(str(x.vni) for x in ends)} is in "
                           "use here: set placement.vni_base)") from None
        raise
    ip_batch([veth_command(lab, machine, e) for e in ends])
    run(["tc", "-n", tns, "-batch", "-"], stdin="\n".join(
        c for e in ends for c in stitch_commands(e)) + "\n")
    ip_batch(["link set dev lo up"] + [f"link set dev {d}{e.vni} up" for e in ends
                                       for d in ("vx", "t")], tns)
    for e in ends:  # whole frames only (no GRO super-frames into our dataplane)
        for dev in (f"vx{e.vni}", f"t{e.vni}"):
            argv = ["ip", "netns", "exec", tns, "ethtool", "-K", dev, "tx", "off", "gso",
                    "off", "gro", "off"]
            subprocess.run(argv, capture_output=True, timeout=30)


def set_peer(lab: str, machine: str, vni: int, up: bool) -> None:
    """The carrier of this machine's end of link `vni`, as the other end's admin state."""
    ip_batch([f"link set dev t{vni} {'up' if up else 'down'}"], transit_ns(lab, machine))


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
