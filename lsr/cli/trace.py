"""`lsr sim trace FILE SRC DST`: walk one packet hop by hop through the converged LFIBs."""

from __future__ import annotations

import click

from lsr import render
from lsr.cli.common import down_option, exit_if_stuck, json_option, load, simulated, topology_arg
from lsr.cli.sim import sim
from lsr.core.topology import Topology
from lsr.errors import LsrError


def lfibs_for(topo: Topology) -> dict:
    """router -> Lfib from the LDP simulator (`lsr.sim`): converged, or as far as it got."""
    from lsr.sim import converge

    return {name: inst.lfib for name, inst in converge(topo).sim.instances.items()}


def _labels(labels: list[int]) -> str:
    return "/".join(str(x) for x in labels)


@sim.command("trace")
@topology_arg
@click.argument("src")
@click.argument("dst")
@click.option("--proto", type=click.Choice(["icmp", "udp", "tcp"]), default="icmp",
              show_default=True, help="Packet to inject.")
@click.option("--ttl", type=click.IntRange(1, 255), default=64, show_default=True,
              help="IP TTL of the injected packet.")
@click.option("--step", is_flag=True, help="One hop at a time with the frame's headers and the "
              "LFIB row that decided it (a key press between hops; lsr.teach.step).")
@click.option("--delay", type=click.FloatRange(0), default=None,
              help="With --step: wait S seconds between hops instead of a key press.")
@down_option
@json_option
def trace(file: str, src: str, dst: str, proto: str, ttl: int, as_json: bool,
          step: bool = False, delay: float | None = None, down: tuple[str, ...] = ()) -> None:
    """Walk one packet from SRC to DST (node names or addresses) router by router.

    Runs the LDP simulation of FILE to convergence (then fails the --down links and
    reconverges), builds every router's forwarding tables and calls the forwarding
    plane's `decide` at each hop. Exit status 1 when the simulation did not converge
    (the packet is walked through what did).
    """
    from forwarding.tables import build_all
    from forwarding.walk import walk

    topo = load(file)
    o = simulated(topo, down)
    # The routes each router's OSPF built (the reference model's when converged).
    ribs = o.sim.ribs if o.sim.ospf else o.sim.igp.ribs()
    tables = build_all(topo, ribs, {r: i.lfib for r, i in o.sim.instances.items()})
    try:
        w = walk(topo, tables, src, dst, proto, ttl)
    except ValueError as e:
        raise LsrError(f"{topo.source}: {e}") from None
    if as_json:
        render.emit_json(w)
        exit_if_stuck(o)
        return
    if step or delay is not None:
        from lsr.teach.step import show_trace

        show_trace(topo, tables, src, dst, proto, ttl, delay)
        exit_if_stuck(o)
        return
    rows = []
    notes = []
    for k, h in enumerate(w["hops"], 1):
        if h["reason"]:
            notes.append(f"hop {k} {h['router']}: dropped ({h['reason']})")
        if h["icmp"]:
            i = h["icmp"]
            via = f"{i['out_interface']}" + (f" labels {_labels(i['labels_out'])}"
                                             if i["labels_out"] else "")
            notes.append(f"hop {k} {h['router']}: sent ICMP {i['type']}/{i['code']} "
                         f"{i['src']} -> {i['dst']} via {via}")
        rows.append((k, h["router"], h["in_interface"] or "(local)", _labels(h["labels_in"]),
                     h["op"], _labels(h["labels_out"]), f"{h['ttl_in']}->{h['ttl']}",
                     h["out_interface"] or ""))
    render.table(f"{w['src']} -> {w['dst']} ({proto}, TTL {ttl}) on {topo.name}",
                 ["hop", "router", "in", "labels in", "op", "labels out", "ttl", "out"],
                 rows)
    for n in notes:
        render.line(n)
    render.line(f"result: {w['result']}")
    exit_if_stuck(o)
