"""Output: rich tables for people, sorted JSON for programs (docs/cli.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich import table as rich_table
from rich.console import Console

console = Console()


def emit_json(data: Any) -> None:
    """Print `data` as JSON, keys sorted so output is deterministic."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = rich_table.Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")  # a narrow terminal wraps values, never cuts them
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console.print(t)


def line(text: str) -> None:
    console.print(text, highlight=False)


def plain(text: str) -> None:
    """A line printed as it is (no rich markup: names and causes may hold brackets)."""
    console.print(text, highlight=False, markup=False)


# ---------------------------------------------------------------- the tables of sim and lab
#
# `lsr sim ...` and `lsr lab ...` print the same data through these functions, so the
# simulator's tables and a live lab's read the same: one layout per kind, labels spelled
# as FRR's ldpd does (`imp-null`, `exp-null`; JSON keeps the numbers), uptimes HH:MM:SS
# (JSON keeps seconds). Each `*_table` returns (title, columns, rows); `show` prints it.

TableSpec = tuple[str, list[str], list[tuple[Any, ...]]]
_NULLS = {3: "imp-null", 0: "exp-null", 2: "exp-null"}  # RFC 3032 §2.1


def label_text(label: int | None) -> str:
    """A label in a table: `imp-null` (3), `exp-null` (0, 2), the number, or `-`."""
    if label is None:
        return "-"
    return _NULLS.get(label, str(label))


def stack_text(labels: Sequence[int], op: str) -> str:
    """An out-label stack: labels top first; `-` for a pop, `(none)` for an unlabelled push."""
    if not labels:
        return "(none)" if op == "push" else "-"
    return " ".join(label_text(x) for x in labels)


