"""`lsr lab chaos NAME --events N --seed S`: a soak of random failures on a running lab.

Each event fails or recovers something the way it happens to real networks:
a link (between routers, or a host's port) through `lsr lab link` (both veth ends
down), a link through `ip link set IF down` inside one end's namespace (the peer
loses carrier), a router
stopped (`lab node R stop`, its neighbours route around it) and started again.
After every event the lab must settle: every running router's sessions and
LFIB equal what the simulator computes for the current state of the links
(a stopped router is gone from the IGP and LDP; its links keep carrier). A ping stream between two hosts
runs throughout. At the end everything is recovered and the routers are
checked for what a long-lived lab must not do: use CPU while idle, leak file
descriptors, grow in memory.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from lsr.core.topology import Topology
from lsr.lab import LabError, expected, link, query, router_missing, topology_of
from lsr.lab.control import node_start, node_stop
from lsr.lab.frr import is_frr
from lsr.lab.state import LabState, ns_name

IDLE_CPU_MAX = 0.05  # of one core, per router
IDLE_WINDOW = 3.0  # s
RSS_GROWTH_MAX = 16 * 1024 * 1024  # bytes over the soak, per router


def _router_pid(name: str, router: str) -> int:
    return int(query(name, router, "status", timeout=5)["pid"])


def _fd_kinds(pid: int) -> dict[str, int]:
    """What a process's descriptors are: socket, anon_inode:[eventpoll], a path ... -> count."""
    out: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = t.split(":[", 1)[0] if ":[" in t else t
        out[kind] = out.get(kind, 0) + 1
    return out


