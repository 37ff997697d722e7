"""FRR routers (`kind: frr`) in labs: FRRouting's zebra + ospfd + ldpd.

A node of kind `frr` gets the same namespace, veths and addresses as one of
ours, but instead of `lsr.lab.node` it runs FRR 8.x's `zebra`, `ospfd` and
`ldpd` (Debian: /usr/lib/frr). The daemons start as root and drop to user
`frr`, so their files cannot live in the (root-only, 0700) lab directory, and
root must never write where `frr` can (a planted symlink would redirect the
write). Three directories per node (docs/architecture.md, "Lab files"):

* `conf_dir`  RUN_DIR/<lab>.frr/<node>, root:frr 0750: the configs, root:frr
  0640 (they hold the node's LDP and OSPF keys: FRR reads them, nobody else);
* `run_dir`   <conf_dir>/run, frr:frr 0700: what the daemons write as frr: pid
  files, logs, the zserv socket (`-z`), vty sockets (`--vty_socket DIR`) and
  ldpd's control socket (`--ctl_socket DIR`: a directory, not a file, see
  docs/interop.md);
* `node_dir`  <lab dir>/frr/<node>, root 0700: what root writes: the daemons'
  stdout (`*.out`) and early log (`*.stdlog`, opened before they drop to frr),
  our dataplane's log and lfib.json.

* IGP: ospfd, configured from the same `ospf.config.from_topology` as our
  routers (`render_ospfd`): every router link point-to-point in area 0 with the
  link's cost, host links passive, the loopback a cost-0 host stub, our
  hello/dead/retransmit intervals and SPF/LSA throttling. Its routes go
  through zebra into the kernel (proto ospf) and to ldpd, as on any FRR box.
* FRR has no MPLS dataplane here (the kernel has no MPLS_ROUTING): FRR nodes
  are control-plane-only LDP peers. Convergence for them means: every session
  OPERATIONAL on both sides, and labels agree both ways with every neighbour
  (FRR's remote labels are our local ones and vice versa).
* BGP: a node named in the topology's `bgp:` section also runs bgpd (after zebra,
  whose next-hop tracking it waits for), configured by `lsr.lab.frr_bgp`.
* Processes are started in the foreground (no `-d`) with `Popen`, so their
  PIDs go into the teardown registry as they start; ldpd's two children
  (lde, ldpe) are recorded too once they appear (they also exit with their
  parent, and `teardown` kills whatever is left in the namespace).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from lsr.core.igp import Igp, Nexthop, Route
from lsr.core.lfib import FtnEntry, IlmEntry, Lfib, Nhlfe
from lsr.core.topology import Node, Topology
from lsr.errors import LsrError
from lsr.lab import files
from lsr.lab.frr_bgp import render_bgpd
from lsr.lab.state import LabState, lab_dir, ns_name, pid_alive, proc_start_time, side_dir

FRR_LIBEXEC = Path(os.environ.get("LSR_FRR_DIR", "/usr/lib/frr"))
DAEMONS = ("zebra", "ospfd", "ldpd")
KIND = "frr"
# Run our userspace MPLS dataplane in FRR nodes (FRR's labels, our forwarding); 0 turns it off.
DATAPLANE = os.environ.get("LSR_FRR_DATAPLANE", "1") != "0"
FRR_MIN_SESSION_HOLDTIME = 15  # `session holdtime (15-65535)`; the session uses min(ours, theirs)
IMPLICIT_NULL = 3
RESERVED = range(0, 16)
SPECIAL_LABELS = {"imp-null": 3, "exp-null": 0, "implicit-null": 3, "explicit-null": 0}


class FrrError(LsrError):
    pass


def missing_tools() -> str | None:
    """Why FRR nodes cannot run here, or None."""
    for d in DAEMONS:
        if not (FRR_LIBEXEC / d).exists():
            return f"{FRR_LIBEXEC / d} not found (apt-get install frr)"
    if shutil.which("vtysh") is None:
        return "vtysh not found (apt-get install frr)"
    import pwd

    try:
        pwd.getpwnam("frr")  # the daemons drop privileges to it
    except KeyError:
        return "no user 'frr' (the frr package creates it)"
    return None


def is_frr(topo: Topology, node: str) -> bool:
    n = topo.nodes.get(node)
    return n is not None and n.kind == KIND


def frr_routers(topo: Topology) -> list[Node]:
    return [n for n in topo.routers if n.kind == KIND]


def our_routers(topo: Topology) -> list[Node]:
    return [n for n in topo.routers if n.kind != KIND]


def node_dir(lab: str, node: str) -> Path:
    """Root's files of an FRR node (0700, inside the lab directory): *.out, *.stdlog,
    dataplane.log, lfib.json."""
    return lab_dir(lab) / "frr" / node


def conf_dir(lab: str, node: str) -> Path:
    """The node's configs (root:frr 0750, files 0640)."""
    return side_dir(lab, "frr") / node


def run_dir(lab: str, node: str) -> Path:
    """What the daemons write as frr (frr:frr 0700): pids, logs, sockets."""
    return conf_dir(lab, node) / "run"


def log_path(lab: str, node: str, daemon: str) -> Path:
    """The log a daemon's config names (`log file`), e.g. ldpd.log."""
    return run_dir(lab, node) / f"{daemon}.log"


