"""RFC 4303 §3.4.3 anti-replay window.

Cases: seq 0 rejected; duplicates rejected; out of order inside the window accepted once;
top-W+1 accepted and top-W rejected; a jump larger than W clears the bitmap; 2^32-1 handled;
checking alone changes nothing (the window moves only once the ICV has verified); anti-replay
off lets duplicates through; a restart on either side under manual keys; ESN (RFC 4303 App. A2).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forwarding.ipsec.replay import ReplayWindow


def accept(w: ReplayWindow, seq: int) -> bool:
    if not w.check(seq):
        return False
    w.update(seq)
    return True


def test_defaults():
    w = ReplayWindow()
    assert w.size == 64 and w.top == 0 and w.enabled


@pytest.mark.parametrize("size", [1, 31, -1, (1 << 16) + 1])
def test_bad_sizes(size):
    with pytest.raises(ValueError):
        ReplayWindow(size)


@pytest.mark.parametrize("size", [0, 32, 64, 128, 1024])
def test_good_sizes(size):
    assert ReplayWindow(size).size == size


def test_seq_zero_rejected():
    w = ReplayWindow()
    assert not w.check(0)
    assert accept(w, 1)
    assert not w.check(0)


def test_duplicate_rejected():
    w = ReplayWindow()
    assert accept(w, 1)
    assert not accept(w, 1)
    assert accept(w, 2)
    assert not accept(w, 2)
    assert not accept(w, 1)


def test_out_of_order_inside_window_accepted_once():
    w = ReplayWindow()
    assert accept(w, 10)
    for s in (5, 9, 3, 7):
        assert accept(w, s)
    for s in (5, 9, 3, 7, 10):
        assert not accept(w, s)
    assert accept(w, 8)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_boundaries(size):
    w = ReplayWindow(size)
    top = 1000
    assert accept(w, top)
    assert w.check(top - size + 1)  # leftmost slot of the window
    assert not w.check(top - size)  # just left of it
    assert accept(w, top - size + 1)
    assert not accept(w, top - size + 1)


def test_jump_larger_than_window_clears_bitmap():
    w = ReplayWindow(64)
    for s in range(1, 65):
        assert accept(w, s)
    assert accept(w, 64 + 200)
    assert w.bitmap == 1
    assert not w.check(64)  # now left of the window
    assert accept(w, 64 + 200 - 63)  # inside, never seen


def test_slide_keeps_seen_bits():
    w = ReplayWindow(64)
    assert accept(w, 5)
    assert accept(w, 10)  # shift by 5: 5 is now at offset 5
    assert w.seen(5) and w.seen(10) and not w.seen(6)
    assert not accept(w, 5)


def test_max_32bit_seq():
    w = ReplayWindow(64)
    top = 0xFFFFFFFF
    assert accept(w, top)
    assert not accept(w, top)
    assert accept(w, top - 63)
    assert not w.check(top - 64)


def test_off_accepts_duplicates_and_tracks_top():
    w = ReplayWindow(0)
    assert not w.enabled
    for _ in range(3):
        assert accept(w, 7)
    assert accept(w, 1)
    assert w.top == 7


def test_check_does_not_change_state():
    w = ReplayWindow()
    accept(w, 50)
    before = w.snapshot()
    for s in (0, 1, 49, 50, 51, 10_000):
        w.check(s)
    assert w.snapshot() == before


def test_sender_restart_with_manual_keys_is_dropped():
    # facts §4: a sender that restarts at 1 is dropped until it passes the old top
    w = ReplayWindow(64)
    for s in range(1, 201):
        accept(w, s)
    assert not any(w.check(s) for s in range(1, 201))
    assert w.check(201)


def test_receiver_restart_loses_window():
    # facts §4: a fresh receiver accepts an old capture again (why manual keys are weak)
    w = ReplayWindow(64)
    for s in range(1, 11):
        accept(w, s)
    w2 = ReplayWindow(64)
    assert all(accept(w2, s) for s in range(1, 11))


# ---- ESN inference (RFC 4303 App. A2.2)


def test_esn_case_a():
    w = ReplayWindow(64)
    w.update((5 << 32) | 1000)
    assert w.infer_esn(1001) == (5 << 32) | 1001
    assert w.infer_esn(1000 - 63) == (5 << 32) | (1000 - 63)
    assert w.infer_esn(1000 - 64) == (6 << 32) | (1000 - 64)  # left of window: next subspace
    assert w.infer_esn(3) == (6 << 32) | 3


def test_esn_case_b_wrap():
    w = ReplayWindow(64)
    w.update((5 << 32) | 10)  # window spans 4:0xFFFFFFCB .. 5:10
    assert w.infer_esn(0xFFFFFFF0) == (4 << 32) | 0xFFFFFFF0
    assert w.infer_esn(11) == (5 << 32) | 11
    assert w.infer_esn(0x80000000) == (5 << 32) | 0x80000000


def test_esn_wrap_from_32_bits():
    w = ReplayWindow(64)
    w.update(0xFFFFFFFF)
    assert w.infer_esn(0) == 1 << 32
    assert w.infer_esn(5) == (1 << 32) | 5
    assert w.infer_esn(0xFFFFFFF0) == 0xFFFFFFF0


def test_esn_start():
    w = ReplayWindow(64)
    assert w.infer_esn(1) == 1
    assert w.infer_esn(0xFFFFFFFF) == 0xFFFFFFFF  # seq_hi never negative


# ---- model-based property


@given(st.lists(st.integers(min_value=0, max_value=300), max_size=200), st.sampled_from([32, 64, 100]))
def test_matches_reference_model(seqs, size):
    w = ReplayWindow(size)
    seen: set[int] = set()
    top = 0
    for s in seqs:
        expect = s != 0 and s not in seen and (s > top or s > top - size)
        assert accept(w, s) == expect
        if expect:
            seen.add(s)
            top = max(top, s)
