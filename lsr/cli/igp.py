"""`lsr igp ...`: the RIBs SPF computes."""

from __future__ import annotations

import click

from lsr import render
from lsr.cli.common import json_option, load, pick_routers, topology_arg
from lsr.cli.root import main
from lsr.core.igp import Igp, rib_json


@main.group()
def igp() -> None:
    """The IGP: shortest paths, costs and ECMP."""


@igp.command()
@topology_arg
@click.option("--router", "-r", help="Only this router.")
@json_option
def routes(file: str, router: str | None, as_json: bool) -> None:
    """The RIB of one or all routers of FILE."""
    t = load(file)
    names = pick_routers(t, router)
    g = Igp(t)
    if as_json:
        render.emit_json(rib_json(g, names))
        return
    for r in names:
        rows = []
        for route in g.rib(r).values():
            if not route.nexthops:
                rows.append((route.prefix, route.metric, "connected", "", ""))
            for k, nh in enumerate(route.nexthops):
                rows.append((route.prefix if k == 0 else "", route.metric if k == 0 else "",
                             nh.neighbor, nh.interface, nh.address))
        render.table(f"{r}: IGP routes", ["prefix", "metric", "via", "interface", "nexthop"], rows)
