"""`lsr lab ...`: labs on network namespaces (needs root)."""

from __future__ import annotations

import os
import shutil
import sys
import time

import click

from lsr import render
from lsr.cli.common import json_option, load, topology_arg
from lsr.cli.root import main
from lsr.errors import LsrError


def lab_api():  # imported lazily: `lsr --help` must not pay for it
    import lsr.lab

    return lsr.lab


def require_root() -> None:
    if os.geteuid() != 0:
        raise LsrError("lab commands need root", code=2)


@main.group()
def lab() -> None:
    """Labs: every router in its own network namespace, real LDP, userspace MPLS."""


@lab.command()
@topology_arg
@click.option("--name", "-n", help="Lab name (default: the topology's name).")
@click.option("--timeout", default=60.0, show_default=True,
              type=click.FloatRange(0, min_open=True), help="Seconds to wait for convergence.")
@click.option("--no-ring", is_flag=True, help="Plain recv loop instead of TPACKET_V2 rings.")
@click.option("--keep", is_flag=True,
              help="If the lab fails (e.g. does not converge), leave it up for `lab status`, "
                   "`lab ldp`... (`lab down` removes it); the exit status is still 1.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="auto", default=None,
              metavar="[ADDRESS]",
              help="Spread the lab over the machines of the Ray cluster whose head is at "
                   "ADDRESS (HOST:PORT; alone: auto), links between machines as VXLAN "
                   "(docs/multihost.md). Give it last, or as --ray=ADDRESS.")
@click.option("--machines", metavar="M1,M2,...",
              help="With --ray: these machines (default: the placement: section's, or every "
                   "Ray node with an lsr_machine_<name> resource).")
@click.option("--place", multiple=True, metavar="NODE=MACHINE",
              help="With --ray: run NODE (or NODE,NODE,...) on MACHINE; repeatable. The rest "
                   "is partitioned automatically (few links cut).")
def up(file: str, name: str | None, timeout: float, no_ring: bool, keep: bool = False,
       ray_address: str | None = None, machines: str | None = None,
       place: tuple[str, ...] = ()) -> None:
    """Build the lab of FILE and wait until LDP has converged."""
    require_root()
    L = lab_api()
    if ray_address is None and (machines or place):
        raise LsrError("--machines and --place need --ray ADDRESS (a lab over several "
                       "machines)")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    t0 = time.monotonic()
    with L.signals_interrupt():  # SIGTERM, SIGHUP: torn down like Ctrl-C, one line
        try:
            topo = load(file)
            name = name or topo.name
            # Not on a pipe or file: there its last frame would stay behind as a blank line.
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
                          console=render.console, transient=True,
                          disable=not render.console.is_terminal) as prog:
                task = prog.add_task(f"{name}: starting", total=1.0)

                def show(msg: str, frac: float) -> None:
                    prog.update(task, completed=frac, description=f"{name}: {msg}")
                if ray_address is not None:
                    from lsr.lab import multihost

                    lab_ = multihost.up(
                        topo, ray_address, name=name, timeout=timeout, keep=keep, progress=show,
                        ring=not no_ring,
                        machines=[m.strip() for m in machines.split(",")] if machines else None,
                        place=multihost.parse_place(place))
                else:
                    lab_ = L.up(topo, name=name, timeout=timeout, ring=not no_ring, keep=keep,
                                progress=show)
        except LsrError as e:
            from lsr.lab.state import LabState

            if not keep or not name or LabState(name).read().get("failed") != str(e):
                raise  # not kept: failed before the lab existed (a name taken, bad input)
            click.echo(f"lsr: {e}", err=True)
            click.echo(f"lsr: lab '{name}' kept for debugging: lsr lab status {name}; "
                       f"lsr lab ldp {name} ROUTER neighbors; lsr lab down {name}", err=True)
            sys.exit(1)
        except KeyboardInterrupt as e:
            # L.up tore down what it had built before re-raising (or had built nothing).
            why = getattr(e, "name", "SIGINT")
            left = f"; nothing of lab '{name}' is left" if name else ""
            click.echo(f"lsr: interrupted ({why}){left}", err=True)
            sys.exit(128 + getattr(e, "signum", 2))
    render.line(f"lab [bold]{name}[/bold] up: {len(topo.routers)} routers, {len(topo.hosts)} hosts, "
                f"converged in {lab_.converge_seconds:.2f} s ({time.monotonic() - t0:.2f} s total)")
    if ray_address is not None:
        _machines_lines(name)


