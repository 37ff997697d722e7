"""Interoperability with FRRouting's bgpd (tests/data/frr-bgp.yaml): FRR as the VPN-IPv4
route reflector (f1) of two of our PEs, and as a PE control plane (f2).

Sessions are Established both ways (f1 passive towards pe1: we connect; pe2 passive
towards f1: FRR connects), with TCP MD5 on f1-pe2. FRR's own `show bgp ipv4 vpn json`
(read raw through vtysh, not through our conversion) and our `lsr lab bgp ... vpn
--json` agree on routes, RDs, route targets and labels; a withdrawal travels through
the reflector. Needs root and FRR with bgpd.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from ipaddress import IPv4Network

import pytest

from tests.conftest import ROOT, frr_missing, is_root
from tests.wait import wait_for

FRR_WHY = frr_missing("bgpd") if is_root() else "needs root"
pytestmark = [
    pytest.mark.netns, pytest.mark.slow,
    pytest.mark.skipif(not is_root(), reason="needs root"),
    pytest.mark.skipif(FRR_WHY is not None, reason=f"FRR not usable: {FRR_WHY}"),
]

if is_root() and FRR_WHY is None:
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab import frr
    from lsr.lab.state import LabState, lab_dir, ns_name, pid_alive

TOPO = ROOT / "tests" / "data" / "frr-bgp.yaml"
NAME = f"hgf{os.getpid() % 1000}"
LO = {"pe1": "10.255.0.1", "pe2": "10.255.0.2", "f1": "10.255.0.10", "f2": "10.255.0.3"}


@pytest.fixture(scope="module")
def frrlab():
    lab.down(NAME)
    pids: list = []
    try:
        L = lab.up(load_topology(TOPO), name=NAME, timeout=90)
        pids = [(p["pid"], p["start"]) for p in LabState(NAME).read()["pids"]]
        yield L
    finally:
        lab.down(NAME)
    assert not lab_dir(NAME).exists()
    assert not [p for p, st in pids if pid_alive(p, st)]
    assert frr.leftover_processes(NAME) == []


def _vtysh_json(node: str, command: str):
    return json.loads(frr.vtysh(NAME, node, command))


def frr_vpn_table(node: str) -> set[tuple]:
    """FRR's best VPN-IPv4 paths from its own JSON: (RD, prefix, next hop, label, RTs).
    A route FRR originates itself shows next hop 0.0.0.0 (it stands for its loopback)
    and has no label in the JSON: that comes from the text table's `label=N`."""
    table = _vtysh_json(node, "show bgp ipv4 vpn json")["routes"]["routeDistinguishers"]
    text = frr.vtysh(NAME, node, "show bgp ipv4 vpn")
    text_labels = {m[0]: int(m[1]) for m in re.findall(
        r"Route Distinguisher: (\S+)\n\*>.*\n.*label=(\d+)", text)}
    out = set()
    for rd, prefixes in table.items():
        for prefix in prefixes:
            detail = _vtysh_json(node, f"show bgp ipv4 vpn {prefix} json")[rd]
            (best,) = [p for p in detail["paths"] if p.get("bestpath", {}).get("overall")]
            nh = best["nexthops"][0]["ip"]
            rts = tuple(sorted(x[3:] for x in best["extendedCommunity"]["string"].split()
                               if x.startswith("RT:")))
            label = best.get("remoteLabel", text_labels.get(rd))
            out.add((rd, prefix, LO[node] if nh == "0.0.0.0" else nh, label, rts))
    return out


def our_vpn_table(node: str) -> set[tuple]:
    routes = lab.bgp(NAME, node, "vpn")["routers"][node]["routes"]
    return {(r["rd"], r["prefix"], r["next_hop"], r["label"], tuple(sorted(r["route_targets"])))
            for r in routes}


