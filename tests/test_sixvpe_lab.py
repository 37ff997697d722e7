"""6VPE (RFC 4659) in a namespace lab (topologies/6vpe.yaml): two customers with the same
IPv4 and IPv6 prefixes at two sites each, across an IPv4-only core.

* the PEs' LFIBs (VRF FIBs with their IPv6 routes), `lsr lab vrf` and `lsr lab bgp ...
  vpn6` equal the simulator's;
* every site pings its own VPN's other site over IPv6 (the PE's dataplane answers its
  sites' Neighbor Solicitations in their VRF); a ping to the other customer's IPv6
  address reaches the host of its own VPN (the hosts' ICMPv6 counters);
* a capture on a core link: IPv6 under two labels, [LDP label, VPN label], decoded by
  tshark with no malformed item; `traceroute -6 -e` from a site shows both labels at
  the P routers and the VPN label at the egress PE (RFC 4950);
* `lsr lab validate` passes, its VPN checks walking IPv6 too; a customer link down
  withdraws its VPN-IPv6 route, up brings it back.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess

import pytest

from .conftest import ROOT, needs_root, needs_tool
from .wait import Capture, pcap_frames, wait_for

pytestmark = [needs_root, pytest.mark.netns]

NAME = f"{os.environ.get('LSR_TEST_LAB_PREFIX', 'v6')}vp{os.getpid() % 1000}"
FILE = ROOT / "topologies" / "6vpe.yaml"
SITE1, SITE2 = "2001:db8:1:1::1", "2001:db8:1:2::1"


@pytest.fixture(scope="module")
def vpe():
    import lsr.lab as lab
    from lsr.core.topology import load_topology

    lab.down(NAME)
    try:
        yield lab.up(load_topology(FILE), name=NAME, timeout=90)
    finally:
        lab.down(NAME)


def _sim():
    from lsr.core.topology import load_topology
    from lsr.sim import converge

    return converge(load_topology(FILE)).sim


def _differences(sim) -> list[str]:
    import lsr.lab as lab
    from bgp import views

    out = []
    routers = [r.name for r in sim.topo.routers]
    want, have = sim.lfib_json(routers)["routers"], lab.lfib(NAME, routers)["routers"]
    out += [f"{r} lfib {k}" for r in routers for k in set(want[r]) | set(have[r])
            if want[r].get(k) != have[r].get(k)]
    if lab.vrf(NAME, ["pe1", "pe2"]) != sim.vrf_json(["pe1", "pe2"]):
        out.append("vrf")
    for r in ("pe1", "pe2"):
        if lab.bgp(NAME, r, "vpn6")["routers"][r]["routes"] != \
                views.routes(sim.bgp[r], views.VIEWS["vpn6"]):
            out.append(f"{r} bgp vpn6")
    return out


def _wait_equal(sim, timeout: float = 40) -> None:
    last: list[str] = []

    def same() -> bool:
        last[:] = _differences(sim)
        return not last
    wait_for(same, timeout, lambda: f"the lab's tables to equal the simulator's: {last}")


def _ping6(vpe, src: str, addr: str) -> bool:
    r = vpe.run(src, ["ping", "-6", "-c", "1", "-W", "2", addr])
    return r.returncode == 0


def _in_echos6(vpe, host: str) -> int:
    """ICMPv6 echo requests the host's kernel received (/proc/net/snmp6)."""
    text = vpe.run(host, ["cat", "/proc/net/snmp6"]).stdout
    return int(re.search(r"^Icmp6InEchos\s+(\d+)", text, re.M).group(1))


def test_tables_and_views_equal_the_simulators(vpe):
    import lsr.lab as lab

    _wait_equal(_sim())
    fib = {e["prefix"]: e for e in lab.vrf(NAME, ["pe1"])["routers"]["pe1"]["vrfs"]["red"]["fib"]}
    e = fib["2001:db8:1:2::/64"]
    assert e["source"] == "vpn" and e["vpn_label"] == 4102
    assert e["nexthops"][0]["out_labels"] == [2002, 4102]


