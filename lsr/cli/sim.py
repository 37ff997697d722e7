"""`lsr sim ...`: run LDP on every router of a topology in memory (virtual clock)."""

from __future__ import annotations

import click

from lsr import render
from lsr.cli.common import json_option, load, pick_routers, topology_arg
from lsr.cli.root import main
from lsr.core.labels import label_name
from lsr.errors import LsrError
from lsr.sim import Simulation, simulate


def _run(file: str) -> tuple[Simulation, dict]:
    sim, res = simulate(load(file))
    if not res.converged:
        raise LsrError(f"{file}: LDP did not converge (virtual time {res.ended:.3f} s)")
    return sim, sim.summary_json(res)


@main.group()
def sim() -> None:
    """Simulate LDP on every router in one process (deterministic, no root)."""


@sim.command()
@topology_arg
@json_option
def run(file: str, as_json: bool) -> None:
    """Converge LDP on FILE; print sessions, FECs, labels, time and messages."""
    s, summary = _run(file)
    if as_json:
        render.emit_json(summary)
        return
    render.line(
        f"{summary['topology']}: {summary['routers']} routers, {summary['sessions']} sessions "
        f"OPERATIONAL, {summary['fecs']} FECs, {summary['labels']} local labels, "
        f"{summary['ftn_entries']} FTN / {summary['ilm_entries']} ILM entries"
    )
    render.line(f"converged at virtual time {summary['convergence_time']:.3f} s "
                f"({summary['events']} events)")
    if "vpn" in summary:
        v = summary["vpn"]
        render.line(f"VPN: {v['pes']} PEs, {v['vrfs']} VRFs, {v['vpn_routes']} VPN routes "
                    f"exported, {v['vrf_routes']} VRF routes installed"
                    + (f", {v['rejected']} without an LSP" if v["rejected"] else ""))
    render.table("messages sent", ["type", "count"], sorted(summary["messages"].items()))


@sim.command()
@topology_arg
@click.option("--router", "-r", help="Only this router.")
@json_option
def lfib(file: str, router: str | None, as_json: bool) -> None:
    """FTN and ILM of each router after convergence."""
    s, _ = _run(file)
    names = pick_routers(s.topo, router)
    data = s.lfib_json(names)
    if as_json:
        render.emit_json(data)
        return
    for r in names:
        d = data["routers"][r]
        rows = []
        for e in d["ftn"]:
            for k, nh in enumerate(e["nexthops"]):
                rows.append((e["fec"] if k == 0 else "", nh["neighbor"], nh["interface"],
                             nh["nexthop"], _stack(nh["out_labels"], "push")))
        render.table(f"{r} ({d['lsr_id']}): FTN", ["FEC", "via", "interface", "nexthop", "push"],
                     rows)
        rows = []
        for e in d["ilm"]:
            for k, nh in enumerate(e["nexthops"]):
                rows.append((e["in_label"] if k == 0 else "", e["fec"] if k == 0 else "",
                             nh["op"], _stack(nh["out_labels"], nh["op"]), nh["neighbor"],
                             nh["interface"], nh["nexthop"]))
        for e in d.get("vpn_ilm", []):  # VPN labels (RFC 4364): pop, then the VRF decides
            what = f"VRF {e['vrf']}" + (f" {e['prefix']}" if e["prefix"] else "")
            if e["nexthops"]:
                nh = e["nexthops"][0]
                rows.append((e["in_label"], what, "pop", "-", nh["neighbor"], nh["interface"],
                             nh["nexthop"]))
            else:
                rows.append((e["in_label"], what, "pop", "-", f"lookup in {e['vrf']}", "", ""))
        render.table(f"{r}: ILM", ["in", "FEC", "op", "out", "via", "interface", "nexthop"], rows)


def _stack(labels: list[int], op: str) -> str:
    if not labels:
        return "-" if op != "push" else "(none)"
    return " ".join(str(x) for x in labels)


@sim.command()
@topology_arg
@click.option("--router", "-r", required=True, help="The router.")
@json_option
def bindings(file: str, router: str, as_json: bool) -> None:
    """The LIB of ROUTER: local and remote label per FEC."""
    s, _ = _run(file)
    (name,) = pick_routers(s.topo, router)
    data = s.bindings_json(name)
    if as_json:
        render.emit_json(data)
        return
    rows = []
    for e in data["bindings"]:
        local = "-" if e["local_label"] is None else label_name(e["local_label"])
        remote = e["remote"] or [None]
        for k, rm in enumerate(remote):
            rows.append((e["fec"] if k == 0 else "", local if k == 0 else "",
                         rm["neighbor"] if rm else "-", label_name(rm["label"]) if rm else "-"))
    render.table(f"{name}: LDP bindings", ["FEC", "local", "neighbor", "remote"], rows)


