"""Independent oracle: tshark decodes every OSPF packet our instances send.

The simulator runs OSPF on bundled topologies (with failures, a router restart,
multi-packet database exchanges and MD5 authentication); every `SendPacket` is
captured, wrapped in Ethernet + IPv4 as a lab router sends it (protocol 89, TTL 1,
TOS 0xC0, from the interface address to 224.0.0.5 or the neighbor) and written to a
pcap. tshark (PDML) must decode each frame as OSPF with no expert or malformed
item and a correct packet checksum, and its fields must equal what our decoder
reads. Wireshark 4.0 does not verify LSA checksums: scapy's Fletcher routine (an
implementation independent of ours) checks those.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from scapy.utils import fletcher16_checkbytes

import ospf.instance
from lsr.core.topology import load_topology
from lsr.sim import OSPF, Simulation
from ospf import events as ev
from ospf.config import from_topology
from ospf.instance import OspfInstance
from ospf.packets import (
    ALL_SPF_ROUTERS,
    MD5_LEN,
    NO_AUTH,
    Auth,
    AuType,
    DbDescription,
    Hello,
    Lsa,
    LsAck,
    LsaHeader,
    LsRequest,
    LsUpdate,
    Packet,
    RouterLsaBody,
    decode_packet,
)

from .conftest import TOPOLOGIES

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

MCAST_MAC = bytes.fromhex("01005e000005")


@dataclass(frozen=True)
class Sent:
    time: float
    router: str
    src: IPv4Address
    dst: IPv4Address
    data: bytes
    auth: Auth


def capture(sim: Simulation) -> list[Sent]:
    """Record every OSPF packet any instance hands the driver, before the driver decides
    whether the link delivers it."""
    sent: list[Sent] = []
    perform = sim._perform_ospf

    def spy(router: str, actions: list) -> None:
        for a in actions:
            if isinstance(a, ev.SendPacket):
                iface = sim.topo.nodes[router].interfaces[a.ifname]
                sent.append(Sent(sim.now, router, iface.address.ip, a.dst, a.data,
                                 sim.ospf[router].cfg.auth))
        perform(router, actions)

    sim._perform_ospf = spy  # type: ignore[method-assign]
    return sent


def _ip_checksum(b: bytes) -> int:
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _mac(ip: IPv4Address) -> bytes:
    return b"\x02\x00" + ip.packed


def frame(s: Sent, ident: int) -> bytes:
    """Ethernet + IPv4 (protocol 89, TTL 1, TOS 0xC0 = DSCP CS6) + the OSPF packet."""
    dst_mac = MCAST_MAC if s.dst == ALL_SPF_ROUTERS else _mac(s.dst)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(s.data), ident & 0xFFFF, 0, 1, 89,
                     0, s.src.packed, s.dst.packed)
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    return dst_mac + _mac(s.src) + b"\x08\x00" + ip + s.data


def write_pcap(path: Path, sent: list[Sent]) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # LINKTYPE_ETHERNET
    for n, s in enumerate(sent):
        f = frame(s, n)
        usec = round(s.time * 1e6)
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(f), len(f)) + f)
    path.write_bytes(b"".join(out))


@dataclass
class Decoded:
    """One frame as tshark saw it: OSPF fields in order, and what it complained about."""

    protos: list[str]
    fields: dict[str, list[str]]
    shownames: dict[str, list[str]]
    problems: list[str]


def tshark(path: Path) -> list[Decoded]:
    out = subprocess.run(["tshark", "-r", str(path), "-o", "ip.check_checksum:TRUE",
                          "-T", "pdml"], capture_output=True, timeout=600, check=True).stdout
    frames = []
    for pkt in ET.fromstring(out).iter("packet"):
        d = Decoded([], defaultdict(list), defaultdict(list), [])
        for proto in pkt.iter("proto"):
            d.protos.append(proto.get("name", ""))
            if proto.get("name") == "_ws.malformed":
                d.problems.append(f"malformed: {proto.get('showname')}")
        for f in pkt.iter("field"):
            name, show = f.get("name", ""), f.get("showname", "")
            if name.startswith("_ws.expert") and f.get("showname"):
                d.problems.append(f"expert: {show}")
            if "incorrect" in show.lower():
                d.problems.append(show)
            if name.startswith("ospf."):
                d.fields[name].append(f.get("show", ""))
                d.shownames[name].append(show)
        frames.append(d)
    return frames


# ---------------------------------------------------------------- what tshark should say


def _hdr_fields(h: LsaHeader, out: dict[str, list[str]]) -> None:
    out["ospf.lsa.age"].append(str(h.age))
    out["ospf.v2.options"].append(f"0x{h.options:02x}")
    out["ospf.lsa"].append(str(h.ls_type))
    out["ospf.lsa.id"].append(str(h.ls_id))
    out["ospf.advrouter"].append(str(h.adv_router))
    out["ospf.lsa.seqnum"].append(f"0x{h.seq & 0xFFFFFFFF:08x}")
    out["ospf.lsa.chksum"].append(f"0x{h.checksum:04x}")
    out["ospf.lsa.length"].append(str(h.length))


def _lsa_fields(a: Lsa, out: dict[str, list[str]]) -> None:
    _hdr_fields(a.header, out)
    if isinstance(a.body, RouterLsaBody):
        out["ospf.v2.router.lsa.flags"].append(f"0x{a.body.flags:02x}")
        out["ospf.lsa.number_of_links"].append(str(len(a.body.links)))
        for ln in a.body.links:
            out["ospf.lsa.router.linkid"].append(str(ln.link_id))
            out["ospf.lsa.router.linkdata"].append(str(ln.link_data))
            out["ospf.lsa.router.linktype"].append(str(ln.type))
            out["ospf.lsa.router.nummetrics"].append("0")
            out["ospf.lsa.router.metric0"].append(str(ln.metric))


def _hex_colon(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def expected(s: Sent, p: Packet) -> dict[str, list[str]]:
    """tshark's `show` strings for the fields our decoder read from the same bytes."""
    out: dict[str, list[str]] = defaultdict(list)
    length = struct.unpack_from("!H", s.data, 2)[0]
    out["ospf.version"] = ["2"]
    out["ospf.msg"] = [str(p.type)]
    out["ospf.packet_length"] = [str(length)]
    out["ospf.srcrouter"] = [str(p.router_id)]
    out["ospf.area_id"] = [str(p.area)]
    out["ospf.auth.type"] = [str(s.auth.type)]
    if s.auth.type == AuType.CRYPTOGRAPHIC:
        out["ospf.auth.crypt.key_id"] = [str(s.auth.key_id)]
        out["ospf.auth.crypt.data_length"] = [str(MD5_LEN)]
        out["ospf.auth.crypt.seq_nbr"] = [str(p.crypt_seq)]
        out["ospf.auth.crypt.data"] = [_hex_colon(s.data[length:length + MD5_LEN])]
    b = p.body
    if isinstance(b, Hello):
        out["ospf.hello.network_mask"] = [str(b.mask)]
        out["ospf.hello.hello_interval"] = [str(b.hello_interval)]
        out["ospf.v2.options"].append(f"0x{b.options:02x}")
        out["ospf.hello.router_priority"] = [str(b.priority)]
        out["ospf.hello.router_dead_interval"] = [str(b.dead_interval)]
        out["ospf.hello.designated_router"] = [str(b.dr)]
        out["ospf.hello.backup_designated_router"] = [str(b.bdr)]
        out["ospf.hello.active_neighbor"] = [str(n) for n in b.neighbors]
    elif isinstance(b, DbDescription):
        out["ospf.db.interface_mtu"] = [str(b.mtu)]
        out["ospf.v2.options"].append(f"0x{b.options:02x}")
        out["ospf.dbd"] = [f"0x{b.flags:02x}"]
        out["ospf.dbd.i"] = [str(b.flags >> 2 & 1)]
        out["ospf.dbd.m"] = [str(b.flags >> 1 & 1)]
        out["ospf.dbd.ms"] = [str(b.flags & 1)]
        out["ospf.db.dd_sequence"] = [str(b.seq)]
        for h in b.headers:
            _hdr_fields(h, out)
    elif isinstance(b, LsRequest):
        for k in b.keys:
            out["ospf.lsa"].append(str(k.ls_type))
            out["ospf.link_state_id"].append(str(k.ls_id))
            out["ospf.advrouter"].append(str(k.adv_router))
    elif isinstance(b, LsUpdate):
        out["ospf.ls.number_of_lsas"] = [str(len(b.lsas))]
        for a in b.lsas:
            _lsa_fields(a, out)
    elif isinstance(b, LsAck):
        for h in b.headers:
            _hdr_fields(h, out)
    return out


