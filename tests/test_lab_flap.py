"""Idle labs stay idle after a link flap (root).

A link that goes down leaves ENETDOWN on the packet sockets bound to it; until it is
read, poll() reports POLLERR and the router's reader callback runs at every event-loop
turn (forwarding.afpacket, PacketPort.take_error). Before the fix, pe1 and p1 used
40-95% of a core each from the first flap on.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import TOPOLOGIES, is_root
from tests.wait import wait_for

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab.state import LabState

UNIQ = os.getpid() % 10000
WINDOW = 3.0  # seconds of CPU accounting per measurement
IDLE = 0.05  # of one core: an idle router uses far less (timers, hellos)


def _name() -> str:
    return f"fl{UNIQ}"


def _router_pids(name: str) -> dict[str, int]:
    return {p["role"].split(":", 1)[1]: p["pid"] for p in LabState(name).read().get("pids", [])
            if p.get("role", "").startswith("router:")}


def _cpu_ticks(pid: int) -> int:
    # /proc/PID/stat: fields 14 and 15 (utime, stime) after the "(comm)" field
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_use(pids: dict[str, int], window: float = WINDOW) -> dict[str, float]:
    """Each process's CPU use over `window` s, as a fraction of one core."""
    hz = os.sysconf("SC_CLK_TCK")
    t0, before = time.monotonic(), {r: _cpu_ticks(p) for r, p in pids.items()}
    time.sleep(window)  # a measurement window, not a wait for an event
    dt = time.monotonic() - t0
    return {r: (_cpu_ticks(p) - before[r]) / hz / dt for r, p in pids.items()}


def _wakeups(name: str, router: str) -> int:
    return lab.query(name, router, "counters")["runtime"].get("rx_wakeups", 0)


def _assert_idle(name: str, what: str) -> dict[str, float]:
    pids = _router_pids(name)
    w0 = {r: _wakeups(name, r) for r in pids}
    use = cpu_use(pids)
    woke = {r: _wakeups(name, r) - w0[r] for r in pids}
    busy = {r: f"{u:.0%}" for r, u in use.items() if u >= IDLE}
    assert not busy, f"after {what}: routers busy while idle: {busy} (RX wake-ups in " \
                     f"{WINDOW:g} s: {woke})"
    return use


@pytest.fixture(scope="module")
def line3():
    name = _name()
    try:
        lab.up(load_topology(TOPOLOGIES / "line3.yaml"), name=name, timeout=30)
        yield name
    finally:
        lab.down(name)


def test_idle_after_lab_link_flap(line3):
    _assert_idle(line3, "lab up")
    lab.link(line3, "pe1", "p1", False)
    lab.wait_converged(line3)
    _assert_idle(line3, "lsr lab link pe1 p1 down")
    lab.link(line3, "pe1", "p1", True)
    lab.wait_converged(line3)
    _assert_idle(line3, "lsr lab link pe1 p1 down, up")
    # the errors were seen and cleared, on both ends of the flapped link
    for r in ("pe1", "p1"):
        runtime = lab.query(line3, r, "counters")["runtime"]
        assert any(k.startswith("rx_socket_errors_") and v for k, v in runtime.items()), runtime


def test_idle_after_ip_link_flap_in_namespace(line3):
    # The lab does not react to this yet (no carrier watch); the CPU must stay idle anyway.
    assert lab.exec_in(line3, "pe1", ["ip", "link", "set", "eth2", "down"]) == 0
    _assert_idle(line3, "ip link set eth2 down in pe1")
    assert lab.exec_in(line3, "pe1", ["ip", "link", "set", "eth2", "up"]) == 0
    _assert_idle(line3, "ip link set eth2 down, up in pe1")
    assert lab.query(line3, "pe1", "counters")["runtime"].get("rx_socket_errors_eth2", 0) >= 2


def test_host_port_carrier_takes_its_subnet_out_of_the_igp(line3):
    """A host-facing port without carrier (`ip link` in the host's namespace or the
    router's) is an OSPF interface in state Down: its stub leaves the router-LSA (RFC 2328
    §12.4.1) and the other routers lose the route and its LSP, as the simulator does with
    the link down. It stayed advertised: p1 and pe2 kept an LSP to a dead subnet."""
    from lsr.sim import converge

    topo = load_topology(TOPOLOGIES / "line3.yaml")
    for node, ifname in (("ce1", "eth0"), ("pe1", "eth1")):
        assert lab.exec_in(line3, node, ["ip", "link", "set", ifname, "down"]) == 0
        want = converge(topo, ["ce1-pe1"]).sim.lfib_json()
        wait_for(lambda w=want: lab.lfib(line3) == w, 20,
                 f"the LFIBs of the simulator with ce1-pe1 down, after ip link in {node}")
        assert not any(e["fec"] == "192.168.1.0/24"
                       for e in lab.lfib(line3, ["pe2"])["routers"]["pe2"]["ftn"])
        assert lab.exec_in(line3, node, ["ip", "link", "set", ifname, "up"]) == 0
        want = converge(topo, []).sim.lfib_json()
        wait_for(lambda w=want: lab.lfib(line3) == w, 20,
                 f"the LFIBs of the simulator with all up, after ip link up in {node}")
    _assert_idle(line3, "ce1's port flapped")
