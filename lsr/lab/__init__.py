"""Labs on network namespaces: the library API the CLI and tests use.

    lab = up(load_topology("topologies/line3.yaml"), name="t1")   # returns when converged
    exec_in("t1", "ce1", ["ping", "-c1", "192.168.2.2"])
    query("t1", "p1", "lfib")
    link("t1", "pe1", "p1", up=False)
    down("t1")

Every router runs `lsr.lab.node` in its own namespace `lsr-<lab>.<router>`;
hosts are plain namespaces with an address and a default route. Everything a
lab creates is recorded in `lsr.lab.state` first, so `down()` always works.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from lsr.core.igp import Igp
from lsr.core.topology import MAX_LAB_NAME, NAME_RE, Topology
from lsr.errors import LsrError
from lsr.lab import frr, netns, owner, strongswan
from lsr.lab.background import Background
from lsr.lab.files import write_file
from lsr.lab.interrupts import ENDING_SIGNALS, signals_held, signals_interrupt  # noqa: F401
from lsr.lab.routers import query_socket, record_pid, start_routers, wait_ready  # noqa: F401
from lsr.lab.state import LabError, LabState, lab_dir, ns_name, pid_alive, teardown
from lsr.lab.state import list_labs as _list_labs

__all__ = [
    "Lab", "LabError", "bgp", "down", "exec_in", "expected", "impair", "labs", "ldp", "lfib",
    "link", "link_view", "list_labs", "query", "status", "topology", "up", "wait_converged",
]

Progress = Callable[[str, float], None]  # (message, fraction done 0..1)


@dataclass
class Lab:
    name: str
    topo: Topology
    state_dir: Path
    converge_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def exec(self, node: str, argv: Sequence[str], **kw: Any) -> int:
        return exec_in(self.name, node, argv, **kw)

    def run(self, node: str, argv: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """Run in a node's namespace and capture output (tests)."""
        return run_in(self.name, node, argv, timeout)


    def query(self, router: str, what: str, /, **kw: Any) -> Any:
        return query(self.name, router, what, **kw)

    def link(self, a: str, b: str, up: bool) -> None:
        link(self.name, a, b, up)

    def down(self) -> bool:
        return down(self.name)


def run_in(name: str, node: str, argv: Sequence[str],
           timeout: float = 60) -> subprocess.CompletedProcess:
    """argv in a node's namespace, output captured (as text); on its machine, for a lab
    over several machines."""
    spread = _multihost(name)
    if spread is not None:
        return spread.run(name, node, list(argv), timeout)
    return subprocess.run(["ip", "netns", "exec", ns_name(name, node), *argv],
                          capture_output=True, text=True, timeout=timeout)


def need_root() -> None:
    if os.geteuid() != 0:
        raise LabError("lab commands need root", code=2)


def check_name(name: str) -> None:
    """One line (LabError) if `name` cannot name a lab."""
    _check_name(name)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or len(name) > MAX_LAB_NAME:
        raise LabError(f"lab name {name!r} must be lowercase letters, digits and '-', "
                       f"start with a letter, at most {MAX_LAB_NAME} characters")


# Router tuning knobs read from the environment (lsr.lab.node): (smallest, largest) allowed.
ENV_KNOBS = {"LSR_RING_FRAMES": (64, 1 << 16), "LSR_COAL_US": (0, 10_000),
             "LSR_LOG_BYTES": (4096, 1 << 30)}  # router log cap (lsr.lab.logcap)


def _check_env() -> None:
    """A bad knob is one line here, not a traceback in every router's log."""
    for var, (lo, hi) in ENV_KNOBS.items():
        v = os.environ.get(var)
        if v is None or v == "":
            continue
        if not v.isdigit() or not lo <= int(v) <= hi:
            raise LabError(f"{var}={v!r}: expected a whole number from {lo} to {hi}")


def topology_of(name: str) -> Topology:
    """The topology a running lab was built from."""
    return _topology(name)


