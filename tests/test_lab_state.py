"""The lab registry without namespaces (no root needed): claiming a name, records for a lab
that is gone, teardown of a lab another process is building, namespaces that are not
ours, and namespace names that two labs could share (issue 21, items 5 and 8)."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from pathlib import Path

import pytest

import lsr.lab.state as lab_state
from lsr.errors import LsrError
from lsr.lab import netns
from lsr.lab.state import LabState, ns_name, pid_alive, proc_start_time, teardown


@pytest.fixture()
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "run"
    monkeypatch.setattr(lab_state, "RUN_DIR", d)
    return d


def test_a_name_is_claimed_once(run_dir, monkeypatch):
    monkeypatch.setenv("SUDO_USER", "alice")  # the same user claims it twice
    LabState("hl1").claim({"topology": "x"})
    with pytest.raises(LsrError) as e:
        LabState("hl1").claim({"topology": "y"})
    assert re.fullmatch(
        rf"lab 'hl1' is being built by another 'lsr lab up' \(yours, pid {os.getpid()}, since "
        r"\d\d:\d\d:\d\d, 00:00:0\d ago\); 'lsr lab down hl1' stops it, or choose another name "
        r"with --name", str(e.value)), str(e.value)
    assert LabState("hl1").read()["topology"] == "x"  # the loser touched nothing
    LabState("hl1").set("building", False)
    with pytest.raises(LsrError, match=r"^lab 'hl1' is already up \(yours, since .*\): lsr lab "
                                       r"down hl1 first, or choose another name with --name$"):
        LabState("hl1").claim({})


def test_a_half_made_claim_is_named_and_removable(run_dir):
    (run_dir / "hl2").mkdir(parents=True)
    (run_dir / "hl2" / ".lock").touch()
    with pytest.raises(LsrError, match="being created by another process, or was left half-made"):
        LabState("hl2").claim({})
    assert teardown("hl2") is True and not (run_dir / "hl2").exists()
    (run_dir / "hl3").mkdir()
    (run_dir / "hl3" / "precious").touch()
    with pytest.raises(LsrError, match="is not a lab state directory"):
        teardown("hl3")
    assert (run_dir / "hl3" / "precious").exists()


def test_no_record_for_a_lab_that_is_gone(run_dir):
    """A record written after teardown used to make the directory again, holding only
    what came later: a lab `lsr lab down` could no longer fully see."""
    st = LabState("hl4")
    st.claim({})
    assert teardown("hl4") is True
    with pytest.raises(lab_state.Gone, match="was torn down while this command was using it"):
        st.add_namespace(ns_name("hl4", "p1"))
    assert not (run_dir / "hl4").exists()


def test_teardown_stops_the_process_still_building(run_dir):
    builder = subprocess.Popen(["sleep", "60"])
    try:
        st = LabState("hl5")
        st.claim({})
        st.set("builder", {"pid": builder.pid, "start": proc_start_time(builder.pid)})
        assert teardown("hl5") is True
        assert builder.wait(timeout=10) == -15  # SIGTERM: `lsr lab up` tears down and exits
        assert not (run_dir / "hl5").exists()
    finally:
        builder.kill()
        builder.wait()


def test_teardown_signals_nobody_once_built(run_dir):
    builder = subprocess.Popen(["sleep", "60"])
    try:
        st = LabState("hl6")
        st.claim({})
        st.set("builder", {"pid": builder.pid, "start": proc_start_time(builder.pid)})
        st.set("building", False)
        assert teardown("hl6") is True
        assert pid_alive(builder.pid, proc_start_time(builder.pid))
    finally:
        builder.kill()
        builder.wait()


def test_a_namespace_that_exists_already_is_not_recorded(run_dir, monkeypatch):
    """Between the check and `ip netns add` another process made the namespace: this lab
    forgets it, so its teardown never deletes someone else's namespace."""
    from lsr.core.topology import load_topology

    from .conftest import TOPOLOGIES

    topo = load_topology(TOPOLOGIES / "line3.yaml")
    st = LabState("hl7")
    st.claim({})
    theirs = ns_name("hl7", "pe1")
    made: list[str] = []

    def run(argv, stdin=None, check=True):
        if argv[:3] == ["ip", "netns", "add"]:
            if argv[3] == theirs:
                raise LsrError("ip netns add: Cannot create namespace file: File exists")
            made.append(argv[3])
        return ""

    monkeypatch.setattr(netns, "run", run)
    monkeypatch.setattr(netns, "write_sysctls", lambda ns, values: None)  # (lsr.lab.nsctl)
    monkeypatch.setattr(netns, "namespace_exists", lambda ns: ns == theirs and bool(made))
    with pytest.raises(LsrError, match=f"namespace {theirs} already exists and lab 'hl7' did not make it"):
        netns.create_namespaces(topo, "hl7", st)
    assert st.read()["namespaces"] == made == [ns_name("hl7", "ce1")]


def test_namespace_names_are_one_to_one():
    """`lsr-<lab>-<node>` gave lab a / node x-y and lab a-x / node y the same namespace."""
    parts = ["a", "x", "y", "a-x", "x-y", "a-x-y", "y-"]
    pairs = list(itertools.product(parts, parts))
    assert len({ns_name(lab, node) for lab, node in pairs}) == len(pairs)
    assert ns_name("line3", "pe1") == "lsr-line3.pe1"
    assert lab_state.node_of(ns_name("a-x", "ce-lon")) == "ce-lon"
