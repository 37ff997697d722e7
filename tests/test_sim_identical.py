"""The simulator's results are byte-identical to the code before its efficiency work.

`tests/data/sim-fingerprint.json` was made by `python -m tests.simprint --write` on the
code before the work (the commit it names): for each scenario and step, the hashes of
every byte on every wire with its virtual time, of every LFIB diff and OSPF RIB handed
out, of the LFIBs, LIBs, RIBs and LDP counters, and the message and OSPF counters in
clear. Any change to what the simulator computes shows up here as a differing step.
"""

from __future__ import annotations

import json

import pytest

from .simprint import DATA, SCENARIOS, fingerprint

EXPECTED = json.loads(DATA.read_text())["scenarios"]
SLOW = {"random-40/failures", "random-100/failures", "isp-80/failures"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else [])
                                  for n in SCENARIOS])
def test_same_as_before(name: str) -> None:
    got = fingerprint(name)
    want = EXPECTED[name]
    for g, w in zip(got, want, strict=True):
        assert g == w, f"{name} step {w['step']}: " + ", ".join(
            f"{k}: {g.get(k)} != {v}" for k, v in w.items() if g.get(k) != v)