# ---------------------------------------------------------------- scenarios


def _settle(sim: Simulation) -> None:
    res = sim.run(max_time=300)
    assert res.converged, sim.ospf_summary()
    assert all(sim.ribs[r] == sim.igp.rib(r) for r in sim.routers)


def _life(sim: Simulation) -> None:
    """Converge, keep Hellos going, fail and restore a core link, restart a router (its
    flushed LSA goes out at MaxAge and it advances its sequence number past the old one)."""
    topo = sim.topo
    _settle(sim)
    sim.advance(12)  # periodic Hellos listing the neighbor
    core = [ln.index for ln in topo.links if all(topo.nodes[n].is_router for n in ln.nodes)]
    sim.link_down(core[0])
    _settle(sim)
    sim.link_up(core[0])
    _settle(sim)
    victim = sim.routers[1]
    sim.advance(2)
    sim._deliver(victim + OSPF, ev.Stop())
    sim.advance(5)
    sim.ospf[victim] = OspfInstance(from_topology(topo, victim, auth=sim.ospf[victim].cfg.auth))
    sim._deliver(victim + OSPF, ev.Start())
    _settle(sim)


def _run(name: str, auth: Auth = NO_AUTH) -> list[Sent]:
    topo = load_topology(TOPOLOGIES / f"{name}.yaml")
    sim = Simulation(topo)
    if auth is not NO_AUTH:
        for r in sim.routers:
            sim.ospf[r] = OspfInstance(from_topology(topo, r, auth=auth))
    sent = capture(sim)
    _life(sim)
    return sent


