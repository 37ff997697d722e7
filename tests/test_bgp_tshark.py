"""Independent oracle: tshark decodes every BGP message our speakers send.

The simulator runs the reflector topology (tests/data/bgp-rr.yaml) through session
set-up, VPN-IPv4 and IPv4 routes, withdrawals, End-of-RIB, a reset by NOTIFICATION
and a router stop; every `TcpSend` is written as TCP port 179 segments (each
connection opened with a handshake) to a pcap. A second stream carries messages the
scenario does not produce: ROUTE-REFRESH, labelled IPv6 (6PE), every other path
attribute, and a 2-octet-AS session with AS4_PATH / AS4_AGGREGATOR. tshark must
decode every frame as BGP with no malformed or expert item, see every message type
and every attribute type we implement, and read the same NLRI, labels, RDs and
route targets we wrote.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from pathlib import Path

import pytest

from bgp import events as ev
from bgp.attrs import (
    AS2,
    AS4,
    AS_SEQUENCE,
    AS_SET,
    NO_EXPORT,
    AsPath,
    Ctx,
    ExtCommunity,
    MpReach,
    MpUnreach,
    PathAttrs,
)
from bgp.messages import (
    FourOctetAs,
    Multiprotocol,
    Notification,
    Open,
    RouteRefresh,
    RouteRefreshCap,
    Update,
    encode,
)
from bgp.nlri import IPV4_VPN, IPV6_LABELLED, Nlri, Rd
from lsr.sim import Simulation

from .test_bgp_sim import LO, TOPO, A, B, load_topology, vpn

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
MSS = 1448


def _csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@dataclass
class Stream:
    """One TCP connection: client and server address/port, next sequence numbers."""

    cli: tuple[IPv4Address, int]
    srv: tuple[IPv4Address, int]
    seq: dict[bool, int] = field(default_factory=lambda: {True: 1000, False: 5000})


class Pcap:
    def __init__(self) -> None:
        self.frames: list[tuple[float, bytes]] = []
        self.ident = 0

    def segment(self, t: float, s: Stream, from_cli: bool, flags: int, data: bytes = b"") -> None:
        (sa, sp), (da, dp) = (s.cli, s.srv) if from_cli else (s.srv, s.cli)
        seq, ack = s.seq[from_cli], s.seq[not from_cli]
        tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, ack if flags & 0x10 else 0, 5 << 4, flags,
                          65535, 0, 0) + data
        pseudo = sa.packed + da.packed + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", _csum(pseudo + tcp)) + tcp[18:]
        self.ident += 1
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(tcp), self.ident, 0x4000, 64, 6,
                         0, sa.packed, da.packed)
        ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
        eth = b"\x02\x00" + da.packed + b"\x02\x00" + sa.packed + b"\x08\x00"
        self.frames.append((t, eth + ip + tcp))
        s.seq[from_cli] = (seq + len(data) + (1 if flags & 0x02 else 0)) & 0xFFFFFFFF

    def handshake(self, t: float, s: Stream) -> None:
        self.segment(t, s, True, 0x02)
        self.segment(t, s, False, 0x12)
        self.segment(t, s, True, 0x10)

    def send(self, t: float, s: Stream, from_cli: bool, data: bytes) -> None:
        for i in range(0, len(data), MSS):
            self.segment(t, s, from_cli, 0x18, data[i:i + MSS])

    def write(self, path: Path) -> None:
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
        for t, f in self.frames:
            us = round(t * 1e6)
            out.append(struct.pack("<IIII", us // 1_000_000, us % 1_000_000, len(f), len(f)) + f)
        path.write_bytes(b"".join(out))


def capture_sim(pcap: Pcap) -> list[bytes]:
    """Run the scenario; every BGP TcpSend goes into `pcap`. Returns the sent bytes."""
    sim = Simulation(load_topology(TOPO))
    streams: dict[tuple[str, int], Stream] = {}
    sent: list[bytes] = []
    perform = sim._perform_bgp

    def spy(router: str, actions: list) -> None:
        for a in actions:
            if isinstance(a, ev.TcpSend):
                pipe = sim._bgp_pipes.get((router, a.conn))
                if pipe is not None:
                    peer, pconn, local, remote = pipe
                    cli = (router, a.conn) if a.conn > 0 else (peer, pconn)
                    s = streams.get(cli)
                    if s is None:
                        c_addr, s_addr = (local, remote) if a.conn > 0 else (remote, local)
                        s = streams[cli] = Stream((c_addr, 30000 + cli[1]), (s_addr, 179))
                        pcap.handshake(sim.now, s)
                    pcap.send(sim.now, s, a.conn > 0, a.data)
                    sent.append(a.data)
        perform(router, actions)

    sim._perform_bgp = spy  # type: ignore[method-assign]
    sim.bgp_originate("pe1", (vpn(A, 1001, "65000:1"),))
    sim.bgp_originate("pe2", (vpn(B, 2001, "10.255.0.2:7"),))
    assert sim.run(max_time=120).converged
    sim.advance(4)  # KEEPALIVEs
    sim.bgp_withdraw("pe1", IPV4_VPN, (A,))
    sim.bgp_deliver("pe3", ev.PeerStop(LO["rr"]))
    sim.run(max_time=2)
    sim.bgp_deliver("pe3", ev.PeerStart(LO["rr"]))
    assert sim.run(max_time=30).converged
    sim.router_stop("pe2")
    sim.advance(1)
    return sent


RICH = PathAttrs(
    origin=2, as_path=AsPath(((AS_SEQUENCE, (65001, 4200000000)), (AS_SET, (65002, 65003)))),
    med=7, local_pref=200, atomic_aggregate=True, aggregator=(4200000000, IPv4Address("10.0.0.9")),
    communities=(NO_EXPORT, 65000 << 16 | 1), originator_id=IPv4Address("10.255.0.1"),
    cluster_list=(IPv4Address("10.255.0.10"), IPv4Address("10.255.0.20")),
    ext_communities=(ExtCommunity.route_target("65000:1"), ExtCommunity.route_target("10.0.0.1:5"),
                     ExtCommunity.route_target("4200000000:9"), ExtCommunity.route_origin("65000:3")))


def extra_messages() -> list[tuple[bool, bytes, Ctx]]:
    """(from client, bytes, ctx) of messages the scenario does not send."""
    lo1, lo2 = IPv4Address("10.255.0.1"), IPv4Address("10.255.0.2")
    fams = (Multiprotocol(1, 1), Multiprotocol(1, 128), Multiprotocol(2, 4))
    msgs = [
        (True, Open(65000, 90, lo1, (*fams, RouteRefreshCap(), FourOctetAs(65000))), AS4),
        (False, Open(65000, 90, lo2, (*fams, RouteRefreshCap(), FourOctetAs(65000))), AS4),
        (True, RouteRefresh(1, 128), AS4),
        (True, Update(attrs=RICH, mp_reach=MpReach(IPV4_VPN, lo1, (
            (Nlri(IPv4Network("172.16.0.0/12"), Rd.parse("10.0.0.1:7")), 16),
            (Nlri(IPv4Network("0.0.0.0/0"), Rd.parse("4200000000:1")), 1048575)))), AS4),
        (True, Update(attrs=PathAttrs(local_pref=100), mp_reach=MpReach(IPV6_LABELLED, lo1, (
            (Nlri(IPv6Network("2001:db8::/32")), 2000), (Nlri(IPv6Network("2001:db8:1::/48")), 2001)))),
         AS4),
        (True, Update(mp_unreach=MpUnreach(IPV6_LABELLED, (Nlri(IPv6Network("2001:db8::/32")),))),
         AS4),
        (True, Update(mp_unreach=MpUnreach(IPV6_LABELLED, ())), AS4),
        (True, Update(withdrawn=(Nlri(IPv4Network("10.9.0.0/16")),), attrs=PathAttrs(
            RICH.origin, RICH.as_path, IPv4Address("10.0.0.1"), med=5),
            nlri=(Nlri(IPv4Network("192.168.1.0/24")), Nlri(IPv4Network("10.0.0.0/8")))), AS4),
        (False, Notification(6, 4), AS4),
    ] + [(False, Notification(c, sc, d), AS4) for c, sc, d in (
        (1, 2, b"\x00\x12"), (2, 1, b"\x00\x04"), (3, 5, bytes.fromhex("c0080300000100")),
        (4, 0, b""), (5, 3, b""), (7, 1, b"\x00\x01\x00\x80\x00"))]
    # A 2-octet-AS session (no capability 65): AS_TRANS with AS4_PATH / AS4_AGGREGATOR.
    two = [
        (True, Open(65000, 90, lo1, (Multiprotocol(1, 1),)), AS2),
        (False, Open(65001, 90, lo2, (Multiprotocol(1, 1),)), AS2),
        (True, Update(attrs=PathAttrs(as_path=RICH.as_path, next_hop=lo1,
                                      aggregator=RICH.aggregator),
                      nlri=(Nlri(IPv4Network("10.20.0.0/16")),)), AS2),
    ]
    return [(c, encode(m, ctx), ctx) for c, m, ctx in msgs], [(c, encode(m, ctx), ctx)
                                                               for c, m, ctx in two]


@dataclass
class Decoded:
    protos: list[str]
    fields: dict[str, list[str]]
    problems: list[str]


def tshark(path: Path) -> list[Decoded]:
    out = subprocess.run(["tshark", "-r", str(path), "-T", "pdml", "-o", "tcp.check_checksum:TRUE"],
                         capture_output=True, timeout=600, check=True).stdout
    frames = []
    for pkt in ET.fromstring(out).iter("packet"):
        d = Decoded([], defaultdict(list), [])
        for proto in pkt.iter("proto"):
            d.protos.append(proto.get("name", ""))
            if proto.get("name") == "_ws.malformed":
                d.problems.append(f"malformed: {proto.get('showname')}")
        for f in pkt.iter("field"):
            name, show = f.get("name", ""), f.get("showname", "")
            # Every expert item but Chat (TCP notes each SYN at that level).
            if name == "_ws.expert" and show and not show.startswith("Expert Info (Chat/"):
                d.problems.append(f"expert: {show}")
            if "incorrect" in show.lower():
                d.problems.append(show)
            if name.startswith("bgp."):
                d.fields[name].append(f.get("show", ""))
        frames.append(d)
    return frames


@pytest.fixture(scope="module")
def decoded(tmp_path_factory) -> tuple[list[bytes], list[Decoded]]:
    pcap = Pcap()
    sent = capture_sim(pcap)
    t = 500.0
    four, two = extra_messages()
    for n, batch in enumerate((four, two)):
        s = Stream((IPv4Address("10.255.0.1"), 40000 + n), (IPv4Address("10.255.0.2"), 179))
        pcap.handshake(t, s)
        for from_cli, data, _ in batch:
            pcap.send(t, s, from_cli, data)
            sent.append(data)
    path = tmp_path_factory.mktemp("bgp") / "bgp.pcap"
    pcap.write(path)
    return sent, tshark(path)


def test_every_frame_decodes_cleanly(decoded):
    _, frames = decoded
    bad = [(n, d.protos, d.problems) for n, d in enumerate(frames, 1) if d.problems]
    assert not bad, bad[:5]
    data_frames = [d for d in frames if "bgp" in d.protos]
    assert len(data_frames) > 50  # (82 today: the sessions, updates, and the extra messages)


def test_every_message_type_and_attribute_seen(decoded):
    _, frames = decoded
    types = {t for d in frames for t in d.fields.get("bgp.type", [])}
    assert types == {"1", "2", "3", "4", "5"}
    attrs = {t for d in frames for t in d.fields.get("bgp.update.path_attribute.type_code", [])}
    assert attrs == {str(x) for x in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18)}
    caps = {t for d in frames for t in d.fields.get("bgp.cap.type", [])}
    assert caps >= {"1", "2", "65"}


def test_tshark_reads_our_vpn_routes(decoded):
    _, frames = decoded
    f: dict[str, set[str]] = defaultdict(set)
    for d in frames:
        for k, v in d.fields.items():
            f[k] |= set(v)
    assert {"10.1.0.0", "172.16.0.0", "0.0.0.0"} <= f["bgp.mp_reach_nlri_ipv4_prefix"]
    assert {"1001 (bottom)", "2001 (bottom)", "16 (bottom)", "1048575 (bottom)",
            "2000 (bottom)", "0 (withdrawn)"} <= f["bgp.label_stack"]  # RFC 8277 §2, §2.4
    assert {"65000:1", "65000:2", "10.0.0.1:7", "4200000000:1"} <= f["bgp.rd"]
    assert f["bgp.update.path_attribute.mp_reach_nlri.next_hop.rd"] == {"0:0"}
    assert "10.255.0.2" in f["bgp.ext_com.value_IP4"] and "65000" in f["bgp.ext_com.value_as2"]
    assert "2001:db8::" in f.get("bgp.mp_reach_nlri_ipv6_prefix", set())
    assert {"1", "2", "3", "4", "5", "6", "7"} <= f["bgp.notify.major_error"]


def test_tshark_flags_what_it_should(tmp_path):
    """The oracle is not blind: a broken marker and a truncated attribute are reported."""
    pcap = Pcap()
    s = Stream((IPv4Address("10.255.0.1"), 40000), (IPv4Address("10.255.0.2"), 179))
    pcap.handshake(0, s)
    bad = bytearray(encode(Update(attrs=RICH, mp_reach=MpReach(
        IPV4_VPN, IPv4Address("10.255.0.1"), ((Nlri(IPv4Network("10.0.0.0/8"), Rd(0, 1, 1)), 16),)))))
    bad[25] = 0xFF  # MP_REACH_NLRI length past the end
    pcap.send(0, s, True, bytes(bad))
    path = tmp_path / "bad.pcap"
    pcap.write(path)
    frames = tshark(path)
    assert any(d.problems for d in frames)
