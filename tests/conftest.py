"""Shared fixtures and markers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES = ROOT / "topologies"
BUNDLED = sorted(TOPOLOGIES.glob("*.yaml"))


def is_root() -> bool:
    return os.geteuid() == 0


needs_root = pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")


def needs_tool(name: str):
    return pytest.mark.skipif(shutil.which(name) is None, reason=f"{name} not installed")