def router_missing(name: str, topo: Topology, router: str, exp: dict[str, Any],
                   names: dict[str, str], down_links: Sequence[int] = ()) -> str | None:
    """What `router` (ours or an FRR node) still lacks against `expected(...)[router]`, or
    None if it matches."""
    if frr.is_frr(topo, router):
        w = frr.missing(name, topo, router, exp["peers"], query, down_links, exp.get("rib"))
        if w is None and "bgp" in exp:
            from lsr.lab import bgp_lab

            w = bgp_lab.frr_missing(name, topo, router, exp["bgp"])
        return w
    return _missing(name, router, exp, names)


def _multihost(name: str) -> Any:
    """lsr.lab.remote if lab `name` spans machines (its record says so), else None."""
    if not LabState(name).read().get("multihost"):
        return None
    from lsr.lab import remote

    return remote


def local_only(name: str, what: str) -> None:
    """One line if lab `name` spans machines (lsr.lab.multihost): `lsr lab <what>` works
    on the labs of one machine only."""
    rec = LabState(name).read().get("multihost")
    if rec:
        raise LabError(f"lab '{name}' spans machines ({', '.join(rec['machines'])}): "
                       f"'lsr lab {what}' works on a lab of one machine only "
                       "(docs/multihost.md)")


def _topology(name: str) -> Topology:
    p = lab_dir(name) / "topology.pickle"
    if not p.exists():
        raise LabError(f"no lab named '{name}' (lsr lab list)")
    return pickle.loads(p.read_bytes())


# ---------------------------------------------------------------- up / down


def up(topo: Topology, name: str | None = None, timeout: float = 60,
       progress: Progress | None = None, ring: bool = True, spawn: str = "fork",
       keep: bool = False) -> Lab:
    """Build the lab and return once every session is OPERATIONAL and every LFIB complete.

    The name is claimed first (an exclusive mkdir: of two `up` of one name, one fails at
    once and touches nothing). Any failure, timeout, Ctrl-C, SIGTERM or SIGHUP then tears
    down what this run recorded and re-raises (KeyboardInterrupt, or `Interrupted` for
    the two signals); with `keep`, a failure (not an interruption) leaves the
    lab as it is for `status`, `ldp`, `lfib`... (the lab state records it under "failed";
    `down` removes it). `spawn`: "fork" (routers forked from this process into their
    namespace: fast, shared memory) or "exec" (`ip netns exec python -m lsr.lab.node`).
    """
    need_root()
    name = name or topo.name
    _check_name(name)
    _check_env()
    say = progress or (lambda msg, frac: None)
    state = LabState(name)
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    claimed = False
    bg: Background | None = None
    with signals_interrupt():
        try:
            with signals_held():  # claimed and known to be: no signal in between
                state.claim({"topology": topo.name, "source": topo.source, "up_pid": os.getpid(),
                             "nodes": list(topo.nodes), "routers": [r.name for r in topo.routers]})
                claimed = True
            write_file(state.dir / "topology.pickle", pickle.dumps(topo), 0o600)  # every secret
            # What the routers must converge to, computed meanwhile (lsr.lab.background;
            # a signal inside fork() would be lost in the at-fork hooks: held)
            with signals_held():
                bg = Background(lambda: expected(topo), state.dir / "expected.pickle")
            say(f"creating {len(topo.nodes)} namespaces", 0.05)
            netns.create_namespaces(topo, name, state)
            timings["namespaces"] = time.monotonic() - t0
            say(f"creating {len(topo.links)} links", 0.2)
            netns.create_links(topo, name)
            timings["links"] = time.monotonic() - t0
            netns.configure_nodes(topo, name)
            timings["network"] = time.monotonic() - t0
            say(f"starting {len(topo.routers)} routers", 0.35)
            timings.update(frr.start(topo, name, state, t0 + timeout))  # kind: frr (FRR's ldpd)
            gate = start_routers(topo, name, state, ring, spawn)
            timings["forked"] = time.monotonic() - t0
            try:
                wait_ready(topo, name, state, t0 + timeout)
            finally:
                if gate is not None:  # the start barrier: all hello sockets exist now
                    gate.open()
            timings["ready"] = time.monotonic() - t0
            if gate is None:
                for r in frr.our_routers(topo):
                    query(name, r.name, "start")
            frr.start_ospfd(topo, name, state, t0 + timeout)
            timings["routers"] = time.monotonic() - t0
            say("waiting for LDP to converge", 0.5)
            _wait_converged(topo, name, t0 + timeout, say, timings=timings, t0=t0, exp=bg.result())
            timings["converged"] = time.monotonic() - t0
            state.set("converged", time.time())
            timings.update(strongswan.start(topo, name, state, time.monotonic() + timeout,
                                            query))
            with signals_held():
                state.set("building", False)  # from here `lab down` of it signals nobody
        except Exception as e:
            if bg is not None:
                bg.cancel()
            if claimed and keep:
                with contextlib.suppress(OSError, LsrError):  # the first error is the one to see
                    state.set("failed", str(e))
                    state.set("building", False)
            elif claimed:
                with signals_held(deliver=False):  # a second Ctrl-C must not cut teardown short
                    teardown(name)
            raise
        except BaseException:
            if bg is not None:
                bg.cancel()
            if claimed:
                with signals_held(deliver=False):
                    teardown(name)
            raise
    say("converged", 1.0)
    return Lab(name, topo, state.dir, timings["converged"], timings)


