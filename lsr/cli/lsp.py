"""`lsr lsp ping|traceroute`: RFC 8029 LSP ping and traceroute, in a lab or the simulator.

Also registers the lab commands built on them: `lsr lab validate`, `lsr lab node`
and `lsr lab converge`.
"""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from lsr import render
from lsr.cli.common import json_option, load, simulated
from lsr.cli.root import main
from lsr.errors import LsrError

_STYLE = {"pass": "[green]pass[/]", "fail": "[bold red]FAIL[/]", "skip": "[yellow]skip[/]"}


@main.group()
def lsp() -> None:
    """LSP ping and traceroute (RFC 8029): real MPLS echo requests in a lab, or the simulator."""


def _backend(args: tuple[str, ...], sim_file: str | None, wait: float) -> tuple[Any, Any, str, str]:
    """(backend, topology, FROM, FEC) from `NAME FROM FEC` or `--sim FILE FROM FEC`."""
    from lsr.oam.lspping import check_router

    if sim_file:
        from lsr.oam.lspping import fib6s_from_json, lfib_network
        from lsr.oam.validate import lfibs_from_json

        if len(args) != 2:
            raise click.UsageError("with --sim FILE give FROM FEC")
        topo = load(sim_file)
        src, fec = args
        check_router(topo, src)
        # What did not converge is named on stderr; ping and traceroute then show where
        # the LSP breaks (their exit status is 1 then).
        # the simulation's LFIBs and 6PE routes (`lsr sim lfib --json`), as a lab's routers
        # have them
        doc = simulated(topo).sim.lfib_json()
        return lfib_network(topo, lfibs_from_json(doc), fib6s_from_json(doc)), topo, src, fec
    if len(args) != 3:
        raise click.UsageError("give NAME FROM FEC (or --sim FILE FROM FEC)")
    import os

    if os.geteuid() != 0:
        raise LsrError("lab commands need root (or use --sim FILE)", code=2)
    from lsr.lab.lsp import LabSender

    name, src, fec = args
    sender = LabSender(name, wait=wait)
    check_router(sender.topo, src)
    return sender, sender.topo, src, fec


_args = click.argument("args", nargs=-1, metavar="NAME FROM FEC")
_sim = click.option("--sim", "sim_file", type=click.Path(dir_okay=False),
                    help="Run against the LDP simulation of this topology file instead of a lab.")
_wait = click.option("--wait", default=1.0, show_default=True,
                     type=click.FloatRange(0, min_open=True), help="Seconds to wait for each reply.")
_vrf = click.option("--vrf", metavar="VRF",
                    help="FEC is a prefix (an address, a site) of FROM's VRF VRF: probe its VPN "
                         "IPv4 FEC (RFC 8029 §3.2.5) over the route's two labels (an IPv6 "
                         "prefix: the VPN IPv6 FEC, §3.2.6).")
_v6 = click.option("-6", "v6", is_flag=True,
                   help="FEC is a host's IPv6 subnet (subnet6): a 6PE route's BGP labeled IPv6 "
                        "FEC (RFC 8029 §3.2.14), or with --vrf / a VPN site its VPN IPv6 FEC. "
                        "An IPv6 prefix needs no -6.")


_SHORT = {1: "malformed", 2: "TLV not understood", 3: "egress", 4: "no mapping",
          5: "DS mapping mismatch", 8: "label switched", 9: "no MPLS forwarding",
          10: "not the given label", 11: "no label entry", 13: "premature termination"}


def _rc(code: int | None, name: str) -> str:
    if code is None:
        return "[yellow]timeout[/]"
    style = "green" if code in (3, 8) else "bold red"
    return f"[{style}]{code}[/] {escape(_SHORT.get(code, name))}"


def _hop_name(h: dict[str, Any]) -> str:
    """Who answered a traceroute hop; a silent hop as the router the DDMAP named."""
    if h["router"]:
        return str(h["router"])
    return f"{h['expected_router']} (silent)" if h.get("expected_router") else "*"


