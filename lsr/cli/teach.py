"""`lsr draw`, `lsr report`, `lsr exercise`: teaching views (lsr.teach)."""

from __future__ import annotations

from pathlib import Path

import click

from lsr import render as out
from lsr.cli import main
from lsr.errors import LsrError

_down_option = click.option("--down", "down", multiple=True, metavar="A-B",
                            help="Take the A-B link down first (simulated failure; repeatable).")


def _network(file: str | None, lab: str | None, down: tuple[str, ...]):
    from lsr.teach import net

    if lab:
        if file:
            raise LsrError("give FILE or --lab NAME, not both")
        if down:
            raise LsrError("--down is for simulations; in a lab use `lsr lab link NAME A B down`")
        return net.from_lab(lab)
    if not file:
        raise LsrError("missing FILE (or --lab NAME)")
    return net.from_file(file, down)


def _overlays(n, lsps: tuple[str, ...], fecs: tuple[str, ...]) -> list:
    from lsr.teach import draw, net

    ovs = []
    for spec in lsps:
        src, sep, fec = spec.partition(":")
        if not sep or not fec:
            raise LsrError(f"--lsp wants FROM:FEC (e.g. pe1:pe2 or pe1:10.255.0.4/32), got '{spec}'")
        f = net.resolve_fec(n.topo, fec)
        ovs.append(draw.lsp_overlay(n, net.lsp_hops(n, src, f),
                                    draw.COLORS[len(ovs) % len(draw.COLORS)]))
    for spec in fecs:
        f = net.resolve_fec(n.topo, spec)
        ovs.append(draw.fec_overlay(n, f, net.fec_hops(n, f),
                                    draw.COLORS[len(ovs) % len(draw.COLORS)]))
    return ovs


@main.command("draw")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--lab", help="Draw a running lab (its live LFIBs) instead of FILE.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="out.svg, out.png, out.pdf or out.dot (default: DOT text on stdout).")
@click.option("--lsp", "lsps", multiple=True, metavar="FROM:FEC",
              help="Draw the LSP from router FROM to FEC (router, host, prefix or address); "
                   "repeatable.")
@click.option("--fec", "fecs", multiple=True, metavar="FEC",
              help="Draw every router's LSP to FEC (the whole tree); repeatable.")
@click.option("--engine", type=click.Choice(["auto", "dot", "neato"]), default="auto",
              show_default=True, help="Graphviz layout engine.")
@_down_option
def draw_cmd(file: str | None, lab: str | None, output: str | None, lsps: tuple[str, ...],
             fecs: tuple[str, ...], engine: str, down: tuple[str, ...]) -> None:
    """Draw the topology of FILE (routers, hosts, interfaces, costs) and its LSPs.

    Every label operation of an LSP is written on the link it is sent on, in
    hop order ("1: push 22", "2: pop 22"); ECMP branches are all drawn.
    """
    from lsr.teach import draw, net

    if lsps or fecs or lab or down:
        n = _network(file, lab, down)
    else:
        if not file:
            raise LsrError("missing FILE (or --lab NAME)")
        from lsr.cli.common import load

        n = net.Network(load(file), {"routers": {}}, {}, "file")
    ovs = _overlays(n, lsps, fecs)
    eng = draw.choose_engine(n.topo) if engine == "auto" else engine
    dot = draw.dot_source(n, ovs, eng)
    if not output:
        click.echo(dot, nl=False)
        return
    fmt = Path(output).suffix.lstrip(".").lower()
    data = draw.render(dot, fmt, eng)
    Path(output).write_bytes(data)
    out.line(f"{output}: {n.topo.name}, {len(n.topo.nodes)} nodes, {len(n.topo.links)} links"
             + (f", {len(ovs)} LSP overlay(s)" if ovs else ""))


@main.command("report")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--lab", help="Report on a running lab (its live tables) instead of FILE.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write.")
@click.option("--from", "src", help="Packet walk source (default: the first host).")
@click.option("--to", "dst", help="Packet walk destination (default: the second host).")
@_down_option
def report_cmd(file: str | None, lab: str | None, output: str, src: str | None,
               dst: str | None, down: tuple[str, ...]) -> None:
    """Write one self-contained HTML page: the topology picture, every LFIB, the
    LDP bindings, a packet walk between two hosts and the validation results."""
    from lsr.teach import report

    n = _network(file, lab, down)
    page = report.build(n, src, dst)
    Path(output).write_text(page, encoding="utf-8")
    out.line(f"{output}: report on {n.topo.name} ({n.source}), {len(page) // 1024} KiB")
