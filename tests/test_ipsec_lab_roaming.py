"""Roaming clients against real strongSwan (root, charon): topologies/ipsec-roam.yaml.

rw1 and rw2 are strongSwan 5.9 remote-access clients behind pe1; pe2 answers
them (ipsec.remote_access), gives each a virtual IP from its pool in IKE_AUTH
(RFC 7296 §3.15 CFG_REPLY) and carries their traffic to ce2 across the MPLS
core in UDP 4500. Checks: two clients at once, each with its own address, in
our `sas` (text and JSON) and in charon's; a capture on a core link holds
labels + ESP and nothing in clear; a wrong PSK is AUTH_FAILED on both sides; a
client that disconnects frees its address and gets one when it reconnects; a
restart of pe2 brings both clients back (dead peer detection).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import TOPOLOGIES, is_root
from tests.wait import Capture, pcap_frames, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab import strongswan

    if strongswan.missing_tools():
        pytestmark.append(pytest.mark.skip(reason=strongswan.missing_tools()))

NAME = f"rm{os.getpid() % 10000}r"
CE2 = "192.168.2.2"
CLIENTS = ("rw1", "rw2")
MARK = "5a5a6c73722d726f616d2d6d61726b21"  # "ZZlsr-roam-mark!"


@pytest.fixture(scope="module")
def L():
    try:
        yield lab.up(load_topology(TOPOLOGIES / "ipsec-roam.yaml"), name=NAME, timeout=40)
    finally:
        lab.down(NAME)


def _ra(L) -> dict:
    (ra,) = L.query("pe2", "ipsec", view="sas")["remote_access"]
    return ra


def _clients(L) -> dict[str, dict]:
    """identity's node -> its client entry, for those established with a Child SA."""
    return {c["identity"].split(".")[0]: c for c in _ra(L)["clients"]
            if c["state"] == "established" and c["virtual_ip"] and c["child_sas"]}


def _up(L, *nodes: str, timeout: float = 20) -> dict[str, dict]:
    return wait_for(lambda: (lambda cs: cs if set(nodes) <= set(cs) else None)(_clients(L)), timeout,
                    lambda: f"{nodes} up at pe2: {json.dumps(_ra(L), indent=1)[-3000:]}")


def _swanctl(node: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["swanctl", *args, "--uri", f"unix://{strongswan.node_dir(NAME, node)}/charon.vici"],
                          capture_output=True, text=True, timeout=30)


