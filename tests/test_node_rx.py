"""lsr.lab.node receive policies: RX ring depth per lab, receive coalescing (no root)."""

from __future__ import annotations

import collections
import errno
import os
import socket
from types import SimpleNamespace

import pytest

from benchmarks.topogen import isp_topology, random_topology_yaml
from forwarding.afpacket import PacketPort
from lsr.core.topology import load_topology, parse_topology
from lsr.lab import node
from tests.conftest import TOPOLOGIES


@pytest.mark.parametrize(("name", "frames"), [("line3", 4096), ("diamond", 4096),
                                              ("backbone", 2048)])
def test_ring_depth_follows_lab_size(name: str, frames: int, monkeypatch) -> None:
    monkeypatch.delenv("LSR_RING_FRAMES", raising=False)
    topo = load_topology(TOPOLOGIES / f"{name}.yaml")
    assert node.ring_frames(topo) == frames
    rings = 2 * sum(len(topo.nodes[r.name].interfaces) for r in topo.routers)
    assert rings * frames * 2048 <= node.RING_BUDGET


def test_ring_depth_floor_and_override(monkeypatch) -> None:
    monkeypatch.delenv("LSR_RING_FRAMES", raising=False)
    mid = parse_topology(random_topology_yaml(50, 25, seed=7, hosts=2), "<rnd50>")
    assert node.ring_frames(mid) == 512  # the budget holds
    big = isp_topology(400)
    assert node.ring_frames(big) == node.RING_MIN  # over budget: never below the floor
    monkeypatch.setenv("LSR_RING_FRAMES", "512")
    assert node.ring_frames(big) == 512


class _Port:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


def _router(long_run: bool = False) -> SimpleNamespace:
    return SimpleNamespace(_woke={}, _coal_next=0.0, counters=collections.Counter(),
                           fast=SimpleNamespace(long_run=lambda port, limit: long_run))


