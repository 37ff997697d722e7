"""RFC 5036 App. A LMp.10a against FRR: FRR re-maps a FEC with a new label, we release
the old one, on the wire.

FRR's ldpd changes the label of one of its own FECs without withdrawing it when the
access list of `label local advertise explicit-null for ACL` changes
(lde_change_expnull_for_filter: a new Label Mapping, imp-null -> exp-null and back).
Toggling the global `explicit-null` does not do it: FRR then withdraws every null
label with a wildcard Withdraw first, so no mapping is ever replaced.

Needs root, FRR (/usr/lib/frr/ldpd, vtysh), tcpdump and tshark.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, frr_missing, is_root

FRR_WHY = frr_missing()
pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not is_root(), reason="needs root"),
    pytest.mark.skipif(FRR_WHY is not None, reason=f"FRR not usable: {FRR_WHY}"),
    pytest.mark.skipif(shutil.which("tshark") is None or shutil.which("tcpdump") is None,
                       reason="needs tshark and tcpdump"),
]

if is_root() and FRR_WHY is None:
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab import frr
    from lsr.lab.state import LabState, lab_dir, pid_alive

NAME = f"e{os.getpid() % 1000}1"  # lab names of this file: 'e' + digits
FEC = "10.255.0.2/32"  # f1's loopback: FRR is the egress, label imp-null (3) or exp-null (0)
PE1 = "10.255.0.1"  # pe1's LSR ID and transport address
F1 = "10.255.0.2"
RELEASE, MAPPING, WITHDRAW = 0x0403, 0x0400, 0x0402


def _wait(pred, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _wait_logged(log: Path, mark: int, text: str, what: str) -> None:
    """Poll FRR's ldpd log (from byte `mark` on) for `text`."""
    _wait(lambda: text in log.read_text()[mark:], 15, what)


def _label_from_f1(router: str) -> int | None:
    for b in lab.ldp(NAME, router, "bindings")["bindings"]:
        if b["fec"] == FEC:
            return next((r["label"] for r in b["remote"] if r["neighbor"] == "f1"), None)
    return None


def _pushes(router: str) -> list[tuple[str, list[int]]]:
    ftn = lab.lfib(NAME, [router])["routers"][router]["ftn"]
    return [(nh["neighbor"], nh["out_labels"]) for e in ftn if e["fec"] == FEC
            for nh in e["nexthops"]]


