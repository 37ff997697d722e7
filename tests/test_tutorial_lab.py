"""docs/tutorial.md's ```console-lab blocks run as written on a real lab (root only).

Each `$ ` line runs in a shell (without `sudo`, since the test is root) from a
scratch directory where `topologies/` points at the bundled files; it must
exit 0, and print what follows it, where `...` (a whole line or inside a line)
matches anything. A line that only sets shell variables (`LAB=lab-$USER`) holds
for every later command, as in the reader's shell. The reader is a student who
runs lsr through sudo: `SUDO_USER` is a name of this run's own (the labs'
names derive from it, so parallel runs do not collide). Labs the blocks bring
up are torn down whatever happens.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from lsr.core.topology import load_topology
from tests.conftest import needs_root
from tests.test_tutorial import ROOT, TUTORIAL, commands, scratch

LAB_BLOCK = re.compile(r"^```console-lab\n(.*?)^```", re.S | re.M)
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*")
pytestmark = [pytest.mark.netns, needs_root]
STUDENT = f"{os.environ.get('LSR_TEST_LAB_PREFIX', 't')}{os.getpid() % 10000}"


def lab_matches(expected: list[str], actual: str) -> bool:
    norm = " ".join("\n".join(expected).split())
    pattern = r"\s*.*?\s*".join(re.escape(part.strip()) for part in norm.split("..."))
    return re.fullmatch(r"\s*" + pattern + r"\s*", " ".join(actual.split()), re.S) is not None


def test_lab_matcher() -> None:
    assert lab_matches(["lab x up in ... s", "..."], "lab x up in 0.9 s\nmore")
    assert not lab_matches(["lab x up"], "lab y up")


def test_console_lab_blocks(tmp_path: Path) -> None:
    text = TUTORIAL.read_text()
    blocks = [(text[:m.start()].count("\n") + 1, m.group(1)) for m in LAB_BLOCK.finditer(text)]
    assert len(blocks) >= 3
    env = {**os.environ, "SUDO_USER": STUDENT, "SUDO_UID": "4242"}
    cwd = scratch(tmp_path)
    sets: list[str] = []  # the variable assignments so far, in order
    labs: set[str] = set()
    try:
        for line, body in blocks:
            for cmd, expected in commands(body):
                shell = cmd.replace("sudo ", "")
                if ASSIGNMENT.fullmatch(shell):
                    sets.append(shell)
                argv = shlex.split(shell) if shell.startswith("lsr lab up ") else []
                if "--name" in argv:  # what the shell makes of it, to tear it down
                    labs.add(_expand(sets, argv[argv.index("--name") + 1], env))
                elif argv:  # the file's `name:` (6pe.yaml's is sixpe: a name starts with a letter)
                    labs.add(load_topology(ROOT / argv[3]).name)
                r = subprocess.run(["bash", "-o", "pipefail", "-c", "; ".join([*sets, shell])],
                                   cwd=cwd, capture_output=True, text=True, timeout=120, env=env)
                out = r.stdout + r.stderr
                assert r.returncode == 0, f"docs/tutorial.md:{line}: `{cmd}` exit {r.returncode}:\n{out}"
                if expected:
                    assert lab_matches(expected, out), (
                        f"docs/tutorial.md:{line}: `{cmd}` printed:\n{out}\nexpected:\n"
                        + "\n".join(expected))
    finally:
        for lab in labs:
            subprocess.run(["lsr", "lab", "down", lab], capture_output=True, env=env)


def _expand(sets: list[str], word: str, env: dict[str, str]) -> str:
    """`word` ($LAB) as the reader's shell expands it after the assignments `sets`."""
    return subprocess.run(["bash", "-c", "; ".join([*sets, f"echo {word}"])], env=env,
                          capture_output=True, text=True).stdout.strip()
