"""RFC 8029 through FRR routers (kind: frr) in real namespace labs: LSP ping and
traceroute answered in FRR nodes from FRR's own bindings (our responder in our
dataplane there, `lsr.lab.frrplane`), `lsr lab validate` on mixed labs, stopping
and starting an FRR node, and silent hops that are never reported `ok`.

Needs root and FRR (/usr/lib/frr/ldpd, vtysh); the capture test needs tcpdump
and tshark.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, frr_missing, is_root
from tests.wait import Capture, wait_for

FRR_WHY = frr_missing()
pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not is_root(), reason="needs root"),
    pytest.mark.skipif(FRR_WHY is not None, reason=f"FRR not usable: {FRR_WHY}"),
]

if is_root() and FRR_WHY is None:
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab import frr
    from lsr.lab.lsp import LabSender, validate_live
    from lsr.lab.state import LabState, ns_name, pid_alive
    from lsr.oam.lspping import lsp_ping, lsp_traceroute, resolve_fec

DATA = ROOT / "tests" / "data"
UNIQ = os.getpid() % 1000


def _name(k: int) -> str:
    return f"ho{UNIQ}{k}"


def _lsr(*args: str) -> subprocess.CompletedProcess:
    """The CLI of this checkout (not whatever `lsr` is first on PATH)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", "import sys; from lsr.cli import main; main()",
                           *args], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


def _up(topo_file: str, k: int, env: dict[str, str] | None = None):
    name = _name(k)
    saved = {v: os.environ.get(v) for v in env or {}}
    os.environ.update(env or {})  # inherited by the FRR dataplanes `up` spawns, and no more
    try:
        try:
            L = lab.up(load_topology(DATA / topo_file), name=name, timeout=40)
        finally:
            for v, old in saved.items():
                if old is None:
                    os.environ.pop(v, None)
                else:
                    os.environ[v] = old
        yield L
    finally:
        lab.down(name)
    assert frr.leftover_processes(name) == []


@pytest.fixture(scope="module")
def mixed():
    yield from _up("frr-oam.yaml", 1)


@pytest.fixture(scope="module")
def silent():
    """frr-line with FRR on its own: f1 forwards (our dataplane) but has no responder."""
    yield from _up("frr-line.yaml", 2, {"LSR_FRR_OAM": "0"})


def _fails(out: dict) -> list[dict]:
    return [r for r in out["results"] if r["status"] == "fail"]


def _frr_remote_label(name: str, node: str, fec: str, peer_lsr_id: str) -> int:
    """The label `node` (FRR) learnt from `peer` for `fec`, from FRR's own
    `show mpls ldp binding json` (imp-null -> 3)."""
    for e in frr.raw_bindings(name, node):
        if e.get("prefix") == fec and str(e.get("neighborId")) == peer_lsr_id:
            r = str(e.get("remoteLabel")).lower()
            return 3 if r in ("imp-null", "implicit-null") else int(r)
    raise AssertionError(f"{node} has no binding for {fec} from {peer_lsr_id}")


def _hops(out: dict, path: int) -> list[dict]:
    return sorted((h for h in out["hops"] if h["path"] == path), key=lambda h: h["ttl"])


# ---------------------------------------------------------------- healthy


def test_validate_healthy_mixed_lab(mixed):
    out = validate_live(mixed.name)
    assert out["failed"] == 0, _fails(out)
    assert out["stopped_routers"] == [] and out["unhealthy_routers"] == []
    # traceroutes from every ingress, the FRR node's included
    assert any(r["check"] == "cp-dp-agreement" and r["status"] == "pass" for r in out["results"])
    r = _lsr("lab", "validate", mixed.name)
    assert r.returncode == 0, r.stdout + r.stderr


def test_traceroute_through_frr_shows_frrs_labels(mixed):
    s = LabSender(mixed.name)
    topo = s.topo
    fec = resolve_fec(topo, "pe4")
    out = lsp_traceroute(s, "pe1", fec, multipath=True)
    assert out["result"] == "ok", out
    paths = {tuple(p["routers"]): p["path"] for p in out["paths"]}
    assert set(paths) == {("f1", "p3", "pe4"), ("p2", "p3", "pe4")}
    f1_hop = _hops(out, paths[("f1", "p3", "pe4")])[0]
    # f1 label-switches to the label p3 gave FRR (FRR's LIB, not ours)
    want = _frr_remote_label(mixed.name, "f1", str(fec), str(topo.nodes["p3"].lsr_id))
    assert want != 3
    assert (f1_hop["router"], f1_hop["return_code"], f1_hop["labels"]) == ("f1", 8, [want])
    assert f1_hop["interface"] == "eth1"
    assert f1_hop["downstream"] == [str(topo.interface("p3", "eth1").address.ip)]
    # and pe1 pushed FRR's local label for the FEC towards f1
    local = {b["fec"]: b["local_label"] for b in frr.bindings(mixed.name, None, "f1")}
    ftn = next(e for e in lab.lfib(mixed.name, ["pe1"])["routers"]["pe1"]["ftn"]
               if e["fec"] == str(fec))
    assert [local[str(fec)]] in [nh["out_labels"] for nh in ftn["nexthops"] if nh["neighbor"] == "f1"]

    # towards pe1 f1 pops: pe1 advertised implicit-null to FRR
    back = lsp_traceroute(s, "pe4", resolve_fec(topo, "pe1"), multipath=True)
    assert back["result"] == "ok", back
    f1_hops = [h for h in back["hops"] if h["router"] == "f1"]
    assert f1_hops and all(h["labels"] == [3] and h["return_code"] == 8 for h in f1_hops)
    assert _frr_remote_label(mixed.name, "f1", "10.255.0.1/32", "10.255.0.1") == 3