def _machines_lines(name: str) -> None:
    """Where each node of a lab over several machines runs, and the underlay's warnings."""
    from lsr.lab.state import LabState

    st = LabState(name).read()
    for m, info in st.get("multihost", {}).get("machines", {}).items():
        render.line(f"  {m} ({info.get('host', '?')}, underlay {info.get('underlay', '?')}): "
                    f"{', '.join(info['nodes'])}")
    for w in st.get("warnings", []):
        render.line(f"  warning: {w}")


@lab.command()
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Take the lab down even if another user brought it up (lsr lab list: owner).")
def down(name: str, force: bool) -> None:
    """Tear lab NAME down (a no-op if it is not there). Someone else's lab: refused
    without --force."""
    require_root()
    if lab_api().down(name, force=force):
        render.line(f"lab {name} down")
    else:
        render.line(f"no lab named {name}")


@lab.command("list")
@json_option
def list_(as_json: bool) -> None:
    """Labs on this machine, everyone's: owner, start time, uptime, state."""
    require_root()
    labs = lab_api().labs()
    if as_json:
        render.emit_json({"labs": labs})
        return
    if not labs:
        render.line("no labs")
        return
    render.table("labs", ["lab", "topology", "owner", "started", "uptime", "state", "routers"],
                 [(x["name"], x["topology"] or "-", x["owner"] or "-",
                   time.strftime("%Y-%m-%d %H:%M", time.localtime(x["started"]))
                   if x["started"] else "-", render.hms(x["uptime"]), x["state"], x["routers"])
                  for x in labs])


@lab.command()
@click.argument("name")
@json_option
def status(name: str, as_json: bool) -> None:
    """Router processes and LDP sessions of lab NAME."""
    require_root()
    st = lab_api().status(name)
    if as_json:
        render.emit_json(st)
        return
    rows = []
    has_bgp = any("bgp" in info for info in st["routers"].values())
    for r, info in st["routers"].items():
        sess = info.get("sessions", {})
        up_ = sum(1 for v in sess.values() if str(v).endswith("OPERATIONAL"))
        reasons = list(info.get("reasons", {}).items())
        why = "; ".join(f"{k}: {v}" for k, v in reasons[:3])
        if len(reasons) > 3:  # a Hello flood makes many (bounded: ldp max_adjacencies)
            why += f"; and {len(reasons) - 3} more (lsr lab ldp {name} {r} neighbors)"
        if info.get("md5_drops"):
            why += f" [{info['md5_drops']} TCP MD5 drops]"
        ospf = str(info["ospf_full"]) if "ospf_full" in info else "-"
        if info.get("carrier_down"):
            why = (why + "; " if why else "") + "no carrier on " + ", ".join(info["carrier_down"])
        if info.get("not_running"):  # an FRR node's daemons that died or were stopped
            why = (why + "; " if why else "") + "not running: " + ", ".join(info["not_running"])
        if info.get("refused"):  # flood bounds at work (docs/cli.md, "refused")
            why = (why + "; " if why else "") + "refused " + ", ".join(
                f"{proto} {k} {v}" for proto, r in info["refused"].items() for k, v in r.items())
        row = [r, *([info.get("machine", "-")] if "machines" in st else []),
               "-" if info["pid"] is None else info["pid"], "yes" if info["alive"] else "DEAD",
               f"{up_}/{len(sess)}", ospf]
        if has_bgp:  # BGP sessions Established / configured (labs with a bgp: section)
            bgp = info.get("bgp")
            row.append("-" if bgp is None else
                       f"{sum(1 for v in bgp.values() if v == 'Established')}/{len(bgp)}")
        rows.append((*row, info.get("error") or why))
    down = ", ".join(st["down_link_names"]) or "none"
    whose = f"{st['owner']}'s, " if st.get("owner") else ""
    up_since = (f"up since {time.strftime('%H:%M:%S', time.localtime(st['started']))}, "
                if st.get("started") else "")
    render.table(f"lab {name} ({st['topology']}; {whose}{up_since}down links: {down})",
                 ["router", *(["machine"] if "machines" in st else []), "pid", "alive",
                  "sessions up", "ospf full",
                  *(["bgp up"] if has_bgp else []), "error"], rows)
    if st.get("failed"):
        render.plain(f"kept after a failed lab up: {st['failed']}")
    for m, info in st.get("machines", {}).items():  # a lab over several machines
        render.plain(f"{m} ({info.get('host', '?')}, underlay {info.get('underlay', '?')}): "
                     f"{', '.join(info['nodes'])}")
    for w in st.get("warnings", []):
        render.plain(f"warning: {w}")
    if st.get("impairments"):  # lsr lab link NAME A B set ...
        render.table(f"lab {name}: impaired links (each direction)",
                     ["link", "impairment", "impair-loss", "impair-queue-full"],
                     [(i["name"], i["describe"], i["impair-loss"], i["impair-queue-full"])
                      for i in st["impairments"]])


