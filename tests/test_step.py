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


def test_vpn_hops_name_the_vrf_route_and_the_vpn_label() -> None:
    """A VPN packet: the ingress decides in its VRF (push LDP + VPN label), the egress
    pops the VPN label and looks up in the VRF (RFC 4364)."""
    topo = load_topology(TOPOLOGIES / "l3vpn.yaml")
    sim, _ = simulate(topo)
    tables = build_all(topo, Igp(topo).ribs(), sim.lfibs())
    w, steps = step.step_walk(topo, tables, "red1", "10.1.2.1", "icmp", 64)
    assert w["result"] == "delivered"
    first, _, last = steps
    assert first.rule_title == "VRF red route (longest match for 10.1.2.1)"
    assert first.rule == [("10.1.2.0/24 from pe2 (RD 10.255.0.2:1, VPN label 5101)  push "
                           "2005 5101 via p1 eth3", True)]
    assert last.rule_title == "VPN label 5101: pop, then VRF red route (longest match for 10.1.2.1)"
    assert last.rule[-1] == ("10.1.2.0/24 connected, out eth1", True)


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


def _tables6(name: str):
    from lsr.sim import converge

    topo = load_topology(TOPOLOGIES / name)
    o = converge(topo)
    return topo, build_all(topo, o.sim.ribs, o.sim.lfibs(), o.sim.fib6s())


def test_ipv6_6pe_headers_labels_and_rows() -> None:
    """6PE (RFC 4798): the ingress's 6PE route pushes [LDP label, pe2's 6PE label], the P
    routers switch on the top label with IPv6 under it, the egress pops its 6PE label and
    looks the IPv6 destination up; the IPv6 and UDP headers are decoded at every hop."""
    topo, tables = _tables6("6pe.yaml")
    w, steps = step.step_walk(topo, tables, "ce1", "ce2", "udp", 64, family=6)
    assert w["result"] == "delivered" and [s.hop["op"] for s in steps] == [
        "push", "swap", "pop", "pop"]
    push, swap, php, egress = steps
    assert push.received.version == 6 and push.received.ip[2] == 64
    assert push.received.ip6 == (0, 0, 17) and push.received.l4 == "UDP 49152 -> 33434  length 16"
    assert push.rule_title == "6PE route (longest match for 2001:db8:2::2)"
    (text, chosen), = push.rule
    assert chosen and "from pe2 (next hop ::ffff:10.255.0.4, 6PE label 4000)" in text
    assert [x[0] for x in push.sent.labels] == [push.hop["labels_out"][0], 4000]
    assert push.sent.ip[2] == 63 and push.sent.version == 6
    assert swap.rule_title.startswith("ILM entry") and step.P_ROUTER6 in swap.why
    assert "implicit-null" in php.why and [x[0] for x in php.sent.labels] == [4000]
    assert egress.rule_title == ("6PE label 4000: pop, then IPv6 route (longest match for "
                                 "2001:db8:2::2)")
    assert egress.rule[-1] == ("2001:db8:2::/64 connected, out eth1", True)
    assert egress.sent.eth[2] == 0x86DD and egress.sent.labels == []


def test_ipv6_time_exceeded_shows_rfc4950_stack_and_explicit_null() -> None:
    """hop limit 2: p1's ICMPv6 Time Exceeded carries the stack it received (RFC 4950)
    and goes on along the LSP to pe2, back over pe1's IPv6 Explicit Null (label 2)."""
    topo, tables = _tables6("6pe.yaml")
    _, steps = step.step_walk(topo, tables, "ce1", "ce2", "icmp", 2, family=6)
    drop = [s for s in steps if s.leg == "packet"][-1]
    assert drop.icmp is not None and drop.icmp.l4 == "ICMPv6 type 3 code 0 time exceeded"
    label = drop.received.labels[0][0]
    assert [x[0] for x in drop.icmp.ext_labels] == [label, 4000]
    last = [s for s in steps if s.leg == "icmp"][-1]
    assert last.hop["router"] == "pe1" and last.received.labels[0][0] == 2
    assert last.rule_title.startswith("IPv6 explicit-null popped (RFC 4798 §3)")


def test_ipv6_6vpe_vrf_rows() -> None:
    topo, tables = _tables6("6vpe.yaml")
    w, steps = step.step_walk(topo, tables, "red1", "red2", family=6)
    assert w["result"] == "delivered"
    assert steps[0].rule_title == "VRF red IPv6 route (longest match for 2001:db8:1:2::1)"
    assert steps[-1].rule_title.startswith("VPN label ") and steps[-1].rule[-1] == (
        "2001:db8:1:2::/64 connected, out eth1", True)


def test_cli_step_ipv6() -> None:
    r = CliRunner().invoke(main, ["sim", "trace", str(TOPOLOGIES / "6pe.yaml"), "ce1", "ce2",
                                  "-6", "--step", "--proto", "tcp"])
    assert r.exit_code == 0, r.output
    for s in ("(tcpv6, hop limit 64)", "hop 4/4", "IPv6", "next header 6 (tcp)",
              "TCP       49152 -> 33434  flags S", "decided by: 6PE route", "result: delivered"):
        assert s in r.output, s
