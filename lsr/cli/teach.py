"""`lsr draw`, `lsr report`, `lsr exercise`: teaching views (lsr.teach)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from lsr import render as out
from lsr.cli.common import down_option
from lsr.cli.root import main
from lsr.errors import LsrError

_down_option = down_option


def _network(file: str | None, lab: str | None, down: tuple[str, ...]):
    from lsr.teach import net

    if lab:
        if file:
            raise LsrError("give FILE or --lab NAME, not both")
        if down:
            raise LsrError("--down is for simulations; in a lab use `lsr lab link NAME A B down`")
        from lsr.lab import need_root

        need_root()  # else an unreadable /run/lsr/NAME reads as "no lab named NAME"
        return net.from_lab(lab)
    if not file:
        raise LsrError("missing FILE (or --lab NAME)")
    return _warn(net.from_file(file, down))


def _warn(n, prefix: str = "not converged"):  # noqa: ANN001, ANN202  (a net.Network)
    """Name what did not converge on stderr; the picture or page shows what did."""
    for p in n.problems:
        click.echo(f"lsr: {prefix}: {p}", err=True)
    return n


def _exit_if_stuck(n) -> None:
    if n.problems:
        raise click.exceptions.Exit(1)


def _overlays(n, lsps: tuple[str, ...], fecs: tuple[str, ...]) -> tuple[list, list[str]]:
    from lsr.teach import draw, net

    ovs = []
    texts: list[str] = []
    for spec in lsps:
        src, sep, fec = spec.partition(":")
        if not sep or not fec:
            raise LsrError(f"--lsp wants FROM:FEC (e.g. pe1:pe2 or pe1:10.255.0.4/32), got '{spec}'")
        f = net.resolve_fec(n.topo, fec)
        tr = net.lsp_hops(n, src, f)
        ovs.append(draw.lsp_overlay(n, tr, draw.COLORS[len(ovs) % len(draw.COLORS)]))
        texts.append(f"LSP {src} -> {f}" + (f" ({len(tr.branches)} ECMP branches)"
                                             if len(tr.branches) > 1 else "") + ":")
        texts += [f"  {x}" for x in net.branch_lines(n, tr)]
    for spec in fecs:
        f = net.resolve_fec(n.topo, spec)
        ovs.append(draw.fec_overlay(n, f, net.fec_hops(n, f),
                                    draw.COLORS[len(ovs) % len(draw.COLORS)]))
    return ovs, texts


def _trace_overlay(n, spec: str, color: str, family: int = 4):
    """--trace SRC:DST: a packet walk over the network's tables, as an overlay (IPv6:
    `family` 6, or an IPv6 address as an end, lsr.teach.pair)."""
    from forwarding.walk import walk
    from lsr.teach import draw
    from lsr.teach.pair import split_pair

    try:
        src, dst = split_pair(spec)
    except ValueError as e:
        raise LsrError(str(e)) from None
    try:
        w = walk(n.topo, n.tables(), src, dst, family=family, down=n.down)
    except ValueError as e:
        raise LsrError(f"{n.topo.source}: {e}") from None
    ov = draw.walk_overlay(w, color, f"packet {src} -> {dst} ({w['dst']})")
    hops = " -> ".join(f"{h['router']} [{h['op']}"
                       + (" " + "/".join(map(str, h["labels_out"])) if h["labels_out"] else "")
                       + "]" for h in w["hops"])
    return ov, [f"packet {src} -> {dst} ({w['dst']}): {w['result']}", f"  {hops}"]


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
@click.option("--trace", "traces", multiple=True, metavar="SRC:DST",
              help="Draw a packet walk from SRC to DST (nodes or addresses; an IPv6 address "
                   "in brackets, [2001:db8:1::1]:[2001:db8:2::2], or SRC,DST) with the whole "
                   "label stack on each link (a VPN or 6PE packet's two labels); repeatable.")
@click.option("-6", "--ipv6", "ipv6", is_flag=True,
              help="--trace walks IPv6: node names stand for their IPv6 addresses (subnet6).")
@click.option("--engine", type=click.Choice(["auto", "dot", "neato"]), default="auto",
              show_default=True, help="Graphviz layout engine.")
@_down_option
def draw_cmd(file: str | None, lab: str | None, output: str | None, lsps: tuple[str, ...],
             fecs: tuple[str, ...], engine: str, down: tuple[str, ...],
             traces: tuple[str, ...] = (), ipv6: bool = False) -> None:
    """Draw the topology of FILE (routers, hosts, interfaces, costs) and its LSPs.

    Every label operation of an LSP is written on the link it is sent on, in
    hop order ("1: push 22", "2: pop 22"); ECMP branches are all drawn. A link
    whose LDP session or OSPF adjacency did not come up is dashed red with the
    cause; the exit status is then 1 (the picture is still written).
    """
    from lsr.teach import draw, net

    if lsps or fecs or lab or down or traces:
        n = _network(file, lab, down)
    else:
        if not file:
            raise LsrError("missing FILE (or --lab NAME)")
        from lsr.cli.common import load
        from lsr.oam.diagnose import config_findings

        topo = load(file)  # no simulation: mark what the configs keep down
        found = config_findings(topo)
        n = _warn(net.Network(topo, {"routers": {}}, {}, "file", stuck=found,
                              problems=[s.text("cannot come up") for s in found]), "warning")
    ovs, texts = _overlays(n, lsps, fecs)
    for spec in traces:
        ov, lines = _trace_overlay(n, spec, draw.COLORS[len(ovs) % len(draw.COLORS)],
                                   6 if ipv6 else 4)
        ovs.append(ov)
        texts += lines
    eng = draw.choose_engine(n.topo) if engine == "auto" else engine
    dot = draw.dot_source(n, ovs, eng)
    if not output:
        click.echo(dot, nl=False)
        _exit_if_stuck(n)
        return
    fmt = Path(output).suffix.lstrip(".").lower()
    data = draw.render(dot, fmt, eng)
    Path(output).write_bytes(data)
    down_txt = ", ".join(n.topo.link_name(n.topo.links[i]) for i in sorted(n.down))
    out.line(f"{output}: {n.topo.name}, {len(n.topo.nodes)} nodes, {len(n.topo.links)} links"
             + (f", {len(ovs)} overlay(s)" if ovs else "")
             + (f", down: {down_txt}" if down_txt else ""))
    for t in texts:
        out.line(escape(t))
    _exit_if_stuck(n)


@main.command("report")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--lab", help="Report on a running lab (its live tables) instead of FILE.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write.")
@click.option("--from", "src", help="Packet walk source (default: see --to).")
@click.option("--to", "dst", help="Packet walk destination (default: the longest walk between "
              "two hosts, docs/cli.md).")
@click.option("-6", "--ipv6", "ipv6", is_flag=True,
              help="Walk an IPv6 packet (node names stand for their IPv6 addresses); implied "
                   "by an IPv6 address in --from/--to.")
@_down_option
def report_cmd(file: str | None, lab: str | None, output: str, src: str | None,
               dst: str | None, down: tuple[str, ...], ipv6: bool = False) -> None:
    """Write one self-contained HTML page that follows one packet: its walk and the
    table rows it used, the topology picture with its LSP, the FTN, ILM and LDP
    bindings of the routers on its way (the rows it used highlighted), the
    validation results, and the other routers' tables in an appendix."""
    from lsr.teach import report

    n = _network(file, lab, down)
    page, choice = report.build_report(n, src, dst, family=6 if ipv6 else 4)
    Path(output).write_text(page, encoding="utf-8")
    out.plain(f"{output}: report on {n.topo.name} ({n.source}), {len(page) // 1024} KiB")
    if choice is not None:
        out.plain(f"packet: {choice.src} -> {choice.dst} ({choice.why})")
    _exit_if_stuck(n)