@lab.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("node")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(name: str, node: str, cmd: tuple[str, ...]) -> None:
    """Run CMD inside NODE's namespace; its exit status is ours."""
    require_root()
    sys.exit(lab_api().exec_in(name, node, list(cmd)))


@lab.command()
@click.argument("name")
@click.option("--router", "-r", help="Only this router.")
@json_option
def lfib(name: str, router: str | None, as_json: bool) -> None:
    """FTN and ILM of the routers (JSON as `lsr sim lfib --json`)."""
    require_root()
    L = lab_api()
    topo = L.topology(name)
    if router is not None and (router not in topo.nodes or not topo.nodes[router].is_router):
        raise LsrError(f"lab '{name}' has no router '{router}'")
    data = L.lfib(name, [router] if router else None)
    if as_json:
        render.emit_json(data)
        return
    render.show(render.lfib_tables(data))  # the layout of `lsr sim lfib`


@lab.command("vrf")
@click.argument("name")
@click.argument("router", required=False)
@click.option("--vrf", "vrf_name", help="Only this VRF.")
@json_option
def vrf_(name: str, router: str | None, vrf_name: str | None, as_json: bool) -> None:
    """The VRFs of each PE (or ROUTER) in a running lab: every route, where it goes and
    the label stack pushed, the VPN labels (JSON and tables as `lsr sim vrf`)."""
    require_root()
    data = lab_api().vrf(name, [router] if router else None, vrf_name)
    if as_json:
        render.emit_json(data)
    else:
        render.vrf_show(data)


@lab.command("ldp")
@click.argument("name")
@click.argument("router")
@click.argument("what", type=click.Choice(["neighbors", "bindings"]))
@json_option
def ldp_(name: str, router: str, what: str, as_json: bool) -> None:
    """LDP neighbours or label bindings of ROUTER."""
    require_root()
    data = lab_api().ldp(name, router, what)
    if as_json:
        render.emit_json(data)
    elif what == "neighbors":  # the tables of `lsr sim neighbors` / `lsr sim bindings`
        render.show(render.ldp_neighbors_table(router, data))
    else:
        render.show(render.bindings_table(router, data["bindings"]))