def _title(what: str, out: dict[str, Any], src: str) -> str:
    v = out.get("vpn")
    six = out.get("sixpe")
    fec = out["fec"] if v is None else (
        f"{out['fec']} in VRF {v['vrf']}"
        + (f" (RD {v['rd']}, egress {v['egress'] or v['egress_address']})" if v["rd"] else ""))
    if six is not None:
        fec += (f" (6PE, egress {six['egress'] or six['egress_address']} label {six['label']})"
                if six["label"] is not None else " (6PE)")
    return f"{what} {fec} from {src} ({out['backend']})"


@lsp.command("ping")
@_args
@_sim
@_wait
@_vrf
@_v6
@click.option("--count", "-c", default=1, show_default=True, type=click.IntRange(1, 10000))
@json_option
def ping_cmd(args: tuple[str, ...], sim_file: str | None, wait: float, vrf: str | None, v6: bool,
             count: int, as_json: bool) -> None:
    """Ping the LSP of FEC (a router name = its loopback, a host = its subnet, or a prefix)
    from router FROM; a VPN site, or a prefix with --vrf, is a VPN IPv4 FEC; an IPv6
    prefix (or a host with -6) a 6PE route's BGP labeled IPv6 FEC, or in a VRF a VPN
    IPv6 FEC.

    Exit status 0 when every reply says "egress" (return code 3), else 1.
    """
    from lsr.oam.lspping import lsp_ping, resolve_target

    backend, topo, src, fec_s = _backend(args, sim_file, wait)
    out = lsp_ping(backend, src, resolve_target(topo, src, fec_s, vrf, v6), count=count)
    if as_json:
        render.emit_json(out)
    else:
        rows = [(r["sequence"], r["router"] or "", _rc(r["return_code"], r["return_code_name"]),
                 r["return_subcode"], "" if r["rtt_ms"] is None else f"{r['rtt_ms']:.3f}")
                for r in out["replies"]]
        render.table(_title("LSP ping", out, src),
                     ["seq", "replier", "return code", "subcode", "rtt ms"], rows)
        tail = f"result: {out['result']}"
        if out.get("rtt_ms"):
            tail += f" (rtt min/avg/max {out['rtt_ms']['min']}/{out['rtt_ms']['avg']}/{out['rtt_ms']['max']} ms)"
        if out.get("reason"):
            tail += f": {out['reason']}"
        render.line(escape(tail))
    if out["result"] != "ok":
        raise click.exceptions.Exit(1)


@lsp.command("traceroute")
@_args
@_sim
@_wait
@_vrf
@_v6
@click.option("--multipath", is_flag=True, help="Explore every ECMP branch (DDMAP multipath bitmaps).")
@click.option("--max-ttl", default=30, show_default=True, type=click.IntRange(1, 255))
@json_option
def traceroute_cmd(args: tuple[str, ...], sim_file: str | None, wait: float, vrf: str | None,
                   v6: bool, multipath: bool, max_ttl: int, as_json: bool) -> None:
    """Trace the LSP of FEC from router FROM: label TTL 1, 2, ... until the egress answers
    (a VPN or 6PE FEC as for ping: every label of the stack gets the probe's TTL).

    Exit status 0 when every branch reaches the egress (return code 3), else 1.
    """
    from lsr.oam.lspping import lsp_traceroute, resolve_target

    backend, topo, src, fec_s = _backend(args, sim_file, wait)
    out = lsp_traceroute(backend, src, resolve_target(topo, src, fec_s, vrf, v6), multipath=multipath,
                         max_ttl=max_ttl)
    if as_json:
        render.emit_json(out)
    else:
        rows = [(h["path"], h["ttl"], _hop_name(h), h["interface"] or "",
                 _rc(h["return_code"], h["return_code_name"]),
                 "/".join(str(x) for x in h["labels"]), ", ".join(h["downstream"]),
                 "" if h["rtt_ms"] is None else f"{h['rtt_ms']:.3f}") for h in out["hops"]]
        render.table(_title("LSP traceroute", out, src),
                     ["path", "ttl", "router", "in if", "return code", "out labels", "downstream",
                      "rtt ms"], rows)
        for p in out["paths"]:
            mine = [h for h in out["hops"] if h["path"] == p["path"]]
            # a branch forked from another one at a transit router: the hops before the
            # fork are the other branch's (they are in `routers`, not among its hops)
            shared = p["routers"][:len(p["routers"]) - sum(1 for h in mine if h["router"])]
            hops = [*shared, *(_hop_name(h) for h in mine)]
            render.line(escape(f"path {p['path']}: {' -> '.join([src, *hops])}: {p['result']}"))
        b = out["broken_at"]
        tail = f"result: {out['result']}"
        if b:
            tail += f", broken at hop {b['ttl']} {b['router'] or '*'}: {b['return_code_name']}"
            if b["return_code_name"] == "timeout" and b["router"]:
                tail += " (no reply)"
        if out.get("reason"):
            tail += f" ({out['reason']})"
        render.line(escape(tail))
    if out["result"] != "ok":
        raise click.exceptions.Exit(1)


