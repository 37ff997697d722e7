"""Every bundled topology as a real lab: converges, LFIBs (VRF tables included) equal the
simulator's, `lsr lab validate` passes, every host pings every other host (a VPN site: its own VPN's host of that
address, never the other customer's), and TCP crosses the core between the first host
and the last one it reaches."""

from __future__ import annotations

import itertools
import os
import subprocess

import pytest

import lsr.lab as lab
from lsr.core.topology import host_address, load_topology
from lsr.lab import strongswan
from lsr.lab.lsp import validate_live
from lsr.lab.state import ns_name
from lsr.sim import simulate
from tests.conftest import BUNDLED, needs_root
from tests.wait import wait_tcp_listening

pytestmark = [pytest.mark.netns, needs_root]


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_topology_as_a_lab(path) -> None:
    topo = load_topology(path)
    if strongswan.gateways(topo) and strongswan.missing_tools():
        pytest.skip(strongswan.missing_tools())
    # LSR_TEST_LAB_PREFIX: labs of parallel runs on one machine never share a name
    name = f"{os.environ.get('LSR_TEST_LAB_PREFIX', 'u')}{os.getpid() % 1000}{path.stem[:4]}"
    try:
        bundled_checks(lab.up(topo, name=name, timeout=60))
    finally:
        lab.down(name)
    left = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    assert not any(ns.startswith(f"lsr-{name}.") for ns in left)


def bundled_checks(L: lab.Lab) -> None:
    """What every bundled topology's lab must do (a lab over several machines too:
    tests/test_lab_multihost.py): LFIBs as the simulator's, every host pair pings (VPN
    sites their own VPN's host only), TCP crosses the core."""
    topo, name = L.topo, L.name
    sim, _ = simulate(topo)
    assert lab.lfib(name) == sim.lfib_json()
    # `lsr lab validate`: expect:, invariants, VPN checks, and every sampled LSP's
    # multipath LSP traceroute equal to its LFIB branches (cp-dp-agreement)
    v = validate_live(name)
    assert v["failed"] == 0, [r for r in v["results"] if r["status"] == "fail"]
    assert any(r["check"] == "cp-dp-agreement" and r["status"] == "pass" for r in v["results"])
    # customer hosts; strongSwan nodes route through their tunnels (their own test files)
    hosts = [h.name for h in topo.hosts if h.kind == "host"]
    for a, b in itertools.permutations(hosts, 2):
        addr = host_address(topo, b)
        # A VPN site (RFC 4364) reaches its own VPN only: another customer's address
        # is the host of a's VPN that has it, if any (l3vpn: the same 10.1.x sites).
        owner = topo.node_of_address(addr, topo.vrf_of(a))
        seen = {n: _in_echos(name, n) for n in {b, owner.name if owner else b}}
        r = L.run(a, ["ping", "-c", "1", "-W", "2", str(addr)])
        assert (r.returncode == 0) == (owner is not None), (a, b, r.stdout)
        if owner is not None and owner.name != b:
            assert _in_echos(name, owner.name) == seen[owner.name] + 1, (a, b)
            assert _in_echos(name, b) == seen[b], (a, b, "reached the other customer")
    src = hosts[0]
    dst = [h for h in hosts if topo.vrf_of(h) == topo.vrf_of(src)][-1]
    recv = subprocess.Popen(["ip", "netns", "exec", ns_name(name, dst), "sh", "-c",
                             "nc -l -p 5001 | wc -c"], stdout=subprocess.PIPE, text=True)
    try:
        wait_tcp_listening(ns_name(name, dst), 5001, recv)
        L.run(src, ["sh", "-c", f"head -c 300000 /dev/urandom | nc -N {host_address(topo, dst)} 5001"])
        assert recv.communicate(timeout=20)[0].strip() == "300000"
    finally:
        if recv.poll() is None:
            recv.kill()


def _in_echos(lab_name: str, host: str) -> int:
    """ICMP echo requests the host's kernel received (its namespace's /proc/net/snmp)."""
    lines = subprocess.run(["ip", "netns", "exec", ns_name(lab_name, host), "cat",
                            "/proc/net/snmp"], capture_output=True, text=True,
                           timeout=10).stdout.splitlines()
    head, vals = [x.split() for x in lines if x.startswith("Icmp:")][:2]
    return int(vals[head.index("InEchos")])