def hms(seconds: float | None) -> str:
    """Seconds as HH:MM:SS (hours go past 24), `-` for None."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def lfib_tables(data: dict[str, Any]) -> list[TableSpec]:
    """`lsr sim lfib` / `lsr lab lfib`: per router its FTN and its ILM."""
    out: list[TableSpec] = []
    for r, d in data["routers"].items():
        rows: list[tuple[Any, ...]] = []
        for e in d["ftn"]:
            for k, nh in enumerate(e["nexthops"]):
                rows.append((e["fec"] if k == 0 else "", nh["neighbor"], nh["interface"],
                             nh["nexthop"], stack_text(nh["out_labels"], "push")))
        out.append((f"{r} ({d['lsr_id']}): FTN", ["FEC", "via", "interface", "nexthop", "push"],
                    rows))
        rows = []
        for e in d["ilm"]:
            for k, nh in enumerate(e["nexthops"]):
                rows.append((e["in_label"] if k == 0 else "", e["fec"] if k == 0 else "",
                             nh["op"], stack_text(nh["out_labels"], nh["op"]), nh["neighbor"],
                             nh["interface"], nh["nexthop"]))
        for e in d.get("vpn_ilm", []):  # VPN labels (RFC 4364): pop, then the VRF decides
            what = f"VRF {e['vrf']}" + (f" {e['prefix']}" if e["prefix"] else "")
            if e["nexthops"]:
                nh = e["nexthops"][0]
                rows.append((e["in_label"], what, "pop", "-", nh["neighbor"], nh["interface"],
                             nh["nexthop"]))
            else:
                rows.append((e["in_label"], what, "pop", "-", f"lookup in {e['vrf']}", "", ""))
        out.append((f"{r}: ILM", ["in", "FEC", "op", "out", "via", "interface", "nexthop"], rows))
        if "ipv6" in d:
            out.append(sixpe_table(r, d["ipv6"]))
    return out


def sixpe_table(router: str, d: dict[str, Any]) -> TableSpec:
    """The 6PE part of `lsr sim lfib` (`lsr.core.fib6`): IPv6 prefixes and the label
    stack pushed (LDP label on top, the egress's 6PE label under it), the router's own
    6PE labels (pop, IPv6 lookup) and prefixes without an LSP."""
    rows: list[tuple[Any, ...]] = []
    for e in d["routes"]:
        for k, nh in enumerate(e["nexthops"]):
            rows.append((e["prefix"] if k == 0 else "", e["egress"] or e["next_hop"],
                         label_text(e["label"]) if k == 0 else "", nh["neighbor"],
                         nh["interface"], stack_text(nh["out_labels"], "push")))
    for p, why in d["unresolved"].items():
        rows.append((p, "-", "-", "-", "-", why))
    own = ", ".join(str(x) for x in d["labels"]) or "-"
    return (f"{router}: 6PE (IPv6 over labels; own 6PE label: {own})",
            ["prefix", "egress", "6PE label", "via", "interface", "push"], rows)


def vrf_show(data: dict[str, Any]) -> None:
    """`lsr sim vrf` / `lsr lab vrf`: per PE and VRF its routes with the label stack
    pushed [transport, VPN], then its VPN labels and the routes not installed."""
    for r, d in data["routers"].items():
        for name, v in d["vrfs"].items():
            rts = f"import {' '.join(v['import']) or '-'}, export {' '.join(v['export']) or '-'}"
            rows = [(e["prefix"], _vrf_source(e), _vrf_where(e), _vrf_labels(e))
                    for e in v["fib"]]
            table(f"{r} VRF {name} (RD {v['rd']}; {rts}; {v['label_mode']} labels)",
                  ["prefix", "source", "next hop", "push"], rows)
            lab = ", ".join(f"{x['in_label']} -> " + (
                f"pop, to {x['nexthops'][0]['neighbor']}" if x["nexthops"] else
                f"pop, lookup in {name}") + (f" ({x['prefix']})" if x["prefix"] else "")
                for x in v["vpn_labels"])
            plain(f"  VPN labels: {lab or '-'}")
            for x in v["rejected"]:
                plain(f"  not installed: {x['prefix']}: {x['reason']}")


def _vrf_source(e: dict[str, Any]) -> str:
    if e["source"] == "vpn":
        return f"bgp {e['rd']}"
    if e["source"] == "leaked":
        return f"vrf {e['vrf']}" + (f" ({e['rd']})" if e.get("rd") else "")
    return e["source"]


def _vrf_where(e: dict[str, Any]) -> str:
    if e["source"] == "vpn":
        hops = ", ".join(f"{n['neighbor']} {n['interface']}" for n in e["nexthops"])
        return f"{e['pe_name']} via {hops}"
    if e.get("interface"):
        return e["interface"]
    return ", ".join(f"{n['nexthop']} ({n['neighbor']}) {n['interface']}" for n in e["nexthops"])


def _vrf_labels(e: dict[str, Any]) -> str:
    """The stack pushed, top first, per ECMP next hop: 'transport/VPN'."""
    if e["source"] != "vpn":
        return "-"
    stacks = {"/".join(str(x) for x in n["out_labels"] if x != 3) for n in e["nexthops"]}
    return " | ".join(sorted(stacks))


def bindings_table(router: str, bindings: list[dict[str, Any]]) -> TableSpec:
    """`lsr sim bindings` / `lsr lab ldp R bindings`: the LIB, one row per remote label."""
    rows: list[tuple[Any, ...]] = []
    for e in bindings:
        local = label_text(e.get("local_label"))
        remote = e.get("remote") or [None]
        for k, rm in enumerate(remote):
            rows.append((e["fec"] if k == 0 else "", local if k == 0 else "",
                         rm["neighbor"] if rm else "-", label_text(rm["label"]) if rm else "-"))
    return (f"{router}: LDP bindings", ["FEC", "local", "neighbor", "remote"], rows)


def ldp_neighbors_table(router: str, neighbors: list[dict[str, Any]]) -> TableSpec:
    """`lsr sim neighbors` / `lsr lab ldp R neighbors`: one row per LDP peer."""
    rows = [(n["neighbor"], n["lsr_id"], n["state"], n.get("role", "-"),
             ",".join(n.get("adjacencies", [])), hms(n.get("uptime")))
            for n in neighbors]
    return (f"{router}: LDP neighbors",
            ["neighbor", "LSR ID", "state", "role", "adjacencies", "uptime"], rows)


def ospf_neighbors_table(router: str, neighbors: list[dict[str, Any]]) -> TableSpec:
    """`lsr sim ospf` / `lsr lab ospf R neighbors`: one row per OSPF adjacency."""
    rows = [(n["neighbor"], n["router_id"], n["interface"], n["address"], n["state"],
             hms(n.get("uptime")), n.get("retransmit", "-"))
            for n in neighbors]
    return (f"{router}: OSPF neighbors", ["neighbor", "router ID", "interface", "address",
                                          "state", "uptime", "rxmt"], rows)


def show(tables: TableSpec | Iterable[TableSpec]) -> None:
    """Print one table or several."""
    for title, columns, rows in [tables] if isinstance(tables, tuple) else tables:
        table(title, columns, rows)
