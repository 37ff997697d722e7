"""A hostile customer host against a real lab (root): labelled frames from a host port never
reach the core, odd frames (VLAN tags, martians, 0x8848, IPv6, junk, runts) each land on
their drop counter, every frame a router reads is counted once, and nothing sent during a
link outage goes out when the link comes back."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forwarding.labelops import encode_stack
from tests.conftest import TOPOLOGIES, is_root
from tests.fwd_helpers import udp
from tests.wait import Capture, pcap_records, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology

NAME = f"hm{os.getpid() % 10000}i"
MARK = b"hm-spoofed-frame"  # in every frame the hostile host sends

SENDER = r'''
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.bind(("eth0", 0))
n = 0
for line in sys.stdin:
    s.send(bytes.fromhex(line.strip()))
    n += 1
print(n)
'''


@pytest.fixture(scope="module")
def line3():
    try:
        yield lab.up(load_topology(TOPOLOGIES / "line3.yaml"), name=NAME, timeout=30)
    finally:
        lab.down(NAME)


def _send(lb, node: str, frames: list[bytes]) -> None:
    """Send raw frames from a host's eth0 (AF_PACKET: any bytes, any ethertype)."""
    r = subprocess.run(["ip", "netns", "exec", f"lsr-{lb.name}.{node}", sys.executable, "-c", SENDER],
                       input="".join(f.hex() + "\n" for f in frames), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and int(r.stdout) == len(frames), r.stderr


def _mac(topo, node: str, ifname: str) -> bytes:
    return bytes.fromhex(topo.interface(node, ifname).mac.replace(":", ""))


def _dataplane(lb, router: str) -> dict:
    return lab.query(lb.name, router, "counters")["dataplane"]


def _frames_read(c: dict) -> int:
    return sum(v for k, v in c["runtime"].items() if k.startswith("rx_") and k[3:] in IFS)


IFS = ("eth1", "eth2")  # line3's pe1


def _outcomes(d: dict) -> int:
    return d["forwarded"] + d["delivered"] + sum(d["drops"].values())


def test_labelled_frames_from_a_host_never_reach_the_core(line3, tmp_path: Path) -> None:
    """ce1 sends pe1 labelled frames with every label in pe1's ILM, random labels and
    multi-label stacks: pe1 switches none into the core (a capture on its core link sees
    none of them) and counts each under mpls-input-disabled."""
    topo = line3.topo
    ilm = [e["in_label"] for e in lab.lfib(line3.name, ["pe1"])["routers"]["pe1"]["ilm"]]
    assert len(ilm) >= 4, ilm
    rnd = random.Random(21)
    stacks = [(lbl,) for lbl in ilm] + [(rnd.randint(16, 1 << 20 - 1),) for _ in range(30)]
    stacks += [tuple(rnd.choice(ilm) for _ in range(rnd.randint(2, 4))) for _ in range(30)]
    stacks += [(0,), (1,), (0, ilm[0]), (rnd.randint(16, 99999), ilm[0])]
    dst, src = _mac(topo, "pe1", "eth1"), _mac(topo, "ce1", "eth0")
    payload = udp("192.168.1.1", "10.255.0.3", data=MARK)  # to pe2's loopback, say
    frames = [dst + src + b"\x88\x47" + encode_stack(s, 0, rnd.choice((2, 64, 255))) + payload
              for s in stacks]
    before = _dataplane(line3, "pe1")["drops"].get("mpls-input-disabled", 0)
    cap = Capture(f"lsr-{line3.name}.p1", "eth1", tmp_path / "core.pcap", "ip or mpls")
    try:
        _send(line3, "ce1", frames)
        # the core link works meanwhile: a ping sent after them crosses it labelled
        r = line3.run("ce1", ["ping", "-c", "2", "-i", "0.2", "-W", "2", "192.168.2.2"])
        assert r.returncode == 0, r.stdout
        cap.wait(lambda fs: sum(f[12:14] == b"\x88\x47" and MARK not in f for f in fs) >= 2, 10,
                 "the ping's labelled frames on pe1-p1")
    finally:
        cap.stop()
    spoofed = [f for f in cap.frames() if MARK in f]
    assert spoofed == [], f"{len(spoofed)} of {len(frames)} spoofed frames reached the core"
    wait_for(lambda: _dataplane(line3, "pe1")["drops"].get("mpls-input-disabled", 0)
             >= before + len(frames), 10,
             lambda: f"pe1 to count {len(frames)} frames: {_dataplane(line3, 'pe1')['drops']}")
    assert _dataplane(line3, "pe1")["drops"]["mpls-input-disabled"] == before + len(frames)


def test_odd_frames_each_have_a_counter(line3, tmp_path: Path) -> None:
    """VLAN-tagged frames, martian sources, 0x8848, IPv6, junk ethertypes, runts and frames
    for another MAC from ce1: none is forwarded (ce2 sees none), each lands on its drop
    counter, and pe1 counts every frame it read exactly once."""
    topo = line3.topo
    dst, src = _mac(topo, "pe1", "eth1"), _mac(topo, "ce1", "eth0")
    good = udp("192.168.1.1", "192.168.2.2", data=MARK)
    sent = {
        "vlan-tagged": [dst + src + struct.pack("!HH", tp, vid) + b"\x08\x00" + good
                        for tp in (0x8100, 0x88A8) for vid in (5, 100, 4094)],
        "martian-source": [dst + src + b"\x08\x00" + udp(a, "192.168.2.2", data=MARK)
                           for a in ("127.0.0.1", "0.0.0.0", "224.0.0.9", "240.1.1.1",
                                     "255.255.255.255")],
        "mpls-multicast": [dst + src + b"\x88\x48" + encode_stack((100,), 0, 64) + good] * 3,
        "ipv6-unsupported": [dst + src + b"\x86\xdd" + b"\x60" + bytes(39) + MARK] * 3,
        "not-ip": [dst + src + b"\x88\xb5" + MARK, dst + src + b"\x12\x34" + MARK],
        "malformed": [dst + src + b"\x08\x00" + good[:10], dst + src + b"\x08\x00"],
        "not-for-us": [b"\x02\x99\x00\x00\x00\x01" + src + b"\x08\x00" + good] * 2,
    }
    before = _dataplane(line3, "pe1")["drops"]
    cap = Capture(f"lsr-{line3.name}.ce2", "eth0", tmp_path / "ce2.pcap")
    try:
        _send(line3, "ce1", [f for fs in sent.values() for f in fs])

        def counted() -> bool:
            d = _dataplane(line3, "pe1")["drops"]
            return all(d.get(k, 0) - before.get(k, 0) >= len(v) for k, v in sent.items())
        wait_for(counted, 10, lambda: f"pe1's drop counters: {_dataplane(line3, 'pe1')['drops']}")
        r = line3.run("ce1", ["ping", "-c", "1", "-W", "2", "192.168.2.2"])
        assert r.returncode == 0, r.stdout  # and ce2's capture has caught up
        cap.wait(lambda fs: any(f[12:14] == b"\x08\x00" and f[34] == 8 for f in fs), 10, "the ping")
    finally:
        cap.stop()
    after = _dataplane(line3, "pe1")["drops"]
    assert {k: after[k] - before.get(k, 0) for k in sent} == {k: len(v) for k, v in sent.items()}
    assert [f for f in cap.frames() if MARK in f] == []
    # every frame pe1 read (rings, the socket beside them) has exactly one outcome
    wait_for(lambda: _outcomes(_dataplane(line3, "pe1")) == _frames_read(
        lab.query(line3.name, "pe1", "counters")), 5, "pe1's outcomes to add up")
    c = lab.query(line3.name, "pe1", "counters")
    assert _outcomes(c["dataplane"]) == _frames_read(c), c


def _echo_sent_at(frame: bytes) -> float | None:
    """The send time ping wrote into an ICMP echo request (struct timeval, host order), or
    None if the frame is not one (plain or under labels)."""
    off = 14
    if frame[12:14] == b"\x88\x47":
        while off + 4 <= len(frame) and not frame[off + 2] & 1:
            off += 4
        off += 4
    elif frame[12:14] != b"\x08\x00":
        return None
    if len(frame) < off + 20 or frame[off + 9] != 1:
        return None
    icmp = off + (frame[off] & 0xF) * 4
    if len(frame) < icmp + 24 or frame[icmp] != 8:
        return None
    sec, usec = struct.unpack_from("<qq", frame, icmp + 8)
    return sec + usec / 1e6


@pytest.mark.parametrize(("down", "peer"), [(("pe1", "eth2"), ("p1", "eth1")),
                                           (("p1", "eth1"), ("p1", "eth1")),
                                           (("pe2", "eth1"), ("ce2", "eth0")),
                                           (("ce2", "eth0"), ("ce2", "eth0"))])
def test_no_frame_from_an_outage_arrives_late(line3, tmp_path: Path, down: tuple[str, str],
                                              peer: tuple[str, str]) -> None:
    """ce1 pings ce2 every 10 ms; one end of a link is taken down inside its router's
    namespace (`ip link set`) for 3 s, then up: a core link (pe1's end: pe1 stops using it
    once it sees its carrier go; p1's end: pe1 sees no carrier) or pe2's link to ce2 (pe2's
    end: pe2 goes on sending ce2's frames there, a connected subnet, into a TX ring whose
    interface is down; ce2's end: pe2 sends them to a veth without carrier). At the far end of the link no echo
    request may arrive late: each within 1 s of being sent, none sent during the outage after
    it. (Frames queued in a TX ring while its interface is down must not go out when it is
    back up: forwarding.afpacket.TxRing, tx_dropped_<if>.)"""
    ns = lambda node: f"lsr-{line3.name}.{node}"  # noqa: E731
    cap = Capture(ns(peer[0]), peer[1], tmp_path / "link.pcap", "icmp or mpls")
    ping = subprocess.Popen(["ip", "netns", "exec", ns("ce1"), "ping", "-i", "0.01", "-W", "1",
                             "-w", "15", "192.168.2.2"], stdout=subprocess.DEVNULL)

    def link(state: str) -> None:
        subprocess.run(["ip", "netns", "exec", ns(down[0]), "ip", "link", "set", "dev", down[1],
                        state], check=True)
    try:
        cap.wait(lambda fs: sum(_echo_sent_at(f) is not None for f in fs) >= 20, 10,
                 "the ping stream on the link")
        down_at = time.time()
        link("down")
        time.sleep(3)  # the outage: the stream goes on meanwhile (pacing, not synchronisation)
        link("up")
        up_at = time.time()
        # traffic back on the link (the IGP and LDP reconverge), then 4 s more of capture:
        # long enough for frames held back by the outage to show up
        wait_for(lambda: any((s := _echo_sent_at(f)) is not None and s > up_at
                             for _ts, f in pcap_records(cap.pcap)), 20, "the stream back")
        end = time.time() + 4
        wait_for(lambda: time.time() >= end, 10, "4 s more of capture", interval=0.2)
    finally:
        ping.kill()
        ping.wait()
        cap.stop()
        subprocess.run(["ip", "netns", "exec", ns(down[0]), "ip", "link", "set", "dev", down[1],
                        "up"])
    recs = [(ts, s) for ts, f in pcap_records(cap.pcap) if (s := _echo_sent_at(f)) is not None]
    late = [(round(ts - s, 3), round(s - down_at, 3)) for ts, s in recs if ts - s > 1.0]
    assert not late, f"{len(late)} echo requests arrived late (delay, sent after down): {late[:10]}"
    assert not [s for ts, s in recs if down_at + 0.05 < s < up_at - 0.05 and ts > up_at], \
        "frames sent during the outage arrived after it"
    wait_for(lambda: not lab.status(line3.name)["down_links"], 10, "the link back up")