def test_sites_reach_their_own_vpn_only_over_ipv6(vpe):
    for a, b in (("red1", SITE2), ("red2", SITE1), ("blue1", SITE2), ("blue2", SITE1)):
        assert _ping6(vpe, a, b), (a, b)
    # red1 and blue1 ask for the same address: each reaches its own VPN's site
    for src, own, other in (("red1", "red2", "blue2"), ("blue1", "blue2", "red2")):
        before = _in_echos6(vpe, own), _in_echos6(vpe, other)
        assert _ping6(vpe, src, SITE2)
        assert (_in_echos6(vpe, own), _in_echos6(vpe, other)) == (before[0] + 1, before[1])
    # the PE's own address in each VRF (the same address twice) answers its site
    assert _ping6(vpe, "red1", "2001:db8:1:1::2") and _ping6(vpe, "blue1", "2001:db8:1:1::2")


def _stack(frame: bytes) -> tuple[list[int], int]:
    labels, off = [], 14
    assert frame[12:14] == b"\x88\x47"
    while True:
        (e,) = struct.unpack_from("!I", frame, off)
        labels.append(e >> 12)
        off += 4
        if e & 0x100:
            return labels, off


@needs_tool("tcpdump")
def test_a_core_link_carries_ipv6_under_two_labels(vpe, tmp_path):
    pcap = tmp_path / "pe1-p1.pcap"
    from lsr.lab.state import ns_name

    cap = Capture(ns_name(NAME, "pe1"), "eth3", pcap, "mpls", count=1)
    try:
        assert _ping6(vpe, "red1", SITE2)
        cap.wait_exit()
    finally:
        cap.stop()
    (frame,) = pcap_frames(pcap)
    labels, off = _stack(frame)
    assert labels == [2002, 4102] and frame[off] >> 4 == 6  # [LDP label, VPN label], IPv6
    if shutil.which("tshark"):
        out = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "mpls.label",
                              "-e", "ipv6.dst", "-e", "icmpv6.type", "-e", "_ws.malformed",
                              "-e", "_ws.expert"], capture_output=True, text=True,
                             timeout=60).stdout.split()
        assert out == ["2002,4102", SITE2, "128"], out
    tr = vpe.run("red1", ["traceroute", "-6", "-e", "-n", "-q", "1", "-w", "3", SITE2],
                 timeout=120)
    assert tr.returncode == 0, tr.stderr
    hops = [ln.split() for ln in tr.stdout.splitlines()[1:]]
    assert [h[1] for h in hops] == ["2001:db8:1:1::2", "::ffff:10.0.0.2", "::ffff:10.0.0.6",
                                    "2001:db8:1:2::2", SITE2], tr.stdout
    assert "<MPLS:L=2002,E=0,S=0,T=1/L=4102,E=0,S=1,T=1>" in tr.stdout
    assert "<MPLS:L=4102,E=0,S=1,T=1>" in tr.stdout


def test_validate_and_a_customer_link_flap(vpe):
    import lsr.lab as lab
    from lsr.lab.lsp import validate_live

    res = validate_live(NAME, traceroutes=False)
    rows = {r["check"]: r for r in res["results"]}
    assert res["failed"] == 0, [r for r in res["results"] if r["status"] == "fail"]
    assert "over IPv6 too" in rows["invariant vpn-reachability"]["detail"]
    lab.link(NAME, "pe2", "red2", False)
    try:
        def gone() -> bool:
            fib = lab.vrf(NAME, ["pe1"])["routers"]["pe1"]["vrfs"]["red"]["fib"]
            return all(e["prefix"] != "2001:db8:1:2::/64" for e in fib)
        wait_for(gone, 30, lambda: "pe1's red to lose 2001:db8:1:2::/64")
        assert _ping6(vpe, "blue1", SITE2)  # the other customer's site stays
    finally:
        lab.link(NAME, "pe2", "red2", True)
    _wait_equal(_sim())
    assert _ping6(vpe, "red1", SITE2)
