"""`lsr sim trace FILE SRC DST`: walk one packet hop by hop through the converged LFIBs."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from lsr import render
from lsr.cli.common import down_option, exit_if_stuck, json_option, load, simulated, topology_arg
from lsr.cli.sim import sim
from lsr.core.topology import Topology
from lsr.errors import LsrError
from lsr.teach.walktext import ecmp_text, flow_text, icmp_name, icmp_title

DEFAULT_SPORT, DEFAULT_DPORT = 49152, 33434  # forwarding.walk's, like traceroute's first probe
COLUMNS = ["hop", "router", "in", "labels in", "op", "labels out", "ttl", "out"]


def lfibs_for(topo: Topology) -> dict:
    """router -> Lfib from the simulator (`lsr.sim`), converged or as far as it got: LDP's
    FTN and ILM, and on PEs their VRF FIBs and VPN labels."""
    from lsr.sim import converge

    return converge(topo).sim.lfibs()


def _labels(labels: list[int]) -> str:
    return "/".join(str(x) for x in labels)


def _rows(hops: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(k, h["router"], h["in_interface"] or "(local)", _labels(h["labels_in"]), h["op"],
             _labels(h["labels_out"]), f"{h['ttl_in']}->{h['ttl']}", h["out_interface"] or "")
            for k, h in enumerate(hops, 1)]


def _notes(hops: list[dict[str, Any]]) -> list[str]:
    notes = []
    for k, h in enumerate(hops, 1):
        if h.get("ecmp"):
            notes.append(f"hop {k} {h['router']}: ECMP {ecmp_text(h)}")
        if h["reason"]:
            notes.append(f"hop {k} {h['router']}: dropped ({h['reason']})")
        if h["icmp"]:
            i = h["icmp"]
            via = f"{i['out_interface']}" + (f" labels {_labels(i['labels_out'])}"
                                             if i["labels_out"] else "")
            notes.append(f"hop {k} {h['router']}: sent {icmp_name(i)} {i['type']}/{i['code']} "
                         f"{i['src']} -> {i['dst']} via {via}")
    return notes


def print_walk(w: dict[str, Any], title: str, dst: str | None = None) -> None:
    """The table of `lsr sim trace`, its notes and the ICMP error's own walk."""
    hops = w["hops"]
    render.table(title, COLUMNS, _rows(hops))
    if any(h.get("ecmp") for h in hops):
        render.plain(f"ECMP hash inputs: {flow_text(w)} (CRC-32, seeded per router)")
    for n in _notes(hops):
        render.plain(n)
    for h in hops:
        i = h["icmp"]
        if i and i.get("hops"):
            render.table(escape(icmp_title(h)), COLUMNS, _rows(i["hops"]))
            for n in _notes(i["hops"]):
                render.plain(n)
            render.plain(f"ICMP error: {i['result']}")
    last = hops[-1] if hops else None
    if w["result"] == "misdelivered" and last is not None:  # a VPN leak: say where it went
        end = last["router"] if last["op"] == "deliver" else last["neighbor"]
        render.plain(f"result: misdelivered (reached {end}, not {dst or w['dst']})")
    else:
        render.plain(f"result: {w['result']}")


@sim.command("trace")
@topology_arg
@click.argument("src")
@click.argument("dst")
@click.option("--proto", type=click.Choice(["icmp", "udp", "tcp"]), default="icmp",
              show_default=True, help="Packet to inject.")
@click.option("--ttl", type=click.IntRange(1, 255), default=64, show_default=True,
              help="IP TTL of the injected packet.")
@click.option("--sport", type=click.IntRange(0, 65535), default=None,
              help=f"UDP/TCP source port (default {DEFAULT_SPORT}): an ECMP hash input.")
@click.option("--dport", type=click.IntRange(0, 65535), default=None,
              help=f"UDP/TCP destination port (default {DEFAULT_DPORT}): an ECMP hash input.")
@click.option("-6", "--ipv6", "ipv6", is_flag=True,
              help="IPv6: node names stand for their IPv6 addresses (subnet6); implied by an "
                   "IPv6 address as SRC or DST. Crosses the core over 6PE.")
@click.option("--step", is_flag=True, help="One hop at a time with the frame's headers and the "
              "LFIB row that decided it (a key press between hops; lsr.teach.step).")
@click.option("--delay", type=click.FloatRange(0), default=None,
              help="With --step: wait S seconds between hops instead of a key press.")
@down_option
@json_option
def trace(file: str, src: str, dst: str, proto: str, ttl: int, as_json: bool,
          sport: int | None = None, dport: int | None = None, step: bool = False,
          delay: float | None = None, down: tuple[str, ...] = (), ipv6: bool = False) -> None:
    """Walk one packet from SRC to DST (node names or addresses) router by router.

    Runs the LDP simulation of FILE to convergence (then fails the --down links and
    reconverges), builds every router's forwarding tables and calls the forwarding
    plane's `decide` at each hop. A router that drops the packet with an ICMP error
    (a small --ttl) has the error walked on to the source too. Where a router has
    several equal-cost next hops the hash of the flow (addresses, protocol, UDP/TCP
    ports) picks one: --sport/--dport pick another flow. Exit status 1 when the
    simulation did not converge (the packet is walked through what did).
    """
    from forwarding.tables import build_all
    from forwarding.walk import walk

    if proto == "icmp" and (sport is not None or dport is not None):
        raise click.UsageError("--sport/--dport need --proto udp or tcp (an ICMP echo has no "
                               "ports: it is hashed on its addresses and protocol)")
    sp = DEFAULT_SPORT if sport is None else sport
    dp = DEFAULT_DPORT if dport is None else dport
    topo = load(file)
    o = simulated(topo, down)
    # The routes each router's OSPF built (the reference model's when converged).
    ribs = o.sim.ribs if o.sim.ospf else o.sim.igp.ribs()
    # VRF FIBs and VPN labels (lfibs), 6PE routes (fib6s) included
    tables = build_all(topo, ribs, o.sim.lfibs(), o.sim.fib6s())
    family = 6 if ipv6 or ":" in src or ":" in dst else 4
    try:
        w = walk(topo, tables, src, dst, proto, ttl, sp, dp, family, down=o.down)
    except ValueError as e:
        raise LsrError(f"{topo.source}: {e}") from None
    if as_json:
        render.emit_json(w)
        exit_if_stuck(o)
        return
    if step or delay is not None:
        from lsr.teach.step import show_trace

        show_trace(topo, tables, src, dst, proto, ttl, delay, sport=sp, dport=dp, family=family)
        exit_if_stuck(o)
        return
    what = f"{proto}v6, hop limit" if family == 6 else f"{proto}, TTL"
    vrf = topo.vrf_of(src) if src in topo.nodes else None
    print_walk(w, f"{w['src']} -> {w['dst']} ({what} {ttl}) on {topo.name}"
               + (f", VRF {vrf}" if vrf else ""), dst)
    exit_if_stuck(o)