def test_sessions_established_both_ways(frrlab):
    st = lab.status(NAME)["routers"]
    assert st["pe1"]["bgp"] == {LO["f1"]: "Established"}
    assert st["pe2"]["bgp"] == {LO["f1"]: "Established"}
    assert st["f1"]["bgp"] == {LO["pe1"]: "Established", LO["pe2"]: "Established",
                               LO["f2"]: "Established"}
    peers = _vtysh_json("f1", "show bgp summary json")
    for fam in ("ipv4Unicast", "ipv4Vpn"):
        assert {a: p["state"] for a, p in peers[fam]["peers"].items()} == {
            LO["pe1"]: "Established", LO["pe2"]: "Established", LO["f2"]: "Established"}

    def tcp(node: str) -> str:
        return subprocess.run(["ip", "netns", "exec", ns_name(NAME, node), "ss", "-tnie",
                               "state", "established", "( sport = :179 or dport = :179 )"],
                              capture_output=True, text=True).stdout
    # pe1 connected (to f1:179, f1 being passive); f1 connected to pe2:179 (pe2 passive)
    assert f"{LO['pe1']}:" in tcp("pe1") and f"{LO['f1']}:179" in tcp("pe1")
    assert f"{LO['pe2']}:179" in tcp("pe2")
    assert f"md5keys:{LO['f1']}/32" in tcp("pe2")  # TCP MD5 (RFC 2385) on f1-pe2


def test_vpn_routes_rds_rts_labels_agree_with_frr(frrlab):
    want = {("65000:1", "10.1.0.0/16", LO["pe1"], 1001, ("65000:1",)),
            ("65000:2", "10.2.0.0/16", LO["pe1"], 1002, ("65000:2", "65000:99")),
            ("65000:3", "10.1.0.0/16", LO["pe2"], 2001, ("65000:1",)),
            ("65000:4", "10.3.0.0/16", LO["f2"], 3001, ("65000:1",))}
    assert frr_vpn_table("f1") == want  # the reflector has every PE's routes
    assert frr_vpn_table("f2") == want  # FRR as a PE, its own and ours
    assert our_vpn_table("pe1") == want and our_vpn_table("pe2") == want
    # FRR's view through `lsr lab bgp` (its JSON in our schema) says the same
    assert our_vpn_table("f1") == want
    # reflected by f1: its router ID as CLUSTER_LIST, the originator as ORIGINATOR_ID
    (r,) = [x for x in lab.bgp(NAME, "pe1", "vpn")["routers"]["pe1"]["routes"]
            if x["rd"] == "65000:4"]
    assert r["cluster_list"] == [LO["f1"]] and r["originator_id"] == LO["f2"]
    assert r["from"] == "f1" and r["local_pref"] == 100


def test_unicast_routes_agree(frrlab):
    ours = {r["prefix"]: r["next_hop"]
            for r in lab.bgp(NAME, "pe1", "unicast")["routers"]["pe1"]["routes"]}
    assert ours == {"10.20.0.0/16": LO["pe2"], "10.30.0.0/16": LO["f2"]}
    table = _vtysh_json("f1", "show bgp ipv4 unicast json")["routes"]
    theirs = {p: [h["ip"] for x in paths if x.get("bestpath") for h in x["nexthops"]][0]
              for p, paths in table.items()}
    assert theirs == ours


def test_summary_in_our_schema(frrlab):
    s = lab.bgp(NAME, "f1")["routers"]["f1"]
    assert s["route_reflector"] and s["asn"] == 65000 and s["router_id"] == LO["f1"]
    by = {n["neighbor"]: n for n in s["neighbors"]}
    assert set(by) == {"pe1", "pe2", "f2"}
    for n in by.values():
        assert n["state"] == "Established" and n["rr_client"] and n["uptime"] > 0
        assert n["families"] == ["ipv4-unicast", "ipv4-vpn"]
    assert by["pe2"]["md5"] and by["pe1"]["passive"]
    assert s["messages"]["sent"]["OPEN"] >= 3 and s["messages"]["received"]["UPDATE"] >= 3


def test_withdrawal_through_the_frr_reflector(frrlab):
    """pe2 stops (Cease to f1): f1 withdraws pe2's routes from pe1 and f2; pe2 back: they
    return, with FRR connecting again (pe2 is passive towards it)."""
    r = subprocess.run([sys.executable, "-c", "from lsr.cli import main; main()", "lab", "node",
                        NAME, "pe2", "stop"], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: not any(x[0] == "65000:3" for x in our_vpn_table("pe1")), 15,
             "pe2's VPN route withdrawn at pe1")
    assert not any(x[0] == "65000:3" for x in frr_vpn_table("f2"))
    r = subprocess.run([sys.executable, "-c", "from lsr.cli import main; main()", "lab", "node",
                        NAME, "pe2", "start"], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: any(x[0] == "65000:3" for x in frr_vpn_table("f2")), 20,
             "pe2's route back at f2")
    assert IPv4Network("10.1.0.0/16") in {IPv4Network(x[1]) for x in our_vpn_table("pe1")}
