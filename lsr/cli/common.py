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
                           help="Take the A-B link down first (simulated failure; repeatable).")


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
