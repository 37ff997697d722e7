"""A short soak in CI (`lsr lab chaos`): random link failures through `lsr lab link` and
through `ip link` inside namespaces, router stops and starts; after each, every LFIB
equals the simulator's; at the end idle routers are idle, with no more descriptors or
memory than before. The long version (200 events on the backbone) is run by hand."""

from __future__ import annotations

import os

import pytest

from lsr import lab
from lsr.core.topology import parse_topology
from lsr.lab import chaos

from .conftest import TOPOLOGIES, needs_root

pytestmark = [needs_root, pytest.mark.netns, pytest.mark.slow]

NAME = f"q{os.getpid() % 100000}"


def test_short_soak_on_a_diamond_with_fast_timers():
    # Fast OSPF timers so a stopped router's adjacencies time out in seconds.
    text = (TOPOLOGIES / "diamond.yaml").read_text().replace(
        "  nodes:", "  defaults: {ospf: {hello_interval: 1, dead_interval: 3}}\n  nodes:", 1)
    lab.down(NAME)
    try:
        lab.up(parse_topology(text, "<chaos diamond>"), name=NAME, timeout=60)
        rep = chaos.run(NAME, events=10, seed=7, settle_timeout=60)
        kinds = {e["event"].split()[0] for e in rep["log"]}
        assert {"lab", "ip", "stop"} <= kinds, rep["log"]
        # customer ports fail too: by `lab link` and inside the host's own namespace
        assert any(e["event"].startswith("lab link ce1-pe1") for e in rep["log"]), rep["log"]
        assert any(" in ce1 " in e["event"] for e in rep["log"]), rep["log"]
        assert rep["ok"], rep["problems"]
        assert all(r["idle_cpu"] < chaos.IDLE_CPU_MAX for r in rep["routers"].values())
    finally:
        lab.down(NAME)