def test_frr_node_as_egress_and_ingress(mixed):
    s = LabSender(mixed.name)
    ping = lsp_ping(s, "pe1", resolve_fec(s.topo, "f1"), count=2)
    assert ping["result"] == "ok" and {r["router"] for r in ping["replies"]} == {"f1"}, ping
    # probes sent from the FRR node (its dataplane's management socket)
    ping = lsp_ping(s, "f1", resolve_fec(s.topo, "pe4"), count=2)
    assert ping["result"] == "ok" and {r["router"] for r in ping["replies"]} == {"pe4"}, ping
    out = lsp_traceroute(s, "f1", resolve_fec(s.topo, "ce2"))
    assert out["result"] == "ok" and out["paths"][0]["routers"] == ["p3", "pe4"], out
    r = _lsr("lsp", "traceroute", mixed.name, "pe1", "pe4", "--multipath", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert any(h["router"] == "f1" for h in json.loads(r.stdout)["hops"])


@pytest.mark.skipif(shutil.which("tshark") is None or shutil.which("tcpdump") is None,
                    reason="tshark or tcpdump not installed")
def test_tshark_decodes_frr_echo_replies(mixed, tmp_path: Path):
    """The replies our responder sends from the FRR namespace (f1's address towards pe1)
    decode without a malformed item or expert warning, with FRR's label in the DDMAP."""
    pcap = tmp_path / "pe1-f1.pcap"
    f1_addr = str(mixed.topo.interface("f1", "eth1").address.ip)
    s = LabSender(mixed.name)
    want = _frr_remote_label(mixed.name, "f1", "10.255.0.5/32", "10.255.0.4")

    def replies() -> list[list[str]]:
        out = subprocess.run(["tshark", "-r", str(pcap), "-Y",
                              f"mpls_echo.msg_type == 2 && ip.src == {f1_addr}", "-T", "fields",
                              "-e", "mpls_echo.return_code", "-e", "mpls_echo.subtlv.label"],
                             capture_output=True, text=True).stdout
        return [ln.split("\t") for ln in out.splitlines()]

    cap = Capture(ns_name(mixed.name, "pe1"), "eth2", pcap)
    try:
        lsp_traceroute(s, "pe1", resolve_fec(s.topo, "pe4"), multipath=True)
        lsp_ping(s, "pe1", resolve_fec(s.topo, "f1"), count=2)
        wait_for(lambda: {"8", "3"} <= {r[0] for r in replies()}, 20,
                 "f1's echo replies (codes 8 and 3) in the capture", interval=0.3)
    finally:
        cap.stop()
    assert [str(want)] in [r[1:] for r in replies() if r[0] == "8"], replies()
    res = subprocess.run(["tshark", "-r", str(pcap), "-V"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    dec = res.stdout
    assert "MPLS Echo Reply" in dec and "Detailed Downstream Mapping" in dec
    assert "Malformed" not in dec
    assert "Expert Info (Warning" not in dec and "Expert Info (Error" not in dec


# ---------------------------------------------------------------- silent hops


def _dataplane_pid(name: str, node: str) -> tuple[int, int | None]:
    p = [p for p in LabState(name).read()["pids"] if p["role"] == f"frr:{node}:dataplane"][-1]
    return p["pid"], p.get("start")


def test_hung_frr_dataplane_is_named_never_ok(mixed):
    """f1's dataplane hangs (SIGSTOP): neither forwards nor answers. The branch through it
    times out at f1 (named from pe1's DDMAP), and validate names f1."""
    pid, start = _dataplane_pid(mixed.name, "f1")
    s = LabSender(mixed.name, wait=0.3)
    fec = resolve_fec(s.topo, "pe4")
    os.kill(pid, signal.SIGSTOP)
    try:
        out = lsp_traceroute(s, "pe1", fec, multipath=True)
        assert out["result"] == "broken", out
        f1_path = next(p for p in out["paths"]
                       if _hops(out, p["path"])[0]["expected_router"] == "f1")
        assert f1_path["result"] == "timeout"
        first = _hops(out, f1_path["path"])[0]
        assert first["router"] is None and first["return_code_name"] == "timeout"
        assert out["broken_at"]["router"] == "f1"
        r = _lsr("lsp", "traceroute", mixed.name, "pe1", "pe4", "--multipath", "--wait", "0.3")
        assert r.returncode == 1 and "f1 (silent)" in r.stdout, r.stdout + r.stderr
        v = validate_live(mixed.name, traceroutes=False)
        assert v["unhealthy_routers"] == ["f1"]
        assert any(x["check"] == "router-runtime" and x["detail"].startswith("f1:")
                   for x in _fails(v)), _fails(v)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert pid_alive(pid, start)
    wait_for(lambda: lsp_traceroute(s, "pe1", fec, multipath=True)["result"] == "ok", 20,
             "the LSP through f1 again")


def test_frr_without_responder_is_a_silent_hop_never_ok(silent):
    """FRR on its own answers no echo request, but our dataplane in it forwards: the
    egress answers at TTL 2. The trace is not `ok` with f1 missing: f1 is a silent hop."""
    s = LabSender(silent.name, wait=0.3)
    fec = resolve_fec(s.topo, "pe2")
    assert lsp_ping(s, "pe1", fec)["result"] == "ok"  # the LSP itself works
    out = lsp_traceroute(s, "pe1", fec)
    assert [(h["router"], h["expected_router"], h["return_code"]) for h in out["hops"]] == \
        [(None, "f1", None), ("pe2", None, 3)], out
    assert out["result"] == "broken" and out["paths"][0]["result"] == "timeout"
    assert (out["broken_at"]["ttl"], out["broken_at"]["router"]) == (1, "f1")
    r = _lsr("lsp", "traceroute", silent.name, "pe1", "pe2", "--wait", "0.3")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "pe1 -> f1 (silent) -> pe2: timeout" in " ".join(r.stdout.split())
    r = _lsr("lab", "validate", silent.name, "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    rows = [x["detail"] for x in _fails(json.loads(r.stdout)) if x["check"] == "lsp-traceroute"]
    assert "pe1 -> 10.255.0.3/32: broken at hop 1 f1: timeout" in "\n".join(rows), rows


# ---------------------------------------------------------------- stop / start (last)


def test_stop_and_start_frr_node(mixed):
    name = mixed.name
    r = _lsr("lab", "node", name, "f1", "stop", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    stopped = json.loads(r.stdout)
    assert stopped["kind"] == "frr" and len(stopped["stopped_pids"]) >= 6  # + lde, ldpe
    assert not any(pid_alive(p, None) for p in stopped["stopped_pids"])
    assert sorted(frr.not_running(name, "f1")) == ["dataplane", "ldpd", "ospfd", "zebra"]
    assert lab.status(name)["routers"]["f1"]["alive"] is False

    r = _lsr("lab", "validate", name, "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    v = json.loads(r.stdout)
    assert v["stopped_routers"] == ["f1"]
    assert any(x["check"] == "router-runtime" and x["detail"].startswith("f1: FRR router not "
                                                                          "running")
               for x in _fails(v)), _fails(v)
    # f1's own loopback has no LSP any more: the trace names the stopped hop
    r = _lsr("lsp", "traceroute", name, "pe1", "f1", "--json")
    assert r.returncode == 1
    assert "f1 on its IGP path is stopped" in json.loads(r.stdout)["reason"]
    # traffic to pe4 goes around f1 once OSPF and LDP have noticed
    s = LabSender(name, wait=0.3)
    fec = resolve_fec(s.topo, "pe4")
    wait_for(lambda: lsp_traceroute(s, "pe1", fec, multipath=True)["paths"] ==
             [{"path": 0, "result": "ok", "routers": ["p2", "p3", "pe4"]}], 30,
             "pe1 -> pe4 around the stopped f1")

    r = _lsr("lab", "node", name, "f1", "start", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    started = json.loads(r.stdout)
    assert set(started["pids"]) == {"zebra", "ldpd", "ospfd", "dataplane"}
    assert frr.not_running(name, "f1") == []
    assert lab.status(name)["routers"]["f1"]["alive"] is True
    v = validate_live(name)
    assert v["failed"] == 0, _fails(v)
    out = lsp_traceroute(LabSender(name), "pe1", fec, multipath=True)
    assert sorted(tuple(p["routers"]) for p in out["paths"]) == \
        [("f1", "p3", "pe4"), ("p2", "p3", "pe4")]
    assert lab.status(name)["routers"]["f1"].get("sessions") and \
        set(lab.status(name)["routers"]["f1"]["sessions"].values()) == {"OPERATIONAL"}
    assert frr.leftover_processes(name)  # the new daemons run under the lab's FRR dir
    assert ns_name(name, "f1")
