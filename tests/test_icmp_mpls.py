"""ICMP errors from an LSR: RFC 4884 extension structure + RFC 4950 MPLS label stack object,
sent onward along the LSP (RFC 3032 §2.3.2). Checked with scapy and tshark."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess

import pytest
from scapy.contrib.mpls import MPLS, ICMPExtension_MPLS
from scapy.layers.inet import ICMP, IP, ICMPExtension_Header, UDPerror
from scapy.layers.l2 import Ether
from scapy.packet import bind_layers
from scapy.utils import wrpcap

from forwarding.icmp import frag_needed, may_send_error, mpls_extension, time_exceeded
from forwarding.labelops import checksum16, encode_stack
from forwarding.plane import Deliver, Drop, DropReason, Forward, decide
from tests.fwd_helpers import all_tables, ilm_label, ip, line4, mpls_frame, udp

bind_layers(Ether, MPLS, type=0x8847)

CE1, CE2 = "192.168.1.1", "192.168.2.2"
FEC2 = "192.168.2.0/24"


@pytest.fixture
def net():
    topo = line4()
    return topo, all_tables(topo)


def _expire_at_p1(T, stack_ttls=(1, 64), extra=(5000,)):
    p1 = T["p1"]
    inl = ilm_label(p1, FEC2)
    labels = (inl, *extra)
    f = mpls_frame(p1, "eth1", labels, udp(CE1, CE2, ttl=50), ttls=stack_ttls[: len(labels)])
    return p1, inl, decide(f, "eth1", p1)


def scapy_stack(ext_mpls) -> list[tuple[int, int, int]]:
    """(label, S, TTL) of scapy's ICMPExtension_MPLS stack (scapy nests S=0 entries)."""
    out = []
    for e in ext_mpls.stack:
        while isinstance(e, MPLS):
            out.append((e.label, e.s, e.ttl))
            e = e.payload
    return out


def _icmp_bytes(frame: bytes) -> bytes:
    p = Ether(frame)
    return bytes(p[ICMP])


def test_time_exceeded_two_label_stack(net):
    topo, T = net
    p1, inl, r = _expire_at_p1(T)
    assert isinstance(r, Drop) and r.reason == DropReason.TTL_EXPIRED and len(r.replies) == 1
    rep = r.replies[0]
    p = Ether(rep.frame)
    # Sent onward along the LSP: the outgoing stack the packet would have had, TTL 255.
    out = ilm_label(T["p2"], FEC2)
    assert rep.out_if == "eth2" and rep.labels_out == (out, 5000)
    m = p[MPLS]
    assert (m.label, m.s, m.ttl) == (out, 0, 255)
    assert (m.payload.label, m.payload.s, m.payload.ttl) == (5000, 1, 255)
    # IP: from the incoming interface's address to the inner source.
    assert p[IP].src == str(topo.interface("p1", "eth1").address.ip) and p[IP].dst == CE1
    assert checksum16(bytes(p[IP])[:20]) == 0 and p[IP].ttl == 255
    icmp = p[ICMP]
    assert (icmp.type, icmp.code) == (11, 0)
    raw = _icmp_bytes(rep.frame)
    assert checksum16(raw) == 0
    assert raw[5] == 32  # RFC 4884 length: 128 octets in 32-bit words
    orig = raw[8:8 + 128]
    assert orig.startswith(udp(CE1, CE2, ttl=50)) and orig[len(udp(CE1, CE2)):] == bytes(
        128 - len(udp(CE1, CE2)))
    ext = raw[8 + 128:]
    assert ext[0] >> 4 == 2 and checksum16(ext) == 0  # version 2, checksum over the extension
    length, cls, ctype = struct.unpack("!HBB", ext[4:8])
    assert (length, cls, ctype) == (4 + 8, 1, 1)
    # The label stack as received: top TTL 1, S only on the bottom.
    assert ext[8:] == mpls_frame(p1, "eth1", (inl, 5000), b"", ttls=(1, 64))[14:]
    # scapy's RFC 4950 decoder agrees.
    eh = icmp[ICMPExtension_Header]
    assert eh.version == 2
    assert scapy_stack(eh[ICMPExtension_MPLS]) == [(inl, 0, 1), (5000, 1, 64)]