def _proc(pid: int) -> tuple[int, int, int]:
    """(CPU ticks used, open file descriptors, resident bytes) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return ticks, fds, rss


class Chaos:
    def __init__(self, name: str, seed: int, say: Callable[[str], None] = lambda s: None,
                 settle_timeout: float = 90.0) -> None:
        self.name = name
        self.topo: Topology = topology_of(name)
        self.rng = random.Random(seed)
        self.say = say
        self.settle_timeout = settle_timeout
        # every link with a router on it: the core's, and customer ports too (a site cut
        # off: its PE withdraws the port's VPN routes or 6PE subnet, OSPF its stub)
        self.core = [ln.index for ln in self.topo.links
                     if any(self.topo.nodes[n].is_router for n in ln.nodes)]
        self.lab_down: set[int] = set()  # through `lsr lab link`
        self.ip_down: dict[int, tuple[str, str]] = {}  # link -> (node, ifname) set down there
        self.stopped: set[str] = set()
        self.names = {str(n.lsr_id): n.name for n in self.topo.routers}
        self.log: list[dict[str, Any]] = []
        # Router PIDs, asked once (and taken from node_start): sampling /proc must not open
        # a management connection, whose descriptor would be counted as the router's.
        # (FRR nodes' daemons are FRR's: stopped and started, checked, not sampled)
        self.pids = {r.name: _router_pid(name, r.name) for r in self.topo.routers
                     if not is_frr(self.topo, r.name)}

    # ------------------------------------------------------------ state

    def down_links(self) -> set[int]:
        return self.lab_down | set(self.ip_down)

    def settle(self) -> float:
        """Wait until every running router equals the simulator for the links now down."""
        t0 = time.monotonic()
        exp = expected(self.topo, sorted(self.down_links()), sorted(self.stopped))
        pending = [r.name for r in self.topo.routers if r.name not in self.stopped]
        last = ""
        while pending:
            still = []
            for r in pending:
                try:
                    why = router_missing(self.name, self.topo, r, exp[r], self.names,
                                         sorted(self.down_links()))
                except (OSError, LabError, ValueError) as e:
                    why = f"{r}: management socket: {e}"
                if why:
                    still.append(r)
                    last = why
            pending = still
            if pending and time.monotonic() - t0 > self.settle_timeout:
                raise LabError(f"chaos: not settled after {self.settle_timeout:.0f} s: {last}")
            if pending:
                time.sleep(0.1)
        return time.monotonic() - t0

    # ------------------------------------------------------------ events

    def _ip_link(self, node: str, ifname: str, up: bool) -> None:
        # `dev` first: an interface named like an iproute2 keyword ("hel") is still a name
        r = subprocess.run(["ip", "netns", "exec", ns_name(self.name, node), "ip", "link", "set",
                            "dev", ifname, "up" if up else "down"], capture_output=True, text=True)
        if r.returncode != 0:
            raise LabError(f"chaos: ip link set {ifname} {'up' if up else 'down'} in {node}: "
                           f"{(r.stderr or r.stdout).strip() or f'exit {r.returncode}'}")

    def step(self) -> dict[str, Any]:
        failed = [("lab", i) for i in sorted(self.lab_down)] + \
                 [("ip", i) for i in sorted(self.ip_down)] + \
                 [("router", r) for r in sorted(self.stopped)]
        if failed and (self.rng.random() < 0.5 or len(failed) >= 3):
            kind, what = self.rng.choice(failed)
            return self._recover(kind, what)
        kind = self.rng.choice(["lab", "ip", "router"])
        up_links = [i for i in self.core if i not in self.down_links()]
        if kind == "router" or not up_links:
            cands = [r.name for r in self.topo.routers if r.name not in self.stopped]
            r = self.rng.choice(cands)
            node_stop(self.name, r)
            self.stopped.add(r)
            return {"event": f"stop router {r}"}
        i = self.rng.choice(up_links)
        ln = self.topo.links[i]
        if kind == "lab":
            link(self.name, _end(ln.a), _end(ln.b), False)
            self.lab_down.add(i)
            return {"event": f"lab link {self.topo.link_name(ln)} down"}
        node, ifname = ln.a if self.rng.random() < 0.5 else ln.b
        if node in self.stopped:
            node, ifname = ln.b if (node, ifname) == ln.a else ln.a
        self._ip_link(node, ifname, False)
        self.ip_down[i] = (node, ifname)
        return {"event": f"ip link set {ifname} down in {node} ({self.topo.link_name(ln)})"}

    def _recover(self, kind: str, what: Any) -> dict[str, Any]:
        if kind == "router":
            pid = node_start(self.name, what, wait=False)["pid"]
            if what in self.pids:
                self.pids[what] = pid
            self.stopped.discard(what)
            return {"event": f"start router {what}"}
        ln = self.topo.links[what]
        if kind == "lab":
            link(self.name, _end(ln.a), _end(ln.b), True)
            self.lab_down.discard(what)
            return {"event": f"lab link {self.topo.link_name(ln)} up"}
        node, ifname = self.ip_down.pop(what)
        self._ip_link(node, ifname, True)
        return {"event": f"ip link set {ifname} up in {node} ({self.topo.link_name(ln)})"}

    def recover_all(self) -> None:
        for r in sorted(self.stopped):
            self._recover("router", r)
        for i in sorted(self.ip_down):
            self._recover("ip", i)
        for i in sorted(self.lab_down):
            self._recover("lab", i)

    # ------------------------------------------------------------ resources

    def sample(self) -> dict[str, tuple[int, int, int, int]]:
        """router -> (pid, CPU ticks, fds, RSS) for every running router."""
        time.sleep(0.3)  # the management connections of the last checks close first
        out = {}
        for r in self.topo.routers:
            if r.name in self.stopped or r.name not in self.pids:
                continue
            pid = self.pids[r.name]
            out[r.name] = (pid, *_proc(pid))
        return out


def _ping_stream(name: str, topo: Topology) -> subprocess.Popen | None:
    hosts = topo.hosts
    if len(hosts) < 2:
        return None
    dst = hosts[-1].interfaces[next(iter(hosts[-1].interfaces))].address.ip
    return subprocess.Popen(["ip", "netns", "exec", ns_name(name, hosts[0].name), "ping", "-q",
                             "-i", "0.05", "-W", "1", str(dst)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _ping_summary(p: subprocess.Popen | None) -> dict[str, Any]:
    if p is None:
        return {}
    p.send_signal(signal.SIGINT)  # ping prints its statistics and exits
    out, _ = p.communicate(timeout=10)
    for line in out.splitlines():
        if "packets transmitted" in line:
            parts = line.split(",")
            sent = int(parts[0].split()[0])
            recv = int(parts[1].split()[0])
            return {"sent": sent, "received": recv, "lost": sent - recv}
    return {"summary": out.strip()}


def run(name: str, events: int, seed: int, say: Callable[[str], None] = lambda s: None,
        settle_timeout: float = 90.0) -> dict[str, Any]:
    """The soak; returns the report (docs/cli.md, `lsr lab chaos --json`)."""
    c = Chaos(name, seed, say, settle_timeout)
    if not LabState(name).exists():
        raise LabError(f"no lab named '{name}' (lsr lab list)")
    c.settle()
    before = c.sample()
    kinds_before = {r: _fd_kinds(v[0]) for r, v in before.items()}
    ping = _ping_stream(name, c.topo)
    settles: list[float] = []
    try:
        for k in range(events):
            e = c.step()
            try:
                e["settle_s"] = round(c.settle(), 3)
            except LabError as err:
                raise LabError(f"event {k + 1} ({e['event']}): {err}") from None
            e["n"] = k + 1
            settles.append(e["settle_s"])
            c.log.append(e)
            say(f"{k + 1:4d} {e['event']}: settled in {e['settle_s']:.2f} s")
        c.recover_all()
        c.settle()
    finally:
        pings = _ping_summary(ping)
    first = c.sample()
    time.sleep(IDLE_WINDOW)  # CPU use over a window of idleness is what is measured
    second = c.sample()
    hz = os.sysconf("SC_CLK_TCK")
    routers: dict[str, Any] = {}
    problems: list[str] = []
    for r, (pid, t1, fds, rss) in second.items():
        cpu = (t1 - first[r][1]) / hz / IDLE_WINDOW
        info: dict[str, Any] = {"pid": pid, "idle_cpu": round(cpu, 4), "fds": fds, "rss": rss}
        if cpu > IDLE_CPU_MAX:
            problems.append(f"{r} uses {cpu:.0%} of a core while idle")
        if r in before and before[r][0] == pid:  # same process all along
            info["fds_before"], info["rss_before"] = before[r][2], before[r][3]
            if fds > before[r][2]:
                now = _fd_kinds(pid)
                grew = {k: f"{kinds_before[r].get(k, 0)}->{n}" for k, n in sorted(now.items())
                        if n != kinds_before[r].get(k, 0)}
                problems.append(f"{r}: file descriptors {before[r][2]} -> {fds} ({grew})")
            if rss - before[r][3] > RSS_GROWTH_MAX:
                problems.append(f"{r}: memory {before[r][3] >> 20} -> {rss >> 20} MB")
        routers[r] = info
    return {"lab": name, "events": events, "seed": seed, "log": c.log,
            "settle_max_s": max(settles, default=0.0),
            "settle_mean_s": round(sum(settles) / len(settles), 3) if settles else 0.0,
            "pings": pings, "routers": routers, "problems": problems, "ok": not problems}


def _end(end: tuple[str, str]) -> str:
    """NODE:INTERFACE: names one link even where two nodes have parallel ones."""
    return f"{end[0]}:{end[1]}"