@pytest.fixture(scope="module")
def decoded(tmp_path_factory) -> list[tuple[str, Sent, Decoded]]:
    sent: list[tuple[str, Sent]] = []
    for name in ("line3", "diamond", "backbone"):
        sent += [(name, s) for s in _run(name)]
    sent += [("ring-md5", s) for s in _run("ring", Auth.from_config("md5", "key", 1))]
    # Small DD packets: a database exchange in several packets (the M bit, §10.8).
    mp = pytest.MonkeyPatch()
    mp.setattr(ospf.instance, "MAX_DD_HEADERS", 3)
    mp.setattr(ospf.instance, "MAX_LSR_KEYS", 2)
    try:
        sent += [("backbone-smalldd", s) for s in _run("backbone")]
    finally:
        mp.undo()
    pcap = tmp_path_factory.mktemp("ospf") / "ospf.pcap"
    write_pcap(pcap, [s for _, s in sent])
    frames = tshark(pcap)
    assert len(frames) == len(sent)
    return [(case, s, d) for (case, s), d in zip(sent, frames, strict=True)]


def test_every_packet_decodes_cleanly(decoded):
    bad = []
    for n, (case, s, d) in enumerate(decoded, 1):
        if d.protos[-1] != "ospf" or d.problems:
            bad.append((n, case, s.router, d.protos, d.problems))
    assert not bad, bad[:5]


def test_tshark_fields_equal_ours(decoded):
    mismatches = []
    for n, (case, s, d) in enumerate(decoded, 1):
        p = decode_packet(s.data, s.auth)
        want = expected(s, p)
        got = {k: d.fields.get(k, []) for k in want}
        if got != want:
            diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
            mismatches.append((n, case, type(p.body).__name__, diff))
        if s.auth.type == AuType.NULL:
            assert d.shownames["ospf.checksum"] and "[correct]" in d.shownames["ospf.checksum"][0]
    assert not mismatches, mismatches[:5]


