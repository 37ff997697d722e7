"""forwarding.ioloop: the ring-to-ring fast path gives exactly what forwarding.plane gives.

Rings are anonymous mmaps laid out like TPACKET_V2 RX/TX rings; no sockets, no root.
"""

from __future__ import annotations

import mmap
import struct

import pytest

from forwarding.afpacket import TX_DATA, VNET_HDR, RingPort, TxRing
from forwarding.ioloop import FastPath
from forwarding.plane import Dataplane
from tests.fwd_helpers import all_tables, eth, ilm_label, ip, ip_frame, line4, mpls_frame, udp

FS = 2048


class _Sock:
    def send(self, data: bytes) -> int:
        return 0


def rx_ring(frames: list[bytes], n: int = 64) -> RingPort:
    r = object.__new__(RingPort)
    r.ring = mmap.mmap(-1, n * FS)
    r.view = memoryview(r.ring)
    r.frame_size, r.nframes, r.index, r._slots = FS, n, 0, None
    for k, f in enumerate(frames):
        struct.pack_into("=IIIH", r.ring, k * FS, 1, len(f), len(f), 66)
        r.ring[k * FS + 66:k * FS + 66 + len(f)] = f
    return r


def tx_ring(n: int = 64) -> TxRing:
    t = object.__new__(TxRing)
    t.ring = mmap.mmap(-1, n * FS)
    t.frame_size, t.nframes, t.index, t.pending, t.tx_errors = FS, n, 0, 0, 0
    t._slots = None
    t.max_len = FS - TX_DATA
    t.sock = _Sock()
    return t


def sent(t: TxRing) -> list[bytes]:
    out = []
    for k in range(t.nframes):
        st, ln = struct.unpack_from("=II", t.ring, k * FS)
        if st == 1:
            assert ln >= VNET_HDR and struct.unpack_from("<H", t.ring, k * FS + 34)[0] == ln - VNET_HDR
            out.append(bytes(t.ring[k * FS + TX_DATA:k * FS + TX_DATA + ln - VNET_HDR]))
    return out


def counters(t) -> tuple:
    return (dict(t.c_ilm), {str(k): v for k, v in t.c_ftn.items()},
            {str(k): v for k, v in t.c_ip.items()}, dict(t.drops), t.delivered)


def check(router: str, in_if: str, frames: list[bytes], ttl_model: str = "uniform",
          mpls: bool = True) -> int:
    opts = {r: f"ttl_model: {ttl_model}" for r in ("pe1", "p1", "p2", "pe2")}
    topo = line4(mtu1=1500, mtu2=600, **opts)
    ref, t = all_tables(topo)[router], all_tables(topo)[router]
    expected = sorted((o, bytes(f)) for fr in frames for o, f in Dataplane(ref).process(fr, in_if))
    txs = {name: tx_ring() for name in t.interfaces}
    fp = FastPath(t, txs)
    rx = rx_ring(frames)
    my_mac = t.interfaces[in_if].mac
    got, fwd, slow = (fp.mpls if mpls else fp.ipv4)(rx, my_mac, 256)
    assert got == len(frames)
    out = [(name, f) for name, tx in txs.items() for f in sent(tx)]
    dp = Dataplane(t)
    out += [(o, bytes(f)) for fr in slow for o, f in dp.process(fr, in_if)]
    assert sorted(out) == expected
    assert counters(t) == counters(ref)
    assert rx.index == len(frames) % rx.nframes
    assert all(rx.ring[k * FS] == 0 for k in range(len(frames)))  # slots handed back
    return fwd


