"""A shared machine on real labs (root only): two users (`SUDO_USER`, as sudo sets it) and
one lab name; `lsr demo --name`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TOPOLOGIES, needs_root

pytestmark = [pytest.mark.netns, needs_root]

PREFIX = os.environ.get("LSR_TEST_LAB_PREFIX", "o")
UNIQ = os.getpid() % 10000


def lsr(user: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUDO_USER": user, "SUDO_UID": "4242" if user == "alice" else "4343"}
    return subprocess.run([sys.executable, "-c", "from lsr.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=180, env=env)


def test_two_users_one_lab_name() -> None:
    name = f"{PREFIX}o{UNIQ}"
    try:
        r = lsr("alice", "lab", "up", str(TOPOLOGIES / "line3.yaml"), "--name", name)
        assert r.returncode == 0, r.stderr
        (entry,) = [x for x in json.loads(lsr("bob", "lab", "list", "--json").stdout)["labs"]
                    if x["name"] == name]
        assert (entry["owner"], entry["uid"], entry["state"], entry["routers"]) == (
            "alice", 4242, "up", 3)
        assert 0 < entry["uptime"] < 600
        st = json.loads(lsr("bob", "lab", "status", name, "--json").stdout)
        assert st["owner"] == "alice" and abs(st["started"] - (time.time() - entry["uptime"])) < 5
        assert "alice's, up since " in lsr("bob", "lab", "status", name).stdout
        table = lsr("bob", "lab", "list").stdout
        assert any(name in ln and "alice" in ln for ln in table.splitlines()), table
        # bob wants the same name: told whose it is, never to take it down
        r = lsr("bob", "lab", "up", str(TOPOLOGIES / "line3.yaml"), "--name", name)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
        assert f"lab '{name}' is already up (alice's, since " in r.stderr
        assert "lab down" not in r.stderr and "--name" in r.stderr
        # ... nor can he by mistake
        r = lsr("bob", "lab", "down", name)
        assert r.returncode == 2 and r.stderr.startswith(f"lsr: lab '{name}' belongs to alice")
        assert Path(f"/run/netns/lsr-{name}.p1").exists()
        r = lsr("bob", "lab", "down", name, "--force")
        assert r.returncode == 0 and r.stdout == f"lab {name} down\n", r.stderr
        assert not Path(f"/run/netns/lsr-{name}.p1").exists()
    finally:
        lsr("alice", "lab", "down", name)


def test_demo_name() -> None:
    name = f"{PREFIX}d{UNIQ}"
    try:
        r = lsr("alice", "demo", "-t", "line3", "--name", name)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"lab {name}: line3" in r.stdout and f"lab {name} torn down" in r.stdout
        assert "3 received" in r.stdout
        assert not Path(f"/run/netns/lsr-{name}.p1").exists()
    finally:
        lsr("alice", "lab", "down", name)
