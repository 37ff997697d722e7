"""FRR's bgpd as a 6PE peer (tests/data/frr-6pe.yaml): our pe1 and FRR's f1 exchange their
IPv6 customer subnets as labelled IPv6 (AFI 2 / SAFI 4) between loopbacks.

FRR's own JSON (read raw through vtysh) and our `lsr lab bgp ... ipv6 --json` agree on
every route: prefix, next hop (the IPv4-mapped loopback, RFC 4798 §2) and label (ours:
pe1's 6PE label 1000; FRR 8.4's for the prefix it originates: Implicit Null, its
"enforced PHP" for local labelled-unicast routes). FRR resolves our mapped next hop over
its IPv4 IGP route (valid, best), and both ends negotiated the capability (RFC 4760).
Control plane only. Needs root and FRR with bgpd.
"""

from __future__ import annotations

import json
import os
from ipaddress import IPv6Address

import pytest

from tests.conftest import ROOT, is_root
from tests.test_interop_frr_bgp import FRR_WHY
from tests.wait import wait_for

pytestmark = [
    pytest.mark.netns, pytest.mark.slow,
    pytest.mark.skipif(not is_root(), reason="needs root"),
    pytest.mark.skipif(FRR_WHY is not None, reason=f"FRR not usable: {FRR_WHY}"),
]

if is_root() and FRR_WHY is None:
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab import frr

NAME = f"v6f{os.getpid() % 1000}"
NET1, NET2 = "2001:db8:1::/64", "2001:db8:2::/64"


@pytest.fixture(scope="module")
def frrlab():
    lab.down(NAME)
    try:
        yield lab.up(load_topology(ROOT / "tests" / "data" / "frr-6pe.yaml"), name=NAME,
                     timeout=90)
    finally:
        lab.down(NAME)
    assert frr.leftover_processes(NAME) == []


def _frr(command: str):
    return json.loads(frr.vtysh(NAME, "f1", command))


def _mapped(a: str) -> str:
    return f"::ffff:{IPv6Address(a).ipv4_mapped}"


def frr_routes() -> set[tuple]:
    """FRR's best labelled IPv6 paths from its own JSON: (prefix, next hop, label, from).
    Its own route has next hop :: and no label in the JSON."""
    out = set()
    for p in _frr("show bgp ipv6 labeled-unicast json")["routes"]:
        d = _frr(f"show bgp ipv6 labeled-unicast {p} json")
        for path in d["paths"]:
            if not path.get("bestpath", {}).get("overall"):
                continue
            nh = path["nexthops"][0]
            assert nh.get("accessible", True) and path["valid"]
            if path.get("local"):
                out.add((p, "local", None, "local"))
            else:
                out.add((p, _mapped(nh["ip"]), path["remoteLabel"], path["peer"]["peerId"]))
    return out


def our_routes() -> set[tuple]:
    rs = lab.bgp(NAME, "pe1", "ipv6")["routers"]["pe1"]["routes"]
    return {(r["prefix"], r["next_hop"], r["label"], r["from"]) for r in rs}


def test_frr_and_we_agree_on_6pe_routes_and_labels(frrlab):
    want_frr = {(NET1, "::ffff:10.255.0.1", 1000, "10.255.0.1"), (NET2, "local", None, "local")}
    want_ours = {(NET1, "::ffff:10.255.0.1", 1000, "local"),
                 (NET2, "::ffff:10.255.0.3", 3, "f1")}
    wait_for(lambda: frr_routes() == want_frr and our_routes() == want_ours, 30,
             lambda: f"6PE routes: FRR {sorted(frr_routes(), key=str)}, "
                     f"ours {sorted(our_routes(), key=str)}")
    caps = _frr("show bgp neighbors 10.255.0.1 json")["10.255.0.1"]["neighborCapabilities"]
    assert caps["multiprotocolExtensions"]["ipv6LabeledUnicast"]["advertisedAndReceived"]
    # our view of FRR (lsr lab bgp f1 ipv6) says the same as FRR's raw JSON
    theirs = lab.bgp(NAME, "f1", "ipv6")["routers"]["f1"]["routes"]
    assert {(r["prefix"], r["next_hop"], r["label"]) for r in theirs} == {
        (NET1, "::ffff:10.255.0.1", 1000), (NET2, "::ffff:10.255.0.3", 3)}


def test_pe1_pushes_only_the_ldp_label_for_frrs_implicit_null(frrlab):
    six = lab.lfib(NAME, ["pe1"])["routers"]["pe1"]["ipv6"]
    (r,) = six["routes"]
    ldp = next(e for e in lab.lfib(NAME, ["pe1"])["routers"]["pe1"]["ftn"]
               if e["fec"] == "10.255.0.3/32")
    assert r["label"] == 3 and r["nexthops"][0]["out_labels"] == ldp["nexthops"][0]["out_labels"]
