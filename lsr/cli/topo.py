"""`lsr topo ...`: validate and show topology files."""

from __future__ import annotations

from pathlib import Path

import click

from lsr import render
from lsr.cli.common import json_option, load, say_notes, topology_arg
from lsr.cli.root import main
from lsr.core.topology import Topology, TopologyError, load_topology, parse_topology
from lsr.errors import LsrError


@main.group()
def topo() -> None:
    """Topology files: validate, show, import (containerlab, GML, GraphML)."""


@topo.command()
@topology_arg
def validate(file: str) -> None:
    """Check FILE; exit 0 with a summary, or 2 with the first error.

    A file that loads but cannot converge as configured (an LDP session or OSPF
    adjacency whose two ends disagree: a TCP MD5 password on one side only, different
    OSPF timers or keys; a BGP session passive at both ends) gets one warning line for
    each and exit status 1."""
    from lsr.oam.diagnose import bgp_passive_findings, config_findings

    t = load(file)
    found = config_findings(t) + bgp_passive_findings(t)
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
                        **({"address6": str(i.address6)} if i.address6 is not None else {}),
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
                **({"subnet6": str(lk.subnet6)} if lk.subnet6 is not None else {}),
                "cost": lk.cost,
                "mtu": lk.mtu,
                **({"vrf": lk.vrf} if lk.vrf else {}),
                **({"impair": lk.impair.to_json()} if lk.impair is not None else {}),
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
    v6 = t.has_ipv6  # an IPv6 column only when a link has IPv6
    render.table(
        f"{t.name}: nodes",
        ["node", "kind", "loopback", "interface", "address", *(["ipv6"] if v6 else []), "peer"],
        [
            (n.name if k == 0 else "", n.kind if k == 0 else "", (n.loopback or "") if k == 0 else "",
             i.name, f"{i.address} (VRF {i.vrf})" if i.vrf else i.address,
             *([i.address6 or ""] if v6 else []),
             f"{i.peer_node}:{i.peer_interface}")
            for n in t.nodes.values()
            for k, i in enumerate(n.interfaces.values())
        ],
    )
    impaired = any(lk.impair is not None for lk in t.links)  # a column only when used
    render.table(
        f"{t.name}: links",
        ["#", "a", "b", "subnet", "cost", "mtu", *(["impairment"] if impaired else [])],
        [(lk.index, f"{lk.a[0]}:{lk.a[1]}", f"{lk.b[0]}:{lk.b[1]}", lk.subnet, lk.cost, lk.mtu,
          *([lk.impair.describe() if lk.impair else ""] if impaired else []))
         for lk in t.links],
    )


GRAPH_SUFFIXES = (".gml", ".graphml")


def _hosts(value: str) -> int | str:
    if value == "leaves":
        return value
    if value.isdigit():
        return int(value)
    raise click.BadParameter("a number of hosts, or 'leaves'")


@topo.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the topology here (default: standard output).")
@click.option("--name", "lab_name", help="Lab name (default: the file's; at most 12 characters).")
@click.option("--hosts", default=None, metavar="N|leaves",
              help="Graphs: hosts on the N routers farthest apart (default 2), or on every "
                   "leaf router.")
@click.option("--cost-attr", metavar="ATTR", help="Graphs: link cost from this edge attribute.")
@click.option("--bandwidth-attr", metavar="ATTR",
              help="Graphs: cost = reference / this edge attribute in bit/s (Topology Zoo: "
                   "LinkSpeedRaw).")
@click.option("--reference-bw", default="100gbit", show_default=True,
              help="Graphs: the reference of --bandwidth-attr.")
def import_(file: str, output: str | None, lab_name: str | None, hosts: str | None,
            cost_attr: str | None, bandwidth_attr: str | None, reference_bw: str) -> None:
    """Convert a containerlab file or a GML/GraphML graph to an lsr topology (YAML).

    The mapping (docs/import.md) goes to stderr and into the file's header. `lsr lab up`,
    `lsr sim` and every other command also load such files directly."""
    from lsr.core.importers import containerlab, graph

    if Path(file).suffix.lower() in GRAPH_SUFFIXES:
        if cost_attr and bandwidth_attr:
            raise LsrError("give --cost-attr or --bandwidth-attr, not both")
        from lsr.core.impair import parse_rate

        try:
            ref = parse_rate(reference_bw)
        except ValueError as e:
            raise LsrError(f"--reference-bw: {str(e).split(': ', 1)[-1]}") from None
        try:
            text, notes = graph.to_yaml(file, name=lab_name, cost_attr=cost_attr,
                                        bandwidth_attr=bandwidth_attr,
                                        reference_bw=ref or graph.REFERENCE_BW,
                                        hosts=_hosts(hosts) if hosts is not None
                                        else graph.DEFAULT_HOSTS)
        except graph.GraphError as e:
            raise TopologyError(file, None, "", str(e)) from None
        except click.BadParameter as e:
            raise LsrError(f"--hosts: {e.message}") from None
    else:
        if hosts is not None or cost_attr or bandwidth_attr:
            raise LsrError("--hosts, --cost-attr and --bandwidth-attr apply to GML/GraphML "
                           "graphs only")
        t = load_topology(file)  # validated, errors located in the file
        if not any(n.startswith(containerlab.MAP) for n in t.notes):
            raise LsrError(f"{file} is an lsr topology already (not containerlab, GML or "
                           f"GraphML): nothing to import")
        text, notes = containerlab.to_yaml(file, Path(file).read_text(), name=lab_name)
    t = parse_topology(text, output or "<imported>")  # what we write must load as it is
    t.notes = notes
    if output:  # (on standard output the notes are the file's header)
        say_notes(file, t, mapping=True)
        Path(output).write_text(text)
        render.line(f"wrote {output}: {t.summary()}")
    else:
        click.echo(text, nl=False)
