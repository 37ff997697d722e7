"""lsr sim trace --step: per-hop frames (Ethernet, label stack, IP) and the deciding row."""

from __future__ import annotations

import io

from click.testing import CliRunner
from rich.console import Console

from forwarding.tables import build_all
from lsr.cli import main
from lsr.core.igp import Igp
from lsr.core.topology import load_topology
from lsr.sim import simulate
from lsr.teach import step
from tests.conftest import TOPOLOGIES

LINE3 = str(TOPOLOGIES / "line3.yaml")


def _tables(path: str):
    topo = load_topology(path)
    s, _ = simulate(topo)
    return topo, build_all(topo, Igp(topo).ribs(), {r: i.lfib for r, i in s.instances.items()})


def test_headers_and_rows_per_hop() -> None:
    topo, tables = _tables(LINE3)
    w, steps = step.step_walk(topo, tables, "ce1", "ce2", "udp", 64)
    assert [s.hop["op"] for s in steps] == ["push", "pop", "forward"]
    push, pop, fwd = steps
    label = push.hop["labels_out"][0]
    assert push.received.labels == [] and push.received.ip[2] == 64
    assert push.sent.eth[2] == 0x8847 and push.sent.labels == [(label, 0, 1, 63)]
    assert push.rule_title.startswith("FTN") and any(c for _, c in push.rule)
    assert pop.received.labels[0][0] == label and pop.rule_title == f"ILM entry for label {label}"
    assert pop.sent.labels == [] and pop.sent.ip[2] == 62
    assert fwd.rule_title.startswith("IGP route") and fwd.sent.ip[1] == "192.168.2.2"


def test_ttl_expiry_shows_icmp() -> None:
    topo, tables = _tables(LINE3)
    _, steps = step.step_walk(topo, tables, "ce1", "ce2", "icmp", 2)
    last = [s for s in steps if s.leg == "packet"][-1]
    assert last.hop["op"] == "drop" and last.icmp is not None
    assert last.rule[-1] == ("dropped: ttl-expired", True)


def test_cli_step_non_interactive() -> None:
    r = CliRunner().invoke(main, ["sim", "trace", LINE3, "ce1", "ce2", "--step"])
    assert r.exit_code == 0, r.output
    for s in ("hop 1/3", "hop 3/3", "Ethernet", "MPLS", "TC 0  S 1  TTL 63", "decided by: ILM",
              "result: delivered"):
        assert s in r.output


def test_delay_and_key_press(monkeypatch) -> None:
    topo, tables = _tables(LINE3)
    w, steps = step.step_walk(topo, tables, "ce1", "ce2")
    slept: list[float] = []
    con = Console(file=io.StringIO(), width=100)
    step.run_steps(steps, w, con, delay=0.5, sleep=slept.append)
    assert slept == [0.5, 0.5]  # between the 3 hops
    keys = iter("q")
    monkeypatch.setattr("click.getchar", lambda: next(keys))
    con = Console(file=io.StringIO(), width=100)
    step.run_steps(steps, w, con, interactive=True)
    out = con.file.getvalue()
    assert "hop 1/3" in out and "hop 2/3" not in out  # q after the first hop


def test_why_a_router_pops() -> None:
    """PHP: the egress advertised implicit-null; untagged: no label from the next hop."""
    topo, tables = _tables(LINE3)
    _, steps = step.step_walk(topo, tables, "ce1", "ce2")
    assert [s.why for s in steps] == [
        None, "pops: egress pe2 advertised implicit-null (RFC 3032 §2.1, PHP)", None]
    r = CliRunner().invoke(main, ["sim", "trace", str(TOPOLOGIES.parent / "docs" / "examples"
                                                      / "line3-md5.yaml"), "ce2", "ce1", "--step"])
    assert "pops: no label from the next hop yet (untagged)" in r.output, r.output


def test_icmp_error_hop_by_hop() -> None:
    """unequal: p1 swaps, so its Time Exceeded goes on along the LSP (label 3006 on p2's
    side), p2 pops it, pe2 routes it back; every hop of the error is a panel."""
    topo, tables = _tables(str(TOPOLOGIES / "unequal.yaml"))
    w, steps = step.step_walk(topo, tables, "ce1", "ce2", "icmp", 2)
    packet = [s for s in steps if s.leg == "packet"]
    icmp = [s for s in steps if s.leg == "icmp"]
    assert [s.hop["router"] for s in packet] == ["pe1", "p1"]
    assert [s.hop["router"] for s in icmp] == ["p1", "p2", "pe2", "p2", "p1", "pe1"]
    assert icmp[0].rule_title.startswith("sent on along the LSP (RFC 3032 §2.3.2), ILM entry")
    assert icmp[0].sent.labels[0][3] == 255 and icmp[0].sent.ip[0] == "10.0.0.2"
    assert icmp[1].why and "egress pe2" in icmp[1].why
    assert icmp[-1].sent.ip[1] == "192.168.0.1"
    con = Console(file=io.StringIO(), width=200)
    step.run_steps(steps, w, con, delay=0, sleep=lambda s: None)
    out = con.file.getvalue()
    assert "ICMP hop 6/6" in out and "ICMP error: delivered" in out
    assert "on along the LSP to its egress, which routes it back (RFC 3032 §2.3.2)" in out


def test_ecmp_hash_shown_and_ports_change_the_branch(monkeypatch) -> None:
    import lsr.render

    monkeypatch.setattr(lsr.render, "console", Console(width=200, force_terminal=False))
    f = str(TOPOLOGIES / "diamond.yaml")
    seen = set()
    for sport in (40000, 40001, 40002, 40003):
        r = CliRunner().invoke(main, ["sim", "trace", f, "ce1", "ce2", "--proto", "udp",
                                      "--sport", str(sport), "--dport", "53", "--step"])
        assert r.exit_code == 0, r.output
        assert "ECMP: hash 0x" in r.output and f"ports {sport} -> 53" in r.output
        seen.add("via p1" if "=> FEC 192.168.2.0/24  push 2006 via p1" in r.output else "via p2")
    assert seen == {"via p1", "via p2"}
    r = CliRunner().invoke(main, ["sim", "trace", f, "ce1", "ce2", "--sport", "1"])
    assert r.exit_code == 2 and "--proto udp or tcp" in r.output
