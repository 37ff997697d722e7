"""Helpers shared by CLI modules."""

from __future__ import annotations

import click

from lsr.core.topology import Topology, load_topology
from lsr.errors import LsrError

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/cli.md).")


def topology_arg(f):
    return click.argument("file", type=click.Path(dir_okay=False))(f)


def load(file: str) -> Topology:
    """The topology of FILE: ours, a containerlab file or a GML/GraphML graph (converted:
    what was mapped, renamed or ignored goes to stderr, the full mapping with `lsr topo
    import FILE`)."""
    t = load_topology(file)
    say_notes(file, t)
    return t


def say_notes(file: str, t: Topology, mapping: bool = False) -> None:
    """An imported file's notes on stderr, `lsr: note: ...` (the per-node mapping lines of a
    containerlab file only with `mapping`)."""
    from lsr.core.importers.containerlab import MAP

    if not t.notes:
        return
    per_node = [n for n in t.notes if n.startswith(MAP)]
    if per_node and not mapping:
        click.echo(f"lsr: note: {file}: a containerlab file, loaded as {len(t.routers)} "
                   f"routers and {len(t.hosts)} hosts (the mapping: lsr topo import {file})",
                   err=True)
    for n in t.notes:
        if mapping or not n.startswith(MAP):
            click.echo(f"lsr: note: {n.removeprefix(MAP)}", err=True)


def pick_routers(topo: Topology, router: str | None) -> list[str]:
    """All routers, or the one named; a one-line error for an unknown name."""
    if router is None:
        return [r.name for r in topo.routers]
    if router not in topo.nodes or not topo.nodes[router].is_router:
        raise LsrError(f"{topo.source}: no router named '{router}'")
    return [router]
