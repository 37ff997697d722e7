"""The simulator's results are byte-identical to the code before its efficiency work.

`tests/data/sim-fingerprint.json` was made by `python -m tests.simprint --write` (the
commit it names): for each scenario and step, the hashes of every byte on every wire
with its virtual time, of every LFIB diff and OSPF RIB handed out, of the LFIBs, LIBs,
RIBs and LDP counters, and the message and OSPF counters in clear. Any change to what
the simulator computes shows up here as a differing step.

It was first made on the code before the efficiency work, and made again when OSPF
flood pacing (RFC 2328 §13.3 grouped Updates, §13.5 delayed acks) deliberately changed
the OSPF packets and their timing, and once more when LSA ages stopped losing a second
to float rounding (`ospf.lsdb.Entry.age`: the age field of some flooded LSAs).
`tests/data/sim-tables-before.json` keeps the first fingerprint's converged tables (LFIBs, LIBs, OSPF RIBs at every step): those are the
same today, whatever the wire carried to reach them.
"""

from __future__ import annotations

import json

import pytest

from .simprint import DATA, SCENARIOS, fingerprint

EXPECTED = json.loads(DATA.read_text())["scenarios"]
TABLES = json.loads((DATA.parent / "sim-tables-before.json").read_text())["scenarios"]
SLOW = {"random-40/failures", "random-100/failures", "isp-80/failures"}
# Scenarios run again with the event queue compacted at 32 entries (the simulator drops
# stale timer entries past 65,536 of them): what is dropped changes nothing either.
COMPACTED = ["diamond/ospf", "random-40/failures", "random-30/stuck", "random-30/stuck-limit",
             "isp-80/failures"]


def _check(name: str, compact: int | None) -> None:
    got = fingerprint(name, compact)
    for want in (TABLES[name], EXPECTED[name]):  # the tables first: the stronger claim
        _compare(name, got, want)


def _compare(name: str, got: list[dict], want: list[dict]) -> None:
    for g, w in zip(got, want, strict=True):
        assert {k: g.get(k) for k in w} == w, f"{name} step {w['step']}: " + ", ".join(
            f"{k}: {g.get(k)} != {v}" for k, v in w.items() if g.get(k) != v)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else [])
                                  for n in SCENARIOS if n in EXPECTED])
# (topologies bundled after the fingerprint was taken, e.g. l3vpn, 6pe: their goldens pin them)
def test_same_as_before(name: str) -> None:
    _check(name, None)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else [])
                                  for n in COMPACTED])
def test_same_with_a_compacted_queue(name: str) -> None:
    _check(name, 32)
