"""`lsr lab converge`'s outage computation on synthetic probe timelines (no root)."""

from __future__ import annotations

import pytest

from lsr.lab.converge import _report, analyse

RATE = 1000.0
T0 = 100.0
LATENCY = 0.0005


def timeline(total: int, lost: set[int], latency: float = LATENCY) -> tuple[list[float], list[list[float]]]:
    """Probes sent every ms from T0; those not in `lost` arrive `latency` s later."""
    sent_at = [T0 + s / RATE for s in range(total)]
    return sent_at, [[s, t + latency] for s, t in enumerate(sent_at) if s not in lost]


def t_fail(seq: float) -> float:
    """The failure at the moment probe `seq` was sent."""
    return T0 + seq / RATE


def test_outage_and_recovery() -> None:
    sent_at, arr = timeline(100, set(range(40, 47)))
    a = analyse(sent_at, arr, t_fail(39.5))
    assert (a["received"], a["lost"], a["lost_before_failure"]) == (93, 7, 0)
    assert a["recovered"] and a["outage_at_least_ms"] is None
    assert a["last_before"]["seq"] == 39 and a["first_after"]["seq"] == 47
    assert a["outage_ms"] == pytest.approx(8.0, abs=0.01)  # arrival of 39 -> arrival of 47
    assert a["last_before"]["t_ms"] == pytest.approx(0.0, abs=0.01)  # 39 + 0.5 ms latency
    assert a["first_after"]["t_ms"] == pytest.approx(8.0, abs=0.01)


def test_no_loss() -> None:
    sent_at, arr = timeline(5, set())
    a = analyse(sent_at, arr, t_fail(2))
    assert (a["lost"], a["outage_ms"], a["recovered"], a["lost_before_failure"]) == (0, 0.0, True, 0)
    assert a["last_before"] is None and a["first_after"] is None


def test_not_recovered_in_the_window() -> None:
    # the issue: "lost 428 ... outage 0.0 ms" when the probes never came back
    sent_at, arr = timeline(1000, set(range(572, 1000)))
    a = analyse(sent_at, arr, t_fail(571.2))
    assert a["lost"] == 428 and not a["recovered"]
    assert a["outage_ms"] is None and a["first_after"] is None
    assert a["last_before"]["seq"] == 571
    # from the last arrival (571 + 0.5 ms) to the last probe sent (999)
    assert a["outage_at_least_ms"] == pytest.approx(427.5, abs=0.01)


def test_only_the_last_probe_lost_is_not_recovered() -> None:
    sent_at, arr = timeline(10, {9})
    a = analyse(sent_at, arr, t_fail(5))
    assert not a["recovered"] and a["outage_ms"] is None
    assert a["outage_at_least_ms"] == pytest.approx(0.5, abs=0.01)  # arrival of 8 -> send of 9


def test_loss_before_the_failure_is_reported_apart() -> None:
    # a few probes lost 148 ms before the failure, then the failure's outage
    sent_at, arr = timeline(1000, {352, 353, 354} | set(range(500, 520)))
    a = analyse(sent_at, arr, t_fail(499.5))
    assert (a["lost"], a["lost_before_failure"]) == (23, 3)
    assert a["first_lost_before_failure"]["seq"] == 352
    assert a["first_lost_before_failure"]["t_ms"] == pytest.approx(-147.5, abs=0.01)
    # the outage is the failure's gap only
    assert a["last_before"]["seq"] == 499 and a["first_after"]["seq"] == 520
    assert a["outage_ms"] == pytest.approx(21.0, abs=0.01)


def test_loss_that_began_before_the_failure_and_never_ended() -> None:
    # the run: loss started 148 ms before the failure, nothing came back
    sent_at, arr = timeline(1000, set(range(352, 1000)))
    a = analyse(sent_at, arr, t_fail(500))
    assert a["lost"] == 648 and a["lost_before_failure"] == 148
    assert a["first_lost_before_failure"]["t_ms"] == pytest.approx(-148.0, abs=0.01)
    assert not a["recovered"] and a["outage_ms"] is None
    assert a["last_before"]["seq"] == 351  # the gap began before the failure
    assert a["outage_at_least_ms"] == pytest.approx(647.5, abs=0.01)


