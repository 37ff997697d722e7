"""`lsr sim ...`: run LDP on every router of a topology in memory (virtual clock).

A simulation that does not converge is still shown: what did converge is printed, each
session or adjacency that did not is named with its cause on stderr, and the exit status
is 1 (`lsr.cli.common.simulated`).
"""

from __future__ import annotations

import click

from lsr import render
from lsr.cli.common import (
    down_option,
    exit_if_stuck,
    json_option,
    load,
    pick_routers,
    simulated,
    topology_arg,
)
from lsr.cli.root import main
from lsr.errors import LsrError


@main.group()
def sim() -> None:
    """Simulate LDP on every router in one process (deterministic, no root)."""


def ray_options(f):
    f = click.option("--workers", type=click.IntRange(1), default=None,
                     help="With --ray: partitions, one Ray actor each (default: the "
                          "cluster's CPUs).")(f)
    return click.option(
        "--ray", "ray_address", is_flag=False, flag_value="local", default=None,
        metavar="[ADDRESS]",
        help="Partition the routers over Ray actors: a Ray instance started here for the "
             "run, or the cluster whose head is at ADDRESS (HOST:PORT, or auto). Give it "
             "last, or as --ray=ADDRESS.")(f)


def _on_ray(topo, down: tuple[str, ...], address: str, workers: int | None,
            lfib: bool = True):
    from lsr.simray import converge

    r = converge(topo, down, address, workers, lfib)
    if not r.converged:
        click.echo(f"lsr: not converged: did not converge by virtual time {r.ended:.3f} s",
                   err=True)
    return r


@sim.command()
@topology_arg
@down_option
@json_option
@ray_options
def run(file: str, down: tuple[str, ...], as_json: bool, ray_address: str | None,
        workers: int | None) -> None:
    """Converge LDP on FILE; print sessions, FECs, labels, time and messages.

    Exit status 1 when a session or adjacency did not come up (each is named, with its
    cause), 2 for bad input."""
    from lsr.sim import converge

    if ray_address is not None:
        r = _on_ray(load(file), down, ray_address, workers, lfib=False)
        summary = r.summary_json()
        if as_json:
            render.emit_json(summary)
        else:
            _summary_lines(summary)
            sizes = ", ".join(map(str, summary["partitions"]))
            where = f": {', '.join(r.placement)}" if r.placement else ""
            render.line(f"{len(r.groups)} partitions on Ray ({sizes} routers), "
                        f"{r.rounds} rounds{where}")
            render.table("messages sent", ["type", "count"], sorted(summary["messages"].items()))
        if not r.converged:
            raise click.exceptions.Exit(1)
        return
    o = converge(load(file), down)
    summary = {**o.sim.summary_json(o.result), "stuck": [s.to_json() for s in o.stuck]}
    if as_json:
        render.emit_json(summary)
        exit_if_stuck(o)
        return
    want = "" if o.converged else f" of {len(o.sim.expected_sessions()) // 2}"
    _summary_lines(summary, want, o.result.ended)
    if not o.converged:
        for p in o.problems():
            render.plain(f"  {p}")
    if "vpn" in summary:
        v = summary["vpn"]
        render.line(f"VPN: {v['pes']} PEs, {v['vrfs']} VRFs, {v['vpn_routes']} VPN routes "
                    f"exported, {v['vrf_routes']} VRF routes installed"
                    + (f", {v['rejected']} without an LSP" if v["rejected"] else ""))
    render.table("messages sent", ["type", "count"], sorted(summary["messages"].items()))
    exit_if_stuck(o)


def _summary_lines(summary: dict, want: str = "", ended: float = 0.0) -> None:
    render.line(
        f"{summary['topology']}: {summary['routers']} routers, {summary['sessions']}{want} "
        f"sessions OPERATIONAL, {summary['fecs']} FECs, {summary['labels']} local labels, "
        f"{summary['ftn_entries']} FTN / {summary['ilm_entries']} ILM entries"
    )
    if summary["converged"]:
        render.line(f"converged at virtual time {summary['convergence_time']:.3f} s "
                    f"({summary['events']} events)")
    else:
        render.line(f"NOT converged: nothing changed after virtual time "
                    f"{summary['convergence_time']:.3f} s (stopped at {ended:.3f} s, "
                    f"{summary['events']} events)")


@sim.command()
@topology_arg
@click.option("--router", "-r", help="Only this router.")
@down_option
@json_option
@ray_options
def lfib(file: str, router: str | None, down: tuple[str, ...], as_json: bool,
         ray_address: str | None, workers: int | None) -> None:
    """FTN and ILM of each router after convergence."""
    if ray_address is not None:
        topo = load(file)
        routers = pick_routers(topo, router)
        r = _on_ray(topo, down, ray_address, workers)
        data = r.lfib_json(routers)
    else:
        o = simulated(load(file), down)
        data = o.sim.lfib_json(pick_routers(o.sim.topo, router))
    if as_json:
        render.emit_json(data)
    else:
        render.show(render.lfib_tables(data))
    if ray_address is not None:
        if not r.converged:
            raise click.exceptions.Exit(1)
        return
    exit_if_stuck(o)


@sim.command()
@topology_arg
@click.option("--router", "-r", required=True, help="The router.")
@down_option
@json_option
def bindings(file: str, router: str, down: tuple[str, ...], as_json: bool) -> None:
    """The LIB of ROUTER: local and remote label per FEC."""
    o = simulated(load(file), down)
    (name,) = pick_routers(o.sim.topo, router)
    data = o.sim.bindings_json(name)
    if as_json:
        render.emit_json(data)
    else:
        render.show(render.bindings_table(name, data["bindings"]))
    exit_if_stuck(o)


@sim.command()
@topology_arg
@click.option("--router", "-r", help="Only this router.")
@down_option
@json_option
def neighbors(file: str, router: str | None, down: tuple[str, ...], as_json: bool) -> None:
    """LDP sessions of each router after convergence."""
    o = simulated(load(file), down)
    names = pick_routers(o.sim.topo, router)
    data = {"routers": {r: {"neighbors": o.sim.neighbors_json(r)} for r in names}}
    if as_json:
        render.emit_json(data)
    else:
        render.show([render.ldp_neighbors_table(r, data["routers"][r]["neighbors"])
                     for r in names])
    exit_if_stuck(o)


@sim.command("vrf")
@topology_arg
@click.argument("router", required=False)
@click.option("--vrf", "vrf_name", help="Only this VRF.")
@down_option
@json_option
def vrf_cmd(file: str, router: str | None, vrf_name: str | None, down: tuple[str, ...],
            as_json: bool) -> None:
    """The VRFs of each PE (or ROUTER) after convergence: every route with where it goes
    and its label stack [transport, VPN], and the VPN labels (RFC 4364)."""
    topo = load(file)
    names = pick_routers(topo, router)
    if router is not None and not topo.nodes[router].vrfs:
        raise LsrError(f"{file}: {router} has no VRFs")
    if not any(n.vrfs for n in topo.routers):
        raise LsrError(f"{file}: no router has VRFs (topology.nodes.R.vrfs)")
    known = {v for r in names for v in topo.nodes[r].vrfs}
    if vrf_name is not None and vrf_name not in known:
        raise LsrError(f"{file}: no VRF named {vrf_name!r}" + (f" on {router}" if router else ""))
    o = simulated(topo, down)
    data = o.sim.vrf_json([r for r in names if topo.nodes[r].vrfs], vrf_name)
    if as_json:
        render.emit_json(data)
    else:
        render.vrf_show(data)
    exit_if_stuck(o)
