"""OSPF on the wire in a lab: malformed packets from a raw socket are dropped and counted,
the router keeps running and its adjacency stays Full; `ip link set down` inside a
namespace is seen through netlink and routed around."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lsr import lab
from lsr.core.topology import load_topology
from lsr.lab.state import ns_name

from .conftest import TOPOLOGIES, needs_root
from .wait import wait_for

pytestmark = [needs_root, pytest.mark.netns, pytest.mark.slow]

NAME = f"o{os.getpid() % 100000}"

# Run inside p1's namespace: send pe1 (over eth1) one packet per kind of damage, with
# p1's router ID and address so that only the damage is wrong.
CRAFT = r"""
import socket, struct, sys
from ipaddress import IPv4Address as A
from ospf.packets import (Auth, Hello, Lsa, LsUpdate, OpaqueBody, Packet, encode_packet,
                          ALL_SPF_ROUTERS)
rid, src, pe1_rid = A(sys.argv[1]), A(sys.argv[2]), A(sys.argv[3])
hello = Hello(A("255.255.255.252"), 10, 2, 1, 40, A(0), A(0), (pe1_rid,))
good = encode_packet(Packet(rid, A(0), hello))
bad = {
    "bad-checksum": good[:12] + bytes([good[12] ^ 0xFF]) + good[13:],
    "bad-length": good[:2] + (len(good) + 40).to_bytes(2, "big") + good[4:],
    "wrong-area": encode_packet(Packet(rid, A("0.0.0.7"), hello)),
    "auth-mismatch": encode_packet(Packet(rid, A(0), hello), Auth.from_config("md5", "x", 1)),
    "unknown-lsa-type": encode_packet(Packet(rid, A(0), LsUpdate((
        Lsa.build(99, A("1.2.3.4"), rid, -0x7FFFFFFF, OpaqueBody(b"\0" * 8)),)))),
}
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 89)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth1")
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, src.packed)
for _ in range(3):
    for data in bad.values():
        s.sendto(data, (str(ALL_SPF_ROUTERS), 0))
print("sent")
"""


@pytest.fixture(scope="module")
def line3():
    lab.down(NAME)
    try:
        yield lab.up(load_topology(TOPOLOGIES / "line3.yaml"), name=NAME, timeout=60)
    finally:
        lab.down(NAME)


def test_malformed_ospf_packets_are_dropped_and_counted(line3):
    topo = line3.topo
    p1, pe1 = topo.nodes["p1"], topo.nodes["pe1"]
    p1_eth1 = p1.interfaces["eth1"]
    assert p1_eth1.peer_node == "pe1"
    pid = lab.status(NAME)["routers"]["pe1"]["pid"]
    env = dict(os.environ, PYTHONPATH=str(TOPOLOGIES.parent))
    r = subprocess.run(["ip", "netns", "exec", ns_name(NAME, "p1"), sys.executable, "-c", CRAFT,
                        str(p1.lsr_id), str(p1_eth1.address.ip), str(pe1.lsr_id)],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0 and "sent" in r.stdout, r.stderr

    def counted() -> dict | None:
        c = lab.query(NAME, "pe1", "ospf")["counters"]
        want = ["drop-bad-checksum", "drop-bad-length", "drop-wrong-area", "drop-auth-mismatch",
                "drop-unknown-lsa-type"]
        return c if all(c.get(k, 0) >= 3 for k in want) else None
    wait_for(counted, 10, lambda: f"the drops counted: {lab.query(NAME, 'pe1', 'ospf')['counters']}")
    st = lab.query(NAME, "pe1", "ospf")
    assert st["full"] == 1  # the adjacency with p1 stayed up
    assert lab.status(NAME)["routers"]["pe1"]["pid"] == pid  # same process, still running
    assert lab.query(NAME, "pe1", "counters")["runtime"].get("ospf_errors", 0) == 0


def test_ip_link_down_in_a_namespace_is_seen_and_restored(line3):
    """The failure every other lab tool makes: `ip link set eth2 down` in p1's namespace.
    p1 and pe2 (no carrier on its side) drop the adjacency; `lab status` names the link."""
    subprocess.run(["ip", "netns", "exec", ns_name(NAME, "p1"), "ip", "link", "set", "eth2",
                    "down"], check=True)
    try:
        wait_for(lambda: lab.query(NAME, "pe2", "ospf")["full"] == 0, 10, "pe2 to lose p1")
        st = lab.status(NAME)
        assert st["down_link_names"] == ["p1-pe2"], st
        p1_id = str(line3.topo.nodes["p1"].lsr_id)  # LDP's Hello adjacency went with carrier
        assert p1_id not in lab.query(NAME, "pe2", "status")["sessions"]
    finally:
        subprocess.run(["ip", "netns", "exec", ns_name(NAME, "p1"), "ip", "link", "set", "eth2",
                        "up"], check=True)
    lab.wait_converged(NAME, 30)
    assert lab.status(NAME)["down_links"] == []
    r = subprocess.run(["ip", "netns", "exec", ns_name(NAME, "ce1"), "ping", "-c", "2", "-i",
                        "0.2", "-W", "2", "192.168.2.2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