def test_loss_only_before_the_failure_is_no_outage() -> None:
    sent_at, arr = timeline(100, {10, 11})
    a = analyse(sent_at, arr, t_fail(50))
    assert a["lost_before_failure"] == 2 and a["outage_ms"] == 0.0 and a["recovered"]


def test_two_gaps_after_the_failure_are_one_outage() -> None:
    # a brief recovery, then a second gap (e.g. traffic moved twice): the outage spans both
    sent_at, arr = timeline(200, set(range(50, 60)) | set(range(70, 75)))
    a = analyse(sent_at, arr, t_fail(49.5))
    assert a["lost"] == 15 and a["last_before"]["seq"] == 49 and a["first_after"]["seq"] == 75
    assert a["outage_ms"] == pytest.approx(26.0, abs=0.01)


def test_sender_behind_schedule() -> None:
    # a loaded sender fell behind and sent its first probes late, after the failure: their
    # loss is the failure's, whatever their schedule said
    # (by its schedule, T0 + seq ms, probes 0..11 would have been sent before the failure)
    sent_at = [T0 + 0.015 + s * 1e-5 for s in range(20)]
    arr = [[s, t + LATENCY] for s, t in enumerate(sent_at) if s >= 10]
    a = analyse(sent_at, arr, T0 + 0.012)
    assert a["lost_before_failure"] == 0 and a["lost"] == 10 and a["recovered"]
    assert a["last_before"] is None and a["first_after"]["seq"] == 10


def test_nothing_arrived_before_the_failure() -> None:
    sent_at, arr = timeline(20, set(range(0, 12)))
    a = analyse(sent_at, arr, t_fail(5))
    assert a["lost_before_failure"] == 5 and a["last_before"] is None
    # the gap is measured from the first probe sent
    assert a["outage_ms"] == pytest.approx(12.5, abs=0.01)


def test_arrivals_out_of_range_are_ignored() -> None:
    sent_at, arr = timeline(10, {4})
    a = analyse(sent_at, [*arr, [57, T0], [-1, T0]], t_fail(3))
    assert a["received"] == 9 and a["lost"] == 1 and a["outage_ms"] == pytest.approx(2.0)


def test_each_gap_is_listed() -> None:
    # traffic came back for 10 probes, then was lost again: two outages, one after the other
    sent_at, arr = timeline(200, set(range(50, 60)) | set(range(70, 75)))
    a = analyse(sent_at, arr, t_fail(49.5))
    assert [(g["first_lost"], g["last_lost"], g["lost"]) for g in a["outages"]] == [
        (50, 59, 10), (70, 74, 5)]
    assert [g["gap_ms"] for g in a["outages"]] == pytest.approx([11.0, 6.0], abs=0.01)
    assert a["outages"][1]["from_ms"] == pytest.approx(20.0, abs=0.01)  # arrival of 69


def test_gaps_one_outage_not_recovered_and_none() -> None:
    sent_at, arr = timeline(100, set(range(40, 47)))
    assert len(analyse(sent_at, arr, t_fail(39.5))["outages"]) == 1
    sent_at, arr = timeline(20, set(range(15, 20)))
    (g,) = analyse(sent_at, arr, t_fail(14.5))["outages"]
    assert g["to_ms"] is None and g["gap_ms"] is None and g["lost"] == 5
    sent_at, arr = timeline(20, {3})  # loss before the failure only: no outage
    assert analyse(sent_at, arr, t_fail(10))["outages"] == []


def with_ttl(arr: list[list[float]], ttl_of: dict[int, int], ttl: int = 60) -> list[list[float]]:
    """The capture's arrivals with each probe's IP TTL: `ttl`, or `ttl_of[seq]`."""
    return [[s, t, ttl_of.get(int(s), ttl)] for s, t in arr]


