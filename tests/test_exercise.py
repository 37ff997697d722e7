"""lsr exercise: start copies the task's topology, check runs the validation engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsr.cli import main
from lsr.teach.exercise import EXERCISES


def lsr(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.output


def test_list() -> None:
    code, out = lsr("exercise", "list", "--json")
    assert code == 0
    ex = json.loads(out)["exercises"]
    assert len(ex) >= 5 and [e["number"] for e in ex] == list(range(1, len(ex) + 1))
    assert {e["kind"] for e in ex} == {"file", "answer"}


def test_start_copies_and_refuses_to_overwrite(tmp_path: Path) -> None:
    code, out = lsr("exercise", "start", "1", "-d", str(tmp_path))
    assert code == 0 and "through p2" in out and "lsr exercise check 1" in out
    assert (tmp_path / "diamond.yaml").exists()
    code, out = lsr("exercise", "start", "1", "-d", str(tmp_path))
    assert code == 2 and "--force" in out
    assert lsr("exercise", "start", "1", "-d", str(tmp_path), "--force")[0] == 0
    assert lsr("exercise", "start", "99")[0] == 2


# exercise -> (edit of the starting file: regex, replacement)
SOLUTIONS = {
    1: (r"(endpoints: \[pe1:eth2, p1:eth1\]\n      cost: )10", r"\g<1>20"),
    3: (r"p1: \{loopback: 10.255.0.2\}", "p1: {loopback: 10.255.0.2, labels: [5000, 5999]}"),
    4: (r"cost: 25", "cost: 31"),
    5: (r"pe2: \{loopback: 10.255.0.3\}", "pe2: {loopback: 10.255.0.3, ldp: {explicit_null: true}}"),
    6: (r"cost: 15", "cost: 10"),
    8: (r"(rd: 10\.255\.0\.3:1, rt: 65000:)2(, interfaces: \[eth1\]\}\n        blue: \{rd: "
        r"10\.255\.0\.3:2, rt: 65000:)1", r"\g<1>1\g<2>2"),
}
ANSWERS = {2: ("cph", "fra"), 7: ("p1", "pe2")}


@pytest.mark.parametrize("number", sorted(SOLUTIONS))
def test_file_exercise_fails_then_passes(number: int, tmp_path: Path) -> None:
    assert lsr("exercise", "start", str(number), "-d", str(tmp_path))[0] == 0
    code, out = lsr("exercise", "check", str(number), "-d", str(tmp_path))
    assert code == 1 and f"exercise {number}: FAIL" in out and "hint:" in out
    (name,) = EXERCISES[number - 1].files
    f = tmp_path / name
    pattern, repl = SOLUTIONS[number]
    text, n = re.subn(pattern, repl, f.read_text())
    assert n == 1
    f.write_text(text)
    code, out = lsr("exercise", "check", str(number), "-d", str(tmp_path))
    assert code == 0, out
    assert f"exercise {number}: PASS" in out
    # the same check, FILE given explicitly, as JSON
    code, out = lsr("exercise", "check", str(number), str(f), "--json")
    j = json.loads(out)
    assert code == 0 and j["result"] == "pass" and j["checks"]
    assert all(c["status"] == "pass" for c in j["checks"])


@pytest.mark.parametrize("number", sorted(ANSWERS))
def test_answer_exercise(number: int) -> None:
    right, wrong = ANSWERS[number]
    code, out = lsr("exercise", "check", str(number), right)
    assert code == 0 and "PASS" in out
    code, out = lsr("exercise", "check", str(number), wrong)
    assert code == 1 and "FAIL" in out and "hint:" in out
    code, out = lsr("exercise", "check", str(number))
    assert code == 1 and "give your answer" in out


def test_rewiring_and_broken_files_fail(tmp_path: Path) -> None:
    lsr("exercise", "start", "1", "-d", str(tmp_path))
    f = tmp_path / "diamond.yaml"
    good = f.read_text()
    # remove the pe1-p1 link: p2 is then the only way, but the wiring was changed
    f.write_text(good.replace("    - endpoints: [pe1:eth2, p1:eth1]\n      cost: 10\n", ""))
    code, out = lsr("exercise", "check", "1", "-d", str(tmp_path))
    assert code == 1 and "rewired" in out
    f.write_text(good.replace("cost: 10", "cost: ten", 1))
    code, out = lsr("exercise", "check", "1", "-d", str(tmp_path))
    assert code == 1 and "does not load" in out
    code, out = lsr("exercise", "check", "1", "-d", str(tmp_path / "nowhere"))
    assert code == 1 and "no such file" in out