@pytest.mark.parametrize("ttl_model", ["uniform", "pipe"])
def test_swap_and_php(ttl_model: str) -> None:
    topo = line4()
    tabs = all_tables(topo)
    p1, p2 = tabs["p1"], tabs["p2"]
    fec = "192.168.2.0/24"
    lp1, lp2 = ilm_label(p1, fec), ilm_label(p2, fec)
    pkt = udp("192.168.1.2", "192.168.2.2", ttl=64)
    big = udp("192.168.1.2", "192.168.2.2", data=bytes(900))
    frames = [mpls_frame(p1, "eth1", (lp1,), pkt, ttl=t, tc=tc) for t in (64, 2, 1, 255) for tc in (0, 5)]
    frames += [mpls_frame(p1, "eth1", (lp1,), big),  # over p1->p2's MTU 600: ICMP / general path
               mpls_frame(p1, "eth1", (lp1, 99), pkt),  # not bottom of stack
               mpls_frame(p1, "eth1", (12345,), pkt),  # unknown label
               mpls_frame(p1, "eth1", (0,), pkt),  # explicit null
               eth("02:00:00:00:00:99", p1.interfaces["eth1"].peer_mac, 0x8847,
                   mpls_frame(p1, "eth1", (lp1,), pkt)[14:]),  # not our MAC
               mpls_frame(p1, "eth1", (lp1,), pkt)[:20]]  # runt
    assert check("p1", "eth1", frames, ttl_model) == 7  # TTL > 1, fits the MTU
    pframes = [mpls_frame(p2, "eth1", (lp2,), udp("192.168.1.2", "192.168.2.2", ttl=ipt), ttl=lt)
               for ipt in (64, 10, 1) for lt in (64, 20, 2, 1)]
    bad = bytearray(mpls_frame(p2, "eth1", (lp2,), pkt))
    bad[18 + 10] ^= 0xFF  # IPv4 header checksum
    pframes += [bytes(bad), mpls_frame(p2, "eth1", (lp2,), big)]
    assert check("p2", "eth1", pframes, ttl_model) > 0


@pytest.mark.parametrize("ttl_model", ["uniform", "pipe"])
def test_push_and_ip_forward(ttl_model: str) -> None:
    tabs = all_tables(line4())
    pe1, pe2 = tabs["pe1"], tabs["pe2"]
    frames = [ip_frame(pe1, "eth1", udp("192.168.1.2", "192.168.2.2", ttl=t, tos=tos))
              for t in (64, 2, 1) for tos in (0, 0xB8)]
    frames += [ip_frame(pe1, "eth1", udp("192.168.1.2", "192.168.2.2", data=bytes(1000), df=True)),
               ip_frame(pe1, "eth1", udp("192.168.1.2", "10.255.0.4")),  # pe2's loopback: push
               ip_frame(pe1, "eth1", udp("192.168.1.2", "10.255.0.1")),  # our own: kernel's
               ip_frame(pe1, "eth1", udp("192.168.1.2", "127.0.0.1")),  # RFC 8029 echo range
               ip_frame(pe1, "eth1", udp("192.168.1.2", "192.168.1.255")),  # broadcast
               ip_frame(pe1, "eth1", udp("192.168.1.2", "172.16.0.1")),  # no route
               ip_frame(pe1, "eth1", ip("192.168.1.2", "192.168.2.2")[:20] + b"\x01\x02")[:30]]
    opt = bytearray(ip("192.168.1.2", "192.168.2.2", payload=bytes(8)))
    frames.append(ip_frame(pe1, "eth1", bytes(opt[:0]) + b"\x46" + bytes(opt[1:]) + bytes(4)))
    assert check("pe1", "eth1", frames, ttl_model, mpls=False) >= 5
    frames = [ip_frame(pe2, "eth2", udp("192.168.1.2", "192.168.2.2", ttl=t)) for t in (64, 2, 1)]
    frames.append(ip_frame(pe2, "eth2", udp("192.168.1.2", "192.168.1.2")))  # back along the LSP
    assert check("pe2", "eth2", frames, ttl_model, mpls=False) >= 2


def test_lfib_change_is_seen() -> None:
    """fast_ilm edits (LDP diffs) reach the fast path's derived table."""
    topo = line4()
    t = all_tables(topo)["p1"]
    txs = {name: tx_ring() for name in t.interfaces}
    fp = FastPath(t, txs)
    lbl = ilm_label(t, "192.168.2.0/24")
    f = mpls_frame(t, "eth1", (lbl,), udp("192.168.1.2", "192.168.2.2"))
    assert fp.mpls(rx_ring([f]), t.interfaces["eth1"].mac, 8)[1] == 1
    t.fast_ilm.pop(lbl)
    assert fp.mpls(rx_ring([f]), t.interfaces["eth1"].mac, 8)[1] == 0
