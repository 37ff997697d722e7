"""Load topologies with a `bgp:` section whether or not the installed package metadata
declares its entry point yet, without leaving the section registered for other tests."""

from __future__ import annotations

from pathlib import Path

from bgp.config import validate
from lsr.core import topology as t


def load_bgp_topology(path: str | Path) -> t.Topology:
    if "bgp" in t.section_names():
        return t.load_topology(path)
    t.register_section("bgp", validate)
    try:
        return t.load_topology(path)
    finally:
        t.EXTRA_SECTIONS.pop("bgp", None)