def test_time_exceeded_at_php_hop_is_routed_by_ip(net):
    topo, T = net
    p2 = T["p2"]
    inl = ilm_label(p2, FEC2)
    r = decide(mpls_frame(p2, "eth1", (inl,), udp(CE1, CE2), ttl=1), "eth1", p2)
    rep = r.replies[0]
    # No onward label after a PHP pop: routed by IP toward the source (FTN of 192.168.1/24).
    assert rep.out_if == "eth1"
    assert rep.labels_out == (ilm_label(T["p1"], "192.168.1.0/24"),)
    p = Ether(rep.frame)
    assert scapy_stack(p[ICMPExtension_MPLS]) == [(inl, 1, 1)]


def _follow(topo, T, router, in_if, frame, limit=16):
    """Carry a frame through the network until it reaches a host; return (host, frame)."""
    for _ in range(limit):
        r = decide(frame, in_if, T[router])
        assert isinstance(r, Forward), r
        i = T[router].interfaces[r.out_if]
        if not topo.nodes[i.peer_node].is_router:
            return i.peer_node, r.frame
        router, in_if, frame = i.peer_node, i.peer_interface, r.frame
    raise AssertionError("loop")


def test_icmp_tunnelled_to_egress_comes_back_to_source(net):
    topo, T = net
    _, _, r = _expire_at_p1(T, extra=())
    rep = r.replies[0]
    i = T["p1"].interfaces[rep.out_if]
    host, frame = _follow(topo, T, i.peer_node, i.peer_interface, rep.frame)
    assert host == "ce1"
    p = Ether(frame)
    assert p[IP].dst == CE1 and p[ICMP].type == 11
    assert p[IP].ttl < 255 and checksum16(bytes(p[IP])[:20]) == 0


def test_plain_time_exceeded_has_no_extension():
    orig = udp(CE1, CE2, ttl=1)
    pkt = time_exceeded(orig, int.from_bytes(bytes([10, 0, 0, 1]), "big"))
    p = IP(pkt)
    assert p[ICMP].type == 11 and p[ICMP].length == 0
    assert bytes(p[ICMP])[8:] == orig
    assert checksum16(bytes(p[ICMP])) == 0


def test_long_original_truncated_to_128_with_extension():
    orig = udp(CE1, CE2, data=b"z" * 400)
    pkt = time_exceeded(orig, 1, encode_stack((100,), ttl=1))
    icmp = IP(pkt)[ICMP]
    raw = bytes(icmp)
    assert raw[5] == 32 and raw[8:136] == orig[:128]
    assert len(raw) == 8 + 128 + 4 + 4 + 4


def test_frag_needed_fields():
    orig = udp(CE1, CE2, data=b"q" * 1500, df=True)
    p = IP(frag_needed(orig, 7, 1492))
    assert (p[ICMP].type, p[ICMP].code, p[ICMP].nexthopmtu) == (3, 4, 1492)
    assert p.src == "0.0.0.7" and p.dst == CE1
    p = IP(frag_needed(orig, 7, 1396, encode_stack((16, 17), ttl=9)))
    assert p[ICMP].nexthopmtu == 1396 and p[ICMP].length == 32
    assert [x[0] for x in scapy_stack(p[ICMPExtension_MPLS])] == [16, 17]


def test_may_send_error_rules():
    assert may_send_error(udp(CE1, CE2))
    frag = bytearray(udp(CE1, CE2))
    frag[7] = 10  # non-first fragment
    assert not may_send_error(frag)
    assert not may_send_error(udp("0.0.0.0", CE2))
    assert not may_send_error(udp("224.0.0.5", CE2))
    assert not may_send_error(udp(CE1, "224.0.0.5"))
    te = time_exceeded(udp(CE1, CE2), 1)
    assert not may_send_error(te)  # no error about an error
    echo = ip(CE1, CE2, proto=1, payload=b"\x08\x00\x00\x00\x00\x01\x00\x01")
    assert may_send_error(echo)
    assert not may_send_error(b"\x45")


def test_mpls_extension_layout():
    ext = mpls_extension(encode_stack((100, 200), ttl=1))
    assert ext[:2] == b"\x20\x00" and checksum16(ext) == 0
    assert struct.unpack("!HBB", ext[4:8]) == (12, 1, 1)


