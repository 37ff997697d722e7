"""Helpers shared by CLI modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lsr.core.topology import Topology, load_topology
from lsr.errors import LsrError

if TYPE_CHECKING:
    from lsr.sim import Outcome

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/cli.md).")
down_option = click.option("--down", "down", multiple=True, metavar="A-B",
                           help="Take the A-B link down first (simulated failure; repeatable). "
                                "A and B are NODE or NODE:IFACE (one of parallel links).")


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


def simulated(topo: Topology, down: tuple[str, ...] | list[str] = ()) -> Outcome:
    """The simulation every analysis command shows: converged, then `down` links failed.
    What did not come up is named on stderr, one line each ('lsr: not converged: pe1-p1:
    LDP session not established: TCP MD5 password on pe1 only'); the caller shows what
    did converge and ends with `exit_if_stuck`."""
    from lsr.sim import converge

    o = converge(topo, down)
    for p in o.problems():
        click.echo(f"lsr: not converged: {p}", err=True)
    return o


def exit_if_stuck(o: Outcome) -> None:
    """Exit status 1 after the output when the simulation did not converge (2 stays bad
    input)."""
    if not o.converged:
        raise click.exceptions.Exit(1)
