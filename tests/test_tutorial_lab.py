"""docs/tutorial.md's ```console-lab blocks run as written on a real lab (root only).

Each `$ ` line runs in a shell (without `sudo`, since the test is root) from a
scratch directory where `topologies/` points at the bundled files; it must
exit 0, and print what follows it, where `...` (a whole line or inside a line)
matches anything. Labs the blocks bring up are torn down whatever happens.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from lsr.core.topology import load_topology
from tests.conftest import needs_root
from tests.test_tutorial import ROOT, TUTORIAL, commands, scratch

LAB_BLOCK = re.compile(r"^```console-lab\n(.*?)^```", re.S | re.M)
pytestmark = [pytest.mark.netns, needs_root]


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
    # the labs' names are the files' `name:` (6pe.yaml's is sixpe: a name starts with a letter)
    labs = {load_topology(ROOT / f).name for f in
            re.findall(r"lsr lab up ((?:topologies|docs/examples)/[\w-]+\.yaml)", text)}
    cwd = scratch(tmp_path)
    try:
        for line, body in blocks:
            for cmd, expected in commands(body):
                shell = cmd.replace("sudo ", "")
                r = subprocess.run(["bash", "-o", "pipefail", "-c", shell], cwd=cwd,
                                   capture_output=True, text=True, timeout=120)
                out = r.stdout + r.stderr
                assert r.returncode == 0, f"docs/tutorial.md:{line}: `{cmd}` exit {r.returncode}:\n{out}"
                if expected:
                    assert lab_matches(expected, out), (
                        f"docs/tutorial.md:{line}: `{cmd}` printed:\n{out}\nexpected:\n"
                        + "\n".join(expected))
    finally:
        for lab in labs:
            subprocess.run(["lsr", "lab", "down", lab], capture_output=True)
