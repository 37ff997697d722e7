"""lsr report: one self-contained HTML page, checked as text and in headless Chromium."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.teach import net, report
from tests.conftest import TOPOLOGIES

DIAMOND = str(TOPOLOGIES / "diamond.yaml")
BACKBONE = str(TOPOLOGIES / "backbone.yaml")
SECTIONS = ["walk", "topology", "lfib", "validation", "links", "appendix"]


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
    # a small topology keeps every table: p2 is off the walk, in the open appendix
    assert "<details open>" in h and 'class="print-omit"' not in h
    # FTN / ILM / bindings / walk / validation content
    assert ">push<" in h and ">pop<" in h and "FTN" in h and "ILM" in h
    assert "remote labels" in h and "delivered" in h
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
    walk = h[h.index('<section id="walk">'):h.index('<section id="topology">')]
    assert "192.168.2.2" in walk and "delivered" in walk and "<td>p1</td>" not in walk
    assert "given with --from/--to" in walk


def test_lab_needs_a_lab() -> None:
    r = CliRunner().invoke(main, ["report", "--lab", "nosuchlab", "-o", "/dev/null"])
    assert r.exit_code != 0
    r = CliRunner().invoke(main, ["report", DIAMOND, "--lab", "x", "-o", "/dev/null"])
    assert r.exit_code == 2 and "not both" in r.output


# ---------------------------------------------------------------- a big topology


@pytest.fixture(scope="module")
def backbone() -> str:
    return report.build(net.from_file(BACKBONE), now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


def _section(h: str, ident: str) -> str:
    start = h.index(f'<section id="{ident}">')
    return h[start:h.index("</section>", start)]


def test_default_walk_is_the_longest() -> None:
    """The default packet crosses the most routers (ties: most ECMP branches, file order)."""
    from forwarding.tables import build_all
    from lsr.teach.packet import pick_walk

    for path, pair, routers in ((BACKBONE, ("ce-lon", "ce-sto"), 6),
                                (DIAMOND, ("ce1", "ce2"), 3),
                                (str(TOPOLOGIES / "line3.yaml"), ("ce1", "ce2"), 3)):
        n = net.from_file(path)
        c = pick_walk(n, build_all(n.topo, n.igp.ribs(), n.lfibs))
        assert (c.src, c.dst) == pair and f"{routers} routers" in c.why, (path, c)
    n = net.from_file(DIAMOND)
    assert "2 ECMP branches" in pick_walk(n, build_all(n.topo, n.igp.ribs(), n.lfibs)).why
    # only --to given: the longest walk to it
    n = net.from_file(BACKBONE)
    c = pick_walk(n, build_all(n.topo, n.igp.ribs(), n.lfibs), None, "ce-bud")
    assert c.dst == "ce-bud" and c.src != "ce-bud" and "from a host to ce-bud" in c.why


def test_header_says_when_what_and_which_file(backbone: str) -> None:
    import hashlib

    import lsr

    head = backbone[:backbone.index("</header>")]
    digest = hashlib.sha256(Path(BACKBONE).read_bytes()).hexdigest()[:16]
    assert "generated 2026-01-02 03:04:05 UTC" in head and f"lsr {lsr.__version__}" in head
    assert digest in head and "backbone.yaml" in head


def test_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert report.generation_time().year == 1970


def test_backbone_rows_of_the_walk_first_and_highlighted(backbone: str) -> None:
    walk = _section(backbone, "walk")
    # the packet's rows: one per hop, linked to the highlighted row in its router's tables
    for hop, row in (("lon", "ftn-lon-192-168-2-0-24"), ("ams", "ilm-ams-3046"),
                     ("cph", "ilm-cph-12046")):
        assert f'href="#{row}"' in walk, hop
        assert f'<tr class="used" id="{row}">' in backbone
    assert "pops: egress sto advertised implicit-null (RFC 3032 §2.1, PHP)" in walk
    # per-router tables only for the 6 routers on the walk; the others in the appendix
    lfib = _section(backbone, "lfib")
    assert lfib.count('class="router"') == 6
    assert all(f'id="lfib-{r}"' in lfib for r in ("lon", "ams", "fra", "ham", "cph", "sto"))
    assert lfib.count('class="used"') >= 5 + 5  # an FTN/ILM row and a LIB row per hop
    appendix = _section(backbone, "appendix")
    assert '<details class="print-omit">' in appendix and "Not printed" in appendix
    assert appendix.count('class="router"') == 14 and 'class="used"' not in appendix
    # the picture is the compact drawing: costs on links, no subnets
    topo = _section(backbone, "topology")
    assert "link: IGP cost" in topo and "10.0.0.0/30" not in topo
    # the printed part holds far fewer rows than the page
    printed = backbone[:backbone.index('<section id="appendix">')]
    assert printed.count("<tr") < 1200 < backbone.count("<tr")


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
    assert dom.count("<table") >= 2 + 4 * 3 + 2 + 1  # links, FTN+ILM+LIB, walk+rows, checks


def _pdf_pages(pdf: Path) -> int:
    """Page objects of a PDF ('/Type /Page', not '/Pages')."""
    return len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))


def _word_heights(pdf: Path, page: int) -> dict[str, float]:
    """Word -> smallest box height (pt) on a page, from poppler's pdftotext -bbox."""
    out = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), "-bbox", str(pdf), "-"],
                         capture_output=True, text=True, timeout=60).stdout
    heights: dict[str, float] = {}
    for m in re.finditer(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">([^<]+)</word>', out):
        h = float(m.group(2)) - float(m.group(1))
        heights[m.group(3)] = min(h, heights.get(m.group(3), h))
    return heights


@needs_chromium
def test_backbone_prints_in_at_most_30_pages_with_a_readable_picture(backbone: str,
                                                                     tmp_path: Path) -> None:
    """Chromium print-to-PDF (A4 landscape): <= 30 pages (272 before), and on the
    picture's page router names are as big as the tables' text (>= 8 pt boxes)."""
    page = tmp_path / "backbone.html"
    page.write_text(backbone, encoding="utf-8")
    pdf = tmp_path / "backbone.pdf"
    p = _chromium(tmp_path, f"--print-to-pdf={pdf}", f"file://{page}")
    assert pdf.exists(), p.stderr[-2000:]
    pages = _pdf_pages(pdf)
    assert 3 <= pages <= 30, pages
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed: picture size not measured")
    for k in range(1, 4):  # the picture has a page of its own, right after "This packet"
        words = _word_heights(pdf, k)
        if "IGP" in words and "ham" in words:
            break
    else:
        pytest.fail("no page with the picture")
    names = [words[r] for r in ("lon", "ams", "fra", "ham", "cph", "sto", "bud") if r in words]
    assert len(names) >= 5 and min(names) >= 8.0, words
    loopbacks = [h for w, h in words.items() if w.startswith("10.255.0.")]
    assert loopbacks and min(loopbacks) >= 6.0, loopbacks


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


def test_rows_of_an_icmp_error_walk() -> None:
    """unequal, TTL 2: p1 drops, its error goes on along the LSP; both legs' rows."""
    from forwarding.tables import build_all
    from forwarding.walk import walk
    from lsr.teach.packet import used_rows

    n = net.from_file(str(TOPOLOGIES / "unequal.yaml"))
    w = walk(n.topo, build_all(n.topo, n.igp.ribs(), n.lfibs), "ce1", "ce2", "icmp", 2)
    used = used_rows(n, w)
    packet = [r for r in used.rows if r.leg == "packet"]
    icmp = [r for r in used.rows if r.leg == "icmp"]
    assert [r.router for r in packet] == ["pe1", "p1"] and "dropped: ttl-expired" in packet[1].why
    assert [r.router for r in icmp] == ["p1", "p2", "pe2", "p2", "p1", "pe1"]
    assert "sent on along the LSP" in icmp[0].why
    assert icmp[1].why.startswith("pops: egress pe2 advertised implicit-null")
    assert used.routers() == ["pe1", "p1"]


SIXPE = str(TOPOLOGIES / "6pe.yaml")
SIXVPE = str(TOPOLOGIES / "6vpe.yaml")
FIXED = datetime(2026, 1, 1, tzinfo=UTC)


def _text(h: str, start: str, end: str) -> str:
    import html as html_mod

    part = h[h.index(start):h.index(end)]
    return re.sub(r"\s+", " ", html_mod.unescape(re.sub(r"<[^>]+>", " ", part)))


def test_6pe_default_walk_ipv4_then_the_same_hosts_over_ipv6() -> None:
    """6PE (RFC 4798): the default walk is IPv4; the same two hosts follow over IPv6 with
    both labels, the 6PE section lists every PE's IPv6 routes and labels with the rows the
    IPv6 walk used highlighted, and the validation has the 6PE invariants."""
    n = net.from_file(SIXPE)
    h = report.build(n, now=FIXED)
    assert '<section id="ipv6">' in h and 'id="walk6"' in h
    walk = _text(h, 'id="walk"', 'id="topology"')
    assert "An ICMP echo from ce1 (192.168.1.1)" in walk
    assert "ICMPv6 echo from 2001:db8:1::1 to 2001:db8:2::2" in walk
    assert "push 2003 4000" in walk and "swap 3003 4000" in walk
    assert "6PE route 2001:db8:2::/64 push 2003 4000 via p1 BGP: pe2 bound 4000" in walk
    assert "6PE label 4000 pop, IPv6 lookup (2001:db8:2::/64): to ce2" in walk
    assert 'class="used" id="6pe-pe1-2001-db8-2---64"' in h
    assert 'class="used" id="6pelabel-pe2-4000"' in h
    six = _text(h, '<section id="ipv6">', '<section id="validation">')
    assert "2001:db8:1::/64 pe1 ::ffff:10.255.0.1 2 (IPv6 exp-null) push 3001 2" in six
    val = _text(h, '<section id="validation">', '<section id="links">')
    assert "invariant 6pe-routes pass" in val and "invariant 6pe-reachability pass" in val


def test_6pe_report_ipv6_walk_and_named_failure() -> None:
    r = CliRunner().invoke(main, ["report", SIXPE, "-6", "-o", "/dev/null"])
    assert r.exit_code == 0, r.output
    n = net.from_file(SIXPE, ["p1-p2"])
    h = report.build(n, "ce1", "ce2", family=6, now=FIXED)
    walk = _text(h, 'id="walk"', 'id="topology"')
    assert "ICMPv6 echo from ce1 (2001:db8:1::1)" in walk and "dropped" in walk
    val = _text(h, '<section id="validation">', '<section id="links">')
    assert ("invariant 6pe-routes fail pe1 2001:db8:2::/64: no BGP route: pe2's loopback "
            "10.255.0.4 is unreachable (no IGP route), so the BGP session pe1-pe2 is down") in val
    assert ("invariant 6pe-reachability fail ce1 -> ce2 (IPv6, 2001:db8:2::2): dropped at pe1 "
            "(no-route)") in val


def test_6vpe_vrf_ipv6_rows_highlighted() -> None:
    """6VPE (RFC 4659): an IPv6 walk given by address; its VRF route and VPN label rows are
    highlighted in the VRF section."""
    n = net.from_file(SIXVPE)
    h = report.build(n, "red1", "2001:db8:1:2::1", now=FIXED)
    walk = _text(h, 'id="walk"', 'id="topology"')
    assert "VRF route 2001:db8:1:2::/64 push 2002 4102 via p1" in walk
    assert 'class="used" id="vrf-pe1-red-2001-db8-1-2---64"' in h
    assert 'class="used" id="vpn-pe2-4102"' in h
    assert 'class="used" id="vrf-pe2-red-2001-db8-1-2---64"' in h  # the egress's lookup
    assert "vrf-pe1-blue" not in h  # blue has the same prefix: not used
