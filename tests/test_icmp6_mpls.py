"""ICMPv6 with RFC 4950 label stacks (RFC 4884 form for ICMPv6) and IPv6 ECMP.

tshark (an independent decoder) reads every ICMPv6 message the plane builds: Time
Exceeded with the MPLS Label Stack object as received (extension checksum, original
datagram length in 64-bit words), the same without labels, Packet Too Big, Destination
Unreachable, Echo Reply and Neighbor Advertisement, with correct checksums and nothing
malformed. ECMP: 6PE flows across a diamond spread over both branches by the 5-tuple and
the flow label, and one flow keeps one branch.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from forwarding.plane import decide
from forwarding.tables import build_all
from forwarding.walk import walk
from lsr.core.topology import parse_topology
from lsr.sim import converge
from tests.fwd_helpers import mpls_frame
from tests.v6_helpers import CE1, CE2, PE1_6, echo6, frame6, line4_6, udp6, v6_tables

DIAMOND6 = """
name: diamond6
topology:
  nodes:
    ce1: {kind: host}
    pe1: {loopback: 10.255.0.1}
    p1: {loopback: 10.255.0.2}
    p2: {loopback: 10.255.0.3}
    pe2: {loopback: 10.255.0.4}
    ce2: {kind: host}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
      subnet6: 2001:db8:1::/64
    - endpoints: [pe1:eth2, p1:eth1]
    - endpoints: [pe1:eth3, p2:eth1]
    - endpoints: [p1:eth2, pe2:eth2]
    - endpoints: [p2:eth2, pe2:eth3]
    - endpoints: [pe2:eth1, ce2:eth0]
      subnet6: 2001:db8:2::/64
bgp:
  asn: 65000
  routers: {pe1: {}, pe2: {}}
"""


def _pcap(frames: list[bytes], path: Path) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    out += [struct.pack("<IIII", k, 0, len(f), len(f)) + f for k, f in enumerate(frames)]
    path.write_bytes(b"".join(out))


def _messages() -> dict[str, bytes]:
    """One frame of each ICMPv6 message the plane sends (Ethernet, labels if any)."""
    T = v6_tables(line4_6(mtu1=1300))
    out = {}
    r = decide(mpls_frame(T["p1"], "eth1", (4003, 4000), udp6(CE1, CE2, hl=63), ttl=1), "eth1",
               T["p1"])
    out["time-exceeded-labelled"] = r.replies[0].frame
    r = decide(frame6(T["pe1"], "eth1", udp6(CE1, CE2, hl=1)), "eth1", T["pe1"])
    out["time-exceeded"] = r.replies[0].frame
    r = decide(frame6(T["pe1"], "eth1", udp6(CE1, CE2, data=bytes(1400))), "eth1", T["pe1"])
    out["packet-too-big"] = r.replies[0].frame
    r = decide(frame6(T["pe1"], "eth1", udp6(CE1, "2001:db8:77::1")), "eth1", T["pe1"])
    out["unreachable"] = r.replies[0].frame
    r = decide(frame6(T["pe1"], "eth1", echo6(CE1, PE1_6)), "eth1", T["pe1"])
    out["echo-reply"] = r.replies[0].frame
    from tests.test_plane6 import ns_frame

    r = decide(ns_frame(T["pe1"], "eth1", PE1_6), "eth1", T["pe1"])
    out["neighbor-advert"] = r.replies[0].frame
    return out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_our_icmpv6(tmp_path):
    msgs = _messages()
    path = tmp_path / "icmp6.pcap"
    _pcap(list(msgs.values()), path)
    fields = ["icmpv6.type", "icmpv6.code", "icmpv6.checksum.status", "icmpv6.length",
              "icmp.ext.checksum.status", "icmp.ext.class", "icmp.mpls.label", "icmp.mpls.s",
              "icmpv6.mtu", "mpls.label", "_ws.malformed", "_ws.expert"]
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields",
                          *(x for f in fields for x in ("-e", f))],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rows = {name: dict(zip(fields, line.split("\t"), strict=True))
            for name, line in zip(msgs, out.splitlines(), strict=True)}
    for name, r in rows.items():
        assert r["icmpv6.checksum.status"] == "1", name  # good
        assert not r["_ws.malformed"] and not r["_ws.expert"], (name, r)
    te = rows["time-exceeded-labelled"]
    assert te["icmpv6.type"] == "3" and te["icmpv6.length"] == "16"  # 128 octets, RFC 4884
    assert te["icmp.ext.checksum.status"] == "1" and te["icmp.ext.class"] == "1"
    assert te["icmp.mpls.label"] == "4003,4000" and te["icmp.mpls.s"] == "0,1"
    assert te["mpls.label"] == "5003,4000"  # sent on along the LSP (RFC 3032 §2.3.2)
    assert rows["time-exceeded"]["icmpv6.length"] in ("", "0") and not rows["time-exceeded"][
        "icmp.ext.class"]
    assert rows["packet-too-big"]["icmpv6.type"] == "2" and rows["packet-too-big"]["icmpv6.mtu"] == "1292"
    assert rows["unreachable"]["icmpv6.type"] == "1"
    assert rows["echo-reply"]["icmpv6.type"] == "129"
    assert rows["neighbor-advert"]["icmpv6.type"] == "136"


def test_ipv6_ecmp_spreads_flows_and_keeps_each_on_one_branch():
    o = converge(parse_topology(DIAMOND6, "d6.yaml"))
    assert o.converged
    s = o.sim
    tables = build_all(s.topo, s.ribs, {r: i.lfib for r, i in s.instances.items()}, s.fib6s())
    branch = {}
    for sport in range(40000, 40016):
        w = walk(s.topo, tables, "ce1", "ce2", "udp", 64, sport, 33434, family=6)
        assert w["result"] == "delivered"
        first = w["hops"][0]
        assert first["table"] == "6pe" and first["ecmp"]["choices"] == ["p1", "p2"]
        branch[sport] = first["neighbor"]
        again = walk(s.topo, tables, "ce1", "ce2", "udp", 64, sport, 33434, family=6)
        assert again["hops"][0]["neighbor"] == branch[sport]  # one flow, one path
    assert set(branch.values()) == {"p1", "p2"}
    # the flow label is a hash input too (RFC 6438): same ports, other labels, both branches
    t = tables["pe1"]
    seen = set()
    for flow in range(1, 17):
        f = frame6(t, "eth1", udp6("2001:db8:1::1", "2001:db8:2::2", flow=flow))
        seen.add(decide(f, "eth1", t).out_if)
    assert seen == {"eth2", "eth3"}