# ---------------------------------------------------------------- lab commands

try:
    from lsr.cli.lab import lab as _lab_group
except ModuleNotFoundError:  # pragma: no cover
    _lab_group = None

if _lab_group is not None:

    @_lab_group.command("validate")
    @click.argument("name")
    @click.option("--no-traceroute", is_flag=True, help="Skip the control plane vs data plane traceroutes.")
    @click.option("--sample", default=40, show_default=True, type=click.IntRange(1),
                  help="At most this many (ingress, FEC) pairs are traced (all on small labs).")
    @json_option
    def lab_validate(name: str, no_traceroute: bool, sample: int, as_json: bool) -> None:
        """Validate a running lab: expect: assertions, LSP invariants on the live LFIBs, real
        pings, and LSP traceroute paths = LFIB paths. Exit status 1 when anything fails."""
        from lsr.lab import need_root
        from lsr.lab.lsp import validate_live

        need_root()
        out = validate_live(name, sample=sample, traceroutes=not no_traceroute)
        if as_json:
            render.emit_json(out)
        else:
            render.table(f"{name}: LSP validation (live)", ["check", "status", "detail"],
                         [(escape(r["check"]), _STYLE[r["status"]], escape(r["detail"]))
                          for r in out["results"]])
            render.line(f"{out['passed']} passed, {out['failed']} failed, {out['skipped']} skipped")
        if out["failed"]:
            raise click.exceptions.Exit(1)

    @_lab_group.command("node")
    @click.argument("name")
    @click.argument("router")
    @click.argument("action", type=click.Choice(["stop", "start"]))
    @click.option("--no-wait", is_flag=True, help="start: do not wait for the lab to converge.")
    @json_option
    def lab_node(name: str, router: str, action: str, no_wait: bool, as_json: bool) -> None:
        """Stop or start ROUTER's runtime (its namespace and links stay up: LDP sessions
        with it drop, LSPs through it break). For an FRR router: zebra, ospfd, ldpd and
        our dataplane in it."""
        from lsr.lab import local_only
        from lsr.lab.control import node_start, node_stop

        local_only(name, "node")
        out = node_stop(name, router) if action == "stop" else node_start(name, router, wait=not no_wait)
        what = "FRR (zebra, ospfd, ldpd, dataplane)" if out.get("kind") == "frr" else "runtime"
        if as_json:
            render.emit_json(out)
        elif action == "stop":
            render.line(f"{router}: {what} stopped (pids {out['stopped_pids']})")
        else:
            conv = out.get("converged_seconds")
            pids = ", ".join(f"{d} {p}" for d, p in out["pids"].items()) if "pids" in out \
                else f"pid {out['pid']}"
            render.line(f"{router}: {what} started ({pids})"
                        + (f", lab converged in {conv:.2f} s" if conv is not None else ""))

    @_lab_group.command("converge")
    @click.argument("name")
    @click.option("--fail", "fail_link", metavar="A-B", help="The link to fail (A and B: NODE or NODE:IFACE).")
    @click.option("--restart", "restart_router", metavar="R",
                  help="Restart router R's runtime instead (stop, then start at once).")
    @click.option("--kill", is_flag=True, help="--restart: SIGKILL (a crash) instead of SIGTERM.")
    @click.option("--from", "src", help="Probe source host (default: chosen automatically).")
    @click.option("--to", "dst", help="Probe destination host (default: chosen automatically).")
    @click.option("--rate", default=1000, show_default=True, type=click.IntRange(1), help="Probes per second.")
    @click.option("--before", default=1.0, show_default=True, type=click.FloatRange(0), help="Seconds of probes before the failure.")
    @click.option("--after", type=click.FloatRange(0),
                  help="Seconds of probes after the failure  [default: 2, 10 with --restart]")
    @click.option("--keep-down", is_flag=True, help="Leave the link down afterwards.")
    @json_option
    def lab_converge(name: str, fail_link: str | None, restart_router: str | None, kill: bool,
                     src: str | None, dst: str | None, rate: int, before: float,
                     after: float | None, keep_down: bool, as_json: bool) -> None:
        """Fail link A-B (or restart router R) under a steady probe stream and report the
        convergence timeline and every outage."""
        from lsr.lab import local_only, need_root
        from lsr.lab.converge import converge, restart

        local_only(name, "converge")

        if (fail_link is None) == (restart_router is None):
            raise LsrError("give --fail A-B or --restart R (one of them)")
        if kill and restart_router is None:
            raise LsrError("--kill goes with --restart R")
        if keep_down and restart_router is not None:
            raise LsrError("--keep-down goes with --fail A-B")
        need_root()
        if restart_router is not None:
            out = restart(name, restart_router, kill=kill, src=src, dst=dst, rate=rate,
                          before=before, after=10.0 if after is None else after)
            what = f"{restart_router} restart ({out['signal']})"
        else:
            assert fail_link is not None
            from lsr.lab import topology

            # node (and interface) names may contain '-': the lab's topology splits A-B
            ln = topology(name).parse_link(fail_link)
            out = converge(name, f"{ln.a[0]}:{ln.a[1]}", f"{ln.b[0]}:{ln.b[1]}", src=src,
                           dst=dst, rate=rate, before=before,
                           after=2.0 if after is None else after, keep_down=keep_down)
            what = f"{out['link']} down"
        if as_json:
            render.emit_json(out)
            return
        rows = [(f"{e['t_ms']:+.1f}", e["router"] or "", escape(e["event"]), escape(e.get("detail", "")))
                for e in out["timeline"]]
        render.table(f"{name}: convergence after {what} "
                     f"({out['probe']['from']} -> {out['probe']['to']}, {rate} pps)",
                     ["t ms", "router", "event", "detail"], rows)
        p = out["probe"]
        outage = (f"outage {p['outage_ms']} ms" if p["recovered"] else
                  f"not recovered: no probe arrived in the last {p['outage_at_least_ms']} ms "
                  "of the stream")
        render.line(f"sent {p['sent']}, received {p['received']}, lost {p['lost']} "
                    f"(receiver counted {p['receiver_lost']} lost), {outage}")
        if len(p["outages"]) > 1:
            render.line(f"{len(p['outages'])} separate outages (traffic came back and was lost "
                        "again): " + ", ".join(f"{g['lost']} lost, gap {g['gap_ms']} ms"
                                               for g in p["outages"]))
        if p["lost_before_failure"]:
            render.line(f"warning: {p['lost_before_failure']} of the lost probes were sent before "
                        "the link went down (see 'loss before the failure'): the path was "
                        "already losing traffic")