def read_log(lab: str, node: str, daemon: str, offset: int = 0, limit: int = 1 << 24) -> bytes:
    """A daemon's log from `offset` (b"" if none yet): a file in frr's directory, so root
    opens it without following links and only if it is a regular file."""
    return files.read_foreign(log_path(lab, node, daemon), offset, limit) or b""


# ---------------------------------------------------------------- configuration


def render(topo: Topology, node: str, d: Path) -> dict[str, str]:
    """zebra.conf, ospfd.conf and ldpd.conf of one FRR node (files written into `d`)."""
    n = topo.nodes[node]
    o = n.ldp
    lo = n.lsr_id
    # Routes with their next hops inline, not kernel nexthop objects: FRR 8.4's zebra
    # loses a member of an ECMP nexthop group in the kernel after its link goes down and
    # up (FRRouting/frr#14080), and the node would forward over fewer paths than its RIB.
    zebra = [f"hostname {node}", f"log file {d}/zebra.log", "log timestamp precision 6",
             "no zebra nexthop kernel enable", ""]
    ldpd = [
        f"hostname {node}",
        f"log file {d}/ldpd.log",
        "log timestamp precision 6",  # µs: the benchmark times sessions from this log
        "debug mpls ldp messages recv",
        "debug mpls ldp messages sent",
        "debug mpls ldp event",
        "!",
        "mpls ldp",
        f" router-id {lo}",
    ]
    for nb, key in o.passwords:  # RFC 5036 §2.9 / RFC 2385, per neighbour LSR ID
        ldpd.append(f" neighbor {topo.nodes[nb].lsr_id} password {key}")
    if o.control == "ordered":
        ldpd.append(" ordered-control")
    ldpd += [
        f" discovery hello holdtime {o.hello_holdtime}",
        f" discovery hello interval {o.hello_interval}",
        " !",
        " address-family ipv4",
        f"  discovery transport-address {lo}",
        f"  session holdtime {max(FRR_MIN_SESSION_HOLDTIME, o.keepalive_time)}",
    ]
    if o.fecs == "loopbacks":
        ldpd.append("  label local allocate host-routes")
    if o.explicit_null:
        ldpd.append("  label local advertise explicit-null")
    for ifname in topo.ldp_interfaces(node):  # frrplane accepts labelled frames on these only
        ldpd += [f"  interface {ifname}", "  exit"]
    ldpd += [" exit-address-family", " !", "exit", ""]
    out = {"zebra.conf": "\n".join(zebra), "ospfd.conf": render_ospfd(topo, node, d),
           "ldpd.conf": "\n".join(ldpd)}
    bgpd = render_bgpd(topo, node, d)  # only for a node in the `bgp:` section
    if bgpd is not None:
        out["bgpd.conf"] = bgpd
    return out


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def render_ospfd(topo: Topology, node: str, d: Path) -> str:
    """ospfd.conf from the OspfConfig our own router would run with (`ospf.config`), so
    timers, costs and authentication are equal on both sides of every link."""
    from ospf.config import from_topology
    from ospf.packets import AuType

    cfg = from_topology(topo, node)
    lines = [f"hostname {node}", f"log file {d}/ospfd.log", "log timestamp precision 6",
             "debug ospf ism", "debug ospf nsm", "!"]
    auth = cfg.auth
    for i in cfg.interfaces:
        lines.append(f"interface {i.name}")
        if not i.passive:
            lines.append(" ip ospf network point-to-point")  # no DR election, no Wait timer
        lines += [" ip ospf area 0", f" ip ospf cost {i.cost}"]
        if i.passive:
            lines.append(" ip ospf passive")  # a host subnet: a stub link, no Hellos
        else:
            lines += [f" ip ospf hello-interval {cfg.hello_interval}",
                      f" ip ospf dead-interval {cfg.dead_interval}",
                      f" ip ospf retransmit-interval {max(1, round(cfg.retransmit_interval))}",
                      f" ip ospf transmit-delay {cfg.transmit_delay}"]
            if auth.type == AuType.SIMPLE:
                lines += [" ip ospf authentication",
                          f" ip ospf authentication-key {auth.key.decode()}"]
            elif auth.type == AuType.CRYPTOGRAPHIC:
                lines += [" ip ospf authentication message-digest",
                          f" ip ospf message-digest-key {auth.key_id} md5 {auth.key.decode()}"]
        lines += ["exit", "!"]
    # The loopback: FRR advertises an address on a loopback interface as a host stub
    # with cost 0 whatever `ip ospf cost` says, as we do (Topology.prefixes()).
    lines += ["interface lo", " ip ospf area 0", "exit", "!",
              "router ospf", f" ospf router-id {cfg.router_id}",
              " log-adjacency-changes detail",  # logs who is master of each DD exchange
              f" timers throttle spf {_ms(cfg.spf_delay)} {_ms(cfg.spf_hold)} "
              f"{_ms(cfg.spf_max_hold)}",
              f" timers throttle lsa all {_ms(cfg.min_ls_interval)}",
              f" timers lsa min-arrival {_ms(cfg.min_ls_arrival)}",
              "exit", ""]
    return "\n".join(lines)


def _frr_ids() -> tuple[int, int]:
    import grp
    import pwd

    return pwd.getpwnam("frr").pw_uid, grp.getgrnam("frr").gr_gid