@sim.command()
@topology_arg
@click.option("--router", "-r", help="Only this router.")
@json_option
def neighbors(file: str, router: str | None, as_json: bool) -> None:
    """LDP sessions of each router after convergence."""
    s, _ = _run(file)
    names = pick_routers(s.topo, router)
    data = {"routers": {r: {"neighbors": s.neighbors_json(r)} for r in names}}
    if as_json:
        render.emit_json(data)
        return
    for r in names:
        rows = [(n["neighbor"], n["lsr_id"], n["state"], n["role"], ",".join(n["adjacencies"]),
                 n["keepalive"]) for n in data["routers"][r]["neighbors"]]
        render.table(f"{r}: LDP neighbors", ["neighbor", "LSR ID", "state", "role",
                                             "adjacencies", "keepalive"], rows)


@sim.command("vrf")
@topology_arg
@click.argument("router", required=False)
@click.option("--vrf", "vrf_name", help="Only this VRF.")
@json_option
def vrf_cmd(file: str, router: str | None, vrf_name: str | None, as_json: bool) -> None:
    """The VRFs of each PE (or ROUTER) after convergence: every route with where it goes
    and its label stack [transport, VPN], and the VPN labels (RFC 4364)."""
    s, _ = _run(file)
    names = pick_routers(s.topo, router)
    if router is not None and not s.topo.nodes[router].vrfs:
        raise LsrError(f"{file}: {router} has no VRFs")
    if not s.pes:
        raise LsrError(f"{file}: no router has VRFs (topology.nodes.R.vrfs)")
    known = {v for r in names for v in s.topo.nodes[r].vrfs}
    if vrf_name is not None and vrf_name not in known:
        raise LsrError(f"{file}: no VRF named {vrf_name!r}" + (f" on {router}" if router else ""))
    data = s.vrf_json([r for r in names if s.topo.nodes[r].vrfs], vrf_name)
    if as_json:
        render.emit_json(data)
        return
    for r, d in data["routers"].items():
        for name, v in d["vrfs"].items():
            rts = f"import {' '.join(v['import']) or '-'}, export {' '.join(v['export']) or '-'}"
            rows = []
            for e in v["fib"]:
                rows.append((e["prefix"], _source(e), _where(e), _vrf_labels(e)))
            title = f"{r} VRF {name} (RD {v['rd']}; {rts}; {v['label_mode']} labels)"
            render.table(title, ["prefix", "source", "next hop", "push"], rows)
            lab = ", ".join(f"{x['in_label']} -> " + (
                f"pop, to {x['nexthops'][0]['neighbor']}" if x["nexthops"] else
                f"pop, lookup in {name}") + (f" ({x['prefix']})" if x["prefix"] else "")
                for x in v["vpn_labels"])
            render.line(f"  VPN labels: {lab or '-'}")
            for x in v["rejected"]:
                render.line(f"  not installed: {x['prefix']}: {x['reason']}")


def _source(e: dict) -> str:
    if e["source"] == "vpn":
        return f"bgp {e['rd']}"
    if e["source"] == "leaked":
        return f"vrf {e['vrf']}" + (f" ({e['rd']})" if e.get("rd") else "")
    return e["source"]


def _where(e: dict) -> str:
    if e["source"] == "vpn":
        hops = ", ".join(f"{n['neighbor']} {n['interface']}" for n in e["nexthops"])
        return f"{e['pe_name']} via {hops}"
    if e.get("interface"):
        return e["interface"]
    return ", ".join(f"{n['nexthop']} ({n['neighbor']}) {n['interface']}" for n in e["nexthops"])


def _vrf_labels(e: dict) -> str:
    """The stack pushed, top first, per ECMP next hop: 'transport/VPN'."""
    if e["source"] != "vpn":
        return "-"
    stacks = {"/".join(str(x) for x in n["out_labels"] if x != 3) for n in e["nexthops"]}
    return " | ".join(sorted(stacks))
