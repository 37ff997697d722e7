"""`lsr topo ...`: validate and show topology files."""

from __future__ import annotations

import click

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
    """Check FILE; exit 0 with a summary, or 2 with the first error.

    A file that loads but cannot converge as configured (an LDP session or OSPF
    adjacency whose two ends disagree: a TCP MD5 password on one side only, different
    OSPF timers or keys) gets one warning line for each and exit status 1."""
    from lsr.oam.diagnose import config_findings

    t = load(file)
    found = config_findings(t)
    if not found:
        render.line(f"{file}: ok: {t.summary()}")
        return
    n = len(found)
    render.plain(f"{file}: loads with {n} warning{'s' if n > 1 else ''}: {t.summary()}")
    for s in found:
        render.plain(f"warning: {s.text('cannot come up')}")
    raise click.exceptions.Exit(1)


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
                    }
                    for i in n.interfaces.values()
                },
            }
            for n in t.nodes.values()
        },
        "links": [
            {
                "endpoints": [f"{lk.a[0]}:{lk.a[1]}", f"{lk.b[0]}:{lk.b[1]}"],
                "subnet": str(lk.subnet),
                "cost": lk.cost,
                "mtu": lk.mtu,
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
             i.name, i.address, f"{i.peer_node}:{i.peer_interface}")
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