def _make_dirs(topo: Topology, lab: str, nodes: list[Node]) -> None:
    """The three directories of every FRR node, configs written (module docstring)."""
    uid, gid = _frr_ids()
    base = side_dir(lab, "frr")
    if base.exists():  # left by a crashed run: only root can create it (RUN_DIR is root's)
        shutil.rmtree(base)
    if not os.stat(base.parent).st_mode & 0o001:
        raise FrrError(f"{base.parent} must be searchable by user frr (chmod o+x)")
    files.make_dir(base, 0o750, 0, gid)
    files.make_dir(lab_dir(lab) / "frr", 0o700, exist_ok=True)
    for n in nodes:
        conf = files.make_dir(conf_dir(lab, n.name), 0o750, 0, gid)
        run = run_dir(lab, n.name)
        for fname, text in render(topo, n.name, run).items():
            files.write_file(conf / fname, text, 0o640, gid)
        files.make_dir(run, 0o700, uid, gid)
        files.make_dir(node_dir(lab, n.name), 0o700, exist_ok=True)


# ---------------------------------------------------------------- kernel routes


def rib_from_kernel(topo: Topology, node: str,
                    routes: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> dict[IPv4Network, Route]:
    """The RIB an FRR node forwards with: its connected prefixes plus the routes zebra
    installed into the kernel (`routes`: (prefix, [(gateway, ifname)]) of proto ospf)."""
    n = topo.nodes[node]
    rib: dict[IPv4Network, Route] = {IPv4Network(f"{n.loopback}/32"): Route(
        IPv4Network(f"{n.loopback}/32"), 0, ())}
    peers = {i.name: i.peer_node for i in n.interfaces.values()}
    for i in n.interfaces.values():
        rib[i.address.network] = Route(i.address.network, 0, ())
    for prefix, hops in routes:
        net = IPv4Network(prefix)
        if net in rib:
            continue
        nhs = tuple(sorted(Nexthop(peers[dev], dev, IPv4Address(gw)) for gw, dev in hops
                           if dev in peers and gw))
        if nhs:
            rib[net] = Route(net, 0, nhs)
    return rib


# ---------------------------------------------------------------- start


def _daemon_argv(lab: str, node: str, daemon: str) -> list[str]:
    conf, run, own = conf_dir(lab, node), run_dir(lab, node), node_dir(lab, node)
    argv = [str(FRR_LIBEXEC / daemon), "-f", str(conf / f"{daemon}.conf"),
            "-i", str(run / f"{daemon}.pid"), "-z", str(run / "zserv.api"),
            "--vty_socket", str(run), "-P", "0", "-u", "frr", "-g", "frr",
            # opened while the daemon is still root: in root's directory
            "--log", f"file:{own}/{daemon}.stdlog"]
    if daemon == "ldpd":
        argv += ["--ctl_socket", str(run)]  # a directory: ldpd appends "ldpd.sock"
    if daemon == "bgpd":
        argv += ["-n"]  # no BGP routes into the kernel: the node only exchanges routes
    return argv


def _spawn(lab: str, node: str, daemon: str, state: LabState) -> int:
    out = files.open_append(node_dir(lab, node) / f"{daemon}.out")
    try:
        # `ip netns exec` execs the daemon: Popen's pid is the daemon's pid.
        p = subprocess.Popen(["ip", "netns", "exec", ns_name(lab, node),
                              *_daemon_argv(lab, node, daemon)],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=str(run_dir(lab, node)))
    finally:
        os.close(out)
    state.add_pid(p.pid, f"frr:{node}:{daemon}")
    return p.pid


def _stamp(path: Path) -> tuple[int, int] | None:
    """Identity of a file (inode, ctime) or None: tells a daemon's fresh socket from the
    one its stopped predecessor left (`start_node`)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_ino, st.st_ctime_ns


def _wait_for(lab: str, paths: list[Path], pids: dict[str, int], deadline: float,
              what: str, stale: dict[Path, tuple[int, int] | None] | None = None) -> None:
    """Until every path exists (and, for those in `stale`, is not the file it was)."""
    stale = stale or {}
    while True:
        if all((st := _stamp(p)) is not None and st != stale.get(p) for p in paths):
            return
        for role, pid in pids.items():
            if not pid_alive(pid, None):
                raise FrrError(f"FRR {role} exited during start-up: {_tail(lab, role)}")
        if time.monotonic() > deadline:
            lacking = [str(p) for p in paths if not p.exists()]
            raise FrrError(f"FRR {what} not ready before the timeout: {', '.join(lacking[:3])}")
        time.sleep(0.02)


def _tail(lab: str, role: str) -> str:
    node, daemon = role.split(":")[0], role.rsplit(":", 1)[-1]
    d = node_dir(lab, node)
    for f in (d / f"{daemon}.out", d / f"{daemon}.stdlog"):
        with contextlib.suppress(OSError):
            lines = [ln for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
            if lines:
                return lines[-1]
    return "(no log)"


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def start(topo: Topology, lab: str, state: LabState, deadline: float) -> dict[str, float]:
    """Start zebra, then ldpd, in every FRR node's namespace; return timings. ospfd comes
    later (`start_ospfd`)."""
    nodes = frr_routers(topo)
    if not nodes:
        return {}
    why = missing_tools()
    if why:
        raise FrrError(f"frr nodes need FRR: {why}")
    t0 = time.monotonic()
    _make_dirs(topo, lab, nodes)
    dirs = {n.name: run_dir(lab, n.name) for n in nodes}
    zebras = {f"{n}:zebra": _spawn(lab, n, "zebra", state) for n in dirs}
    # The daemons' zclients retry a failed connect only seconds later (ldpd: 10 s): zebra
    # must listen first.
    _wait_for(lab, [d / "zserv.api" for d in dirs.values()]
              + [d / "zebra.vty" for d in dirs.values()], zebras, deadline, "zebra")
    ldpds = {f"{n}:ldpd": _spawn(lab, n, "ldpd", state) for n in dirs}
    # bgpd where the `bgp:` section names the node (after zebra: it tracks next hops)
    bgp_nodes = [n for n in dirs if (conf_dir(lab, n) / "bgpd.conf").exists()]
    if bgp_nodes and not (FRR_LIBEXEC / "bgpd").exists():
        raise FrrError(f"{FRR_LIBEXEC / 'bgpd'} not found (apt-get install frr)")
    bgpds = {f"{n}:bgpd": _spawn(lab, n, "bgpd", state) for n in bgp_nodes}
    _wait_for(lab, [d / "ldpd.vty" for d in dirs.values()]
              + [d / "ldpd.sock" for d in dirs.values()], ldpds, deadline, "ldpd")
    for role, pid in ldpds.items():  # lde and ldpe
        node = role.split(":")[0]
        while len(kids := _children(pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        for k in kids:
            state.add_pid(k, f"frr:{node}:ldpd-child")
    _wait_for(lab, [dirs[n] / "bgpd.vty" for n in bgp_nodes], bgpds, deadline, "bgpd")
    if DATAPLANE:
        for n in dirs:
            _spawn_dataplane(lab, n, state)
    return {"frr_started": time.monotonic() - t0}


def node_roles(node: str) -> tuple[str, ...]:
    """The roles an FRR node's processes are recorded under (`LabState.add_pid`): bgpd's
    too, so `lsr lab node NAME NODE stop` stops a BGP speaker with the rest of the node."""
    return tuple(f"frr:{node}:{d}" for d in (*DAEMONS, "bgpd", "ldpd-child", "dataplane"))


def start_node(lab: str, node: str, state: LabState, deadline: float) -> dict[str, int]:
    """Start a stopped FRR node again (`lsr lab node NAME NODE start`): zebra, ldpd, bgpd
    (where the node has a bgpd.conf), our dataplane, then ospfd, in the order `up` uses.
    Its directories and configs are still there; the sockets its old daemons left are
    waited past (a fresh inode). Returns the new pids by daemon."""
    run = run_dir(lab, node)
    bgp = (conf_dir(lab, node) / "bgpd.conf").exists()
    socks = {d: [run / f"{d}.vty"] for d in (*DAEMONS, *(["bgpd"] if bgp else []))}
    socks["zebra"].append(run / "zserv.api")
    socks["ldpd"].append(run / "ldpd.sock")
    stale = {p: _stamp(p) for ps in socks.values() for p in ps}
    pids = {"zebra": _spawn(lab, node, "zebra", state)}
    _wait_for(lab, socks["zebra"], {f"{node}:zebra": pids["zebra"]}, deadline, "zebra", stale)
    pids["ldpd"] = _spawn(lab, node, "ldpd", state)
    _wait_for(lab, socks["ldpd"], {f"{node}:ldpd": pids["ldpd"]}, deadline, "ldpd", stale)
    while len(kids := _children(pids["ldpd"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    for k in kids:
        state.add_pid(k, f"frr:{node}:ldpd-child")
    if bgp:
        pids["bgpd"] = _spawn(lab, node, "bgpd", state)
        _wait_for(lab, socks["bgpd"], {f"{node}:bgpd": pids["bgpd"]}, deadline, "bgpd", stale)
    if DATAPLANE:
        pids["dataplane"] = _spawn_dataplane(lab, node, state)
    pids["ospfd"] = _spawn(lab, node, "ospfd", state)
    _wait_for(lab, socks["ospfd"], {f"{node}:ospfd": pids["ospfd"]}, deadline, "ospfd", stale)
    return pids


def start_ospfd(topo: Topology, lab: str, state: LabState, deadline: float) -> None:
    """ospfd in every FRR node, once our routers run: its first Hello (sent as its
    interfaces come up) then finds them listening and the adjacencies form at once. Started
    before them, its first Hello is lost and FRR, which does not answer a new neighbor's
    Hello, lists them only a HelloInterval (10 s) later."""
    dirs = {n.name: run_dir(lab, n.name) for n in frr_routers(topo)}
    ospfds = {f"{n}:ospfd": _spawn(lab, n, "ospfd", state) for n in dirs}
    _wait_for(lab, [d / "ospfd.vty" for d in dirs.values()], ospfds, deadline, "ospfd")


def _spawn_dataplane(lab: str, node: str, state: LabState) -> int:
    """Our AF_PACKET forwarding plane in the FRR node's namespace (lsr.lab.frrplane)."""
    import lsr

    env = dict(os.environ)
    root = str(Path(lsr.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = files.open_append(node_dir(lab, node) / "dataplane.log")
    try:
        p = subprocess.Popen(["ip", "netns", "exec", ns_name(lab, node), sys.executable, "-m",
                              "lsr.lab.frrplane", "--lab", lab, "--router", node],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=env, start_new_session=True, cwd="/")
    finally:
        os.close(out)
    state.add_pid(p.pid, f"frr:{node}:dataplane")
    return p.pid


def not_running(lab: str, node: str, pids: list[dict[str, Any]] | None = None) -> list[str]:
    """Which of an FRR node's daemons (zebra, ospfd, ldpd, and bgpd where it runs one) and
    our dataplane in it are not running (their last recorded process is gone); [] for a
    running node."""
    if pids is None:
        pids = LabState(lab).read().get("pids", [])
    last: dict[str, dict[str, Any]] = {}
    for p in pids:
        last[p["role"]] = p  # the latest record of each role (a restart appends)
    wanted = [*DAEMONS] + [d for d in ("bgpd", "dataplane") if f"frr:{node}:{d}" in last]
    return [d for d in wanted if (p := last.get(f"frr:{node}:{d}")) is None
            or not pid_alive(p["pid"], p.get("start"))]


def _has_dataplane(lab: str, node: str) -> bool:
    return any(p["role"] == f"frr:{node}:dataplane" for p in LabState(lab).read().get("pids", []))


def read_lfib(lab: str, node: str) -> dict[str, Any] | None:
    """The LFIB an FRR node's dataplane uses, from FRR's bindings (None if none yet)."""
    try:
        return json.loads((node_dir(lab, node) / "lfib.json").read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- vtysh


def vtysh_argv(lab: str, node: str, argv: Sequence[str]) -> list[str]:
    """`vtysh ...` aimed at this node's daemons (injects --vty_socket DIR)."""
    argv = list(argv)
    if argv and os.path.basename(argv[0]) == "vtysh" and not any(
            a.startswith("--vty_socket") for a in argv):
        argv[1:1] = ["--vty_socket", str(run_dir(lab, node))]
    return argv


def vtysh(lab: str, node: str, *commands: str, timeout: float = 10) -> str:
    argv = vtysh_argv(lab, node, ["vtysh"])
    for c in commands:
        argv += ["-c", c]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FrrError(f"{node}: vtysh timed out") from None
    if p.returncode != 0:
        msg = (p.stderr or p.stdout).strip().splitlines()
        raise FrrError(f"{node}: vtysh: {msg[-1] if msg else 'exit ' + str(p.returncode)}")
    return p.stdout


def vtysh_json(lab: str, node: str, command: str) -> Any:
    out = vtysh(lab, node, command)
    try:
        return json.loads(out) if out.strip() else {}
    except ValueError:
        raise FrrError(f"{node}: vtysh '{command}' did not return JSON: {out[:80]!r}") from None


# ---------------------------------------------------------------- views in our schema


def _label(v: Any) -> int | None:
    if v is None:
        return None
    s = str(v).strip().lower()
    if s in SPECIAL_LABELS:
        return SPECIAL_LABELS[s]
    try:
        return int(s)
    except ValueError:
        return None  # "-": no label


def _list(j: Any, key: str) -> list[dict[str, Any]]:
    v = j.get(key, []) if isinstance(j, dict) else j
    if isinstance(v, dict):  # some FRR versions key entries by id
        v = list(v.values())
    return [e for e in v or [] if isinstance(e, dict)]


def raw_neighbors(lab: str, node: str) -> list[dict[str, Any]]:
    return _list(vtysh_json(lab, node, "show mpls ldp neighbor json"), "neighbors")


def sessions(lab: str, node: str) -> dict[str, str]:
    """peer LSR ID -> FRR's session state (OPERATIONAL, INITIALIZED, PRESENT...)."""
    return {str(e.get("neighborId")): str(e.get("state", "")).upper()
            for e in raw_neighbors(lab, node) if e.get("addressFamily", "ipv4") == "ipv4"}


def neighbors(lab: str, topo: Topology, node: str) -> list[dict[str, Any]]:
    """Like our routers' `lsr lab ldp R neighbors --json` entries."""
    names = {str(n.lsr_id): n.name for n in topo.routers}
    pw = {str(topo.nodes[nb].lsr_id) for nb, _ in topo.nodes[node].ldp.passwords}
    raw = {str(e.get("neighborId")): e for e in raw_neighbors(lab, node)}
    # FRR lists only neighbours with a session; one with Hello adjacencies but no TCP
    # session (e.g. an MD5 key mismatch) appears only in discovery: show it as PRESENT.
    adjs: dict[str, list[str]] = {}
    for a in _list(vtysh_json(lab, node, "show mpls ldp discovery json"), "adjacencies"):
        if a.get("type", "link") == "link" and a.get("addressFamily", "ipv4") == "ipv4":
            adjs.setdefault(str(a.get("neighborId")), []).append(str(a.get("interface", "")))
    for lid in adjs:
        raw.setdefault(lid, {"neighborId": lid, "state": "PRESENT"})
    out = []
    for e in sorted(raw.values(), key=lambda e: IPv4Address(str(e.get("neighborId")))):
        lid = str(e.get("neighborId"))
        st = str(e.get("state", "")).upper()
        ent = {"neighbor": names.get(lid, lid), "lsr_id": lid, "state": st,
               "transport": str(e.get("transportAddress", "")),
               "uptime": uptime_seconds(e.get("upTime")),
               "role": "frr", "adjacencies": sorted(adjs.get(lid, []))}
        if st != "OPERATIONAL":
            ent["reason"] = "no TCP session" + (" (MD5 mismatch?)" if lid in pw else "")
        out.append(ent)
    return out


_UPTIME = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def uptime_seconds(text: Any) -> int | None:
    """ldpd's uptime as seconds, as our routers give it: "01:02:03" (under a day),
    "1d02h03m" (under a week), "02w1d03h"; None when there is none."""
    if not isinstance(text, str) or not text:
        return None
    parts = text.split(":")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return int(parts[0]) * 3600 + int(parts[1]) * 60 + int(parts[2])
    m = _UPTIME.match(text)
    if m is None:
        return None
    w, d, h, mi = (int(x or 0) for x in m.groups())
    return ((w * 7 + d) * 24 + h) * 3600 + mi * 60


def raw_bindings(lab: str, node: str) -> list[dict[str, Any]]:
    return _list(vtysh_json(lab, node, "show mpls ldp binding json"), "bindings")


def bindings(lab: str, topo: Topology | None, node: str) -> list[dict[str, Any]]:
    """Like ours: [{"fec", "local_label", "remote": [{"neighbor", "label"}]}]; imp-null -> 3.

    Neighbours are LSR IDs, or node names when `topo` is given.
    """
    names = {str(n.lsr_id): n.name for n in topo.routers} if topo is not None else {}
    fecs: dict[str, dict[str, Any]] = {}
    for e in raw_bindings(lab, node):
        if e.get("addressFamily", "ipv4") != "ipv4" or "prefix" not in e:
            continue
        b = fecs.setdefault(e["prefix"], {"fec": e["prefix"], "local_label": None, "remote": []})
        loc = _label(e.get("localLabel"))
        if loc is not None:
            b["local_label"] = loc
        nb = str(e.get("neighborId", ""))
        rl = _label(e.get("remoteLabel"))
        if nb and nb != "0.0.0.0" and rl is not None:
            b["remote"].append({"neighbor": names.get(nb, nb), "label": rl,
                                "in_use": bool(e.get("inUse"))})
    out = []
    for p in sorted(fecs, key=lambda p: (int(IPv4Network(p).network_address),
                                         IPv4Network(p).prefixlen)):
        b = fecs[p]
        b["remote"].sort(key=lambda r: r["neighbor"])
        out.append(b)
    return out


def ldp_view(lab: str, topo: Topology, node: str, what: str) -> Any:
    if what == "neighbors":
        return neighbors(lab, topo, node)
    if what == "bindings":
        return {"bindings": bindings(lab, topo, node)}
    raise FrrError(f"unknown LDP view '{what}' (neighbors, bindings)")


# ---------------------------------------------------------------- OSPF views in our schema

_FRR_LINK_TYPES = {"another Router (point-to-point)": 1, "a Transit Network": 2,
                   "Stub Network": 3, "a Virtual Link": 4}


def ospf_neighbors(lab: str, topo: Topology, node: str) -> list[dict[str, Any]]:
    """Like our routers' `ospf` status neighbors: interface, router_id, neighbor, state."""
    names = {str(n.lsr_id): n.name for n in topo.routers}
    out = []
    for rid, entries in vtysh_json(lab, node, "show ip ospf neighbor json").get(
            "neighbors", {}).items():
        for e in entries:
            iface = str(e.get("ifaceName", "")).split(":")[0]
            state = str(e.get("nbrState", e.get("converged", ""))).split("/")[0]
            out.append({"interface": iface, "router_id": rid, "neighbor": names.get(rid, rid),
                        "address": e.get("ifaceAddress", e.get("address")), "state": state})
    return sorted(out, key=lambda e: e["interface"])


def _frr_link(link: dict[str, Any]) -> dict[str, Any]:
    t = _FRR_LINK_TYPES.get(str(link.get("linkType")), 0)
    if t == 3:
        lid, data = link.get("networkAddress"), link.get("networkMask")
    elif t == 1:
        lid, data = link.get("neighborRouterId"), link.get("routerInterfaceAddress")
    else:
        lid = link.get("designatedRouterAddress", link.get("neighborRouterId"))
        data = link.get("routerInterfaceAddress")
    return {"type": t, "link_id": str(lid), "link_data": str(data),
            "metric": int(link.get("tos0Metric", 0))}


def ospf_lsdb(lab: str, node: str) -> list[dict[str, Any]]:
    """FRR's router-LSAs (`show ip ospf database router json`) as our `lsdb` entries: type,
    id, adv_router, age, seq, checksum, length, flags, links (in the LSA's order)."""
    j = vtysh_json(lab, node, "show ip ospf database router json")
    out = []
    for lsas in j.get("routerLinkStates", {}).get("areas", {}).values():
        for e in lsas:
            links = [_frr_link(x) for x in e.get("routerLinks", {}).values()]
            out.append({"type": 1, "id": e["linkStateId"], "adv_router": e["advertisingRouter"],
                        "age": int(e["lsaAge"]), "seq": f"0x{int(e['lsaSeqNumber'], 16):08x}",
                        "checksum": f"0x{int(str(e['checksum']), 16):04x}",
                        "length": int(e["length"]), "flags": int(e.get("flags", 0)),
                        "links": links})
    return sorted(out, key=lambda e: (e["type"], int(IPv4Address(e["id"])),
                                      int(IPv4Address(e["adv_router"]))))


def ospf_routes(lab: str, topo: Topology, node: str) -> list[dict[str, Any]]:
    """The routes FRR's ospfd computed (`show ip route ospf json`, selected or not) as our
    `rib` entries; a directly connected network has no next hops (its metric stays
    FRR's: the interface cost)."""
    peers = {i.name: i.peer_node for i in topo.nodes[node].interfaces.values()}
    out = []
    for prefix, entries in vtysh_json(lab, node, "show ip route ospf json").items():
        for e in entries:
            if e.get("protocol") != "ospf":
                continue
            hops = [{"neighbor": peers.get(h.get("interfaceName", ""), ""),
                     "interface": h.get("interfaceName", ""), "nexthop": h["ip"]}
                    for h in e.get("nexthops", []) if h.get("ip")]
            out.append({"prefix": prefix, "metric": int(e.get("metric", 0)),
                        "nexthops": sorted(hops, key=lambda h: (h["neighbor"], h["interface"]))})
    return sorted(out, key=lambda r: (int(IPv4Network(r["prefix"]).network_address),
                                      IPv4Network(r["prefix"]).prefixlen))


# ---------------------------------------------------------------- convergence


def _live(topo: Topology, node: str, down_links: Sequence[int]) -> set[str]:
    """Prefixes in the node's RIB: FRR keeps a withdrawn FEC's local label in its
    `show mpls ldp binding` output (for reuse, until garbage collection), so only
    these count as advertised."""
    return {str(p) for p in Igp(topo, down_links).rib(node)}


def _local_labels(lab: str, topo: Topology, node: str, query: Any,
                  down_links: Sequence[int]) -> dict[str, int]:
    if is_frr(topo, node):
        live = _live(topo, node, down_links)
        bs = [b for b in bindings(lab, None, node) if b["fec"] in live]
    else:
        bs = query(lab, node, "bindings")
    return {b["fec"]: b["local_label"] for b in bs if b.get("local_label") is not None}


def _remote_from(bs: list[dict[str, Any]], peer: str) -> dict[str, int]:
    return {b["fec"]: r["label"] for b in bs for r in b.get("remote", []) if r["neighbor"] == peer}


def lfib_from_bindings(topo: Topology, node: str, rib: dict[IPv4Network, Route],
                       bindings: list[dict[str, Any]]) -> Lfib:
    """FRR's forwarding decisions as our Lfib (neighbours as LSR IDs, like our LDE's)."""
    by_fec = {b["fec"]: b for b in bindings}
    lfib = Lfib()
    for prefix in sorted(rib, key=lambda p: (int(p.network_address), p.prefixlen)):
        route = rib[prefix]
        b = by_fec.get(str(prefix))
        if not route.nexthops or b is None:
            continue
        remote = {r["neighbor"]: r["label"] for r in b.get("remote", [])}
        ftn: list[Nhlfe] = []
        ilm: list[Nhlfe] = []
        for nh in route.nexthops:
            lid = str(topo.nodes[nh.neighbor].lsr_id)
            if lid not in remote:
                continue  # no mapping from that neighbour (yet): no LSP through it
            rl = remote[lid]
            out = () if rl == IMPLICIT_NULL else (rl,)
            ftn.append(Nhlfe(lid, nh.interface, nh.address, out, "push"))
            ilm.append(Nhlfe(lid, nh.interface, nh.address, out,
                             "pop" if rl == IMPLICIT_NULL else "swap"))
        if not ftn:
            continue
        lfib.ftn[prefix] = FtnEntry(prefix, tuple(ftn))
        local = b.get("local_label")
        if local is not None and local not in RESERVED:
            lfib.ilm[local] = IlmEntry(local, prefix, tuple(ilm))
    return lfib


def egress_fecs(rib: dict[IPv4Network, Route], bindings: list[dict[str, Any]]) -> frozenset[IPv4Network]:
    """The FECs an FRR node is egress for: those it advertises implicit- or explicit-null
    for (its local binding) and has as connected prefixes (FRR keeps a withdrawn FEC's
    binding listed for a while: the RIB says whether it is still ours)."""
    connected = {p for p, r in rib.items() if not r.nexthops}
    return frozenset(IPv4Network(b["fec"]) for b in bindings
                     if b.get("local_label") in (0, IMPLICIT_NULL)
                     and IPv4Network(b["fec"]) in connected)


def missing(lab: str, topo: Topology, node: str, peers: Sequence[str], query: Any,
            down_links: Sequence[int] = (), rib: dict[IPv4Network, Route] | None = None
            ) -> str | None:
    """What an FRR node still lacks (None if converged): sessions, then labels both ways.

    `peers`: the LSR IDs it must have OPERATIONAL sessions with; `query` is
    `lsr.lab.query` (our routers' management sockets); `rib`: the node's RIB its
    dataplane follows (the simulator's; else the reference IGP's with `down_links`).
    """
    names = {str(n.lsr_id): n.name for n in topo.routers}
    sess = sessions(lab, node)
    bad = [p for p in peers if sess.get(p) != "OPERATIONAL"]
    if bad:
        return (f"{node}: LDP session with {', '.join(names.get(p, p) for p in bad)} not "
                f"OPERATIONAL ({', '.join(sess.get(p, 'none') for p in bad)})")
    mine = bindings(lab, None, node)
    if _has_dataplane(lab, node):  # our forwarding plane in it must use these bindings
        if rib is None:
            rib = Igp(topo, down_links).rib(node)
        want = lfib_from_bindings(topo, node, rib, mine).to_json()
        if read_lfib(lab, node) != want:
            return f"{node}: dataplane LFIB not yet in line with FRR's bindings"
    live = {str(p) for p in rib} if rib is not None else _live(topo, node, down_links)
    my_local = {b["fec"]: b["local_label"] for b in mine
                if b.get("local_label") is not None and b["fec"] in live}
    if not my_local:
        return f"{node}: no local bindings yet"
    for p in peers:
        peer = names.get(p, p)
        if peer not in topo.nodes:
            continue
        theirs = _local_labels(lab, topo, peer, query, down_links)
        got = _remote_from(mine, p)
        wrong = sorted(f for f, lbl in theirs.items() if got.get(f) != lbl)
        if wrong:
            return (f"{node}: labels from {peer} missing or different for {', '.join(wrong[:3])}"
                    + (f" (+{len(wrong) - 3} more)" if len(wrong) > 3 else ""))
        if is_frr(topo, peer):
            continue  # its side is checked when it is the node
        their_remote = _remote_from(query(lab, peer, "bindings"), str(topo.nodes[node].lsr_id))
        wrong = sorted(f for f, lbl in my_local.items() if their_remote.get(f) != lbl)
        if wrong:
            return (f"{peer}: labels from {node} missing or different for {', '.join(wrong[:3])}"
                    + (f" (+{len(wrong) - 3} more)" if len(wrong) > 3 else ""))
        # Our FTN toward this FRR node pushes FRR's label (nothing for implicit-null).
        lfib = query(lab, peer, "lfib")
        lid = str(topo.nodes[node].lsr_id)
        for e in lfib.get("ftn", []):
            for nh in e["nexthops"]:
                if nh["neighbor"] != lid or e["fec"] not in my_local:
                    continue
                lbl = my_local[e["fec"]]
                want = [] if lbl == IMPLICIT_NULL else [lbl]
                if nh["out_labels"] != want:
                    return (f"{peer}: FTN {e['fec']} via {node} pushes {nh['out_labels']}, "
                            f"{node} advertised {lbl}")
    return None


# ---------------------------------------------------------------- status / exec


def status(lab: str, topo: Topology | None, pids: list[dict[str, Any]]) -> dict[str, Any]:
    """Per FRR node: daemons alive, sessions (and why not OPERATIONAL)."""
    out: dict[str, Any] = {}
    for p in pids:
        parts = p["role"].split(":")
        if parts[0] != "frr" or len(parts) != 3:
            continue
        node, daemon = parts[1], parts[2]
        info = out.setdefault(node, {"kind": KIND, "pid": None, "alive": True, "daemons": {}})
        alive = pid_alive(p["pid"], p.get("start"))
        if daemon == "ldpd-child":
            info["daemons"].setdefault("ldpd-children", []).append(p["pid"])
        else:
            info["daemons"][daemon] = p["pid"]
        if daemon == "ldpd":
            info["pid"] = p["pid"]
        info["alive"] = info["alive"] and alive
    for node, info in out.items():
        if not info["alive"]:
            info["not_running"] = not_running(lab, node, pids)  # which daemons died
            continue
        try:
            if topo is not None:
                nbs = neighbors(lab, topo, node)
                info["sessions"] = {n["lsr_id"]: n["state"] for n in nbs}
                info.update(reasons(lab, node, nbs))
            else:
                info["sessions"] = sessions(lab, node)
        except (OSError, LsrError, ValueError) as e:
            info["error"] = str(e)
    return out


def leftover_processes(lab: str) -> list[int]:
    """FRR processes still running with this lab's FRR directory on their command line."""
    d = str(side_dir(lab, "frr")) + "/"
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if d in p.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                out.append(int(p.name))
    return out


__all__ = [
    "FrrError", "bindings", "conf_dir", "egress_fecs", "frr_routers", "is_frr", "ldp_view", "log_path",
    "missing", "missing_tools", "neighbors", "node_dir", "node_roles", "not_running", "ospf_lsdb", "ospf_neighbors",
    "ospf_routes", "our_routers", "proc_start_time", "read_log", "render", "render_ospfd",
    "rib_from_kernel", "run_dir", "sessions", "start", "start_node", "start_ospfd", "status", "vtysh", "vtysh_argv", "vtysh_json",
]


# ---------------------------------------------------------------- why a session is down

MD5_COUNTERS = ("TCPMD5NotFound", "TCPMD5Unexpected", "TCPMD5Failure")


def md5_drops(lab: str, node: str) -> int:
    """TCP segments the node's kernel dropped for TCP MD5 reasons (RFC 2385: a missing,
    unexpected or wrong signature), from the namespace's /proc/net/netstat."""
    try:
        text = subprocess.run(["ip", "netns", "exec", ns_name(lab, node), "cat",
                               "/proc/net/netstat"], capture_output=True, text=True,
                              timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    lines = [ln.split() for ln in text.splitlines() if ln.startswith("TcpExt:")]
    if len(lines) < 2:
        return 0
    counters = dict(zip(lines[0][1:], lines[1][1:], strict=False))
    return sum(int(counters.get(c, 0)) for c in MD5_COUNTERS)


def reasons(lab: str, node: str, nbrs: list[dict[str, Any]]) -> dict[str, Any]:
    """Status fields for a router with sessions down: {"reasons": {lsr_id: why}, "md5_drops"}."""
    why = {str(n.get("lsr_id")): str(n["reason"]) for n in nbrs if n.get("reason")}
    if not why:
        return {}
    out: dict[str, Any] = {"reasons": why}
    drops = md5_drops(lab, node)
    if drops:
        out["md5_drops"] = drops
    return out
