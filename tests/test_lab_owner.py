"""Labs on a shared machine (no root needed): who a lab belongs to, `lab up` of a taken
name, `lab down` of someone else's lab, `lab list` with owners and ages, `demo --name`.
The users are `SUDO_USER` (how a student runs lsr: sudo, or a `sudo -s` root shell)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import lsr.cli.demo as demo_cli
import lsr.lab as L
import lsr.lab.state as lab_state
from lsr.cli import main
from lsr.errors import LsrError
from lsr.lab import owner
from lsr.lab.state import LabState


@pytest.fixture()
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "run"
    monkeypatch.setattr(lab_state, "RUN_DIR", d)
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # lab commands check for root only
    return d


def as_user(monkeypatch: pytest.MonkeyPatch, user: str, uid: int = 1000) -> None:
    monkeypatch.setenv("SUDO_USER", user)
    monkeypatch.setenv("SUDO_UID", str(uid))


def built(name: str, topology: str = "line3") -> LabState:
    """A lab as `lab up` leaves it once built (no namespaces: nothing to tear down)."""
    st = LabState(name)
    st.claim({"topology": topology, "nodes": ["ce1", "pe1", "p1", "pe2", "ce2"],
              "routers": ["pe1", "p1", "pe2"]})
    st.set("building", False)
    return st


def test_the_invoking_user(monkeypatch: pytest.MonkeyPatch) -> None:
    as_user(monkeypatch, "alice", 1001)
    assert owner.invoking_user() == {"user": "alice", "uid": 1001}
    monkeypatch.delenv("SUDO_USER")
    monkeypatch.setattr(os, "getlogin", lambda: "root")  # a `su -` root shell: logname
    assert owner.invoking_user() == {"user": "root", "uid": 0}

    def no_terminal() -> str:
        raise OSError(6, "No such device or address")
    monkeypatch.setattr(os, "getlogin", no_terminal)  # cron, CI: the uid's name
    assert owner.invoking_user()["uid"] == os.getuid()


def test_personal_names() -> None:
    assert owner.personal_name("demo", {"user": "alice", "uid": 1001}) == "demo-alice"
    assert owner.personal_name("demo", {"user": "J.Doe", "uid": 1002}) == "demo-u1002"
    assert owner.personal_name("demo", {"user": "student07", "uid": 1003}) == "demo-u1003"
    name = owner.personal_name("demo", {"user": "J.Doe", "uid": None})
    assert name is not None and len(name) == 12 and name.startswith("demo-u")
    assert owner.personal_name("line3-md5", {"user": "alice", "uid": 1001}) is None


def test_a_taken_name_says_whose_and_never_suggests_taking_it_down(run_dir, monkeypatch):
    as_user(monkeypatch, "alice")
    built("line3")
    as_user(monkeypatch, "bob", 1002)
    with pytest.raises(LsrError) as e:
        LabState("line3").claim({})
    msg = str(e.value)
    assert msg.startswith("lab 'line3' is already up (alice's, since "), msg
    assert msg.endswith(": choose another name with --name, e.g. --name line3-bob"), msg
    assert "lab down" not in msg and "\n" not in msg
    # alice's own second `lab up` may be told to take hers down
    as_user(monkeypatch, "alice")
    with pytest.raises(LsrError, match=r"\(yours, since .*\): lsr lab down line3 first"):
        LabState("line3").claim({})


def test_a_build_in_progress_names_its_owner(run_dir, monkeypatch):
    as_user(monkeypatch, "alice")
    LabState("line3").claim({})
    as_user(monkeypatch, "bob", 1002)
    with pytest.raises(LsrError) as e:
        LabState("line3").claim({})
    assert f"(alice's, pid {os.getpid()}, since " in str(e.value)
    assert "lab down" not in str(e.value) and "--name line3-bob" in str(e.value)


def test_down_of_someone_elses_lab_needs_force(run_dir, monkeypatch):
    as_user(monkeypatch, "alice")
    built("line3")
    as_user(monkeypatch, "bob", 1002)
    with pytest.raises(L.LabError) as e:
        L.down("line3")
    assert str(e.value).startswith("lab 'line3' belongs to alice (up since ")
    assert str(e.value).endswith(": not taken down; lsr lab down line3 --force takes down "
                                 "someone else's lab")
    assert LabState("line3").exists()
    r = CliRunner().invoke(main, ["lab", "down", "line3"])
    assert r.exit_code == 2 and r.output.startswith("lsr: lab 'line3' belongs to alice")
    assert len(r.output.splitlines()) == 1 and LabState("line3").exists()
    r = CliRunner().invoke(main, ["lab", "down", "line3", "--force"])
    assert r.exit_code == 0 and r.output == "lab line3 down\n"
    assert not LabState("line3").exists()


def test_down_of_ones_own_lab_and_of_a_lab_without_owner(run_dir, monkeypatch):
    as_user(monkeypatch, "alice")
    built("line3")
    assert L.down("line3") is True
    st = built("diamond")
    with st.update() as d:  # a lab brought up before owners were recorded
        del d["owner"]
    as_user(monkeypatch, "bob", 1002)
    assert L.down("diamond") is True


def test_list_shows_owner_and_age(run_dir, monkeypatch):
    as_user(monkeypatch, "alice", 1001)
    built("line3")
    with LabState("line3").update() as d:
        d["created"] = time.time() - 3725  # up 1 h 2 min 5 s
    as_user(monkeypatch, "bob", 1002)
    LabState("diamond").claim({"topology": "diamond", "routers": ["pe1", "p1", "p2", "pe2"]})
    r = CliRunner().invoke(main, ["lab", "list", "--json"])
    assert r.exit_code == 0, r.output
    labs = json.loads(r.output)["labs"]
    assert [(x["name"], x["owner"], x["uid"], x["state"], x["routers"]) for x in labs] == [
        ("diamond", "bob", 1002, "building", 4), ("line3", "alice", 1001, "up", 3)]
    assert labs[1]["uptime"] == pytest.approx(3725, abs=5)
    assert labs[1]["started"] == pytest.approx(time.time() - 3725, abs=5)
    assert labs[1]["topology"] == "line3" and labs[1]["nodes"] == 5
    r = CliRunner().invoke(main, ["lab", "list"])
    line = next(ln for ln in r.output.splitlines() if "line3" in ln)
    assert "alice" in line and "01:02:0" in line and " up " in line, r.output


def test_list_states_and_none(run_dir, monkeypatch):
    r = CliRunner().invoke(main, ["lab", "list"])
    assert r.exit_code == 0 and r.output == "no labs\n"
    st = built("line3")
    st.set("failed", "lab 'line3' did not converge: ...")
    LabState("ring").claim({})
    LabState("ring").set("builder", {"pid": 2 ** 22 + 1, "start": 1})  # no such process
    assert {x["name"]: x["state"] for x in L.labs()} == {"line3": "failed", "ring": "stale"}


def test_list_needs_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    r = CliRunner().invoke(main, ["lab", "list"])
    assert r.exit_code == 2 and r.output == "lsr: lab commands need root\n"


def test_demo_name(monkeypatch):
    as_user(monkeypatch, "alice")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(demo_cli, "check_system_tools", lambda: None)
    names: list[str] = []
    monkeypatch.setattr(demo_cli, "_lab_demo", lambda ctx, path, topo, src, dst, name:
                        names.append(name))
    assert CliRunner().invoke(main, ["demo"]).exit_code == 0
    assert CliRunner().invoke(main, ["demo", "--name", "mine"]).exit_code == 0
    as_user(monkeypatch, "bob", 1002)
    assert CliRunner().invoke(main, ["demo", "-t", "line3"]).exit_code == 0
    assert names == ["demo-alice", "mine", "demo-bob"]
    r = CliRunner().invoke(main, ["demo", "--name", "Not-A-Name"])
    assert r.exit_code == 2 and r.output.startswith("lsr: lab name 'Not-A-Name' must be")
    assert names == ["demo-alice", "mine", "demo-bob"]