@lab.command()
@click.argument("name")
@click.argument("router", required=False)
@json_option
def counters(name: str, router: str | None, as_json: bool) -> None:
    """Runtime, LDP message and dataplane counters of one or all routers."""
    require_root()
    L = lab_api()
    topo = L.topology(name)
    if router is not None and router in topo.nodes and topo.nodes[router].kind == "frr":
        raise LsrError(f"{router} is an FRR router: lsr lab exec {name} {router} -- vtysh -c "
                       f"'show mpls ldp neighbor detail'")
    names = [router] if router else [r.name for r in topo.routers if r.kind != "frr"]
    data = {"routers": {r: L.query(name, r, "counters") for r in names}}
    if as_json:
        render.emit_json(data)
        return
    for r, c in data["routers"].items():
        rows = [("runtime", k, v) for k, v in c["runtime"].items()]
        for d in ("sent", "received", "refused"):
            rows += [(f"ldp {d}", k, v) for k, v in c.get("ldp", {}).get(d, {}).items()]
        bgp = c.get("bgp", {})
        for d in ("sent", "received", "notifications_sent", "notifications_received",
                  "refused"):
            rows += [(f"bgp {d.replace('_', ' ')}", k, v) for k, v in bgp.get(d, {}).items()]
        rows += [("bgp", k, bgp[k]) for k in ("treated_as_withdraw", "attributes_discarded")
                 if bgp.get(k)]
        dp = c.get("dataplane", {})
        # every frame read: forwarded + delivered + drops (forwarding.tables.counters_json)
        rows += [("dataplane", k, dp[k]) for k in ("forwarded", "delivered") if k in dp]
        rows += [("drop", k, v) for k, v in dp.get("drops", {}).items() if v]
        rows += [("ilm", k, f"{v['packets']} pkts {v['bytes']} B") for k, v in dp.get("ilm", {}).items()
                 if v["packets"]]
        rows += [("ftn", k, f"{v['packets']} pkts {v['bytes']} B") for k, v in dp.get("ftn", {}).items()
                 if v["packets"]]
        for k, v in c.get("impair", {}).items():  # impaired links (lsr lab link ... set)
            rows += [("impair", f"{k} {ctr}", v[ctr])
                     for ctr in ("impair-loss", "impair-queue-full", "impair-passed", "held")]
        render.table(f"{r}: counters", ["group", "counter", "value"], rows)


@lab.command()
@click.argument("name")
@click.argument("where", metavar="NODE:IFACE")
@click.option("-w", "write", type=click.Path(dir_okay=False), help="Write a pcap file.")
@click.option("-c", "count", type=click.IntRange(1), help="Stop after N packets.")
def capture(name: str, where: str, write: str | None, count: int | None) -> None:
    """Capture on NODE:IFACE inside the lab (tcpdump, or tshark if tcpdump is missing)."""
    require_root()
    if where.count(":") != 1:
        raise LsrError(f"'{where}' must be NODE:IFACE")
    node, ifname = where.split(":")
    lab_api().local_only(name, "capture")  # elsewhere: tcpdump on the node's machine
    topo = lab_api().topology(name)
    if node not in topo.nodes or ifname not in topo.nodes[node].interfaces:
        raise LsrError(f"lab '{name}' has no interface {where}")
    if shutil.which("tcpdump"):
        argv = ["tcpdump", "--immediate-mode", "-i", ifname, "-n", "-e", "-U"]
        if write:
            argv += ["-w", write]
        if count:
            argv += ["-c", str(count)]
    elif shutil.which("tshark"):
        argv = ["tshark", "-i", ifname, "-n"]
        if write:
            argv += ["-w", write, "-F", "pcap"]
        if count:
            argv += ["-c", str(count)]
    else:
        raise LsrError("capture needs tcpdump or tshark")
    try:
        rc = lab_api().exec_in(name, node, argv)
    except KeyboardInterrupt:
        rc = 0
    sys.exit(rc)


