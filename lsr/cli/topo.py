"""`lsr topo ...`: validate and show topology files."""

from __future__ import annotations

from lsr import render
from lsr.cli.common import json_option, load, topology_arg
from lsr.cli.root import main
from lsr.core.topology import Topology


@main.group()
def topo() -> None:
    """Topology files: validate and show."""


@topo.command()
@topology_arg
def validate(file: str) -> None:
    """Check FILE; exit 0 with a summary, or 2 with the first error."""
    t = load(file)
    render.line(f"{file}: ok: {t.summary()}")


def topology_json(t: Topology) -> dict:
    return {
        "name": t.name,
        "nodes": {
            n.name: {
                "kind": n.kind,
                "loopback": str(n.loopback) if n.loopback else None,
                "labels": list(n.labels) if n.is_router else None,
                "ttl_model": n.ttl_model if n.is_router else None,
                "interfaces": {
                    i.name: {
                        "address": str(i.address),
                        "mac": i.mac,
                        "mtu": i.mtu,
                        "peer": f"{i.peer_node}:{i.peer_interface}",
                        **({"vrf": i.vrf} if i.vrf else {}),
                    }
                    for i in n.interfaces.values()
                },
                **({"vrfs": {v.name: v.to_json() for v in n.vrfs.values()}} if n.vrfs else {}),
            }
            for n in t.nodes.values()
        },
        "links": [
            {
                "endpoints": [f"{lk.a[0]}:{lk.a[1]}", f"{lk.b[0]}:{lk.b[1]}"],
                "subnet": str(lk.subnet),
                "cost": lk.cost,
                "mtu": lk.mtu,
                **({"vrf": lk.vrf} if lk.vrf else {}),
            }
            for lk in t.links
        ],
    }


@topo.command()
@topology_arg
@json_option
def show(file: str, as_json: bool) -> None:
    """Nodes, interfaces, addresses, links and costs of FILE."""
    t = load(file)
    if as_json:
        render.emit_json(topology_json(t))
        return
    render.table(
        f"{t.name}: nodes",
        ["node", "kind", "loopback", "interface", "address", "peer"],
        [
            (n.name if k == 0 else "", n.kind if k == 0 else "", (n.loopback or "") if k == 0 else "",
             i.name, f"{i.address} (VRF {i.vrf})" if i.vrf else i.address,
             f"{i.peer_node}:{i.peer_interface}")
            for n in t.nodes.values()
            for k, i in enumerate(n.interfaces.values())
        ],
    )
    render.table(
        f"{t.name}: links",
        ["#", "a", "b", "subnet", "cost", "mtu"],
        [(lk.index, f"{lk.a[0]}:{lk.a[1]}", f"{lk.b[0]}:{lk.b[1]}", lk.subnet, lk.cost, lk.mtu)
         for lk in t.links],
    )
