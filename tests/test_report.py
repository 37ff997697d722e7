"""lsr report: one self-contained HTML page, checked as text and in headless Chromium."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.teach import net, report
from tests.conftest import TOPOLOGIES

DIAMOND = str(TOPOLOGIES / "diamond.yaml")
SECTIONS = ["topology", "links", "lfib", "bindings", "walk", "validation"]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "diamond.html"
    r = CliRunner().invoke(main, ["report", DIAMOND, "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_sections_and_content(page: Path) -> None:
    h = page.read_text()
    assert h.startswith("<!DOCTYPE html>")
    for s in SECTIONS:
        assert f'<section id="{s}">' in h
    assert "<svg" in h and "@media print" in h
    for r in ("pe1", "p1", "p2", "pe2"):
        assert f'id="lfib-{r}"' in h
    # FTN / ILM / bindings / walk / validation content
    assert ">push<" in h and ">pop<" in h and "FTN" in h and "ILM" in h
    assert "remote label" in h and "delivered" in h
    assert "invariant label-continuity" in h and 'class="status-pass"' in h
    assert 'class="status-fail"' not in h


def test_self_contained(page: Path) -> None:
    h = page.read_text()
    assert not re.search(r"https?://", h), re.search(r".{40}https?://.{40}", h)
    assert "<script" not in h.lower() and "<link" not in h.lower()
    assert not re.search(r"""\s(src|href)=["'](?!#)""", h)  # only in-page anchors
    assert "@import" not in h and "url(" not in h


def test_walk_hosts_and_down_link() -> None:
    n = net.from_file(DIAMOND, down=["pe1-p1"])
    h = report.build(n, "ce2", "ce1")
    assert "links down: pe1-p1" in h
    walk = h[h.index('<section id="walk">'):h.index('<section id="validation">')]
    assert "192.168.2.2" in walk and "delivered" in walk and "<td>p1</td>" not in walk


def test_lab_needs_a_lab() -> None:
    r = CliRunner().invoke(main, ["report", "--lab", "nosuchlab", "-o", "/dev/null"])
    assert r.exit_code != 0
    r = CliRunner().invoke(main, ["report", DIAMOND, "--lab", "x", "-o", "/dev/null"])
    assert r.exit_code == 2 and "not both" in r.output


# ---------------------------------------------------------------- headless Chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'profile'}",
         *args], capture_output=True, text=True, timeout=90)


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, raw scanlines) of a PNG; enough to tell blank from not."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return w, h, zlib.decompress(idat)


@needs_chromium
def test_chromium_screenshot_not_blank(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    p = _chromium(tmp_path, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
                  "--window-size=1280,2000", f"file://{page}")
    assert shot.exists(), p.stderr[-2000:]
    bad = [x for x in p.stderr.splitlines() if "Uncaught" in x or "ERROR:CONSOLE" in x]
    assert not bad, bad
    w, h, raw = _png_pixels(shot.read_bytes())
    assert (w, h) == (1280, 2000)
    # a blank page's (filtered) scanlines hold a handful of byte values (4 for a white
    # page); tables, text and the picture give many
    assert len(set(raw)) > 50


@needs_chromium
def test_chromium_dom_has_sections(page: Path, tmp_path: Path) -> None:
    p = _chromium(tmp_path, "--dump-dom", f"file://{page}")
    dom = p.stdout
    assert "<svg" in dom, p.stderr[-2000:]
    for s in SECTIONS:
        assert f'id="{s}"' in dom
    assert dom.count("<table") >= 2 + 4 * 2 + 4 + 2  # links, FTN+ILM, bindings, walk, checks


def test_lab_tables_through_the_lab_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """--lab reads lsr.lab.topology/lfib/ldp/status; fed here from the simulator."""
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.sim import simulate

    topo = load_topology(DIAMOND)
    sim, _ = simulate(topo)
    # a live lab names next hops by LSR ID in places: the library maps them to names
    monkeypatch.setattr(lab, "topology", lambda name: topo)
    monkeypatch.setattr(lab, "lfib", lambda name, routers=None: sim.lfib_json())
    monkeypatch.setattr(lab, "ldp", lambda name, r, what: sim.bindings_json(r))
    monkeypatch.setattr(lab, "status", lambda name: {"down_links": []})
    n = net.from_lab("t1")
    assert n.source == "lab t1" and set(n.lfibs) == {"pe1", "p1", "p2", "pe2"}
    h = report.build(n)
    assert "tables from: lab t1" in h and 'class="status-fail"' not in h
    r = CliRunner().invoke(main, ["draw", "--lab", "t1", "--lsp", "pe1:pe2"])
    assert r.exit_code == 0 and "1: push" in r.output