def test_lsa_checksums_verify_with_an_independent_fletcher(decoded):
    seen = 0
    for _, s, _d in decoded:
        p = decode_packet(s.data, s.auth)
        if isinstance(p.body, LsUpdate):
            for a in p.body.lsas:
                raw = bytearray(a.encode())
                want = raw[16:18]
                raw[16:18] = b"\0\0"  # scapy computes over the LSA from Options on (age excluded)
                assert fletcher16_checkbytes(bytes(raw[2:]), 14) == bytes(want), a.key
                seen += 1
    assert seen


def test_every_packet_type_and_dd_flag_was_seen(decoded):
    kinds: dict[str, set[str]] = defaultdict(set)
    for case, s, _ in decoded:
        kinds[type(decode_packet(s.data, s.auth).body).__name__].add(case)
    assert set(kinds) == {"Hello", "DbDescription", "LsRequest", "LsUpdate", "LsAck"}
    assert kinds["LsRequest"] >= {"backbone", "ring-md5", "backbone-smalldd"}
    flags = {d.fields["ospf.dbd"][0] for _, _, d in decoded if d.fields.get("ospf.dbd")}
    # I|M|MS (negotiation), M|MS and M (more to come, master and slave), MS and 0 (last).
    assert flags >= {"0x07", "0x03", "0x02", "0x01", "0x00"}, flags
    unicast = {type(decode_packet(s.data, s.auth).body).__name__
               for _, s, _ in decoded if s.dst != ALL_SPF_ROUTERS}
    assert "LsRequest" in unicast
    maxage = [d for _, _, d in decoded if "3600" in d.fields.get("ospf.lsa.age", [])]
    assert maxage, "no flushed (MaxAge) LSA was sent"
    md5 = [d for case, _, d in decoded if case == "ring-md5"]
    assert md5 and all(d.fields["ospf.auth.type"] == ["2"] for d in md5)


def test_tshark_flags_what_it_should(tmp_path):
    """The oracle is not blind: a wrong checksum and a truncated packet are reported."""
    sim = Simulation(load_topology(TOPOLOGIES / "line3.yaml"))
    sent = capture(sim)
    _settle(sim)
    good = sent[0]
    wrong = bytearray(good.data)
    wrong[12] ^= 0xFF
    short = good.data[:30]
    cases = [good, Sent(good.time, good.router, good.src, good.dst, bytes(wrong), good.auth),
             Sent(good.time, good.router, good.src, good.dst, short, good.auth)]
    pcap = tmp_path / "bad.pcap"
    write_pcap(pcap, cases)
    ok, bad_ck, trunc = tshark(pcap)
    assert not ok.problems
    assert any("incorrect" in x for x in bad_ck.problems)
    assert trunc.problems


def test_grouped_updates_and_acks_were_seen(decoded):
    """Flood pacing groups LSAs in Updates (RFC 2328 §13.3) and headers in LSAcks (§13.5):
    tshark decoded such packets above, with and without MD5."""
    most: dict[tuple[str, str], int] = defaultdict(int)
    for case, s, _ in decoded:
        if s.dst != ALL_SPF_ROUTERS:  # floods and delayed acks, not answers to requests
            continue
        body = decode_packet(s.data, s.auth).body
        n = len(body.lsas) if isinstance(body, LsUpdate) else \
            len(getattr(body, "headers", ())) if type(body).__name__ == "LsAck" else 0
        key = (case.split("-")[0] if case.startswith("ring") else case, type(body).__name__)
        most[key] = max(most[key], n)
    assert most[("backbone", "LsUpdate")] > 1 and most[("backbone", "LsAck")] > 1
    assert most[("ring", "LsAck")] > 1  # (MD5: grouped Updates in test_ospf_pacing)
