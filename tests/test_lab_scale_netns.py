"""A big lab's per-router costs, guarded on a small one (root): a 16-router ISP-shaped lab
whose routers import nothing after the fork (every module preloaded and shared), have
gc.freeze() in effect, build no whole-topology IGP, stay near 0 CPU once converged, and
keep their memory under a bound (docs/scale.md, "A big lab on one machine"; the
200-router numbers: benchmarks/bench_lab.py --only isp). Routers from the fork server
(lab agents) carry none of the CLI's or the tests' modules.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TOPOLOGIES, is_root

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab.state import LabState

UNIQ = os.getpid() % 10000
ROOT = Path(__file__).resolve().parent.parent
WINDOW = 5.0  # seconds of CPU accounting
IDLE = 0.01  # of one core, per converged router (measured: ~0.001)
# Bounds measured with margin (16 routers, 256-slot rings, forked from a fresh interpreter: private
# dirty 13-15 MB, PSS 18-32 MB a router). A module imported in every router instead of
# before the fork (numpy: ~20 MB) breaks them.
PRIVATE_DIRTY_MB = 20
PSS_MB = 40
NOT_FOR_ROUTERS = ("scapy", "rich", "click")


def _router_pids(name: str) -> dict[str, int]:
    return {p["role"].split(":", 1)[1]: p["pid"] for p in LabState(name).read().get("pids", [])
            if p.get("role", "").startswith("router:")}


def _ticks(pid: int) -> int:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture(scope="module")
def isp16():
    name = f"ls{UNIQ}"
    # A 200-router lab's ring depth (a small lab's deep rings would be most of its PSS)
    # Brought up by a fresh interpreter, as `lsr lab up` is: routers forked from this
    # pytest worker would share (and copy on write) whatever earlier tests left in it.
    env = dict(os.environ, LSR_RING_FRAMES="256")
    up = ("import lsr.lab as lab; from benchmarks.topogen import isp_topology; "
          f"lab.up(isp_topology(16, 2), name={name!r}, timeout=120)")
    try:
        r = subprocess.run([sys.executable, "-c", up], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=180)
        assert r.returncode == 0, r.stderr[-2000:]
        yield name
    finally:
        lab.down(name)
        assert not [ns for ns in os.listdir("/run/netns") if ns.startswith(f"lsr-{name}.")]


def test_routers_import_nothing_after_the_fork_and_have_gc_frozen(isp16):
    for r in ("r0", "r8", "r15"):
        v = lab.query(isp16, r, "process")
        late = v["imported_after_fork"]
        assert late == [], f"{r} imported after the fork (preload them: lsr.lab.forker): {late}"
        assert v["gc_frozen"] > 10_000  # gc.freeze() before the fork: the collector skips them
        # a router running OSPF builds no networkx graph of the whole topology
        assert v["igp"] is False


def test_converged_routers_are_idle_and_small(isp16):
    pids = _router_pids(isp16)
    assert len(pids) == 16
    hz = os.sysconf("SC_CLK_TCK")
    t0, before = time.monotonic(), {r: _ticks(p) for r, p in pids.items()}
    time.sleep(WINDOW)  # a measurement window, not a wait for an event
    dt = time.monotonic() - t0
    use = {r: (_ticks(p) - before[r]) / hz / dt for r, p in pids.items()}
    busy = {r: f"{u:.1%}" for r, u in use.items() if u > IDLE}
    assert not busy, f"converged routers busy while idle: {busy}"
    big = {}
    for r in pids:
        mem = lab.query(isp16, r, "process")["memory_kb"]
        if mem["Private_Dirty"] > PRIVATE_DIRTY_MB * 1024 or mem["Pss"] > PSS_MB * 1024:
            big[r] = (mem["Private_Dirty"] // 1024, mem["Pss"] // 1024)
    assert not big, f"routers over {PRIVATE_DIRTY_MB} MB private / {PSS_MB} MB PSS: {big}"


def test_routers_from_the_fork_server_carry_no_cli_or_test_modules():
    name = f"ls{UNIQ}f"
    try:
        lab.up(load_topology(TOPOLOGIES / "line3.yaml"), name=name, timeout=60,
               spawn="forkserver")
        for r in ("pe1", "p1"):
            mods = {m.split(".")[0] for m in lab.query(name, r, "process")["modules"]}
            assert not mods & set(NOT_FOR_ROUTERS), (r, sorted(mods & set(NOT_FOR_ROUTERS)))
    finally:
        lab.down(name)


def test_netlink_routes_are_those_ip_would_make():
    """lsr.lab.rtnl's messages leave the kernel table `ip -batch` of the same changes left:
    one next hop, ECMP, a delete, and a route via a missing interface failing alone."""
    import subprocess
    from ipaddress import IPv4Address as A
    from ipaddress import IPv4Network as N

    from lsr.core.igp import Nexthop, Route
    from lsr.lab import netns, nsctl, rtnl

    ns = f"lsr-ls{UNIQ}r.x"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        def ip(*argv: str) -> str:
            return subprocess.run(["ip", "-n", ns, *argv], check=True, capture_output=True,
                                  text=True).stdout

        for i, a in enumerate(("10.1.0.1/30", "10.1.0.5/30")):
            ip("link", "add", f"a{i}", "type", "veth", "peer", "name", f"b{i}")
            ip("addr", "add", a, "dev", f"a{i}")
            for d in (f"a{i}", f"b{i}"):
                ip("link", "set", d, "up")

        def route(p: str, *hops: tuple[str, str]) -> tuple[N, Route]:
            return N(p), Route(N(p), 5, tuple(Nexthop("x", d, A(g)) for g, d in hops))

        rib = dict([route("10.9.0.0/24", ("10.1.0.2", "a0")),
                    route("10.9.1.0/24", ("10.1.0.2", "a0"), ("10.1.0.6", "a1")),
                    route("10.9.2.1/32", ("10.1.0.2", "gone0"))])
        out: dict = {}
        rtnl.close()  # a socket is in the namespace it was made in: made anew in `ns`
        nsctl.in_namespace(ns, lambda: out.update(inst=netns.sync_routes(rib, {})))
        ours = ip("route", "show", "proto", "188")
        assert out["inst"][N("10.9.2.1/32")] is None  # failed: sent again next time
        assert out["inst"][N("10.9.0.0/24")] is not None
        ip("route", "flush", "proto", "188")
        cmds, _ = netns.route_commands(rib, {})
        subprocess.run(["ip", "-n", ns, "-force", "-batch", "-"], input="\n".join(cmds) + "\n",
                       capture_output=True, text=True)
        assert ours == ip("route", "show", "proto", "188") and "nexthop via 10.1.0.6" in ours
        del rib[N("10.9.0.0/24")]
        nsctl.in_namespace(ns, lambda: out.update(inst=netns.sync_routes(rib, out["inst"])))
        assert "10.9.0.0/24" not in ip("route", "show", "proto", "188")
    finally:
        rtnl.close()  # (its socket was made in that namespace)
        subprocess.run(["ip", "netns", "del", ns])
