"""forwarding.ioloop: the ring-to-ring fast path gives exactly what forwarding.plane gives.

Rings are anonymous mmaps laid out like TPACKET_V2 RX/TX rings; no sockets, no root.
"""

from __future__ import annotations

import mmap
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    """The scalar loop and the vector path (forced on any run) both give forwarding.plane's
    frames and counters; returns how many frames the fast path forwarded itself."""
    fwd = {_check(router, in_if, frames, ttl_model, mpls, vec) for vec in (False, True)}
    assert len(fwd) == 1, fwd  # the same frames take the fast path either way
    return fwd.pop()


def _check(router: str, in_if: str, frames: list[bytes], ttl_model: str, mpls: bool,
           vector: bool) -> int:
    opts = {r: f"ttl_model: {ttl_model}" for r in ("pe1", "p1", "p2", "pe2")}
    topo = line4(mtu1=1500, mtu2=600, **opts)
    ref, t = all_tables(topo)[router], all_tables(topo)[router]
    expected = sorted((o, bytes(f)) for fr in frames for o, f in Dataplane(ref).process(fr, in_if))
    txs = {name: tx_ring() for name in t.interfaces}
    fp = FastPath(t, txs, vector=vector, vector_min=1)
    assert (fp.vector is not None) == vector
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


def test_php_of_an_echo_request_is_the_general_paths() -> None:
    """IPv4 to 127/8 under a bottom label the fast paths would pop (RFC 8029 echo
    request): the general path's, whose OAM hook answers it where the label is a VPN
    label of this PE (a per-prefix label of a static route pops straight to the CE);
    elsewhere (PHP of an LDP LSP) it gets what forwarding.plane does with it."""
    p2 = all_tables(line4())["p2"]
    lp2 = ilm_label(p2, "192.168.2.0/24")
    echo = [mpls_frame(p2, "eth1", (lp2,), udp("10.255.0.1", f"127.0.0.{k}", sport=3503,
                                                dport=3503, ttl=1), ttl=t)
            for k in (1, 2) for t in (255, 2)]
    assert check("p2", "eth1", echo) == 0
    assert check("p2", "eth1", [mpls_frame(p2, "eth1", (lp2,), udp("10.255.0.1", "192.168.2.2"))]) == 1


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


def _subsequence(a: list, b: list) -> bool:
    it = iter(b)
    return all(x in it for x in a)


_P1_KINDS = ("swap", "swap-tc", "php", "php-lower", "swap-ttl1", "unknown", "not-ours", "big", "stacked", "runt", "ip-ttl3")


@settings(max_examples=60, deadline=None)
@given(kinds=st.lists(st.sampled_from(_P1_KINDS), min_size=1, max_size=60),
       start=st.integers(0, 63), vmin=st.sampled_from([1, 4, 48]), limit=st.sampled_from([7, 64]),
       busy=st.sampled_from([0, 0, 20, 50, 64]))
def test_vector_runs_wrap_and_keep_order(kinds: list[str], start: int, vmin: int, limit: int,
                                         busy: int) -> None:
    """Mixed swap / PHP / general-path frames in a ring whose run wraps: every frame comes out
    exactly as forwarding.plane makes it, per egress in arrival order, counters equal. The
    last `busy` TX slots are still the kernel's (ring full): those frames go the general way."""
    _p1_run(kinds, start, vmin, limit, busy)


@pytest.mark.parametrize("kind", _P1_KINDS)
def test_vector_uniform_runs(kind: str) -> None:
    """A busy link's common case: a long run of one kind of frame (one array pass)."""
    _p1_run([kind] * 40, 50, 1, 64, 0)
    _p1_run([kind] * 40, 0, 48, 64, 0)


def _p1_run(kinds: list[str], start: int, vmin: int, limit: int, busy: int) -> None:
    topo = line4(mtu2=600)
    ref, t = all_tables(topo)["p1"], all_tables(topo)["p1"]
    lsw, lphp = ilm_label(t, "192.168.2.0/24"), ilm_label(t, "10.255.0.3/32")
    pkt = udp("192.168.1.2", "192.168.2.2", ttl=64)
    make = {
        "swap": lambda: mpls_frame(t, "eth1", (lsw,), pkt),
        "swap-tc": lambda: mpls_frame(t, "eth1", (lsw,), pkt, ttl=200, tc=5),
        "php": lambda: mpls_frame(t, "eth1", (lphp,), udp("192.168.1.2", "10.255.0.3", ttl=9), ttl=30),
        "php-lower": lambda: mpls_frame(t, "eth1", (lphp,), udp("192.168.1.2", "10.255.0.3"), ttl=9),
        "swap-ttl1": lambda: mpls_frame(t, "eth1", (lsw,), pkt, ttl=1),
        "unknown": lambda: mpls_frame(t, "eth1", (777,), pkt),
        "not-ours": lambda: eth("02:00:00:00:00:99", "02:00:00:00:00:98", 0x8847,
                                mpls_frame(t, "eth1", (lsw,), pkt)[14:]),
        "big": lambda: mpls_frame(t, "eth1", (lsw,), udp("192.168.1.2", "192.168.2.2",
                                                         data=bytes(700))),
        "stacked": lambda: mpls_frame(t, "eth1", (lsw, 55), pkt, ttl=7),
        "runt": lambda: mpls_frame(t, "eth1", (lsw,), pkt)[:30],
        "ip-ttl3": lambda: mpls_frame(t, "eth1", (lphp,), udp("192.168.1.2", "10.255.0.3", ttl=3),
                                      ttl=64),
    }
    _ring_run(ref, t, [make[k]() for k in kinds], start, vmin, limit, busy, mpls=True)


