"""IKEv2 between two of our edge routers in a real lab (root): tests/data/ipsec-ike.yaml.

pe1 (initiator) and pe2 negotiate AES-GCM-16 Child SAs over UDP 500 across
the MPLS core; the Child SA is rekeyed (CREATE_CHILD_SA with PFS) every 3 s
by both ends and on demand while a ping runs, without losing a packet; a wrong PSK fails
with AUTH_FAILED, shown by `lsr lab ipsec` and in the router log.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import is_root
from tests.wait import rx_packets, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab.state import lab_dir, ns_name

DATA = Path(__file__).parent / "data"
NAME = f"s{os.getpid() % 10000}i"
CE2 = "192.168.2.2"


@pytest.fixture(scope="module")
def L():
    try:
        yield lab.up(load_topology(DATA / "ipsec-ike.yaml"), name=NAME, timeout=30)
    finally:
        lab.down(NAME)


def _ike(L, router: str) -> dict:
    return L.query(router, "ipsec", view="sas")["ike"][0]


def _wait_established(L, timeout: float = 15) -> None:
    def established() -> bool:
        a, b = _ike(L, "pe1"), _ike(L, "pe2")
        return a["state"] == b["state"] == "established" and bool(a["child_sas"] and b["child_sas"])
    wait_for(established, timeout, lambda: f"IKE established: {_ike(L, 'pe1')} {_ike(L, 'pe2')}")


def test_child_sas_installed_and_traffic_flows(L):
    _wait_established(L)
    sas = {r: L.query(r, "ipsec", view="sas")["sas"] for r in ("pe1", "pe2")}
    out1 = next(s for s in sas["pe1"] if s["direction"] == "out")
    in2 = [s for s in sas["pe2"] if s["direction"] == "in"]
    assert out1["encryption"] == "aes-128-gcm-16" and out1["integrity"] == "none"
    assert out1["spi"] in {s["spi"] for s in in2}  # pe1's outbound SA is pe2's inbound one
    r = L.run("ce1", ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", CE2])
    assert r.returncode == 0, r.stdout
    assert _ike(L, "pe1")["role"] == "initiator" and _ike(L, "pe2")["role"] == "responder"


def test_rekey_while_traffic_flows(L):
    _wait_established(L)
    first = set(_ike(L, "pe1")["child_sas"])
    rekeys0 = _ike(L, "pe1")["counters"].get("child_rekeyed", 0)
    ping = subprocess.Popen(["ip", "netns", "exec", ns_name(NAME, "ce1"), "ping", "-n", "-q",
                             "-c", "140", "-i", "0.05", "-W", "1", CE2],
                            stdout=subprocess.PIPE, text=True)
    ce2 = ns_name(NAME, "ce2")
    try:
        for _ in range(2):  # on demand, on top of the 3-s timer, each after 20 pings
            n = rx_packets(ce2)
            wait_for(lambda n=n: rx_packets(ce2) >= n + 20, 10, "20 pings through the tunnel")
            _rekey(L)
        wait_for(lambda: _ike(L, "pe1")["counters"]["child_rekeyed"] - rekeys0 >= 3, 10,
                 "a rekey by a 3-s timer while the ping runs")
        out, _ = ping.communicate(timeout=30)
    finally:
        if ping.poll() is None:
            ping.kill()
    assert " 0% packet loss" in out, out
    st = _ike(L, "pe1")
    assert st["counters"]["child_rekeyed"] - rekeys0 >= 3  # on demand and by the timers
    assert not first & set(st["child_sas"])  # the old Child SAs are gone
    for r in ("pe1", "pe2"):
        def one_pair(r=r) -> bool:  # after the deletes (a timer's rekey may be half-way)
            return len([sa for sa in L.query(r, "ipsec", view="sas")["sas"] if not sa.get("replaced")]) == 2
        wait_for(one_pair, 5, lambda r=r: f"one SA pair on {r}: {L.query(r, 'ipsec', view='sas')['sas']}")
        assert L.query(r, "ipsec", view="sas")["retired"].get("packets_in", 0) > 0  # counters kept
    # a rekeyed inbound SA lingers for ESP still on its way (REKEYED_INBOUND_GRACE), then goes
    old = set(_ike(L, "pe2")["child_sas"])
    _rekey(L)
    wait_for(lambda: not old & set(_ike(L, "pe2")["child_sas"]), 1.5,
             "the rekeyed Child SA deleted on pe2")
    sas = L.query("pe2", "ipsec", view="sas")["sas"]
    assert old <= {sa["spi"] for sa in sas if sa.get("replaced")}, sas  # but still decrypting
    wait_for(lambda: not old & {sa["spi"] for sa in L.query("pe2", "ipsec", view="sas")["sas"]},
             5, "the replaced inbound SA to go after its grace time")


def _rekey(L) -> None:
    """A rekey on demand (unless a timer's rekey of the same Child SA runs right now)."""
    r = L.query("pe1", "ipsec", view="rekey", conn="site")
    assert r["requested"] or "being rekeyed" in r["reason"], r


def test_wrong_psk_auth_failed(L):
    from lsr.cli import main

    _wait_established(L)
    L.query("pe2", "ipsec", view="set-psk", conn="site", psk="not-the-right-psk")
    L.query("pe1", "ipsec", view="initiate", conn="site", force=True)
    wait_for(lambda: _ike(L, "pe1")["state"] == "failed", 10, lambda: f"IKE failed: {_ike(L, 'pe1')}")
    wait_for(lambda: "AUTH_FAILED" in (_ike(L, "pe2")["error"] or ""), 5, lambda: f"{_ike(L, 'pe2')}")
    a, b = _ike(L, "pe1"), _ike(L, "pe2")
    assert a["state"] == "failed" and "AUTH_FAILED" in a["error"], a
    # the responder keeps its IKE SA (an IKE_SA_INIT that does not authenticate cannot end
    # it) but shows the failure as an error until the peer proves it still has that IKE SA
    assert b["state"] == "error" and "AUTH_FAILED" in b["error"], b
    assert [p["problem"] for p in b["problems"]] == ["peer-failed"], b
    assert not a["child_sas"]
    assert L.run("ce1", ["ping", "-n", "-c", "1", "-W", "1", CE2]).returncode != 0
    r = CliRunner().invoke(main, ["lab", "ipsec", NAME, "pe1", "sas"])
    assert "AUTH_FAILED" in r.output
    assert "AUTH_FAILED" in (lab_dir(NAME) / "pe1.log").read_text()
    assert "AUTH_FAILED" in (lab_dir(NAME) / "pe2.log").read_text()
    # the right key again: the tunnel comes back
    psk = lab.topology(NAME).extra["ipsec"].ike[0].psk.decode()
    L.query("pe2", "ipsec", view="set-psk", conn="site", psk=psk)
    L.query("pe1", "ipsec", view="initiate", conn="site")
    _wait_established(L)
    r = L.run("ce1", ["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", CE2])
    assert r.returncode == 0, r.stdout
