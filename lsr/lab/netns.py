"""Network namespaces, veths, addresses, sysctls and kernel routes of a lab.

Plain `ip`/`ethtool`/`sysctl` subprocesses, batched with `ip -batch` so a
50-router lab takes seconds. Veths are created directly inside the node
namespaces (`ip link add NAME netns A ... peer name NAME2 netns B`): the
device never exists in the root namespace, so no temporary root name can
collide with a real interface and nothing is left there after a crash.
"""

from __future__ import annotations

import subprocess
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network
from typing import Any

from lsr.core.igp import Route
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.lab import rtnl
from lsr.lab.nsctl import offloads_off, write_sysctls
from lsr.lab.state import LabState, namespace_exists, ns_name

# Router-router veths carry labelled frames: a 1500-byte IP packet plus a label
# stack. Like a carrier's "MPLS MTU", the kernel MTU of core links gets room for
# a few labels; host links keep exactly the topology MTU.
LABEL_HEADROOM = 16
ROUTE_PROTO = 188  # our kernel routes (like zebra's "proto zebra"), flushable as a set
ROUTER_SYSCTLS = {
    "net.ipv4.ip_forward": "0",  # transit traffic is ours (AF_PACKET), never the kernel's
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    "net.ipv6.conf.all.disable_ipv6": "1",  # keep captures and the dataplane free of ND/MLD
    "net.ipv6.conf.default.disable_ipv6": "1",
    "net.ipv4.icmp_ratelimit": "0",
}
# Hosts answer every traceroute probe too: with Linux's default (1 s, burst 6) the
# destination drops port unreachables when parallel probes (and ECMP) bunch up, and
# `traceroute` shows a `*` for the last hop.
HOST_SYSCTLS = ROUTER_SYSCTLS
# A host with IPv6 (its link has `subnet6`): IPv6 on, inside its own namespace only, with a
# static address and default route (no router advertisements: our routers send none) and
# no ICMPv6 rate limit (traceroute -6, as for IPv4). Routers keep IPv6 off in their
# kernels: their dataplane answers Neighbor Discovery and Echo itself (forwarding.plane6).
# An IPv6 address is dropped when its link goes down unless keep_addr_on_down: a host
# keeps its static address across a link flap (its default route is put back on up,
# `set_link`; the kernel deletes IPv6 routes of a down link).
HOST6_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "0",
    "net.ipv6.conf.default.disable_ipv6": "0",
    "net.ipv6.conf.all.keep_addr_on_down": "1",
    "net.ipv6.conf.default.keep_addr_on_down": "1",
    "net.ipv6.conf.all.accept_ra": "0",
    "net.ipv6.conf.default.accept_ra": "0",
    "net.ipv6.conf.all.forwarding": "0",
    "net.ipv6.icmp.ratelimit": "0",
}


