"""An OSPF instance's configuration from a topology file: what an operator would type.

Every router link is a point-to-point interface in area 0 with the link's cost;
links to hosts are passive (their subnet advertised as a stub network); the
loopback is a host stub at cost 0. Timers and authentication come from the
router's `ospf:` options (the topology's defaults apply).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from ipaddress import IPv4Address
from typing import Any

from lsr.core.topology import Topology
from ospf.instance import InterfaceConfig, OspfConfig
from ospf.packets import NO_AUTH, Auth

# id(topology) -> (weak reference, router ID -> name): one map for all its routers (a
# dict per router would be routers^2 entries)
_NAMES: dict[int, tuple[weakref.ref, Mapping[IPv4Address, str]]] = {}


def _names(topo: Topology) -> Mapping[IPv4Address, str]:
    hit = _NAMES.get(id(topo))
    if hit is None or hit[0]() is not topo:
        for k in [k for k, (ref, _) in _NAMES.items() if ref() is None]:
            del _NAMES[k]
        names = {n.lsr_id: n.name for n in topo.routers}  # shared: nobody writes it
        hit = _NAMES[id(topo)] = (weakref.ref(topo), names)
    return hit[1]


def from_topology(topo: Topology, router: str, **overrides: Any) -> OspfConfig:
    node = topo.nodes[router]
    core = set(topo.ldp_interfaces(router))  # OSPF runs where LDP does: router-facing links
    ifaces = []
    for i in node.interfaces.values():
        if i.vrf is not None:  # a VRF's subnet is not in the global table (RFC 4364 §3)
            continue
        ifaces.append(InterfaceConfig(i.name, i.address, topo.links[i.link].cost,
                                      passive=i.name not in core, mtu=i.mtu))
    opts = node.ospf
    auth = Auth.from_config("md5", opts.md5_key, opts.md5_key_id) if opts.md5_key else NO_AUTH
    kw: dict[str, Any] = {
        "hello_interval": opts.hello_interval, "dead_interval": opts.dead_interval,
        "retransmit_interval": opts.retransmit_interval,
        "spf_delay": opts.spf_delay_ms / 1000, "spf_hold": opts.spf_hold_ms / 1000,
        "spf_max_hold": opts.spf_max_hold_ms / 1000,
        "min_ls_interval": opts.min_ls_interval_ms / 1000,
        "min_ls_arrival": opts.min_ls_arrival_ms / 1000, "auth": auth,
        "ldp_sync": node.ldp.igp_sync,
        "restart_max_metric": opts.restart_max_metric_ms / 1000,
        "flood_pacing": opts.flood_pacing_ms / 1000,
    }
    kw.update(overrides)
    names = _names(topo)
    return OspfConfig(node.lsr_id, tuple(sorted(ifaces, key=lambda x: x.name)),
                      loopback=node.loopback, names=names, **kw)
