"""Stopping and starting one router's runtime in a running lab (`lsr lab node NAME R stop|start`).

Stopping kills only the router's runtime process (by its recorded PID and
start time, SIGTERM: LDP sends Shutdown and closes its sessions). Its
namespace, veths and kernel routes stay, so the IGP still routes through it
(every router keeps it in SPF) but its neighbours lose the LDP session and
nothing forwards labelled packets there any more: LSPs through it break (a
black hole), which `lsr lab validate` and `lsr lsp traceroute` report.
Starting spawns a fresh runtime (same arguments as `lab up`), replays the
lab's down links to it, releases its start barrier and waits for the lab to
converge again.

An FRR node (`kind: frr`) stops whole: ospfd, ldpd (with its lde and ldpe),
bgpd where it runs one, our dataplane in it, then zebra (SIGTERM: ospfd flushes
its LSAs, ldpd closes its sessions, bgpd sends its peers a Cease NOTIFICATION,
zebra takes its kernel routes away). Its namespace, links and configs stay;
starting it runs the daemons again in `lab up`'s order (`frr.start_node`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from lsr.core.topology import Topology
from lsr.lab import frr
from lsr.lab.state import LabState, ns_name, pid_alive


def _router_pids(state: LabState, router: str) -> list[tuple[int, int | None]]:
    return [(int(p["pid"]), p.get("start")) for p in state.read().get("pids", [])
            if p.get("role") == f"router:{router}"]


def _frr_pids(state: LabState, node: str, zebra: bool) -> list[tuple[int, int | None]]:
    """An FRR node's recorded processes: zebra's alone, or all the others."""
    roles = set(frr.node_roles(node))
    return [(int(p["pid"]), p.get("start")) for p in state.read().get("pids", [])
            if p.get("role") in roles and (p["role"].endswith(":zebra") == zebra)]


def _terminate(pids: list[tuple[int, int | None]], timeout: float,
               sig: signal.Signals = signal.SIGTERM) -> list[int]:
    """`sig` (SIGTERM) to the live ones, SIGKILL what is left after `timeout`; the pids
    signalled."""
    live = [(p, s) for p, s in pids if pid_alive(p, s)]
    for p, _ in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, sig)
    deadline = time.monotonic() + timeout
    while any(pid_alive(p, s) for p, s in live) and time.monotonic() < deadline:
        time.sleep(0.02)
    for p, s in live:
        if pid_alive(p, s):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    deadline = time.monotonic() + 10.0  # killed: gone a moment later, then it is stopped
    while any(pid_alive(p, s) for p, s in live) and time.monotonic() < deadline:
        time.sleep(0.01)
    for p, _ in live:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(p, os.WNOHANG)
    return [p for p, _ in live]


def _check(name: str, router: str) -> Topology:
    import lsr.lab

    lsr.lab.need_root()
    topo = lsr.lab.topology(name)
    if router not in topo.nodes or not topo.nodes[router].is_router:
        raise lsr.lab.LabError(f"lab '{name}' has no router '{router}'")
    return topo


def running(name: str, router: str) -> bool:
    """Our router's runtime is alive (FRR nodes: `frr.not_running`)."""
    return any(pid_alive(p, s) for p, s in _router_pids(LabState(name), router))


def node_stop(name: str, router: str, timeout: float = 5.0,
              sig: signal.Signals = signal.SIGTERM) -> dict:
    """Stop router's runtime (`sig`, SIGTERM by default, then SIGKILL after `timeout`);
    returns {"router", "stopped_pids"}. SIGKILL is a crash: nothing is sent (no LDP
    Shutdown); the kernel closes its TCP connections. For an FRR node: its daemons and
    our dataplane in it (and "kind": "frr")."""
    topo = _check(name, router)
    state = LabState(name)
    out: dict = {"router": router}
    if frr.is_frr(topo, router):
        # zebra last: the others tell their peers on the way out (LSA flush, LDP Shutdown)
        stopped = _terminate(_frr_pids(state, router, zebra=False), timeout, sig)
        stopped += _terminate(_frr_pids(state, router, zebra=True), timeout, sig)
        # no stale LFIB for `lab lfib` / `lab validate`, no socket of a dead dataplane
        for f in (frr.node_dir(name, router) / "lfib.json", state.dir / f"{router}.sock"):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        out["kind"] = frr.KIND
    else:
        stopped = _terminate(_router_pids(state, router), timeout, sig)
        for suffix in (".sock", ".ready"):
            with contextlib.suppress(FileNotFoundError):
                (state.dir / f"{router}{suffix}").unlink()
    with state.update() as st:
        st["stopped_routers"] = sorted(set(st.get("stopped_routers", [])) | {router})
    out["stopped_pids"] = stopped
    return out


def _frr_start(name: str, router: str, timeout: float) -> dict:
    import lsr.lab

    state = LabState(name)
    if not frr.not_running(name, router):
        raise lsr.lab.LabError(f"FRR router {router} of lab '{name}' is already running")
    if any(pid_alive(p, s) for p, s in _frr_pids(state, router, zebra=False)
           + _frr_pids(state, router, zebra=True)):
        raise lsr.lab.LabError(f"FRR router {router} of lab '{name}' is partly running "
                               f"(not: {', '.join(frr.not_running(name, router))}): "
                               f"lsr lab node {name} {router} stop, then start")
    roles = set(frr.node_roles(router))
    with state.update() as st:  # the old records are all dead: status counts the new ones
        st["pids"] = [p for p in st.get("pids", []) if p.get("role") not in roles]
    t0 = time.monotonic()
    pids = frr.start_node(name, router, state, t0 + timeout)
    return {"router": router, "kind": frr.KIND, "pid": pids["ldpd"], "pids": pids,
            "started": round(time.monotonic() - t0, 3)}


def node_start(name: str, router: str, timeout: float = 30.0, wait: bool = True) -> dict:
    """Start router's runtime again; with `wait`, return once the lab has converged."""
    import lsr.lab
    from lsr.lab import node

    topo = _check(name, router)
    state = LabState(name)
    if frr.is_frr(topo, router):
        out = _frr_start(name, router, timeout)
        with state.update() as st:
            st["stopped_routers"] = sorted(set(st.get("stopped_routers", [])) - {router})
        if wait:
            out["converged_seconds"] = round(lsr.lab.wait_converged(name, timeout), 3)
        return out
    if running(name, router):
        raise lsr.lab.LabError(f"router {router} of lab '{name}' is already running")
    with contextlib.suppress(FileNotFoundError):
        (state.dir / f"{router}.ready").unlink()
    args = ["--state-dir", str(state.dir), "--router", router, "--wait-start", "--restart"]
    pid = node.spawn_forked(ns_name(name, router), args, state.dir / f"{router}.log")
    state.add_pid(pid, f"router:{router}")
    t0 = time.monotonic()
    while not (state.dir / f"{router}.ready").exists():
        if not pid_alive(pid, None):
            raise lsr.lab.LabError(f"router {router} exited during start-up")
        if time.monotonic() - t0 > timeout:
            raise lsr.lab.LabError(f"router {router} did not start within {timeout:.0f} s")
        time.sleep(0.02)
    for idx in state.read().get("down_links", []):
        lsr.lab.query(name, router, "link", link=idx, up=False)
    lsr.lab.query(name, router, "start")
    with state.update() as st:
        st["stopped_routers"] = sorted(set(st.get("stopped_routers", [])) - {router})
    out = {"router": router, "pid": pid, "started": round(time.monotonic() - t0, 3)}
    if wait:
        out["converged_seconds"] = round(lsr.lab.wait_converged(name, timeout), 3)
    return out