def run(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    """Run a command; a failure becomes one LsrError line naming it."""
    p = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        msg = (p.stderr or p.stdout).strip().splitlines()
        raise LsrError(f"{' '.join(argv[:6])}: {msg[-1] if msg else 'exit ' + str(p.returncode)}")
    return p.stdout


def ip_batch(commands: Iterable[str], ns: str | None = None) -> None:
    cmds = "\n".join(commands)
    if not cmds:
        return
    argv = ["ip"] + (["-n", ns] if ns else []) + ["-batch", "-"]
    run(argv, stdin=cmds + "\n")


def kernel_mtu(topo: Topology, link_index: int) -> int:
    link = topo.links[link_index]
    both_routers = all(topo.nodes[n].is_router for n in link.nodes)
    return link.mtu + (LABEL_HEADROOM if both_routers else 0)


def _not_ours(ns: str, lab: str) -> LsrError:
    return LsrError(f"namespace {ns} already exists and lab '{lab}' did not make it "
                    f"(a leftover? ip netns del {ns})")


def create_namespaces(topo: Topology, lab: str, state: LabState,
                      only: Collection[str] | None = None) -> None:
    """Each namespace is recorded before it is made (a crash in between leaves a record
    of nothing, which teardown passes over), and forgotten again if it turns out to exist
    already: this lab's teardown removes only namespaces this run made. `only`: these
    nodes (a machine's part of a multi-machine lab)."""
    nodes = [n for n in topo.nodes if only is None or n in only]
    for node in nodes:
        ns = ns_name(lab, node)
        if namespace_exists(ns):
            raise _not_ours(ns, lab)
    for node in nodes:
        ns = ns_name(lab, node)
        state.add_namespace(ns)  # recorded before it exists
        try:
            run(["ip", "netns", "add", ns])  # O_EXCL on /run/netns/<ns>: never someone else's
        except LsrError:
            state.drop_namespace(ns)
            if namespace_exists(ns):
                raise _not_ours(ns, lab) from None
            raise
        n = topo.nodes[node]
        sysctls = dict(ROUTER_SYSCTLS if n.is_router else HOST_SYSCTLS)
        if not n.is_router and any(i.address6 is not None for i in n.interfaces.values()):
            sysctls.update(HOST6_SYSCTLS)
        write_sysctls(ns, sysctls)


def create_links(topo: Topology, lab: str, only: Collection[str] | None = None) -> None:
    """All veth pairs in one batch, each end born in its node's namespace (`only`: the
    links between these nodes; a link to another machine is a VXLAN, lsr.lab.vxlan)."""
    cmds = []
    for link in topo.links:
        (an, ai), (bn, bi) = link.a, link.b
        if only is not None and (an not in only or bn not in only):
            continue
        a, b = topo.interface(an, ai), topo.interface(bn, bi)
        mtu = kernel_mtu(topo, link.index)
        cmds.append(
            f"link add name {ai} netns {ns_name(lab, an)} address {a.mac} mtu {mtu} type veth "
            f"peer name {bi} netns {ns_name(lab, bn)} address {b.mac} mtu {mtu}"
        )
    ip_batch(cmds)


def _offloads_off(ns: str, ifname: str) -> None:
    # TX checksum offload leaves partial checksums a userspace relay forwards
    # broken (mininet#653); TSO/GSO would hand us 64 KB super-frames.
    argv = ["ip", "netns", "exec", ns, "ethtool", "-K", ifname, "tx", "off", "gso", "off",
            "gro", "off"]
    if subprocess.run(argv, capture_output=True, timeout=30).returncode != 0:
        run(["ip", "netns", "exec", ns, "ethtool", "-K", ifname, "tx", "off"])


def configure_nodes(topo: Topology, lab: str, only: Collection[str] | None = None) -> None:
    """Addresses, loopbacks, links up, host default routes, offloads off (`only`: these
    nodes, their links to other machines included)."""
    jobs: list[tuple[str, str]] = []
    for node in topo.nodes.values():
        if only is not None and node.name not in only:
            continue
        ns = ns_name(lab, node.name)
        cmds = ["link set lo up"]
        if node.is_router:
            cmds.append(f"addr add {node.loopback}/32 dev lo")
        for iface in node.interfaces.values():
            cmds.append(f"addr add {iface.address} dev {iface.name}")
            cmds.append(f"link set dev {iface.name} up")
            jobs.append((ns, iface.name))
        if not node.is_router:
            cmds.append(f"route add default via {node.gateway(topo)}")
            for iface in node.interfaces.values():
                if iface.address6 is not None:  # nodad: the address is ours, usable at once
                    cmds.append(f"addr add {iface.address6} dev {iface.name} nodad")
            gw6 = node.gateway6(topo)
            if gw6 is not None:
                cmds.append(f"route add default via {gw6}")  # the family follows the gateway
        ip_batch(cmds, ns)
    by_ns: dict[str, list[str]] = {}
    for ns, ifname in jobs:
        by_ns.setdefault(ns, []).append(ifname)
    # ioctls from a thread in each namespace (lsr.lab.nsctl); ethtool where they fail
    left = [(ns, i) for ns, ifs in by_ns.items() for i in offloads_off(ns, ifs)]
    with ThreadPoolExecutor(max_workers=8) as ex:
        list(ex.map(lambda j: _offloads_off(*j), left))


def set_link(topo: Topology, lab: str, link_index: int, up: bool) -> None:
    """Admin up/down on both ends of a link (the carrier of each end follows)."""
    link = topo.links[link_index]
    for node, ifname in (link.a, link.b):
        cmds = [f"link set dev {ifname} {'up' if up else 'down'}"]
        n = topo.nodes[node]
        gw6 = None if n.is_router else n.gateway6(topo)
        if up and gw6 is not None:  # the kernel deleted it with the link (IPv6)
            cmds.append(f"route replace default via {gw6}")
        ip_batch(cmds, ns_name(lab, node))


def find_link(topo: Topology, a: str, b: str) -> int:
    """The index of the a-b link (each NODE or NODE:INTERFACE: `Topology.find_link`)."""
    return topo.find_link(a, b).index


# ------------------------------------------------------------ kernel routes
# Used by the router runtime inside its own namespace (like zebra).


Installed = dict  # prefix -> route_key() of what is in the kernel (None: to be redone)


def route_key(route: Route) -> tuple:
    """What a kernel route of ours is made of: an unchanged key needs no command."""
    return tuple((nh.address, nh.interface) for nh in route.nexthops)


def route_changes(rib: Mapping[IPv4Network, Route], installed: Iterable[IPv4Network]) -> tuple[
    list[tuple[IPv4Network, Route | None]], Installed
]:
    """What to do to the kernel table: (prefix, route to install, or None to delete) for
    every remote RIB route and every stale one. With `installed` a mapping (prefix ->
    route_key, as returned), a route whose key is unchanged is left alone: a big lab's
    SPF runs change a few routes, not all of them. Returns the changes and the new
    mapping."""
    known: Mapping[IPv4Network, Any] = installed if isinstance(installed, Mapping) else \
        dict.fromkeys(installed)
    out: list[tuple[IPv4Network, Route | None]] = []
    want: Installed = {}
    for prefix, route in rib.items():
        if not route.nexthops:
            continue  # own loopback / connected subnet: the kernel has it
        key = route_key(route)
        want[prefix] = key
        if prefix not in known or known[prefix] != key:
            out.append((prefix, route))
    out.extend((prefix, None) for prefix in sorted(set(known) - set(want)))
    return out, want


def route_commands(rib: Mapping[IPv4Network, Route], installed: Iterable[IPv4Network]) -> tuple[
    list[str], Installed
]:
    """`ip -batch` lines for `route_changes` (the same changes as rtnl messages)."""
    changes, want = route_changes(rib, installed)
    cmds: list[str] = []
    for prefix, route in changes:
        if route is None:
            cmds.append(f"route del {prefix} proto {ROUTE_PROTO} metric 20")
        elif len(route.nexthops) == 1:
            nh = route.nexthops[0]
            cmds.append(f"route replace {prefix} via {nh.address} dev {nh.interface} "
                        f"proto {ROUTE_PROTO} metric 20")
        else:
            hops = " ".join(f"nexthop via {nh.address} dev {nh.interface}" for nh in route.nexthops)
            cmds.append(f"route replace {prefix} proto {ROUTE_PROTO} metric 20 {hops}")
    return cmds, want


def redo_routes_via(installed: Installed, ifname: str) -> None:
    """Carrier changed on `ifname`: the kernel may have dropped our routes through it
    (admin down flushes them), so the next sync installs (or deletes) them again."""
    for prefix, key in installed.items():
        if key is None or any(dev == ifname for _, dev in key):
            installed[prefix] = None


def sweep_routes() -> None:
    """Remove every route of ours from the current namespace's kernel table. A router
    runtime that starts again after a crash (kill -9) finds its predecessor's routes
    there; it knows nothing of them, so it would never replace or delete the ones its
    own RIB lacks (zebra, too, sweeps its stale routes at start-up)."""
    subprocess.run(["ip", "route", "flush", "proto", str(ROUTE_PROTO)], capture_output=True,
                   text=True, timeout=30)


def sync_routes(rib: Mapping[IPv4Network, Route], installed: Iterable[IPv4Network]) -> Installed:
    """Install the RIB into the current namespace's kernel table (only what changed since
    `installed`, see route_changes) over netlink (lsr.lab.rtnl), or with `ip -force
    -batch` where netlink fails; returns what is installed (a route that failed: None,
    tried again next time)."""
    changes, want = route_changes(rib, installed)
    if not changes:
        return want
    try:
        failed = rtnl.apply([(p, None if r is None else [(nh.address, nh.interface)
                                                         for nh in r.nexthops])
                             for p, r in changes], ROUTE_PROTO, 20)
    except OSError:
        rtnl.close()
        cmds, _ = route_commands(rib, installed)
        # -force: a route via a just-downed interface fails alone, the rest still apply
        p = subprocess.run(["ip", "-force", "-batch", "-"], input="\n".join(cmds) + "\n",
                           capture_output=True, text=True, timeout=30)
        failed = {prefix: 0 for prefix, _ in changes} if p.returncode != 0 else {}
    for prefix in failed:  # which failed (all, from `ip`): sent again next time
        if prefix in want:
            want[prefix] = None
    return want
