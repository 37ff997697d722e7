"""`lsr demo` as root checks the system tools of a real lab up front: installs the
missing ones with apt-get, or says in one line what to install. Nothing is really
installed or removed: PATH is a temp dir of fake commands (and a fake apt-get)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import lsr.cli.demo as demo_cli
from lsr.cli import main
from lsr.lab import systools

from .conftest import ROOT


def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, commands: list[str],
              apt: str | None = None) -> Path:
    """PATH = a dir holding `commands` (each does nothing) and, if given, an apt-get
    whose body is the Python `apt` (argv in `args`, the dir in `bin`)."""
    d = tmp_path / "bin"
    d.mkdir()
    for c in commands:
        _exe(d / c, "")
    if apt is not None:
        _exe(d / "apt-get", f"import sys\nfrom pathlib import Path\nargs = sys.argv[1:]\n"
             f"bin = Path({str(d)!r})\n{apt}\n")
    monkeypatch.setenv("PATH", str(d))
    return d


def _exe(p: Path, python: str) -> None:
    p.write_text(f"#!{sys.executable}\n{python}\n")
    p.chmod(0o755)


@pytest.fixture()
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)

    def no_lab(*a: object) -> None:
        raise AssertionError("the lab must not start")
    monkeypatch.setattr(demo_cli, "_lab_demo", no_lab)


def test_table_covers_the_demo() -> None:
    assert set(systools.DEMO) <= set(systools.PACKAGES)
    assert systools.packages(["swanctl", "ip", "swanctl"])[0] == "strongswan-swanctl"
    assert systools.packages(["ip", "ip"]) == ["iproute2"]


def test_missing_follows_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_path(tmp_path, monkeypatch, ["ip", "nc"])
    assert systools.missing(["ip", "ethtool", "nc", "ping"]) == ["ethtool", "ping"]


def test_one_line_without_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              as_root: None) -> None:
    fake_path(tmp_path, monkeypatch, ["ip", "ethtool"])
    r = CliRunner().invoke(main, ["demo"])
    assert r.exit_code == 2, r.output
    assert r.output == ("lsr: the demo needs sysctl, ping, traceroute, nc: apt-get install "
                        "procps iputils-ping traceroute netcat-openbsd\n")


def test_installs_with_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           as_root: None) -> None:
    # This apt-get logs its arguments and "installs" a package by creating its commands.
    d = fake_path(tmp_path, monkeypatch, ["ip", "ethtool", "sysctl", "ping"], apt=(
        "log = bin.parent / 'apt.log'\n"
        "log.write_text((log.read_text() if log.exists() else '') + ' '.join(args) + '\\n')\n"
        "made = {'traceroute': 'traceroute', 'netcat-openbsd': 'nc'}\n"
        "for a in args:\n"
        "    if a in made:\n"
        "        (bin / made[a]).write_text('')\n"
        "        (bin / made[a]).chmod(0o755)\n"))
    demo_cli.check_system_tools()
    assert (d.parent / "apt.log").read_text() == (
        "update -qq\ninstall -y -qq traceroute netcat-openbsd\n")


def test_apt_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_root: None) -> None:
    fake_path(tmp_path, monkeypatch, ["ip", "ethtool", "sysctl", "ping", "traceroute"],
              apt="sys.exit(100)")
    r = CliRunner().invoke(main, ["demo"])
    assert r.exit_code == 2, r.output
    assert r.output.splitlines()[-1] == "lsr: the demo needs nc: apt-get install netcat-openbsd"


def test_nothing_missing_runs_no_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = fake_path(tmp_path, monkeypatch, list(systools.DEMO),
                  apt="(bin.parent / 'apt.log').write_text('ran')")
    demo_cli.check_system_tools()
    assert not (d.parent / "apt.log").exists()


def test_script_prints_the_table() -> None:
    """scripts/test.sh reads the table by running the module as a plain script."""
    out = subprocess.run([sys.executable, "-P", "lsr/lab/systools.py"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()]
    assert {r[0]: tuple(r[1:]) for r in rows} == systools.PACKAGES
