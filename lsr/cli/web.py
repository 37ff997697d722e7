"""`lsr lab web NAME`: a live page of a running lab on 127.0.0.1 (lsr.web)."""

from __future__ import annotations

import sys

import click

from lsr.cli.lab import lab, require_root


@lab.command("web")
@click.argument("name")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port on 127.0.0.1 (0: any free port).")
@click.option("--allow-changes", is_flag=True,
              help="Let the page set links down and up (as 'lsr lab link').")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.2, 60),
              help="Seconds between samples of the lab.")
def web(name: str, port: int, allow_changes: bool, interval: float) -> None:
    """Serve a live page of lab NAME on 127.0.0.1 until Ctrl-C: the topology with link
    states and packet rates, each router's tables, LSPs hop by hop, an event timeline.
    Read-only unless --allow-changes. The printed URL carries a per-run token."""
    require_root()
    from lsr.lab import local_only

    local_only(name, "web")
    from lsr.web.collect import LabView
    from lsr.web.server import WebServer, serve

    view = LabView(name)

    def ready(srv: WebServer) -> None:
        mode = "link changes allowed" if allow_changes else "read-only"
        # click.echo, not rich: a wrapped URL could not be copied
        click.echo(f"lsr lab web: {name} on {srv.url} ({mode}; Ctrl-C to stop)")
        sys.stdout.flush()

    try:
        serve(view, port, allow_changes, interval, ready)
    except KeyboardInterrupt:
        click.echo("lsr lab web: stopped")
