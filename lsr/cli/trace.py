"""`lsr sim trace FILE SRC DST`: walk one packet hop by hop through the converged LFIBs."""

from __future__ import annotations

import click

from lsr import render
from lsr.cli.common import json_option, load, topology_arg
from lsr.cli.sim import sim
from lsr.core.topology import Topology
from lsr.errors import LsrError


def lfibs_for(topo: Topology) -> dict:
    """router -> converged Lfib, from the simulator (`lsr.sim`): LDP's FTN and ILM, and
    on PEs their VRF FIBs and VPN labels."""
    import lsr.sim as simulator

    s, res = simulator.simulate(topo)
    if not res.converged:
        raise LsrError(f"{topo.source}: the LDP simulation did not converge")
    return s.lfibs()


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
@json_option
def trace(file: str, src: str, dst: str, proto: str, ttl: int, as_json: bool,
          step: bool = False, delay: float | None = None) -> None:
    """Walk one packet from SRC to DST (node names or addresses) router by router.

    Runs the LDP simulation of FILE to convergence, builds every router's
    forwarding tables and calls the forwarding plane's `decide` at each hop.
    """
    from forwarding.tables import build_all
    from forwarding.walk import walk
    from lsr.core.igp import Igp

    topo = load(file)
    tables = build_all(topo, Igp(topo).ribs(), lfibs_for(topo))
    try:
        w = walk(topo, tables, src, dst, proto, ttl)
    except ValueError as e:
        raise LsrError(f"{topo.source}: {e}") from None
    if as_json:
        render.emit_json(w)
        return
    if step or delay is not None:
        from lsr.teach.step import show_trace

        return show_trace(topo, tables, src, dst, proto, ttl, delay)
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
    vrf = topo.vrf_of(src) if src in topo.nodes else None
    render.table(f"{w['src']} -> {w['dst']} ({proto}, TTL {ttl}) on {topo.name}"
                 + (f", VRF {vrf}" if vrf else ""),
                 ["hop", "router", "in", "labels in", "op", "labels out", "ttl", "out"],
                 rows)
    for n in notes:
        render.line(n)
    last = w["hops"][-1] if w["hops"] else None
    if w["result"] == "misdelivered" and last is not None:
        end = last["router"] if last["op"] == "deliver" else last["neighbor"]
        render.line(f"result: misdelivered (reached {end}, not {dst})")
    else:
        render.line(f"result: {w['result']}")