_start_routers = start_routers  # the names tests know
_ctrl_c_held = signals_held
_record = record_pid


def down(name: str, force: bool = False) -> bool:
    """Tear the lab down; False (and no error) if there was nothing to remove. A lab that
    another user brought up (`lsr.lab.owner`) is refused, one line naming its owner,
    unless `force`."""
    need_root()
    if not force:
        why = owner.refuse_down(name, LabState(name).read())
        if why:
            raise LabError(why)
    spread = _multihost(name)
    if spread is not None:  # every machine's part first: the record says where they are
        spread.down_parts(name)
    elif not LabState(name).exists():  # parts of a lab brought up on another machine
        from lsr.lab.agent import teardown_local_parts

        if teardown_local_parts(name):
            return True
    return teardown(name)


def list_labs() -> list[str]:
    return _list_labs()


def labs(now: float | None = None) -> list[dict[str, Any]]:
    """Every lab on this machine: name, topology, owner, when it started, how long it has
    been up and its state (`up`, `building`, `failed`: kept by `lab up --keep`, `stale`: its
    `lab up` died while building; `lsr lab down` removes it). `lsr lab list --json`."""
    now = time.time() if now is None else now
    out = []
    for name in _list_labs():
        st = LabState(name).read()
        if not st:
            continue  # torn down meanwhile
        b = st.get("builder") or {}
        if st.get("building"):
            state = "building" if pid_alive(b.get("pid", 0), b.get("start")) else "stale"
        else:
            state = "failed" if st.get("failed") else "up"
        o = st.get("owner") if isinstance(st.get("owner"), dict) else {}
        created = st.get("created")
        out.append({"name": name, "topology": st.get("topology"), "owner": o.get("user"),
                    "uid": o.get("uid"), "started": round(created, 1) if created else None,
                    "uptime": round(now - created, 1) if created else None, "state": state,
                    "routers": len(st.get("routers", [])), "nodes": len(st.get("nodes", []))})
    return out


# ---------------------------------------------------------------- convergence


def _operational(state: str) -> bool:
    return state.upper().rsplit(".", 1)[-1] == "OPERATIONAL"


