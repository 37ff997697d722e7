"""TPACKET_V2 RX rings are read strictly in order (forwarding.afpacket.RingPort, the
fast paths of forwarding.ioloop / forwarding.vector).

A model of the kernel's writer (net/packet/af_packet.c, tpacket_rcv for V2): a frame
claims the slot at the ring's head only if that slot is the kernel's (else it is
dropped, "ring full"), the head then moves on, and the slot is set ready when its copy
is done -- on several CPUs copies finish out of order. Readers that skipped an unready
slot left a ready slot behind them; the kernel's head then stopped there and every
later frame was dropped with the router idle (seen in labs under load).
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from forwarding.ioloop import FastPath
from tests.fwd_helpers import all_tables, ilm_label, line4, mpls_frame, udp
from tests.test_ioloop import FS, rx_ring, sent, tx_ring

N = 16


class KernelWriter:
    """The V2 RX side of the kernel, one frame at a time."""

    def __init__(self, ring) -> None:
        self.ring = ring
        self.head = 0
        self.in_flight: list[tuple[int, bytes]] = []
        self.claimed: list[bytes] = []  # frames that got a slot, in claim order
        self.dropped = 0

    def claim(self, frame: bytes) -> bool:
        off = self.head * FS
        if self.ring.ring[off] != 0 or any(s == self.head for s, _ in self.in_flight):
            self.dropped += 1  # the head slot is not the kernel's: ring full
            return False
        self.in_flight.append((self.head, frame))
        self.claimed.append(frame)
        self.head = (self.head + 1) % N
        return True

    def complete(self, which: int) -> None:
        slot, frame = self.in_flight.pop(which % len(self.in_flight))
        off = slot * FS
        self.ring.ring[off + 66:off + 66 + len(frame)] = frame
        struct.pack_into("=IIIH", self.ring.ring, off, 1, len(frame), len(frame), 66)


def _frames(n: int) -> tuple:
    t = all_tables(line4())["p1"]
    lbl = ilm_label(t, "192.168.2.0/24")
    return t, [mpls_frame(t, "eth1", (lbl,), udp("192.168.1.2", "192.168.2.2", data=b"%04d" % k))
               for k in range(n)]


_OPS = st.lists(st.tuples(st.sampled_from(["write", "claim", "complete", "read"]),
                          st.integers(0, 7)), min_size=1, max_size=120)


def _drive(kw: KernelWriter, ops: list, frames: list[bytes], read) -> None:
    """Play `ops` (kernel writes, claims, out-of-order completions, reads of up to
    arg + 1 frames), then complete everything and read the rest (a call may stop at the
    ring's end: read until one returns nothing, as the router's next round does)."""
    feed = iter(frames)
    for op, arg in ops:
        if op == "write":
            if kw.claim(next(feed)):
                kw.complete(len(kw.in_flight) - 1)
        elif op == "claim":
            kw.claim(next(feed))
        elif op == "complete" and kw.in_flight:
            kw.complete(arg)
        elif op == "read":
            read(arg + 1)
    while kw.in_flight:
        kw.complete(0)
    while read(N):
        pass


@settings(max_examples=150, deadline=None)
@given(ops=_OPS, vector=st.booleans())
def test_fast_path_reads_claimed_frames_in_order(ops: list, vector: bool) -> None:
    """Whatever the interleaving of claims, out-of-order completions and reads, the fast
    path forwards exactly the frames that got a slot, in claim order, and the kernel's head
    never stops while the reader has caught up."""
    t, frames = _frames(len(ops))
    rx = rx_ring([], N)
    kw = KernelWriter(rx)
    tx = tx_ring(256)
    fp = FastPath(t, {"eth2": tx}, vector=vector, vector_min=2)
    mac = t.interfaces["eth1"].mac

    def read(limit: int) -> int:
        got, _fwd, slow = fp.mpls(rx, mac, limit)
        assert not slow
        return got

    _drive(kw, ops, frames, read)
    out = [f[18:] for f in sent(tx)]  # after the new Ethernet header and label
    assert out == [f[18:] for f in kw.claimed]
    assert rx.index == kw.head
    assert all(rx.ring[k * FS] == 0 for k in range(N))


@settings(max_examples=150, deadline=None)
@given(ops=_OPS)
def test_recv_batch_reads_claimed_frames_in_order(ops: list) -> None:
    _t, frames = _frames(len(ops))
    rx = rx_ring([], N)
    kw = KernelWriter(rx)
    out: list[bytes] = []

    def read(limit: int) -> int:
        got = rx.recv_batch(limit)
        out.extend(got)
        return len(got)

    _drive(kw, ops, frames, read)
    assert out == kw.claimed
    assert rx.index == kw.head


def _head_in_flight(frames: list[bytes]) -> tuple:
    """A ring where the frames got slots 0.. and all but slot 0 are ready (slot 0's copy
    is still under way): (ring, writer)."""
    rx = rx_ring([], N)
    rx._stuck = None
    kw = KernelWriter(rx)
    for f in frames:
        kw.claim(f)
    while len(kw.in_flight) > 1:
        kw.complete(len(kw.in_flight) - 1)
    return rx, kw


def test_unready_slot_is_waited_for_not_skipped() -> None:
    """Slot 0 claimed but still being copied, slots 1-2 ready: nothing is read (the
    reader waits), and nothing is skipped; once slot 0 is ready all three come in order."""
    t, frames = _frames(3)
    for vector in (False, True):
        rx, kw = _head_in_flight(frames)
        tx = tx_ring(64)
        fp = FastPath(t, {"eth2": tx}, vector=vector, vector_min=1)
        assert fp.mpls(rx, t.interfaces["eth1"].mac, 64)[0] == 0
        assert rx.index == 0 and rx.recv_batch(8) == []
        kw.complete(0)
        assert fp.mpls(rx, t.interfaces["eth1"].mac, 64)[:2] == (3, 3)
        assert [f[18:] for f in sent(tx)] == [f[18:] for f in frames]


def test_unstick_only_after_a_slot_stayed_unready() -> None:
    """The once-a-second safety net: a slot unready at two checks in a row while later
    slots are ready is taken as lost and skipped; a slot that became ready is not."""
    _t, frames = _frames(3)
    rx, kw = _head_in_flight(frames)
    assert rx.unstick() == 0 and rx.index == 0  # first sighting: wait
    kw.complete(0)
    assert rx.unstick() == 0 and rx.index == 0  # it became ready: nothing skipped
    assert rx.recv_batch(8) == frames
    # a slot that never becomes ready (a lost frame): skipped at the second check
    rx2, _kw2 = _head_in_flight(frames)
    assert rx2.unstick() == 0
    assert rx2.unstick() == 1 and rx2.index == 1
    assert rx2.recv_batch(8) == frames[1:]
    assert rx2.unstick() == 0  # nothing waiting: nothing to do
    # an idle ring at one check, then a copy under way at the next (two CPUs: slot 1 done
    # before slot 0): not the same state twice, so nothing is skipped
    rx3 = rx_ring([], N)
    rx3._stuck = None
    kw3 = KernelWriter(rx3)
    assert rx3.unstick() == 0
    kw3.claim(frames[0])
    kw3.claim(frames[1])
    kw3.complete(1)
    assert rx3.unstick() == 0 and rx3.index == 0
    kw3.complete(0)
    assert rx3.recv_batch(8) == frames[:2]
