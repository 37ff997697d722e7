"""Helpers shared by CLI modules."""

from __future__ import annotations

import click

from lsr.core.topology import Topology, load_topology
from lsr.errors import LsrError

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/cli.md).")


def topology_arg(f):
    return click.argument("file", type=click.Path(dir_okay=False))(f)


def load(file: str) -> Topology:
    return load_topology(file)


def pick_routers(topo: Topology, router: str | None) -> list[str]:
    """All routers, or the one named; a one-line error for an unknown name."""
    if router is None:
        return [r.name for r in topo.routers]
    if router not in topo.nodes or not topo.nodes[router].is_router:
        raise LsrError(f"{topo.source}: no router named '{router}'")
    return [router]