def _ldp_messages(pcap: Path) -> list[dict[str, Any]]:
    """Every LDP message in the capture as tshark decodes it: source, type, FECs, label."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", "tcp.analyze_sequence_numbers:FALSE", "-Y", "ldp",
         "-T", "json", "--no-duplicate-keys", "-J", "ip ldp"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    msgs: list[dict[str, Any]] = []

    def walk(node: Any, src: str) -> None:
        if isinstance(node, list):
            for n in node:
                walk(n, src)
        elif isinstance(node, dict):
            if "ldp.msg.type" in node:
                fecs: list[str] = []
                labels: list[int] = []
                _collect(node, fecs, labels)
                msgs.append({"src": src, "type": int(node["ldp.msg.type"], 16),
                             "fecs": fecs, "labels": labels})
                return
            for v in node.values():
                walk(v, src)

    for frame in json.loads(out.stdout or "[]"):
        layers = frame["_source"]["layers"]
        src = layers["ip"]["ip.src"]
        walk(layers.get("ldp"), src if isinstance(src, str) else src[0])
    return msgs


def _collect(node: Any, fecs: list[str], labels: list[int]) -> None:
    """FEC prefixes ("10.255.0.2/32") and generic labels under one decoded message."""
    if isinstance(node, list):
        for n in node:
            _collect(n, fecs, labels)
    elif isinstance(node, dict):
        if "ldp.msg.tlv.fec.pfval" in node:  # one Prefix FEC element
            fecs.append(f"{node['ldp.msg.tlv.fec.pfval']}/{node['ldp.msg.tlv.fec.len']}")
        if "ldp.msg.tlv.generic.label" in node:
            labels.append(int(node["ldp.msg.tlv.generic.label"]))
        for v in node.values():
            _collect(v, fecs, labels)


def test_frr_changes_its_label_we_release_the_old_one(tmp_path: Path):
    """ce1 - pe1 - f1 (FRR) - pe2 - ce2. f1 re-advertises its loopback FEC with exp-null
    (0) instead of imp-null (3), then back, each time without a Withdraw: both of our
    routers answer with a Label Release of the old label (LMp.10a), seen by tshark on
    pe1-f1, and their FTN/ILM push the new label."""
    pids: list = []
    pcap = tmp_path / "pe1-f1.pcap"
    try:
        L = lab.up(load_topology(ROOT / "tests" / "data" / "frr-line.yaml"), name=NAME,
                   timeout=40)
        pids = [(p["pid"], p["start"]) for p in LabState(NAME).read().get("pids", [])]
        assert L.topo.nodes["f1"].kind == "frr"
        log = frr.log_path(NAME, "f1", "ldpd")
        # Explicit-null only for the FECs the access list EXPNULL permits; it does not
        # exist yet, so nothing changes label -- but this configuration change itself
        # makes FRR withdraw its null labels (wildcard) and map them again: let it settle.
        mark = log.stat().st_size
        frr.vtysh(NAME, "f1", "configure terminal", "mpls ldp", "address-family ipv4",
                  "label local advertise explicit-null for EXPNULL", "end", timeout=30)
        for peer in (PE1, "10.255.0.3"):
            _wait_logged(log, mark, f"msg[out]: label mapping: lsr-id {peer}, fec {FEC}, "
                         "label imp-null", f"FRR to map {FEC} to {peer} again")
        _wait(lambda: _label_from_f1("pe1") == 3 and _label_from_f1("pe2") == 3, 15,
              "imp-null from f1 on pe1 and pe2")
        assert _pushes("pe1") == [("f1", [])]  # PHP toward the egress

        cap = subprocess.Popen(["ip", "netns", "exec", f"lsr-{NAME}.pe1", "tcpdump", "-i",
                                "eth2", "-U", "--immediate-mode", "-w", str(pcap),
                                "tcp port 646"], stderr=subprocess.PIPE, text=True)
        try:
            assert "listening" in cap.stderr.readline()
            for acl, new, name in (("access-list", 0, "imp-null"),
                                   ("no access-list", 3, "exp-null")):
                mark = log.stat().st_size
                frr.vtysh(NAME, "f1", "configure terminal",  # (slow on a loaded machine)
                          f"{acl} EXPNULL seq 5 permit {FEC}", "end", timeout=30)
                for peer in (PE1, "10.255.0.3"):  # the old label, released by pe1 and pe2
                    _wait_logged(log, mark, f"msg[in]: label release: lsr-id {peer}, fec {FEC}, "
                                 f"label {name}", f"FRR to receive {peer}'s Release of {name}")
                _wait(lambda n=new: _label_from_f1("pe1") == n and _label_from_f1("pe2") == n,
                      15, f"label {new} from f1")
                # our LFIB now uses the new label: push 0 (explicit-null), or nothing (PHP)
                want = [] if new == 3 else [0]
                assert _wait(lambda w=want: _pushes("pe1") == [("f1", w)]
                             and _pushes("pe2") == [("f1", w)], 10, "FTN with the new label")
                ilm = [e for e in lab.lfib(NAME, ["pe1"])["routers"]["pe1"]["ilm"]
                       if e["fec"] == FEC]
                assert [(n["op"], n["out_labels"]) for e in ilm for n in e["nexthops"]] == [
                    ("pop", []) if new == 3 else ("swap", [0])]
                # FRR never withdrew: the new mapping replaced the old one
                assert "label withdraw" not in log.read_text()[mark:]
            time.sleep(0.3)  # the last Release is on the wire (FRR logged it); flush tcpdump
        finally:
            cap.send_signal(signal.SIGINT)
            cap.wait(timeout=10)
    finally:
        lab.down(NAME)
    nss = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"lsr-{NAME}." not in nss and not lab_dir(NAME).exists()
    assert not [p for p, st in pids if pid_alive(p, st)]
    assert frr.leftover_processes(NAME) == []

    every = _ldp_messages(pcap)
    assert not [m for m in every if m["type"] == WITHDRAW]  # nobody withdrew anything
    msgs = [m for m in every if FEC in m["fecs"]]
    seen = [(m["src"], m["type"], m["labels"]) for m in msgs]
    # on pe1-f1: f1 maps 0, pe1 releases 3; f1 maps 3, pe1 releases 0
    assert seen == [(F1, MAPPING, [0]), (PE1, RELEASE, [3]),
                    (F1, MAPPING, [3]), (PE1, RELEASE, [0])], seen