_PE1_KINDS = ("push", "push-lo", "tos", "back", "own", "echo", "ttl1", "bad-ck", "options",
              "no-route", "df-big", "not-ours", "runt")


@settings(max_examples=60, deadline=None)
@given(kinds=st.lists(st.sampled_from(_PE1_KINDS), min_size=1, max_size=60),
       start=st.integers(0, 63), vmin=st.sampled_from([1, 4, 48]), limit=st.sampled_from([7, 64]),
       busy=st.sampled_from([0, 0, 20, 50, 64]), ttl_model=st.sampled_from(["uniform", "pipe"]))
def test_vector_ipv4_runs(kinds: list[str], start: int, vmin: int, limit: int, busy: int,
                          ttl_model: str) -> None:
    """The IPv4 ring of an edge router: pushes (two FECs), IP forwarding back to the host
    subnet and general-path frames mixed; same frames, order per egress and counters."""
    _pe1_run(kinds, start, vmin, limit, busy, ttl_model)


@pytest.mark.parametrize("kind", _PE1_KINDS)
@pytest.mark.parametrize("ttl_model", ["uniform", "pipe"])
def test_vector_ipv4_uniform_runs(kind: str, ttl_model: str) -> None:
    _pe1_run([kind] * 40, 50, 1, 64, 0, ttl_model)
    _pe1_run([kind] * 40, 0, 48, 64, 30, ttl_model)


def _pe1_run(kinds: list[str], start: int, vmin: int, limit: int, busy: int,
             ttl_model: str) -> None:
    opts = {r: f"ttl_model: {ttl_model}" for r in ("pe1", "p1", "p2", "pe2")}
    topo = line4(mtu1=600, **opts)
    ref, t = all_tables(topo)["pe1"], all_tables(topo)["pe1"]

    def f(dst: str, **kw: object) -> bytes:
        return ip_frame(t, "eth1", udp("192.168.1.2", dst, **kw))  # type: ignore[arg-type]

    bad = bytearray(f("192.168.2.2"))
    bad[24] ^= 0x40
    opt = bytearray(ip("192.168.1.2", "192.168.2.2", payload=bytes(8)))
    make = {
        "push": lambda: f("192.168.2.2"),
        "push-lo": lambda: f("10.255.0.4", ttl=5),
        "tos": lambda: f("192.168.2.7", tos=0xB8),
        "back": lambda: f("192.168.1.3"),
        "own": lambda: f("10.255.0.1"),
        "echo": lambda: f("127.0.0.1"),
        "ttl1": lambda: f("192.168.2.2", ttl=1),
        "bad-ck": lambda: bytes(bad),
        "options": lambda: ip_frame(t, "eth1", b"\x46" + bytes(opt[1:]) + bytes(4)),
        "no-route": lambda: f("172.16.0.1"),
        "df-big": lambda: f("192.168.2.2", data=bytes(900), df=True),
        "not-ours": lambda: eth("02:00:00:00:00:99", "02:00:00:00:00:98", 0x0800,
                                f("192.168.2.2")[14:]),
        "runt": lambda: f("192.168.2.2")[:30],
    }
    _ring_run(ref, t, [make[k]() for k in kinds], start, vmin, limit, busy, mpls=False)


def _ring_run(ref, t, frames: list[bytes], start: int, vmin: int, limit: int, busy: int,
              mpls: bool) -> None:
    """Frames into a 64-slot RX ring from slot `start` (so runs wrap), the last `busy` slots
    of every TX ring still the kernel's; FastPath (vector from `vmin` frames) until all are
    read. Fast + general-path output equals forwarding.plane's, each egress keeps arrival
    order, counters equal, every RX slot handed back."""
    dp = Dataplane(ref)
    expected = [(o, bytes(x)) for fr in frames for o, x in dp.process(fr, "eth1")]
    n = 64
    rx = rx_ring([], n)
    for k, fr in enumerate(frames):
        off = (start + k) % n * FS
        struct.pack_into("=IIIH", rx.ring, off, 1, len(fr), len(fr), 66)
        rx.ring[off + 66:off + 66 + len(fr)] = fr
    rx.index = start
    txs = {name: tx_ring(n) for name in t.interfaces}
    for tx in txs.values():
        for k in range(n - busy, n):
            tx.ring[k * FS] = 2  # TP_STATUS_SENDING: not ours to write
    fp = FastPath(t, txs, vector_min=vmin)
    step = fp.mpls if mpls else fp.ipv4
    slow_out: list = []
    got_total = 0
    gdp = Dataplane(t)
    while got_total < len(frames):
        got, _fwd, slow = step(rx, t.interfaces["eth1"].mac, limit)
        assert got > 0
        got_total += got
        slow_out += [(o, bytes(x)) for fr in slow for o, x in gdp.process(fr, "eth1")]
    fast_out = [(name, x) for name, tx in txs.items() for x in sent(tx)]
    assert sorted(fast_out + slow_out) == sorted(expected)
    for name in t.interfaces:
        assert _subsequence([x for o, x in fast_out if o == name],
                            [x for o, x in expected if o == name])
    assert counters(t) == counters(ref)
    assert rx.index == (start + len(frames)) % n
    assert all(rx.ring[k * FS] == 0 for k in range(n))
