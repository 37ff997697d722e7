"""Link impairments: the values (lsr.core.impair), the topology keys, the pure scheduler
(forwarding.impair) and the command line's parsing. The lab measurements (ping, probe
stream, iperf3 across an impaired link) are in tests/test_lab_impair.py."""

from __future__ import annotations

import random

import pytest

from forwarding.impair import FULL_FRAME, LOSS, QUEUE_FULL, Scheduler
from lsr.core.impair import (
    Impairment,
    parse_duration,
    parse_loss,
    parse_rate,
    parse_words,
    update,
)
from lsr.core.topology import TopologyError, parse_topology

LINE = """\
name: t1
topology:
  nodes:
    ce1: {kind: host}
    pe1: {}
    p1: {}
    f1: {kind: frr}
  links:
    - endpoints: [ce1:eth0, pe1:eth1]
    - endpoints: [pe1:eth2, p1:eth1]
      delay: 20ms
    - endpoints: [p1:eth2, f1:eth1]
"""


# ------------------------------------------------------------ values


@pytest.mark.parametrize("text,seconds", [
    ("20ms", 0.02), ("1.5ms", 0.0015), ("500us", 0.0005), ("0.2s", 0.2), ("2S", 2.0),
    (20, 0.02), (0.5, 0.0005), ("0", 0.0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text,msg", [
    ("20 m", "expected a duration"), ("-1ms", "expected a duration"), ("11s", "out of range"),
    (True, "expected a duration"), ("fast", "expected a duration"),
])
def test_bad_durations(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_duration(text)


@pytest.mark.parametrize("text,frac", [("1%", 0.01), ("0.5%", 0.005), (10, 0.1), ("100%", 1.0)])
def test_loss(text, frac):
    assert parse_loss(text) == pytest.approx(frac)


@pytest.mark.parametrize("text,bps", [("10mbit", 10_000_000), ("512kbit", 512_000),
                                      ("1gbit", 10**9), ("1.5Mbit", 1_500_000), (64000, 64000),
                                      ("0", 0)])
def test_rates(text, bps):
    assert parse_rate(text) == bps


def test_rate_refuses_tc_bytes_units_and_nonsense():
    with pytest.raises(ValueError, match="ambiguous"):
        parse_rate("10mbps")
    with pytest.raises(ValueError, match="out of range"):
        parse_rate("10bit")
    with pytest.raises(ValueError, match="expected a rate"):
        parse_rate("fast")
    with pytest.raises(ValueError, match="out of range"):
        parse_loss("101%")


def test_update_merges_and_checks_jitter():
    a = update(None, {"delay": "20ms"})
    b = update(a, {"loss": "1%"})
    assert (b.delay, b.loss) == (0.02, 0.01)
    assert b.describe() == "delay 20ms loss 1%"
    assert update(b, {"delay": "0", "loss": "0"}).active is False
    with pytest.raises(ValueError, match="larger than the delay"):
        update(a, {"jitter": "30ms"})
    assert Impairment.from_json(b.to_json()) == b
    with pytest.raises(ValueError, match="out of range"):
        Impairment.from_json({"loss": 2})


def test_words():
    assert parse_words(["delay", "20ms", "loss", "1%"]) == {"delay": "20ms", "loss": "1%"}
    with pytest.raises(ValueError, match="KEY VALUE pairs"):
        parse_words(["delay"])
    with pytest.raises(ValueError, match="unknown impairment 'latency'"):
        parse_words(["latency", "1ms"])


# ------------------------------------------------------------ topology keys


def test_topology_link_keys():
    t = parse_topology(LINE.replace("      delay: 20ms\n",
                                    "      delay: 20ms\n      jitter: 1ms\n      loss: 1%\n"
                                    "      rate: 10mbit\n      queue: 50\n"))
    assert t.links[1].impair == Impairment(0.02, 0.001, 0.01, 10_000_000, 50)
    assert t.links[0].impair is None and t.links[2].impair is None
    assert t.links[1].impair.file_values() == {"delay": "20ms", "jitter": "1ms", "loss": "1%",
                                               "rate": "10mbit", "queue": 50}


@pytest.mark.parametrize("old,new,msg,line", [
    ("delay: 20ms", "delay: soon", "links[1].delay: expected a duration", 11),
    ("delay: 20ms", "rate: 10mbps", "links[1].rate: '10mbps' is ambiguous", 11),
    ("delay: 20ms", "loss: 200%", "links[1].loss: '200%' is out of range", 11),
    ("delay: 20ms", "queue: 0", "links[1].queue: expected a number of frames", 11),
    ("delay: 20ms", "delay: 1ms\n      jitter: 2ms", "links[1].jitter: jitter 2ms is larger", 12),
    ("    - endpoints: [p1:eth2, f1:eth1]\n", "    - endpoints: [p1:eth2, f1:eth1]\n"
     "    - endpoints: [f1:eth2, ce2:eth0]\n      loss: 1%\n", "one end of the link must be", 15),
])
def test_topology_link_key_errors(old, new, msg, line):
    text = LINE.replace(old, new)
    if "ce2" in new:
        text = text.replace("    f1: {kind: frr}\n", "    f1: {kind: frr}\n    ce2: {kind: host}\n")
    with pytest.raises(TopologyError) as ei:
        parse_topology(text, "bad.yaml")
    assert msg in str(ei.value), str(ei.value)
    assert ei.value.line == line, str(ei.value)


# ------------------------------------------------------------ scheduler


def _sched(**kw) -> Scheduler:
    return Scheduler(Impairment(**kw), random.Random(1))


def test_delay_holds_every_frame_for_the_delay():
    s = _sched(delay=0.02)
    for k in range(5):
        assert s.push(b"x" * 100, 1.0 + k * 0.001) is None
    assert s.next_due() == pytest.approx(1.02)
    assert s.pop_due(1.0199) == []
    assert len(s.pop_due(1.022)) == 3
    assert len(s.pop_due(2.0)) == 2 and s.next_due() is None


def test_jitter_never_reorders_and_stays_in_bounds():
    s = _sched(delay=0.01, jitter=0.005, queue=10_000)
    times = []
    for k in range(2000):
        now = k * 0.0001
        s.push(k.to_bytes(2, "big"), now)
        t = s.held[-1][0]
        assert now + 0.005 - 1e-12 <= t or t == times[-1]  # never below delay - jitter ...
        assert t <= now + 0.015 + 1e-12 or t == times[-1]  # ... nor above delay + jitter ...
        times.append(t)
    assert times == sorted(times)  # ... and never before the frame in front
    out = s.pop_due(10.0)
    assert [int.from_bytes(f, "big") for f in out] == list(range(2000))


def test_loss_is_the_share_asked_and_seeded():
    def run(seed: int) -> int:
        s = Scheduler(Impairment(loss=0.1), random.Random(seed))
        return sum(s.push(b"x", k * 1e-4) == LOSS for k in range(20000))
    lost = run(7)
    assert 0.09 < lost / 20000 < 0.11
    assert run(7) == lost  # the same seed loses the same frames


def test_rate_token_bucket_paces_to_the_rate():
    s = _sched(rate=10_000_000, queue=100_000)  # 1.25 MB/s
    for _ in range(1000):
        s.push(b"x" * FULL_FRAME, 0.0)  # a burst of 1,514,000 bytes at once
    last = s.held[-1][0]
    # the bucket starts full (2 frames), then one frame every 1514 / 1.25e6 s
    assert last == pytest.approx((1000 * FULL_FRAME - 2 * FULL_FRAME) / 1.25e6, rel=1e-6)
    times = [t for t, _ in s.held]
    assert times == sorted(times)


def test_rate_long_run_matches_and_idle_refills_only_the_burst():
    s = _sched(rate=1_000_000, queue=100_000)  # 125,000 B/s
    sent = 0
    for k in range(10000):  # offered 1,000 B every 1 ms = 8 Mbit/s: 8x the rate
        s.push(b"x" * 1000, k * 1e-3)
        sent += 1000
    span = s.held[-1][0]
    assert sent / span == pytest.approx(125_000, rel=0.01)
    s.pop_due(1e9)
    s.push(b"x" * 1000, 1e6)  # after a long idle time: the bucket holds its burst, no more
    assert s.held[-1][0] == 1e6


def test_queue_tail_drops_and_counts():
    s = _sched(delay=0.1, queue=3)
    res = [s.push(b"x", 0.0) for _ in range(5)]
    assert res == [None, None, None, QUEUE_FULL, QUEUE_FULL]
    assert s.counters[QUEUE_FULL] == 2
    s.pop_due(0.2)
    assert s.push(b"x", 0.2) is None


def test_new_params_keep_held_frames():
    s = _sched(delay=0.05)
    s.push(b"a", 0.0)
    s.set_params(Impairment(delay=0.001))
    s.push(b"b", 0.0)  # may not pass a: no reordering
    assert [t for t, _ in s.held] == [0.05, 0.05]
    assert s.clear() == [b"a", b"b"] and s.counters["impair-passed"] == 2
