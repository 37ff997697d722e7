"""IKEv2 + ESP-in-UDP interop with strongSwan (root, charon): tests/data/ipsec-strongswan.yaml.

sw1 and sw2 are strongSwan 5.9 gateways (kernel-libipsec) behind pe1; their
tunnels end on pe2 across the MPLS core. sw1 initiates (pe2 responds), pe2
initiates towards sw2. Traffic flows both ways between a subnet behind each
gateway (an address on its lo) and ce2 behind pe2; Child SA rekeys by either
side keep it flowing.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import is_root
from tests.wait import rx_packets, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab import strongswan
    from lsr.lab.state import ns_name

    if strongswan.missing_tools():
        pytestmark.append(pytest.mark.skip(reason=strongswan.missing_tools()))

DATA = Path(__file__).parent / "data"
NAME = f"s{os.getpid() % 10000}w"
CE2 = "192.168.2.2"
SUBNET_ADDR = {"sw1": "172.16.1.1", "sw2": "172.16.2.1"}


@pytest.fixture(scope="module")
def L():
    pids: list = []
    try:
        L = lab.up(load_topology(DATA / "ipsec-strongswan.yaml"), name=NAME, timeout=40)
        from lsr.lab.state import LabState

        pids = [p for p in LabState(NAME).read()["pids"] if p["role"].startswith("strongswan:")]
        yield L
    finally:
        lab.down(NAME)
    from lsr.lab.state import pid_alive

    assert len(pids) == 2 and not [p for p in pids if pid_alive(p["pid"], p["start"])]


def _conn(L, name: str) -> dict:
    return next(c for c in L.query("pe2", "ipsec", view="sas")["ike"] if c["name"] == name)


def _wait(L, name: str, timeout: float = 20) -> dict:
    def established() -> dict | None:
        c = _conn(L, name)
        return c if c["state"] == "established" and c["child_sas"] else None
    return wait_for(established, timeout, lambda: f"{name} established: {_conn(L, name)}\n"
                    + strongswan.log_path(NAME, name).read_text()[-3000:])


def _ping(L, node: str, dst: str, *args: str, count: int = 3) -> subprocess.CompletedProcess:
    return L.run(node, ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1", *args, dst])


@pytest.mark.parametrize("gw,role", [("sw1", "responder"), ("sw2", "initiator")])
def test_tunnel_with_strongswan(L, gw, role):
    c = _wait(L, gw)
    assert c["role"] == role and c["nat_t"]
    r = _ping(L, gw, CE2, "-I", SUBNET_ADDR[gw])
    assert r.returncode == 0, r.stdout
    r = _ping(L, "ce2", SUBNET_ADDR[gw])
    assert r.returncode == 0, r.stdout
    sas = [s for s in L.query("pe2", "ipsec", view="sas")["sas"] if s["name"].startswith(gw + "-")]
    out = next(s for s in sas if s["direction"] == "out")
    assert out["udp_encap"] and out["counters"]["packets_out"] >= 3
    assert sum(s["counters"]["packets_in"] for s in sas if s["direction"] == "in") >= 3
    text = strongswan.show(NAME, gw, "sas")["text"]
    assert "INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-128" in text, text
    # charon's own counters saw our ESP
    assert re.search(r"in\s+[0-9a-f]{8},\s+\d+ bytes,\s+[1-9]\d* packets", text), text


@pytest.mark.parametrize("gw", ["sw1", "sw2"])
def test_rekey_with_strongswan_keeps_traffic(L, gw):
    before = set(_wait(L, gw)["child_sas"])
    ping = subprocess.Popen(["ip", "netns", "exec", ns_name(NAME, "ce2"), "ping", "-n", "-q",
                             "-c", "50", "-i", "0.05", "-W", "1", SUBNET_ADDR[gw]],
                            stdout=subprocess.PIPE, text=True)
    try:
        n = rx_packets(ns_name(NAME, "ce2"))  # rekey once the ping stream runs
        wait_for(lambda: rx_packets(ns_name(NAME, "ce2")) >= n + 10, 10, "10 replies at ce2")
        if _conn(L, gw)["role"] == "initiator":
            assert L.query("pe2", "ipsec", view="rekey", conn=gw)["requested"]
        else:  # strongSwan initiates the CREATE_CHILD_SA
            r = subprocess.run(["swanctl", "--rekey", "--child", gw, "--uri",
                                f"unix://{strongswan.node_dir(NAME, gw)}/charon.vici"],
                               capture_output=True, text=True, timeout=15)
            assert r.returncode == 0, r.stdout + r.stderr
        out, _ = ping.communicate(timeout=30)
    finally:
        if ping.poll() is None:
            ping.kill()
    v = L.query("pe2", "ipsec", view="sas")
    assert " 0% packet loss" in out, "\n".join([
        out, f"pe2 SAD: {v['sad']}, retired SAs: {v['retired']}",
        f"pe2 events: {_conn(L, gw)['events']}",
        strongswan.log_path(NAME, gw).read_text()[-3000:]])
    after = _wait(L, gw)
    assert set(after["child_sas"]) and not before & set(after["child_sas"])
    assert "rekeyed" in " ".join(e["event"] for e in after["events"])