@main.group("exercise")
def exercise() -> None:
    """Label-switching exercises: list, start N, check N."""


@exercise.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/cli.md).")
def exercise_list(as_json: bool) -> None:
    """The exercises."""
    from lsr.teach.exercise import EXERCISES

    if as_json:
        out.emit_json({"exercises": [e.to_json() for e in EXERCISES]})
        return
    out.table("exercises", ["#", "title", "kind", "files"],
              [(e.number, e.title, e.kind, ", ".join(e.files)) for e in EXERCISES])


@exercise.command("start")
@click.argument("number", type=int)
@click.option("-d", "--dir", "directory", type=click.Path(file_okay=False), default=".",
              show_default=True, help="Where to copy the starting files.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def exercise_start(number: int, directory: str, force: bool) -> None:
    """Copy exercise NUMBER's starting topology into DIR and print the task."""
    from lsr.teach import exercise as ex

    e = ex.get(number)
    files = ex.start(number, Path(directory), force)
    out.line(f"[bold]exercise {e.number}: {e.title}[/]")
    out.line(f"copied: {', '.join(str(p) for p in files)}")
    out.line("")
    click.echo(e.task)


@exercise.command("check")
@click.argument("number", type=int)
@click.argument("arg", required=False, metavar="[FILE|ANSWER]")
@click.option("-d", "--dir", "directory", type=click.Path(file_okay=False), default=".",
              show_default=True, help="Where the exercise files are.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/cli.md).")
def exercise_check(number: int, arg: str | None, directory: str, as_json: bool) -> None:
    """Check exercise NUMBER: your edited FILE (default: the starting file in DIR)
    or your ANSWER. Exit status 0 on pass, 1 on fail."""
    from rich.markup import escape

    from lsr.teach import exercise as ex

    e = ex.get(number)
    o = ex.check(number, arg, Path(directory))
    if as_json:
        out.emit_json({"exercise": number, "result": "pass" if o.ok else "fail",
                       "message": o.message, "checks": o.checks,
                       "hint": "" if o.ok else e.hint})
    else:
        style = {"pass": "[green]pass[/]", "fail": "[bold red]FAIL[/]", "skip": "[yellow]skip[/]"}
        for c in o.checks:
            out.line(f"  {style[c['status']]}  {escape(c['check'])}: {escape(c['detail'])}")
        if o.message:
            out.line(f"  {escape(o.message)}")
        if o.ok:
            out.line(f"[bold green]exercise {number}: PASS[/] ({escape(e.title)})")
        else:
            out.line(f"[bold red]exercise {number}: FAIL[/] ({escape(e.title)})")
            out.line(f"hint: {escape(e.hint)}")
    if not o.ok:
        raise click.exceptions.Exit(1)