def test_coalescing_waits_only_on_a_busy_link(monkeypatch) -> None:
    clock = [100.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        clock[0] += s

    monkeypatch.setattr(node.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(node.time, "sleep", sleep)
    r, a, b = _router(), _Port(5), _Port(6)
    co = node.Router._coalesce
    # first wake-up, and wake-ups that found few frames (a ping): no wait
    r._woke[5] = (co(r, a), 1)
    clock[0] += 0.0005
    r._woke[5] = (co(r, a), 1)
    assert waits == []
    # a busy link: the last wake-up was recent and found >= COAL_MIN frames
    r._woke[5] = (co(r, a), node.COAL_MIN)
    clock[0] += 0.0005
    co(r, a)
    assert waits == [node.COAL_WAIT] and r.counters["rx_coalesced"] == 1
    # another busy ring in the same pass shares that wait
    r._woke[6] = (clock[0] - 0.0001, 100)
    co(r, b)
    assert len(waits) == 1
    # a link that went quiet (last wake-up long ago): no wait
    clock[0] += 1.0
    r._woke[5] = (clock[0] - 0.5, 100)
    co(r, a)
    assert len(waits) == 1
    # a long run already waiting: no reason to wait
    r2 = _router(long_run=True)
    r2._woke[5] = (clock[0] - 0.0001, 100)
    co(r2, a)
    assert len(waits) == 1


def test_coalescing_off(monkeypatch) -> None:
    monkeypatch.setattr(node, "COAL_WAIT", 0.0)
    monkeypatch.setattr(node.time, "sleep", lambda s: pytest.fail("waited"))
    r = _router()
    r._woke[5] = (node.time.monotonic(), 500)
    node.Router._coalesce(r, _Port(5))


@pytest.mark.parametrize(("var", "value"), [("LSR_RING_FRAMES", "lots"), ("LSR_RING_FRAMES", "8"),
                                            ("LSR_COAL_US", "-1"), ("LSR_COAL_US", "99999")])
def test_bad_tuning_knob_is_one_line(var: str, value: str, monkeypatch) -> None:
    from lsr.lab import LabError, _check_env

    monkeypatch.setenv(var, value)
    with pytest.raises(LabError) as e:
        _check_env()
    assert var in str(e.value) and "\n" not in str(e.value)


def test_good_tuning_knobs_pass(monkeypatch) -> None:
    from lsr.lab import _check_env

    monkeypatch.setenv("LSR_RING_FRAMES", "2048")
    monkeypatch.setenv("LSR_COAL_US", "0")
    _check_env()


class _ErrSock:
    """A packet socket with ENETDOWN pending (its interface went down): recv() raises it
    once, getsockopt(SO_ERROR) reads it once; both clear it, like the kernel."""

    def __init__(self) -> None:
        self.err = errno.ENETDOWN

    def recv(self, _n: int) -> bytes:
        if self.err:
            e, self.err = self.err, 0
            raise OSError(e, os.strerror(e))
        raise BlockingIOError

    def recvmsg(self, _n: int, _anc: int) -> tuple:
        return self.recv(_n), [], 0, None

    def getsockopt(self, level: int, opt: int) -> int:
        assert (level, opt) == (socket.SOL_SOCKET, socket.SO_ERROR)
        e, self.err = self.err, 0
        return e


@pytest.mark.parametrize("via_recv", [True, False])
def test_packet_socket_error_is_taken_once(via_recv: bool) -> None:
    port = PacketPort.__new__(PacketPort)  # no socket: root-free
    port.sock = _ErrSock()
    if via_recv:  # a plain socket's recv() consumes the error: nothing raised, kept for us
        assert port.recv_batch(8) == []
    assert port.take_error() == errno.ENETDOWN
    assert port.take_error() == 0
    assert port.recv_batch(8) == []


def test_general_path_counts_every_frame_and_oam_only_on_ldp_links() -> None:
    """lsr.lab.node's per-frame path leaves no frame uncounted (runts, other MACs, odd
    ethertypes reach forwarding.plane, which counts them), and a labelled frame on a host
    port is not answered as an RFC 8029 echo request: it is dropped, mpls-input-disabled."""
    from forwarding.plane import Dataplane
    from tests.fwd_helpers import all_tables, eth, ilm_label, line4, mpls_frame, udp

    pe1 = all_tables(line4())["pe1"]
    answered: list[str] = []
    oam = SimpleNamespace(intercept=lambda f, ifname: answered.append(ifname) or True)
    r = SimpleNamespace(my_macs={n: i.mac for n, i in pe1.interfaces.items()},
                        process=Dataplane(pe1).process, tx={}, counters=collections.Counter(),
                        ldp_ifs=("eth2",), oam=oam, ipsec=None, local_ips=set())
    i = pe1.interfaces["eth1"]
    echo = udp("192.168.1.1", "127.0.0.1", dport=3503)  # an echo request's shape
    lbl = ilm_label(pe1, "10.255.0.4/32")
    frames = [mpls_frame(pe1, "eth1", (lbl,), echo, ttl=1),  # host port: not OAM's
              eth(i.mac, i.peer_mac, 0x0800, b"\x45\x00"),  # a runt
              eth("02:00:00:00:00:99", i.peer_mac, 0x0800, udp("192.168.1.1", "192.168.2.2")),
              eth(i.mac, i.peer_mac, 0x86DD, bytes(40)),
              eth(i.mac, i.peer_mac, 0x8848, bytes(24))]
    node.Router._general(r, "eth1", frames)
    assert answered == []
    d = pe1.drops
    assert (d["mpls-input-disabled"], d["malformed"], d["not-for-us"], d["ipv6-unsupported"],
            d["mpls-multicast"]) == (1, 1, 1, 1, 1)
    assert pe1.forwarded() + pe1.delivered + sum(d.values()) == len(frames)
    node.Router._general(r, "eth2", [mpls_frame(pe1, "eth2", (lbl,), echo, ttl=1)])
    assert answered == ["eth2"]  # on an LDP link the echo request is OAM's
