"""RFC 6720 GTSM on live labs: sessions come up with TTL-255 sockets, ours and FRR's."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import lsr.lab as lab
from lsr.core.topology import parse_topology
from tests.conftest import TOPOLOGIES, needs_root

pytestmark = [pytest.mark.netns, needs_root]
DATA = Path(__file__).parent / "data"


def _with_gtsm(text: str) -> str:
    return text.replace("topology:\n", "topology:\n  defaults: {ldp: {gtsm: true}}\n", 1)


def _check(name: str, text: str, router: str) -> None:
    try:
        lab.up(parse_topology(text, f"<gtsm {name}>"), name=name, timeout=40)
        nbrs = lab.ldp(name, router, "neighbors")
        assert nbrs and all(n["state"] == "OPERATIONAL" and n["gtsm"] for n in nbrs), nbrs
        r = lab.Lab(name, lab.topology(name), Path()).run(
            "ce1", ["ping", "-c", "2", "-i", "0.2", "-W", "1", "192.168.2.2"])
        assert r.returncode == 0, r.stdout
    finally:
        lab.down(name)


def test_gtsm_between_our_routers() -> None:
    _check(f"g{os.getpid() % 10000}", _with_gtsm((TOPOLOGIES / "line3.yaml").read_text()), "p1")


@pytest.mark.skipif(not Path("/usr/lib/frr/ldpd").exists() or shutil.which("vtysh") is None,
                    reason="FRR not installed")
def test_gtsm_with_frr() -> None:
    text = (DATA / "frr-line.yaml").read_text().replace(
        "keepalive_time: 6}", "keepalive_time: 6, gtsm: true}")
    assert "gtsm: true" in text
    _check(f"h{os.getpid() % 10000}", text, "pe1")
