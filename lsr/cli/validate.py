"""`lsr validate FILE`: check the LSPs of a topology (expect: assertions + invariants)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape

from lsr import render
from lsr.cli.common import down_option, json_option, load, topology_arg
from lsr.cli.root import main
from lsr.core.igp import Igp
from lsr.errors import LsrError
from lsr.oam.validate import (
    control_plane_results,
    igp_route_result,
    lfibs_from_json,
    reference_lfibs,
    summary,
    validate,
    walk_ping,
    walk_trace,
)

_STYLE = {"pass": "[green]pass[/]", "fail": "[bold red]FAIL[/]", "skip": "[yellow]skip[/]"}


@main.command("validate")
@topology_arg
@click.option("--lfib", "lfib_file", type=click.Path(dir_okay=False),
              help="Check these LFIBs (`lsr sim lfib --json` / a lab's `lfib --json`) "
                   "instead of simulating LDP.")
@click.option("--reference", is_flag=True,
              help="Check the reference LFIBs computed from the IGP instead of simulating LDP.")
@click.option("--no-invariants", is_flag=True, help="Only the file's expect: assertions.")
@down_option
@json_option
def validate_cmd(file: str, lfib_file: str | None, reference: bool, no_invariants: bool,
                 down: tuple[str, ...], as_json: bool) -> None:
    """Validate the LSPs of FILE: its expect: assertions and the built-in invariants.

    With --down A-B the links are failed first (the simulation reconverges, the
    reference LFIBs and the IGP are computed without them).
    Exit status 0 when every check passes, 1 when one fails (a session or adjacency
    that did not come up is a failed control-plane check), 2 for bad input.
    """
    from lsr.sim import parse_link

    topo = load(file)
    if lfib_file and reference:
        raise LsrError("--lfib and --reference exclude each other")
    if lfib_file and down:
        raise LsrError("--down fails links in a simulation; --lfib checks given tables")
    idx = [parse_link(topo, d) for d in down]
    igp = Igp(topo, idx)
    o = None
    if lfib_file:
        try:
            with open(lfib_file) as f:
                lfibs = lfibs_from_json(json.load(f))
        except OSError as e:
            raise LsrError(f"{lfib_file}: cannot read: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise LsrError(f"{lfib_file}: not JSON: {e}") from None
        except ValueError as e:  # also UnicodeDecodeError
            raise LsrError(f"{lfib_file}: {e}") from None
        source = lfib_file
    elif reference:
        lfibs, source = reference_lfibs(topo, igp), "reference"
    else:
        from lsr.sim import converge

        o = converge(topo, down)
        lfibs, source = lfibs_from_json(o.sim.lfib_json()), "sim"  # VRFs included
    trace = walk_trace(topo, lfibs, igp)
    results = validate(topo, lfibs, igp, ping=walk_ping(topo, lfibs, igp, trace),
                       invariants=not no_invariants, trace=trace)
    fib6s = None
    if not no_invariants and topo.has_ipv6 and not lfib_file:  # 6PE (lsr.oam.sixpe_check)
        from lsr.oam.sixpe_check import reference_fib6s, sixpe_results

        fib6s = o.sim.fib6s() if o is not None else reference_fib6s(topo, lfibs, igp.down)
        results.extend(sixpe_results(topo, lfibs, igp, fib6s,
                                     sessions=_bgp_states(o.sim) if o is not None else None))
    if o is not None and (o.problems() or not no_invariants):  # a stuck session is never hidden
        s = o.sim
        adj = sum(i.full_neighbors() for i in s.ospf.values()) // 2 if s.ospf else None
        results[:0] = control_plane_results(o.problems(), len(s.expected_sessions()) // 2, adj)
    if o is not None and not no_invariants:  # OSPF's routes against the reference model
        results.append(igp_route_result(topo, o.sim.ribs, igp))
    if not no_invariants:  # RFC 8029 LSP ping of every VPN and 6PE route, over these tables
        from lsr.oam.lspping import lfib_network, vpn_lsp_ping_results
        from lsr.oam.sixpe_check import sixpe_lsp_ping_results

        net = lfib_network(topo, lfibs, fib6s)
        results += vpn_lsp_ping_results(topo, net, lfibs)
        if fib6s is not None:
            results += sixpe_lsp_ping_results(topo, net, down=igp.down)
    out = {"topology": topo.name, "file": file, "lfib_source": source, **summary(results)}
    if as_json:
        render.emit_json(out)
    else:
        render.table(f"{topo.name}: LSP validation ({source})", ["check", "status", "detail"],
                     [(escape(r.check), _STYLE[r.status], escape(r.detail)) for r in results])
        render.line(f"{out['passed']} passed, {out['failed']} failed, {out['skipped']} skipped")
    if out["failed"]:
        raise click.exceptions.Exit(1)


def _bgp_states(sim: Any) -> dict[tuple[str, str], str]:
    """(router, peer) -> the BGP FSM state of every configured session of the simulation
    (RFC 4271 §8.2.2 names), so a missing 6PE route can say its session is down."""
    topo = sim.topo
    return {(r, p.name): inst.state_of(topo.nodes[p.name].lsr_id).value
            for r, inst in sim.bgp.items() for p in inst.cfg.peers if p.name in topo.nodes}
