"""`lsr sim bgp FILE [R] [VIEW]` and `lsr lab bgp NAME R [VIEW]`: BGP neighbours and
routes (VIEW: summary, vpn, unicast, ipv6, vpn6).

The simulator and a live lab (our routers and FRR's) give the same JSON and the same
tables (docs/cli.md, "BGP").
"""

from __future__ import annotations

from typing import Any

import click

from lsr import render
from lsr.cli.common import (
    exit_if_stuck,
    json_option,
    load,
    pick_routers,
    simulated,
    topology_arg,
)
from lsr.cli.lab import lab, lab_api, require_root
from lsr.cli.sim import sim
from lsr.errors import LsrError
from lsr.render import label_text

VIEWS = ("summary", "vpn", "unicast", "ipv6", "vpn6")
SHORT = {"ipv4-unicast": "v4", "ipv4-vpn": "vpnv4", "ipv6-labelled": "6pe",  # table only
         "ipv6-vpn": "vpnv6"}


def _cell(v: Any) -> str:
    return "-" if v is None or v == "" or v == [] else str(v)


def show(data: dict[str, Any], view: str, as_json: bool) -> None:
    """Print `{"routers": {R: ...}}` of one view as JSON or as one table per router."""
    if as_json:
        render.emit_json(data)
        return
    for r, d in data["routers"].items():
        if view == "summary":
            rr = ", route reflector" if d.get("route_reflector") else ""
            rows = [(n["neighbor"], n["asn"], n["state"],
                     _cell(None if n["uptime"] is None else f"{n['uptime']:.1f}"),
                     " ".join(SHORT.get(f, f) for f in n["families"]) or "-",
                     f"{n['received']}/{n['sent']}",
                     _cell("; ".join(x for x in (n["last_error"], n.get("connect_error")) if x)))
                    for n in d["neighbors"]]
            render.table(f"{r}: BGP AS {d['asn']}, router ID {d['router_id']}{rr}",
                         ["neighbor", "AS", "state", "up s", "families",
                          "rcvd/sent", "last error"], rows)
        elif view in ("vpn", "vpn6"):
            rows = [(x["rd"], x["prefix"], x["next_hop"], _cell(x.get("label")),
                     " ".join(x["route_targets"]) or "-", x["from"], _cell(x["as_path"]),
                     _cell(x["local_pref"])) for x in d["routes"]]
            what = "VPN-IPv4" if view == "vpn" else "VPN-IPv6 (6VPE)"
            render.table(f"{r}: {what} routes (best paths)",
                         ["RD", "prefix", "next hop", "label", "route targets", "from",
                          "AS path", "local pref"], rows)
        elif view == "ipv6":
            rows = [(x["prefix"], x["next_hop"], label_text(x.get("label")), x["from"],
                     _cell(x["as_path"]), _cell(x["local_pref"])) for x in d["routes"]]
            render.table(f"{r}: labelled IPv6 routes, 6PE (best paths)",
                         ["prefix", "next hop", "label", "from", "AS path", "local pref"], rows)
        else:
            rows = [(x["prefix"], x["next_hop"], x["from"], _cell(x["as_path"]),
                     _cell(x["local_pref"]), _cell(x["med"])) for x in d["routes"]]
            render.table(f"{r}: IPv4 unicast routes (best paths)",
                         ["prefix", "next hop", "from", "AS path", "local pref", "MED"], rows)


def _sim_args(topo: Any, args: tuple[str, ...]) -> tuple[str | None, str]:
    """[R] [VIEW]: one word is a view if it names one, else a router."""
    if len(args) > 2:
        raise LsrError(f"expected [ROUTER] [{'|'.join(VIEWS)}], got {' '.join(args)}")
    if not args:
        return None, "summary"
    if len(args) == 1:
        return (None, args[0]) if args[0] in VIEWS else (args[0], "summary")
    if args[1] not in VIEWS:
        raise LsrError(f"unknown BGP view '{args[1]}' ({', '.join(VIEWS)})")
    return args[0], args[1]


@sim.command("bgp")
@topology_arg
@click.argument("args", nargs=-1, metavar="[ROUTER] [summary|vpn|unicast|ipv6|vpn6]")
@json_option
def sim_bgp(file: str, args: tuple[str, ...], as_json: bool) -> None:
    """BGP neighbours (summary) or best routes (vpn, unicast, ipv6, vpn6) once the simulation
    converged.

    Exit status 1 when a session or adjacency did not come up (each is named on stderr,
    with its cause: a BGP session's TCP MD5 keys that differ...), 2 for bad input."""
    from bgp import views
    from bgp.config import from_topology as bgp_config

    topo = load(file)
    router, view = _sim_args(topo, args)
    names = pick_routers(topo, router)
    running = [r.name for r in topo.routers if bgp_config(topo, r.name) is not None]
    if not running:
        raise LsrError(f"{file}: no bgp: section (no router runs BGP)")
    if router is not None and router not in running:
        raise LsrError(f"{file}: {router} runs no BGP (not in bgp.routers)")
    o = simulated(topo)
    s = o.sim
    out: dict[str, Any] = {}
    for r in names:
        if r not in s.bgp:
            continue
        inst = s.bgp[r]
        out[r] = (views.summary(inst, s.now) if view == "summary"
                  else {"routes": views.routes(inst, views.VIEWS[view])})
    show({"routers": out}, view, as_json)
    exit_if_stuck(o)


@lab.command("bgp")
@click.argument("name")
@click.argument("router")
@click.argument("view", type=click.Choice(VIEWS), default="summary")
@json_option
def lab_bgp(name: str, router: str, view: str, as_json: bool) -> None:
    """BGP neighbours or best routes of ROUTER in a running lab (JSON as `lsr sim bgp`)."""
    require_root()
    show(lab_api().bgp(name, router, view), view, as_json)
