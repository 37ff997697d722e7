"""`lsr sim ospf FILE ...` and `lsr lab ospf NAME ...`: OSPF neighbors and LSDB.

The simulator and a live lab give the same JSON and the same tables (docs/cli.md).
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

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
from lsr.cli.lab import lab, lab_api, require_root
from lsr.cli.sim import sim

VIEWS = ("neighbors", "lsdb")


def _show(data: dict[str, Any], view: str, as_json: bool) -> None:
    if as_json:
        render.emit_json(data)
        return
    for r, d in data["routers"].items():
        if view == "neighbors":
            render.show(render.ospf_neighbors_table(r, d["neighbors"]))
        else:
            rows = []
            for a in d["lsdb"]:
                head = (a["adv_router"], a["seq"], str(a["age"]))
                links = a.get("links") or [None]
                for k, ln in enumerate(links):
                    rows.append((*(head if k == 0 else ("", "", "")), *_link_cells(ln)))
            render.table(f"{r}: OSPF router-LSAs (area 0)",
                         ["adv router", "seq", "age", "link", "to", "cost"], rows)


def _link_cells(ln: dict[str, Any] | None) -> tuple[str, str, str]:
    if ln is None:
        return ("", "", "")
    kind = {1: "p2p", 2: "transit", 3: "stub", 4: "virtual"}.get(ln["type"], str(ln["type"]))
    if ln["type"] == 3:
        to = str(IPv4Network(f"{ln['link_id']}/{ln['link_data']}", strict=False))
    else:
        to = ln["link_id"]
    return (kind, to, str(ln["metric"]))


@sim.command("ospf")
@topology_arg
@click.argument("view", type=click.Choice(VIEWS), default="neighbors")
@click.option("--router", "-r", help="Only this router.")
@down_option
@json_option
def sim_ospf(file: str, view: str, router: str | None, down: tuple[str, ...],
             as_json: bool) -> None:
    """OSPF neighbors or LSDB of each router once the simulation converged."""
    o = simulated(load(file), down)
    out: dict[str, Any] = {}
    for r in pick_routers(o.sim.topo, router):
        inst = o.sim.ospf[r]
        out[r] = {view: inst.neighbors_json() if view == "neighbors" else inst.lsdb_json()}
    _show({"routers": out}, view, as_json)
    exit_if_stuck(o)


@lab.command("ospf")
@click.argument("name")
@click.argument("router")
@click.argument("view", type=click.Choice(VIEWS), default="neighbors")
@json_option
def lab_ospf(name: str, router: str, view: str, as_json: bool) -> None:
    """OSPF neighbors or LSDB of ROUTER in a running lab (JSON as `lsr sim ospf`)."""
    require_root()
    L = lab_api()
    if view == "neighbors":
        data = {"neighbors": L.query(name, router, "ospf")["neighbors"]}
    else:
        data = {"lsdb": L.query(name, router, "ospf", what="lsdb")["lsdb"]}
    _show({"routers": {router: data}}, view, as_json)