def _ping(L, node: str, dst: str, count: int = 3) -> subprocess.CompletedProcess:
    return L.run(node, ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1", "-p", MARK, dst])


def _ip(frame: bytes) -> tuple[bytes, int] | None:
    """(IPv4 packet, number of labels) of a frame, or None."""
    et, off, labels = frame[12:14], 14, 0
    if et == b"\x88\x47":
        while off + 4 <= len(frame):
            labels += 1
            off += 4
            if frame[off - 2] & 1:
                break
    elif et != b"\x08\x00":
        return None
    ip = frame[off:]
    return (ip, labels) if len(ip) >= 20 and ip[0] >> 4 == 4 else None


def test_two_clients_each_get_an_address_and_reach_the_far_host_through_the_core(L, tmp_path):
    cs = _up(L, *CLIENTS)
    vips = {n: cs[n]["virtual_ip"] for n in CLIENTS}
    assert len(set(vips.values())) == 2 and all(v.startswith("100.64.0.") for v in vips.values())
    # charon's own view: the address it was given (RFC 7296 §3.15 CFG_REPLY) and its Child SA
    for n in CLIENTS:
        text = _swanctl(n, "--list-sas").stdout
        assert f"[{vips[n]}]" in text and f"{vips[n]}/32" in text, text
        assert "INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-128" in text, text
    cap = Capture(f"lsr-{NAME}.p1", "eth1", tmp_path / "core.pcap")  # pe1 -> p1 labelled
    try:
        for n in CLIENTS:
            r = _ping(L, n, CE2)
            assert r.returncode == 0, (n, r.stdout)
        r = _ping(L, "ce2", vips["rw2"])  # and the far host to a client
        assert r.returncode == 0, r.stdout

        def enough(frames: list[bytes]) -> bool:
            ips = [x for x in map(_ip, frames) if x is not None]
            return sum(1 for ip, labels in ips if labels and ip[9] == 17 and ip[22:24] == b"\x11\x94") >= 9
        cap.wait(enough, 10, "9 labelled ESP-in-UDP frames from pe1")
    finally:
        cap.stop()
    frames = pcap_frames(cap.pcap)
    assert bytes.fromhex(MARK) not in cap.pcap.read_bytes()  # no payload in clear
    ips = [x for x in map(_ip, frames) if x is not None]
    clear = [ip for ip, _ in ips if ip[9] == 1 or ip[12:16] in (bytes([100, 64, 0, i]) for i in range(16))]
    assert not clear, f"{len(clear)} packets in clear on the core"
    esp = [(ip, labels) for ip, labels in ips if ip[9] == 17 and ip[22:24] == b"\x11\x94"
           and ip[28:32] != bytes(4)]  # UDP 4500 with an SPI: ESP (RFC 3948)
    assert any(labels for _, labels in esp) and any(not labels for _, labels in esp)  # both ways
    srcs = {ip[12:16] for ip, _ in esp}
    assert {bytes([198, 51, 100, 1]), bytes([198, 51, 100, 5]), bytes([10, 255, 0, 3])} <= srcs


def test_sas_show_the_clients_with_their_virtual_ips(L):
    from lsr.cli import main

    cs = _up(L, *CLIENTS)
    r = CliRunner().invoke(main, ["lab", "ipsec", NAME, "pe2", "sas", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    (ra,) = data["remote_access"]
    assert ra["name"] == "roam" and ra["pool"]["network"] == "100.64.0.0/28"
    leases = {x["identity"]: x["address"] for x in ra["pool"]["leases"]}
    for n in CLIENTS:
        assert leases[f"{n}.roam.lsr.test"] == cs[n]["virtual_ip"]
        assert {s["name"] for s in data["sas"]} >= {cs[n]["name"] + "-out", cs[n]["name"] + "-in"}
    r = CliRunner().invoke(main, ["lab", "ipsec", NAME, "pe2", "sas"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "remote access roam" in r.output, r.output
    for n in CLIENTS:
        assert cs[n]["virtual_ip"] in r.output and f"{n}.roam.lsr.test" in r.output
    pol = L.query("pe2", "ipsec", view="policies")
    assert {p["dst"] for p in pol["outbound"]} >= {cs[n]["virtual_ip"] + "/32" for n in CLIENTS}


def test_wrong_psk_is_auth_failed_on_both_sides(L):
    _up(L, *CLIENTS)
    log = strongswan.log_path(NAME, "rw1")
    mark = len(log.read_text())
    L.query("pe2", "ipsec", view="set-psk", conn="roam", psk="not-the-psk-rw1-has")
    try:
        _swanctl("rw1", "--terminate", "--ike", "roam")
        r = _swanctl("rw1", "--initiate", "--child", "roam", "--timeout", "10")
        assert r.returncode != 0, r.stdout
        wait_for(lambda: "received AUTHENTICATION_FAILED notify error" in log.read_text()[mark:], 10,
                 "charon's AUTH_FAILED")
        (f, *_) = [f for f in _ra(L)["failures"] if f["remote"] == "198.51.100.1"]
        assert "AUTH_FAILED" in f["error"], f
        audit = L.query("pe2", "ipsec", view="audit")
        assert any(a["reason"] == "ike-failed" and "AUTH_FAILED" in a["detail"] for a in audit)
        assert "rw1" not in _clients(L) and "rw2" in _clients(L)  # the other one is untouched
        assert "rw1.roam.lsr.test" not in {x["identity"] for x in _ra(L)["pool"]["leases"]}
    finally:
        L.query("pe2", "ipsec", view="set-psk", conn="roam", psk="lsr-roam-psk-not-secret")
    r = _swanctl("rw1", "--initiate", "--child", "roam", "--timeout", "10")
    assert r.returncode == 0, r.stdout + r.stderr
    _up(L, *CLIENTS)
    assert _ping(L, "rw1", CE2).returncode == 0


def test_disconnect_frees_the_address_and_reconnect_gets_one(L):
    cs = _up(L, *CLIENTS)
    before = _ra(L)["pool"]["in_use"]
    r = _swanctl("rw1", "--terminate", "--ike", "roam")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for(lambda: _ra(L)["pool"]["in_use"] == before - 1, 10, "rw1's address released")
    ra = _ra(L)
    assert cs["rw1"]["virtual_ip"] not in {x["address"] for x in ra["pool"]["leases"]}
    assert not [c for c in ra["clients"] if c["identity"] == "rw1.roam.lsr.test"]
    assert not [s for s in L.query("pe2", "ipsec", view="sas")["sas"] if s["name"].startswith(cs["rw1"]["name"] + "-")]
    r = _swanctl("rw1", "--initiate", "--child", "roam", "--timeout", "10")
    assert r.returncode == 0, r.stdout + r.stderr
    again = _up(L, *CLIENTS)
    assert again["rw1"]["virtual_ip"] and again["rw1"]["name"] != cs["rw1"]["name"]
    assert _ra(L)["pool"]["in_use"] == before
    assert _ping(L, "rw1", CE2).returncode == 0


def test_pe_restart_brings_both_clients_back(L):
    _up(L, *CLIENTS)
    from lsr.cli import main

    for what in ("stop", "start"):
        r = CliRunner().invoke(main, ["lab", "node", NAME, "pe2", what])
        assert r.exit_code == 0, r.output
    # the clients' dead peer detection (2 s, 3 retransmissions) finds the IKE SA gone and
    # connects again (dpd_action = restart): new IKE SAs, an address each
    cs = _up(L, *CLIENTS, timeout=40)
    assert len({cs[n]["virtual_ip"] for n in CLIENTS}) == 2
    for n in CLIENTS:
        assert _ping(L, n, CE2).returncode == 0
        assert re.search(r"ESTABLISHED", _swanctl(n, "--list-sas").stdout)


def test_roaming_config_files_are_private(L):
    for n in CLIENTS:
        d = strongswan.node_dir(NAME, n)
        assert (d / "swanctl.conf").stat().st_mode & 0o077 == 0
        assert "vips = 0.0.0.0" in (d / "swanctl.conf").read_text()
    assert isinstance(Path(d), Path)
