"""Every bundled topology as a real lab: converges, LFIBs equal the simulator's, every
host pings every other host, and TCP crosses the core between the first and last host."""

from __future__ import annotations

import itertools
import os
import subprocess

import pytest

import lsr.lab as lab
from lsr.core.topology import host_address, load_topology
from lsr.lab.state import ns_name
from lsr.sim import simulate
from tests.conftest import BUNDLED, needs_root
from tests.wait import wait_tcp_listening

pytestmark = [pytest.mark.netns, needs_root]


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_topology_as_a_lab(path) -> None:
    topo = load_topology(path)
    name = f"u{os.getpid() % 1000}{path.stem[:4]}"
    try:
        L = lab.up(topo, name=name, timeout=60)
        sim, _ = simulate(topo)
        assert lab.lfib(name) == sim.lfib_json()
        hosts = [h.name for h in topo.hosts]
        for a, b in itertools.permutations(hosts, 2):
            r = L.run(a, ["ping", "-c", "1", "-W", "2", str(host_address(topo, b))])
            assert r.returncode == 0, (a, b, r.stdout)
        src, dst = hosts[0], hosts[-1]
        recv = subprocess.Popen(["ip", "netns", "exec", ns_name(name, dst), "sh", "-c",
                                 "nc -l -p 5001 | wc -c"], stdout=subprocess.PIPE, text=True)
        try:
            wait_tcp_listening(ns_name(name, dst), 5001, recv)
            L.run(src, ["sh", "-c", f"head -c 300000 /dev/urandom | nc -N {host_address(topo, dst)} 5001"])
            assert recv.communicate(timeout=20)[0].strip() == "300000"
        finally:
            if recv.poll() is None:
                recv.kill()
    finally:
        lab.down(name)
    left = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    assert not any(ns.startswith(f"lsr-{name}.") for ns in left)