def test_a_new_path_without_loss_is_found_by_its_ttl() -> None:
    # the flaky run: the routers repaired the path before the next probe, nothing was lost,
    # so there was no gap to find the new path by; from probe 52 on, 2 hops fewer
    sent_at, arr = timeline(100, set())
    a = analyse(sent_at, with_ttl(arr, {s: 62 for s in range(52, 100)}), t_fail(49.5))
    assert a["lost"] == 0 and a["first_after"] is None
    assert a["new_path"] == {"seq": 52, "t_ms": pytest.approx(3.0, abs=0.01),
                             "ttl_before": 60, "ttl": 62}


def test_no_new_path_without_a_ttl_change() -> None:
    sent_at, arr = timeline(100, set(range(50, 55)))
    assert analyse(sent_at, with_ttl(arr, {}), t_fail(49.5))["new_path"] is None
    assert analyse(sent_at, arr, t_fail(49.5))["new_path"] is None  # no TTLs at all
    # a TTL that changed before the failure is not the failure's new path
    assert analyse(sent_at, with_ttl(arr, {s: 61 for s in range(10, 100)}),
                   t_fail(49.5))["new_path"] is None


def _events(sent_at: list[float], arrivals: list[list[float]], fail: float) -> dict[str, str]:
    """`lsr lab converge`'s timeline (event -> detail) for a synthetic probe run."""
    run = {"sent": {"t0": 0.0, "sent_at": sent_at, "sent": len(sent_at), "total": len(sent_at)},
           "rx": {"received": len(arrivals), "duplicates": 0, "drops": 0},
           "cap": {"arrivals": arrivals, "drops": 0}, "t_event": fail, "events": [], "marks": []}
    first = {"t_ms": 0.0, "router": None, "event": "link down", "detail": "p1-p2"}
    out = _report(None, run, first, 1000, "ce1", "ce2")
    return {e["event"]: e["detail"] for e in out["timeline"]}


def test_timeline_has_the_new_path_when_nothing_was_lost() -> None:
    sent_at, arr = timeline(100, set())
    ev = _events(sent_at, with_ttl(arr, {s: 62 for s in range(52, 100)}), t_fail(49.5))
    assert ev["first probe on the new path"] == "seq 52: TTL 60 -> 62 (2 hops fewer)"
    assert "first probe after the outage" not in ev


def test_timeline_new_path_and_outage() -> None:
    # loss, then the first probe after it on a longer path: one event
    sent_at, arr = timeline(100, set(range(50, 55)))
    ev = _events(sent_at, with_ttl(arr, {s: 59 for s in range(55, 100)}), t_fail(49.5))
    assert ev["first probe on the new path"] == "seq 55: TTL 60 -> 59 (1 hop more)"
    assert "first probe after the outage" not in ev
    # a path of the same length: the first probe after the gap is the new path's
    ev = _events(sent_at, with_ttl(arr, {}), t_fail(49.5))
    assert ev["first probe on the new path"] == "seq 55 (the first after the outage)"
    # traffic moved (shorter), then was lost again: both are shown
    sent_at, arr = timeline(100, set(range(60, 65)))
    ev = _events(sent_at, with_ttl(arr, {s: 62 for s in range(52, 100)}), t_fail(49.5))
    assert ev["first probe on the new path"].startswith("seq 52: ")
    assert ev["first probe after the outage"] == "seq 65"


def test_probes_round_a_micro_loop_are_not_the_new_path() -> None:
    # the CI run: one probe went round p1-pe1 while they converged (TTL 26 where the
    # paths give 60 and 62); the new path is the one the flow settled on, the loop is named
    sent_at, arr = timeline(100, {50})
    ttls = {51: 26, **{s: 62 for s in range(53, 100)}}
    a = analyse(sent_at, with_ttl(arr, ttls), t_fail(49.5))
    assert a["new_path"]["seq"] == 53 and (a["new_path"]["ttl_before"], a["new_path"]["ttl"]) \
        == (60, 62)
    assert a["looped"] == {"probes": 1, "first_seq": 51, "t_ms": pytest.approx(2.0, abs=0.01),
                           "lowest_ttl": 26, "ttl_floor": 60}
    assert "probes looped" in _events(sent_at, with_ttl(arr, ttls), t_fail(49.5))
    assert analyse(sent_at, with_ttl(arr, {s: 62 for s in range(52, 100)}),
                   t_fail(49.5))["looped"] is None