def test_router_alert_not_answered(net):
    _, T = net
    p1 = T["p1"]
    r = decide(mpls_frame(p1, "eth1", (1,), udp(CE1, CE2), ttl=1), "eth1", p1)
    assert isinstance(r, Deliver)


# ---------------------------------------------------------------- tshark as an independent oracle


# Wireshark decodes the RFC 4884 extension on its own only when the quoted
# datagram's IP total length is <= 128 octets; for longer quoted packets it needs
# the preference icmp.favor_icmp_mpls (its heuristic, not an encoding issue).
FAVOR = ["-o", "icmp.favor_icmp_mpls:TRUE"]


def _tshark(frames, tmp_path, fields, opts=()):
    pcap = tmp_path / "icmp.pcap"
    wrpcap(str(pcap), [Ether(f) for f in frames])
    out = subprocess.run(
        ["tshark", *opts, "-r", str(pcap), "-T", "json",
         *sum((["-e", f] for f in fields), [])],
        capture_output=True, text=True, timeout=120, check=True)
    return [pk["_source"]["layers"] for pk in json.loads(out.stdout)]


def _expert(frames, tmp_path, opts=()):
    pcap = tmp_path / "expert.pcap"
    wrpcap(str(pcap), [Ether(f) for f in frames])
    out = subprocess.run(["tshark", *opts, "-r", str(pcap), "-q", "-z", "expert"],
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_rfc4950_stack(net, tmp_path):
    _, T = net
    p1, inl, r = _expire_at_p1(T)
    te = r.replies[0].frame
    T2 = all_tables(line4(mtu2=1400))
    p1b = T2["p1"]
    big = udp(CE1, CE2, data=b"y" * 1372, df=True)
    fn = decide(mpls_frame(p1b, "eth1", (ilm_label(p1b, FEC2),), big, ttl=60), "eth1",
                p1b).replies[0].frame
    fields = [
        "mpls.label", "icmp.type", "icmp.code", "icmp.mpls.label", "icmp.mpls.ttl",
        "icmp.mpls.s", "icmp.checksum.status", "icmp.ext.checksum.status", "icmp.mtu",
        "icmp.length", "_ws.malformed", "_ws.expert"]
    a = _tshark([te], tmp_path, fields)[0]  # short quoted datagram: decoded by default
    assert a == _tshark([te], tmp_path, fields, FAVOR)[0]
    b = _tshark([fn], tmp_path, fields, FAVOR)[0]
    assert a["icmp.type"] == ["11"] and a["icmp.code"] == ["0"]
    assert a["icmp.mpls.label"] == [str(inl), "5000"]
    assert a["icmp.mpls.ttl"] == ["1", "64"]
    assert a["icmp.mpls.s"] in (["0", "1"], ["False", "True"])
    assert a["mpls.label"] == [str(ilm_label(T["p2"], FEC2)), "5000"]  # tunnelled onward
    assert a["icmp.checksum.status"] == ["1"] and a["icmp.ext.checksum.status"] == ["1"]
    assert a["icmp.length"] == ["32"]
    assert b["icmp.type"] == ["3"] and b["icmp.code"] == ["4"] and b["icmp.mtu"] == ["1396"]
    assert b["icmp.mpls.label"] == [str(ilm_label(p1b, FEC2))]
    for x in (a, b):
        assert "_ws.malformed" not in x and "_ws.expert" not in x
    for opts in ((), FAVOR):
        report = _expert([te, fn], tmp_path, opts)
        assert "Malformed" not in report and "Warning" not in report and "Error" not in report
    # Sanity: the same check does flag a corrupted extension checksum.
    bad = bytearray(te)
    bad[-5] ^= 0x55
    assert "_ws.expert" in _tshark([bytes(bad)], tmp_path, ["_ws.expert"])[0] \
        or _tshark([bytes(bad)], tmp_path, ["icmp.ext.checksum.status"])[0][
            "icmp.ext.checksum.status"] != ["1"]


def test_scapy_reads_udp_inside_quoted_datagram(net):
    _, T = net
    _, _, r = _expire_at_p1(T, extra=())
    p = Ether(r.replies[0].frame)
    assert p[ICMP].payload.haslayer(UDPerror) and p[UDPerror].dport == 5678