def _shape(lfib: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """An LFIB without label values: FEC -> next hops (and ILM ops). Labels are compared by tests."""
    def nhs(e: dict[str, Any], op: bool) -> list:
        return sorted((names.get(n["neighbor"], n["neighbor"]), n["interface"], n["nexthop"],
                       n.get("op", "") if op else "") for n in e["nexthops"])
    return {"ftn": {e["fec"]: nhs(e, False) for e in lfib.get("ftn", [])},
            "ilm": sorted((e["fec"], tuple(nhs(e, True))) for e in lfib.get("ilm", [])),
            # a PE's VRF FIBs (RFC 4364): where each route goes, from which PE
            "vrfs": {v: {e["prefix"]: (e["source"], e.get("pe"), nhs(e, False)) for e in fib}
                     for v, fib in lfib.get("vrfs", {}).items()}}


def expected(topo: Topology, down_links: Sequence[int] = (),
             stopped: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Per router: expected LDP peers (LSR IDs) and the LFIB shape the simulator converges to.

    Uses `lsr.sim` (same LDP engine, in memory) when it is there; otherwise
    the IGP alone: an FTN entry for every remote prefix with its ECMP next hops.
    """
    igp = Igp(topo, down_links)
    names = {str(n.lsr_id): n.name for n in topo.routers}
    sim_lfib: dict[str, Any] | None = None
    sim_bgp: dict[str, Any] = {}
    sim_ribs: dict[str, Any] = {}  # FRR nodes' RIBs: what their dataplane's LFIB follows
    try:
        from lsr.sim import Simulation

        sim = Simulation(topo)
        quiet = sim.quiet_time()  # a config that cannot converge: stop once it settles
        sim.run(quiet=quiet)
        for i in down_links:
            sim.link_down(i)
            sim.run(quiet=quiet)
        for r in stopped:  # its process gone; its neighbours' interfaces keep carrier
            sim.router_stop(r)
        if stopped:
            sim.run(quiet=quiet)
        sim_lfib = sim.lfib_json()["routers"]
        if sim.ospf:
            sim_ribs = {r.name: dict(sim.ribs[r.name]) for r in frr.frr_routers(topo)
                        if r.name in sim.ribs}
        if sim.bgp:  # only labs with a `bgp:` section pay for this
            from lsr.lab import bgp_lab

            sim_bgp = bgp_lab.expected(sim, set(stopped))
    except ImportError:
        pass
    out: dict[str, dict[str, Any]] = {}
    for r in topo.routers:
        peers = set()
        for iface in r.interfaces.values():
            peer = topo.nodes[iface.peer_node]
            if peer.is_router and iface.link not in igp.down and peer.name not in stopped:
                peers.add(str(peer.lsr_id))
        exp: dict[str, Any] = {"peers": sorted(peers)}
        if sim_lfib is not None:
            exp["shape"] = _shape(sim_lfib[r.name], names)
        else:
            ftn: dict[str, int] = {}
            for prefix, route in igp.rib(r.name).items():
                if route.nexthops and (r.ldp.fecs == "all" or prefix.prefixlen == 32):
                    ftn[str(prefix)] = len(route.nexthops)
            exp["ftn"] = ftn
        if r.name in sim_bgp:
            exp["bgp"] = sim_bgp[r.name]
        if r.name in sim_ribs:  # with a router stopped, not the reference IGP's
            exp["rib"] = sim_ribs[r.name]
        out[r.name] = exp
    return out


def _missing(name: str, router: str, exp: dict[str, Any], names: dict[str, str]) -> str | None:
    """What router still lacks, or None if converged."""
    st = query(name, router, "status")
    sessions = st.get("sessions", {})
    bad = [p for p in exp["peers"] if not _operational(str(sessions.get(p, "none")))]
    if bad:
        return f"{router}: LDP session with {', '.join(names.get(p, p) for p in bad)} not " \
               f"OPERATIONAL ({', '.join(str(sessions.get(p, 'none')) for p in bad)})"
    lfib = query(name, router, "lfib")
    if "shape" in exp:
        have = _shape(lfib, names)
        want = exp["shape"]
        lacking = [f for f, n in want["ftn"].items() if have["ftn"].get(f) != n]
        extra = [f for f in have["ftn"] if f not in want["ftn"]]
        if not lacking and not extra and have["ilm"] != want["ilm"]:
            return f"{router}: ILM differs from the simulation"
        lacking += extra
    else:
        got = {e["fec"]: len(e["nexthops"]) for e in lfib.get("ftn", [])}
        lacking = [f for f, n in exp["ftn"].items() if got.get(f) != n]
    if lacking:
        lacking.sort(key=lambda p: IPv4Network(p))
        return f"{router}: FTN incomplete for {', '.join(lacking[:4])}" + \
               (f" (+{len(lacking) - 4} more)" if len(lacking) > 4 else "")
    if "bgp" in exp:
        from lsr.lab import bgp_lab

        why = bgp_lab.missing(name, router, exp["bgp"], st,
                              lambda v: query(name, router, "bgp", what=v)["routes"], names)
        if why:
            return why
    if "shape" in exp and have["vrfs"] != exp["shape"]["vrfs"]:
        diff = sorted(v for v in set(have["vrfs"]) | set(exp["shape"]["vrfs"])
                      if have["vrfs"].get(v) != exp["shape"]["vrfs"].get(v))
        return f"{router}: VRF {', '.join(diff)} differs from the simulation"
    return None


def _wait_converged(topo: Topology, name: str, deadline: float, say: Progress,
                    down_links: Sequence[int] = (), timings: dict[str, float] | None = None,
                    t0: float = 0.0, exp: dict[str, dict[str, Any]] | None = None) -> None:
    """Until every router matches `exp` (`expected`, computed here if not given); `timings`
    (lab up's) gets when the expected state was known ("expected"), the check's rounds and
    the time spent in them."""
    if exp is None:
        exp = expected(topo, down_links)
    # Sessions the configs keep down (`lsr topo validate` warns of them) are not waited
    # for: once the rest equals the simulator's (which has them down too), they are named
    # at once, not after the whole timeout.
    exp, blocked = _without_blocked(topo, exp, down_links)
    names = {str(n.lsr_id): n.name for n in topo.routers}
    pending = [r.name for r in topo.routers]
    last = ""
    if timings is not None:
        timings["expected"] = time.monotonic() - t0
        timings.setdefault("check_rounds", 0)
        timings.setdefault("check_seconds", 0.0)

    def why(r: str) -> str | None:
        try:
            return router_missing(name, topo, r, exp[r], names, down_links)
        except (OSError, LsrError) as e:
            return f"{r}: management socket: {e}"

    # Routers asked a few at a time: on a loaded machine each answer waits for its router
    # to be scheduled (200 routers one after the other: ~10 s a round).
    pool = ThreadPoolExecutor(max_workers=8) if len(pending) > 8 else None
    try:
        while True:
            round0 = time.monotonic()
            still = []
            for r, w in zip(pending, pool.map(why, pending) if pool else map(why, pending),
                            strict=True):
                if w:
                    still.append(r)
                    last = w
            if timings is not None:
                timings["check_rounds"] += 1
                timings["check_seconds"] += time.monotonic() - round0
            done = len(topo.routers) - len(still)
            say(f"converged {done}/{len(topo.routers)} routers",
                0.5 + 0.5 * done / max(1, len(topo.routers)))
            if not still and blocked:
                from lsr.lab.diagnose import explain

                raise LabError(f"lab '{name}' did not converge: "
                               f"{explain(name, topo, blocked, query) or last}")
            if not still:
                return
            pending = still
            if time.monotonic() > deadline:
                from lsr.lab.diagnose import explain

                raise LabError(f"lab '{name}' did not converge: "
                               f"{explain(name, topo, still, query) or last}")
            time.sleep(0.1)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _without_blocked(topo: Topology, exp: dict[str, dict[str, Any]],
                     down_links: Sequence[int]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """`exp` less the LDP and BGP sessions the configs keep down (and the LDP sessions
    over a link whose OSPF adjacency they keep down), and the routers at their ends."""
    from lsr.oam.diagnose import BGP, LDP, OSPF, config_findings

    drop: dict[str, set[str]] = {}  # router -> LDP peer LSR IDs and BGP peer addresses
    ends: set[str] = set()
    for s in config_findings(topo):
        if s.a not in exp or s.b not in exp:
            continue  # a router stopped
        if s.kind == OSPF and s.link in down_links:
            continue
        for x, y in ((s.a, s.b), (s.b, s.a)):
            if s.kind == OSPF:
                drop.setdefault(x, set()).add(str(topo.nodes[y].lsr_id))
                ends.add(x)
            elif s.kind == LDP and str(topo.nodes[y].lsr_id) in exp[x]["peers"]:
                drop.setdefault(x, set()).add(str(topo.nodes[y].lsr_id))
                ends.add(x)
            elif s.kind == BGP and "bgp" in exp[x]:
                from bgp.config import from_topology

                cfg = from_topology(topo, x)
                addrs = {str(p.address) for p in (cfg.peers if cfg else ()) if p.name == y}
                if addrs & set(exp[x]["bgp"]["peers"]):
                    drop.setdefault(x, set()).update(addrs)
                    ends.add(x)
    if not drop:
        return exp, []
    out = dict(exp)
    for r, gone in drop.items():
        e = out[r] = dict(exp[r])
        e["peers"] = [p for p in e["peers"] if p not in gone]
        if "bgp" in e:
            e["bgp"] = {**e["bgp"], "peers": [p for p in e["bgp"]["peers"] if p not in gone]}
    return out, sorted(ends, key=lambda n: topo.nodes[n].index)


def wait_converged(name: str, timeout: float = 30) -> float:
    """After a link change: wait until sessions and FTNs match the IGP again; returns seconds."""
    topo = _topology(name)
    t0 = time.monotonic()
    # Links down by any means (lab link, ip link in a namespace): what the routers see.
    _wait_converged(topo, name, t0 + timeout, lambda m, f: None, status(name)["down_links"])
    return time.monotonic() - t0


# ---------------------------------------------------------------- queries


def query(name: str, router: str, what: str, /, timeout: float = 5, **params: Any) -> Any:
    """One management request to a router: status, lfib, neighbors, bindings, counters, rib,
    ospf (`what="lsdb"` is a parameter of that request: the first three are positional)."""
    path = lab_dir(name) / f"{router}.sock"
    if not path.exists():
        if not lab_dir(name).exists():
            raise LabError(f"no lab named '{name}' (lsr lab list)")
        spread = _multihost(name)
        if spread is not None:  # the router runs on another machine: ask its agent
            return spread.query(name, router, what, timeout, params)
        raise LabError(f"lab '{name}' has no running router '{router}'")
    return query_socket(path, router, what, timeout, **params)


def lfib(name: str, routers: Sequence[str] | None = None) -> dict[str, Any]:
    """All (or some) routers' LFIBs in the JSON of `lsr sim lfib --json` (neighbours as names)."""
    topo = _topology(name)
    names = {str(n.lsr_id): n.name for n in topo.routers}
    out: dict[str, Any] = {}
    for r in routers or [n.name for n in topo.routers]:
        if frr.is_frr(topo, r):  # the LFIB our dataplane in it built from FRR's bindings
            j = frr.read_lfib(name, r)
            if j is None:
                if routers:
                    raise LabError(f"{r} is an FRR router without a dataplane LFIB yet; "
                                   f"see 'lsr lab ldp {name} {r} bindings'")
                continue
        else:
            j = query(name, r, "lfib")
        entries = j["ftn"] + j["ilm"] + j.get("vpn_ilm", []) + [
            e for fib in j.get("vrfs", {}).values() for e in fib]
        for e in entries:
            for nh in e["nexthops"]:
                nh["neighbor"] = names.get(nh["neighbor"], nh["neighbor"])
        out[r] = {"lsr_id": str(topo.nodes[r].lsr_id), **j}
    return {"routers": out}


def vrf(name: str, routers: Sequence[str] | None = None, vrf: str | None = None) -> dict[str, Any]:
    """`lsr lab vrf NAME [R] [--vrf V] --json`: the JSON of `lsr sim vrf --json`, from the
    PEs' runtimes (every router with VRFs, or `routers`)."""
    topo = _topology(name)
    pes = [r.name for r in topo.routers if r.vrfs]
    if not pes:
        raise LabError(f"lab '{name}' has no router with VRFs")
    out: dict[str, Any] = {}
    for r in routers or pes:
        if r not in topo.nodes or not topo.nodes[r].is_router:
            raise LabError(f"lab '{name}' has no router '{r}'")
        if not topo.nodes[r].vrfs:
            raise LabError(f"{r} has no VRFs")
        if frr.is_frr(topo, r):
            raise LabError(f"{r} is an FRR router: VRFs run on our routers only")
        out[r] = query(name, r, "vrf", vrf=vrf)
    return {"routers": out}


def ldp(name: str, router: str, what: str) -> Any:
    """`neighbors` or `bindings` of one router, peers named as in `lsr sim` JSON."""
    topo = _topology(name)
    names = {str(n.lsr_id): n.name for n in topo.routers}
    if frr.is_frr(topo, router):
        return frr.ldp_view(name, topo, router, what)
    if what == "neighbors":
        res = query(name, router, "neighbors")
        for e in res:
            e["neighbor"] = names.get(e["neighbor"], e["neighbor"])
        return res
    if what == "bindings":
        res = query(name, router, "bindings")
        for e in res:
            for rm in e.get("remote", []):
                rm["neighbor"] = names.get(rm["neighbor"], rm["neighbor"])
        return {"bindings": res}
    raise LabError(f"unknown LDP view '{what}' (neighbors, bindings)")


def topology(name: str) -> Topology:
    """The topology a running lab was built from."""
    return _topology(name)


def bgp(name: str, router: str, what: str = "summary") -> dict[str, Any]:
    """`lsr lab bgp NAME R summary|vpn|unicast --json` (docs/cli.md, "BGP"): the JSON of
    `lsr sim bgp`, for our routers and FRR's alike."""
    from lsr.lab import bgp_lab

    return bgp_lab.view(name, _topology(name), router, what, query)


def status(name: str) -> dict[str, Any]:
    """Lab summary: nodes, router processes alive, sessions, down links."""
    need_root()
    st = LabState(name).read()
    if not st:
        raise LabError(f"no lab named '{name}' (lsr lab list)")
    routers: dict[str, Any] = {}
    procs = [(p["role"].split(":", 1)[-1],
              {"pid": p["pid"], "alive": pid_alive(p["pid"], p["start"])})
             for p in st.get("pids", []) if not p["role"].startswith(("frr:", "strongswan:"))]
    spread = _multihost(name)
    if spread is not None:  # each machine's agent says which of its routers run
        procs = spread.processes(name)
    for role, info in procs:  # FRR daemons: frr.status below
        alive = info["alive"]
        if alive:
            try:
                s = query(name, role, "status", timeout=2)
                info["sessions"] = s["sessions"]
                info["uptime"] = s["uptime"]
                if "ospf_full" in s:
                    info["ospf_full"] = s["ospf_full"]
                    info["carrier_down"] = s.get("carrier_down", [])
                if s.get("refused"):
                    info["refused"] = s["refused"]
                if "bgp" in s:  # peer address -> BGP state, where the router runs BGP
                    info["bgp"] = s["bgp"]
                if not all(_operational(str(v)) for v in s["sessions"].values()):
                    info.update(frr.reasons(name, role, query(name, role, "neighbors", timeout=2)))
            except (OSError, LabError, ValueError) as e:
                info["error"] = str(e)
        routers[role] = info
    down = set(st.get("down_links", []))
    names: list[str] = []
    impairments: list[dict[str, Any]] = []  # links with delay/loss/rate (lsr.lab.linkimpair)
    with contextlib.suppress(LsrError, OSError, pickle.UnpicklingError):
        topo = _topology(name)
        routers.update(frr.status(name, topo, st.get("pids", [])))
        if "bgp" in topo.extra:  # FRR nodes with bgpd: their sessions as ours
            from lsr.lab import bgp_lab

            for r in frr.frr_routers(topo):
                info = routers.get(r.name)
                if info and info.get("alive") and "error" not in info:
                    with contextlib.suppress(OSError, LsrError, ValueError):
                        sess = bgp_lab.frr_sessions(name, topo, r.name)
                        if sess is not None:
                            info["bgp"] = sess
        # Links down by whatever means: `lab link`, `ip link` in a namespace, a veth gone.
        for r, info in routers.items():
            for ifname in info.get("carrier_down", []):
                iface = topo.nodes[r].interfaces.get(ifname)
                if iface is not None:
                    down.add(iface.link)
        names = [topo.link_name(topo.links[i]) for i in sorted(down)]
        from lsr.lab.linkimpair import status_rows

        impairments = status_rows(name, topo, st, query)
    o = st.get("owner") if isinstance(st.get("owner"), dict) else {}
    created = st.get("created")
    return {
        "lab": name, "topology": st.get("topology"), "source": st.get("source"),
        "owner": o.get("user"), "started": round(created, 1) if created else None,
        "namespaces": st.get("namespaces", []), "down_links": sorted(down),
        "down_link_names": names, "converged": st.get("converged"), "routers": routers,
        **({"failed": st["failed"]} if st.get("failed") else {}),
        "impairments": impairments,
        **({"machines": spread.machines(name)} if spread is not None else {}),
        **({"warnings": st["warnings"]} if st.get("warnings") else {}),
    }


def exec_in(name: str, node: str, argv: Sequence[str], **kw: Any) -> int:
    """Run argv inside a node's namespace; returns its exit status."""
    need_root()
    topo = _topology(name)
    if node not in topo.nodes:
        raise LabError(f"lab '{name}' has no node '{node}'")
    if frr.is_frr(topo, node):
        argv = frr.vtysh_argv(name, node, argv)  # vtysh -> this node's daemons
    spread = _multihost(name)
    if spread is not None:  # on its machine, through its agent (output when it ends)
        return spread.exec_in(name, node, list(argv), **kw)
    return subprocess.call(["ip", "netns", "exec", ns_name(name, node), *argv], **kw)


def link(name: str, a: str, b: str, up: bool) -> None:
    """Set both veth ends of the a-b link down/up (recorded in the lab state)."""
    need_root()
    topo = _topology(name)
    idx = netns.find_link(topo, a, b)
    state = LabState(name)
    with state.update() as st:
        down_set = set(st.get("down_links", []))
        (down_set.discard if up else down_set.add)(idx)
        st["down_links"] = sorted(down_set)
    # A carrier change: both ends see it through netlink (ours and FRR's zebra alike),
    # OSPF floods the rest. No router is told.
    spread = _multihost(name)
    if spread is not None:  # each end on its machine (a VXLAN end has no peer carrier)
        spread.set_link(name, topo, idx, up)
    else:
        netns.set_link(topo, name, idx, up)
    _await_carrier(name, topo, idx, up)


def impair(name: str, a: str, b: str, values: dict[str, str] | None) -> dict[str, Any]:
    """Set (merge `values`, raw as typed: {"delay": "20ms", "loss": "1%"}) or clear (None)
    the a-b link's impairments, both directions; returns link_view(). lsr.lab.linkimpair."""
    need_root()
    from lsr.lab import linkimpair

    linkimpair.set_impairment(name, _topology(name), a, b, values, query)
    return link_view(name, a, b)


def link_view(name: str, a: str, b: str) -> dict[str, Any]:
    """The a-b link: down or up, the impairment in force, each applying router's counters."""
    need_root()
    from lsr.lab import linkimpair

    topo = _topology(name)
    idx = netns.find_link(topo, a, b)
    return linkimpair.link_view(name, topo, idx, idx in status(name)["down_links"], query)


def _await_carrier(name: str, topo: Topology, idx: int, up: bool, timeout: float = 3.0) -> None:
    """Until our routers at both ends report the new carrier state (netlink takes a few ms),
    so a status or convergence check right after sees the link as it now is."""
    ln = topo.links[idx]
    ends = [(n, i) for n, i in (ln.a, ln.b) if topo.nodes[n].kind == "lsr"]
    deadline = time.monotonic() + timeout
    while ends and time.monotonic() < deadline:
        left = []
        for n, ifname in ends:
            try:
                down = ifname in query(name, n, "status", timeout=1).get("carrier_down", [])
            except (OSError, LsrError):
                continue  # a stopped router: nothing to wait for
            if down == up:
                left.append((n, ifname))
        ends = left
        if ends:
            time.sleep(0.02)
