"""`lsr lab web` on a real lab (root): the command's URL and Ctrl-C, the JSON endpoints
against the CLI's JSON, rates under traffic, read-only refusal, and the page in a real
headless browser (Playwright driving Debian's Chromium; skipped when either is missing or
the browser cannot start).

A screenshot of the page is written to the test's temp dir (its path is printed; with
LSR_WEB_SHOTS=DIR it is copied there too)."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, TOPOLOGIES, is_root
from tests.wait import wait_for

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology

NAME = f"hw{os.getpid() % 10000}"


class Web:
    """`lsr lab web NAME ...` as a subprocess, and requests to it."""

    def __init__(self, name: str, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-c", "from lsr.cli import main; main()",
                                      "lab", "web", name, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        line = self._line(30)
        assert " on http://127.0.0.1:" in line, line
        self.url = line.split(" on ", 1)[1].split()[0]
        self.base, self.token = self.url.split("/?token=")

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            self.proc.kill()
            raise AssertionError(f"lsr lab web printed nothing in {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"lsr lab web exited: {self.proc.wait()} "
                                 f"{self.proc.stderr.read() if self.proc.stderr else ''}")
        return line

    def get(self, path: str) -> Any:
        req = urllib.request.Request(self.base + path, headers={"X-Lsr-Token": self.token})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict) -> tuple[int, Any]:
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(),
                                     headers={"X-Lsr-Token": self.token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def stop(self) -> tuple[int, str, str]:
        """Ctrl-C; (exit status, the rest of stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out, err


@pytest.fixture(scope="module")
def diamond() -> Iterator[Any]:
    try:
        yield lab.up(load_topology(TOPOLOGIES / "diamond.yaml"), name=NAME, timeout=60)
    finally:
        lab.down(NAME)


@pytest.fixture(scope="module")
def web(diamond) -> Iterator[Web]:
    w = Web(diamond.name, "--allow-changes", "--interval", "0.5")
    try:
        yield w
    finally:
        w.stop()


def _link_up(name: str, a: str, b: str) -> None:
    if lab.status(name)["down_links"]:
        lab.link(name, a, b, True)
        lab.wait_converged(name)


# ---------------------------------------------------------------- HTTP


def test_topology_and_state_show_every_node(web, diamond):
    topo = web.get("/api/topology")
    assert {n["name"] for n in topo["nodes"]} == set(diamond.topo.nodes)
    assert [ln["name"] for ln in topo["links"]] == ["-".join(ln.nodes) for ln in diamond.topo.links]
    assert topo["allow_changes"] is True
    assert all(0 <= n["x"] <= topo["width"] and 0 <= n["y"] <= topo["height"]
               for n in topo["nodes"])
    st = web.get("/api/state")
    assert set(st["routers"]) == {r.name for r in diamond.topo.routers}
    status = lab.status(diamond.name)
    for r, info in st["routers"].items():
        assert info["alive"] and info["error"] is None
        assert info["sessions_up"] == len(status["routers"][r]["sessions"]) == 2
        assert info["ospf_full"] == status["routers"][r]["ospf_full"]
    assert all(ln["up"] for ln in st["links"])
    assert st["events"][0]["text"] == "watching: 4/4 routers running, links down: none"


def test_router_tables_are_the_cli_json(web, diamond):
    d = web.get("/api/router?name=p1")
    assert d["errors"] == {}
    assert d["lfib"] == lab.lfib(diamond.name, ["p1"])["routers"]["p1"]
    assert d["bindings"] == lab.ldp(diamond.name, "p1", "bindings")["bindings"]
    assert {n["neighbor"] for n in d["ldp_neighbors"]} == {"pe1", "pe2"}
    assert {(n["neighbor"], n["state"]) for n in d["ospf_neighbors"]} == {("pe1", "Full"),
                                                                          ("pe2", "Full")}


def test_lsp_between_hosts_walks_both_ecmp_branches(web, diamond):
    d = web.get("/api/lsp?from=ce1&to=ce2")
    assert (d["ingress"], d["fec"], d["problems"]) == ("pe1", "192.168.2.0/24", [])
    lf = lab.lfib(diamond.name)["routers"]
    paths = set()
    for b in d["branches"]:
        push, pop = b["hops"]
        assert push["router"] == "pe1" and push["op"] == "push"
        ftn = next(e for e in lf["pe1"]["ftn"] if e["fec"] == "192.168.2.0/24")
        assert push["out_labels"] in [nh["out_labels"] for nh in ftn["nexthops"]]
        assert pop == {**pop, "router": push["neighbor"], "op": "pop",
                       "in_label": push["out_labels"][0], "neighbor": "pe2"}
        assert b["egress"] == {"router": "pe2", "text": "IP lookup"}
        paths.add(push["neighbor"])
    assert paths == {"p1", "p2"}


def test_lsp_traceroute_on_request(web):
    d = web.get("/api/lsp?from=pe1&to=pe2&traceroute=1")
    tr = d["traceroute"]
    assert tr["result"] == "ok" and tr["backend"] == "lab"
    assert {tuple(p["routers"]) for p in tr["paths"]} == {("p1", "pe2"), ("p2", "pe2")}


def test_rates_follow_traffic(web, diamond):
    ping = subprocess.Popen(["ip", "netns", "exec", f"lsr-{diamond.name}.ce1", "ping", "-q",
                             "-i", "0.01", "-c", "1000", "192.168.2.2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def rate() -> list[float] | None:
            ln = web.get("/api/state")["links"][0]  # ce1-pe1
            return ln["pps"] if ln["pps"] and min(ln["pps"]) >= 50 else None
        pps = wait_for(rate, 10, "ce1-pe1 to carry >= 50 packets/s each way (100 pings/s)")
        assert max(pps) < 200, pps
    finally:
        ping.kill()
        ping.wait()


def test_read_only_refuses_changes(diamond):
    w = Web(diamond.name)
    try:
        st, out = w.post("/api/link", {"a": "pe1", "b": "p1", "state": "down"})
        assert st == 403 and "read-only" in out["error"]
        assert w.get("/api/topology")["allow_changes"] is False
        assert lab.status(diamond.name)["down_links"] == []
    finally:
        rc, out, err = w.stop()
    assert rc == 0 and out.strip() == "lsr lab web: stopped" and err == "", (rc, out, err)


def test_link_change_through_the_api(web, diamond):
    try:
        assert web.post("/api/link", {"a": "pe1", "b": "nope", "state": "down"})[0] == 400
        st, out = web.post("/api/link", {"a": "p2", "b": "pe2", "state": "down"})
        assert (st, out) == (200, {"link": "p2-pe2", "state": "down"})
        idx = next(ln.index for ln in diamond.topo.links if ln.nodes == ("p2", "pe2"))

        def seen() -> bool:
            st = web.get("/api/state")
            texts = [e["text"] for e in st["events"]]
            return "link p2-pe2 down" in texts and not st["links"][idx]["up"]
        wait_for(seen, 10, "the link down in the state and the timeline")
        lsp = wait_for(lambda: (d := web.get("/api/lsp?from=ce1&to=ce2")) and
                       len(d["branches"]) == 1 and d, 20, "the LSP to leave p2")
        assert [h["router"] for h in lsp["branches"][0]["hops"]] == ["pe1", "p1"]
        events = [e["text"] for e in web.get("/api/state")["events"]]
        assert "link p2-pe2 down: asked from the page" in events
        assert any(t.startswith("pe1: LFIB") for t in events), events
    finally:
        _link_up(diamond.name, "p2", "pe2")


def test_router_stop_and_start(web, diamond):
    """A stopped runtime: the router shown dead, one timeline event; the rates of its host
    link still read (from the host's namespace, `ip -s link`); started again: running."""
    from lsr.lab.control import node_start, node_stop

    node_stop(diamond.name, "pe1")
    try:
        def stopped() -> dict | None:
            st = web.get("/api/state")
            return st if not st["routers"]["pe1"]["alive"] else None
        st = wait_for(stopped, 10, "pe1 shown stopped")
        texts = [e["text"] for e in st["events"]]
        assert "pe1: runtime stopped" in texts
        assert not any(t.startswith("pe1: LDP session") for t in texts[texts.index(
            "pe1: runtime stopped"):]), texts  # its own sessions are not reported one by one
        wait_for(lambda: web.get("/api/state")["links"][0]["pps"] is not None, 10,
                 "the ce1-pe1 rates read at ce1 while pe1 is stopped")
        errors = web.get("/api/router?name=pe1")["errors"]  # each table named, not a 500
        assert set(errors) == {"lfib", "bindings", "ldp_neighbors", "ospf_neighbors"}, errors
        assert "no running router 'pe1'" in errors["lfib"], errors
    finally:
        node_start(diamond.name, "pe1")
    wait_for(lambda: "pe1: runtime running" in [e["text"] for e in web.get("/api/state")["events"]],
             10, "pe1 shown running again")


# ---------------------------------------------------------------- the browser


def _chromium() -> str | None:
    return shutil.which("chromium") or next(
        (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p)), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed "
                                   "(pip install -e '.[browser]')")
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    pw = sync_api.sync_playwright().start()
    try:
        try:
            b = pw.chromium.launch(executable_path=exe, headless=True)
        except Exception as e:  # no display libraries, sandbox refused, ...: skip, say why
            pytest.skip(f"chromium does not start under playwright: {str(e).splitlines()[0]}")
        yield b
        b.close()
    finally:
        pw.stop()


@pytest.fixture()
def page(browser, web) -> Iterator[Any]:
    pg = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(web.url)
    yield pg
    pg.close()
    assert errors == [], errors


def _shot(page, tmp_path: Path, name: str) -> Path:
    p = tmp_path / name
    page.screenshot(path=str(p), full_page=True)
    keep = os.environ.get("LSR_WEB_SHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, Path(keep) / name)
    print(f"screenshot: {p}")
    return p


def test_page_shows_every_router_and_link(page, diamond):
    page.wait_for_selector("#status.live", timeout=10_000)
    shown = page.eval_on_selector_all("g.node", "els => els.map(e => e.dataset.node)")
    assert sorted(shown) == sorted(diamond.topo.nodes)
    assert all(page.is_visible(f"g.node[data-node='{r.name}']") for r in diamond.topo.routers)
    assert page.locator("g.link.up").count() == len(diamond.topo.links)
    assert page.inner_text("#title") == f"lab {diamond.name} (diamond)"
    assert "read-only" not in page.inner_text("#mode")
    page.click("g.node[data-node='p1']")
    page.wait_for_selector("#router-tables table")
    assert "LFIB (" in page.inner_text("#router-tables")
    assert "OPERATIONAL" in page.inner_text("#router-tables")


def test_page_follows_a_link_failure(page, diamond, tmp_path):
    """`lsr lab link NAME pe1 p1 down` -> the page draws the link down, the timeline says
    so; the page's own button brings it back up (--allow-changes)."""
    page.wait_for_selector("#status.live", timeout=10_000)
    page.click("#show-lsp")
    page.wait_for_selector("#lsp-out table")
    assert page.locator("#overlay path").count() == 4  # two ECMP branches, two hops each
    try:
        subprocess.run([sys.executable, "-c", "from lsr.cli import main; main()", "lab", "link",
                        diamond.name, "pe1", "p1", "down", "--no-wait"], check=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
        t0 = time.monotonic()  # the carrier is down at both ends now
        page.wait_for_selector("g.link.down[data-name='pe1-p1']", timeout=10_000)
        page.wait_for_function(
            "[...document.querySelectorAll('#timeline li')].some(li => "
            "li.textContent.includes('link pe1-p1 down'))", timeout=10_000)
        seconds = time.monotonic() - t0
        assert page.text_content("g.link[data-name='pe1-p1'] text") == "DOWN"
        # the LSP is redrawn over p2 alone once the LFIBs changed
        page.wait_for_function("document.querySelectorAll('#overlay path').length === 2",
                               timeout=15_000)
        page.click("g.node[data-node='pe1']")
        page.wait_for_selector("#router-tables table")
        _shot(page, tmp_path, "web-link-down.png")
        print(f"link shown down {seconds:.2f} s after 'lsr lab link --no-wait' returned")
        page.click("g.link[data-name='pe1-p1'] line.hit")
        page.click("#link-toggle")
        page.wait_for_selector("g.link.up[data-name='pe1-p1']", timeout=10_000)
        assert "pe1-p1 set up" in page.inner_text("#link-msg")
    finally:
        _link_up(diamond.name, "pe1", "p1")
    lab.wait_converged(diamond.name)


def test_ctrl_c_is_one_line(diamond):
    w = Web(diamond.name)
    rc, out, err = w.stop()
    assert rc == 0 and out.strip() == "lsr lab web: stopped" and err == "", (rc, out, err)