@lab.command("link", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("a")
@click.argument("b")
@click.argument("action", type=click.Choice(["up", "down", "set", "clear", "show"]))
@click.argument("values", nargs=-1, type=click.UNPROCESSED)
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until LDP has reconverged (up, down).")
@json_option
def link_(name: str, a: str, b: str, action: str, values: tuple[str, ...], wait: bool,
          as_json: bool) -> None:
    """Fail or restore the A-B link (down, up: every router recomputes its IGP and LDP
    reacts; A and B are NODE or NODE:IFACE, which picks one of parallel links), or impair it in both directions in our dataplane: `set delay 20ms jitter 2ms
    loss 1% rate 10mbit [queue 1000]` (merged into what is set), `clear`, `show`."""
    require_root()
    L = lab_api()
    if action in ("up", "down"):
        if values:
            raise LsrError(f"'{action}' takes no values")
        L.link(name, a, b, action == "up")
        topo = L.topology(name)
        msg = f"link {topo.link_name(topo.find_link(a, b))} {action}"
        if wait:
            msg += f", reconverged in {L.wait_converged(name):.2f} s"
        render.line(msg)
        return
    if action == "set":
        from lsr.core.impair import parse_words

        try:
            view = L.impair(name, a, b, parse_words(values))
        except ValueError as e:
            raise LsrError(f"lab link {a} {b} set: {e}") from None
    elif action == "clear":
        if values:
            raise LsrError("'clear' takes no values")
        view = L.impair(name, a, b, None)
    else:
        if values:
            raise LsrError("'show' takes no values")
        view = L.link_view(name, a, b)
    if as_json:
        render.emit_json(view)
        return
    render.line(f"link {view['name']} ({' '.join(view['endpoints'])}"
                f"{', down' if view['down'] else ''}): {view['describe']}"
                + (" (each direction)" if view["impair"] else ""))
    if action == "show":
        rows = [(r, d.get("interface", ""), d.get("direction", ""), d.get("impair-loss", ""),
                 d.get("impair-queue-full", ""), d.get("impair-passed", ""), d.get("held", ""))
                for r, per in view["applied_by"].items() for d in per.values()]
        if rows:
            render.table(f"link {view['name']}: impairment counters",
                         ["router", "interface", "dir", "impair-loss", "impair-queue-full",
                          "passed", "held"], rows)


__all__ = ["lab"]


@lab.command()
@click.argument("name")
@click.option("--events", "-n", default=20, show_default=True, type=click.IntRange(1, 100000),
              help="Failures and recoveries to apply.")
@click.option("--seed", "-s", default=1, show_default=True, type=int,
              help="Random seed (the same seed gives the same events).")
@click.option("--settle-timeout", default=90.0, show_default=True,
              type=click.FloatRange(1), help="Seconds an event may take to settle.")
@json_option
def chaos(name: str, events: int, seed: int, settle_timeout: float, as_json: bool) -> None:
    """Soak NAME with random link failures (lab link, ip link in a namespace), router
    stops and starts; after each, every LFIB must equal the simulator's; at the end,
    idle routers must be idle and hold no more file descriptors or memory."""
    require_root()
    lab_api().local_only(name, "chaos")
    from lsr.lab import chaos as chaos_mod

    rep = chaos_mod.run(name, events, seed, say=(lambda s: None) if as_json else render.line,
                        settle_timeout=settle_timeout)
    if as_json:
        render.emit_json(rep)
    else:
        p = rep["pings"]
        render.line(f"{events} events, settled in {rep['settle_mean_s']:.2f} s on average "
                    f"(max {rep['settle_max_s']:.2f} s)"
                    + (f"; pings {p['received']}/{p['sent']}" if "sent" in p else ""))
        rows = [(r, i["pid"], f"{i['idle_cpu']:.1%}", f"{i.get('fds_before', '-')} -> {i['fds']}",
                 f"{i.get('rss_before', 0) >> 20} -> {i['rss'] >> 20} MB")
                for r, i in rep["routers"].items()]
        render.table("routers after the soak", ["router", "pid", "idle CPU", "fds", "RSS"], rows)
        for prob in rep["problems"]:
            render.line(f"problem: {prob}")
    if not rep["ok"]:
        sys.exit(1)
