"""`lsr lab ipsec NAME R sas|policies|audit|rekey|rekey-ike|delete`: IPsec of a lab router."""

from __future__ import annotations

import os
from typing import Any

import click

from lsr import render
from lsr.cli.common import json_option
from lsr.cli.lab import lab
from lsr.errors import LsrError


def _sa_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = []
    for sa in data["sas"]:
        c = sa["counters"]
        d = sa["direction"]
        pk, by = (c["packets_out"], c["bytes_out"]) if d == "out" else (c["packets_in"], c["bytes_in"])
        if sa.get("protocol") == "ah":
            algo = "AH " + sa["integrity"]
        else:
            algo = sa["encryption"] + ("" if sa["integrity"] == "none" else "+" + sa["integrity"])
        rows.append((d, sa["name"], sa["spi"], f"{sa['src']} -> {sa['dst']}",
                     algo + (" udp4500" if sa.get("udp_encap") else ""), pk, by,
                     c["replay_drops"], c["icv_failures"],
                     sa["next_seq"] if d == "out" else sa["replay_top"]))
    return rows


@lab.command("ipsec")
@click.argument("name")
@click.argument("router")
@click.argument("what", type=click.Choice(["sas", "policies", "audit", "rekey", "rekey-ike", "delete"]),
                default="sas")
@click.option("--conn", help="IKE connection (rekey, rekey-ike, delete).")
@json_option
def ipsec_(name: str, router: str, what: str, conn: str | None, as_json: bool) -> None:
    """IPsec SAs with counters and SA health, SPD policies, audited drops and SA errors; or
    rekey the Child SA / the IKE SA, or delete the Child SA (it is created again)."""
    if os.geteuid() != 0:
        raise LsrError("lab commands need root", code=2)
    import lsr.lab as L
    from lsr.lab import strongswan

    topo = L.topology(name)
    if router not in topo.nodes:
        raise LsrError(f"lab '{name}' has no node '{router}'")
    if topo.nodes[router].kind == strongswan.KIND:
        data = strongswan.show(name, router, what)
        if as_json:
            render.emit_json(data)
        else:
            click.echo(data.get("text", ""))
        return
    params: dict[str, Any] = {"view": what}
    if what in ("rekey", "rekey-ike", "delete"):
        if not conn:
            raise LsrError(f"{what} needs --conn NAME (an ipsec.ike connection)")
        params["conn"] = conn
    data = L.query(name, router, "ipsec", **params)
    if as_json:
        render.emit_json(data)
        return
    if what == "sas":
        render.table(f"{router}: IPsec SAs", ["dir", "sa", "spi", "tunnel", "algorithms", "packets",
                                              "bytes", "replay drops", "icv failures", "seq/top"],
                     _sa_rows(data))
        for c in data["ike"]:
            # an SA that is missing, expiring without a successor or failing its rekeys is an
            # error, whatever the IKE SA's own state
            err = f"  error: {c['error']}" if c["error"] and not c["problems"] else ""
            click.echo(f"IKE {c['name']} ({c['role']}, peer {c['peer']} {c['remote']}"
                       f"{', NAT-T' if c['nat_t'] else ''}): {c['state']}{err}")
            for p in c["problems"]:
                click.echo(f"  ERROR {p['problem']}: {p['detail']}")
        other = {**data["sad"], **data["stage"]}
        if any(other.values()):
            click.echo("  " + "  ".join(f"{k}={v}" for k, v in other.items() if v))
    elif what == "policies":
        rows = [(d, p["name"], p["src"], p["dst"], p["protocol"] if p["protocol"] is not None else "any",
                 p["action"], p["sa"] or "-")
                for d in ("outbound", "inbound") for p in data[d]]
        rows.append(("both", "default", "0.0.0.0/0", "0.0.0.0/0", "any", data["default"], "-"))
        render.table(f"{router}: SPD (first match)", ["dir", "policy", "src", "dst", "proto",
                                                       "action", "sa"], rows)
    elif what == "audit":
        render.table(f"{router}: IPsec drops (latest)", ["time", "reason", "sa", "spi", "seq",
                                                          "src", "dst", "detail"],
                     [(a["time"], a["reason"], a["sa"], a["spi"], a["seq"], a["src"], a["dst"],
                       a["detail"]) for a in data])
    else:
        click.echo(f"{router}: {data}")
