"""docs/tutorial.md runs as written: every ```console block is replayed.

Block format: lines starting with `$ ` are commands (run from the repository
root; outputs they write go to a scratch directory), the lines after a
command are its expected output. Comparison collapses whitespace (so table
wrapping does not matter) and a line `...` matches anything. Only `lsr`
commands are run (in-process, click's CliRunner, rich at 100 columns).
```console-lab blocks (a real lab: root, namespaces, live timings) are
always skipped.

Regenerate the outputs after a deliberate change with
`python tests/test_tutorial.py --update` and review the diff; `...` lines are
kept as written (the text after them is re-matched against the new output).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
WIDTH = 100
BLOCK = re.compile(r"^```console\n(.*?)^```", re.S | re.M)


def blocks(text: str) -> list[tuple[int, str]]:
    """(line number, body) of every ```console block (not ```console-lab)."""
    return [(text[:m.start()].count("\n") + 1, m.group(1)) for m in BLOCK.finditer(text)]


def commands(body: str) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line)
    return out


def run(cmd: str, cwd: Path) -> str:
    """Run one `lsr ...` command in-process; stdout + stderr."""
    from click.testing import CliRunner
    from rich.console import Console

    import lsr.render
    from lsr.cli import main

    argv = shlex.split(cmd)
    assert argv[0] == "lsr", f"only lsr commands can run in the tutorial test: {cmd}"
    old_console, old_cwd = lsr.render.console, os.getcwd()
    lsr.render.console = Console(width=WIDTH, color_system=None, force_terminal=False)
    os.chdir(cwd)
    try:
        r = CliRunner().invoke(main, argv[1:], catch_exceptions=True)
    finally:
        os.chdir(old_cwd)
        lsr.render.console = old_console
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    out = r.output
    return out


def _norm(s: str) -> str:
    return " ".join(s.split())


def matches(expected: list[str], actual: str) -> bool:
    """Whitespace-insensitive match; a line '...' is a wildcard."""
    parts: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == "...":
            parts.append([])
        else:
            parts[-1].append(line)
    pattern = r"\s*(?:.*?)\s*".join(re.escape(_norm("\n".join(p))) for p in parts)
    return re.fullmatch(r"\s*" + pattern + r"\s*", _norm(actual), re.S) is not None


def scratch(tmp: Path) -> Path:
    """A working directory where `topologies/` resolves to the bundled files."""
    (tmp / "topologies").symlink_to(ROOT / "topologies")
    (tmp / "docs").symlink_to(ROOT / "docs")
    return tmp


CASES = blocks(TUTORIAL.read_text()) if TUTORIAL.exists() else []


def test_tutorial_has_blocks() -> None:
    text = TUTORIAL.read_text()
    assert len(CASES) >= 15
    assert "```console-lab" in text


@pytest.mark.parametrize("line,body", CASES, ids=[f"line{n}" for n, _ in CASES])
def test_block(line: int, body: str, tmp_path: Path) -> None:
    cwd = scratch(tmp_path)
    for cmd, expected in commands(body):
        actual = run(cmd, cwd)
        assert matches(expected, actual), (
            f"docs/tutorial.md:{line}: `{cmd}` printed:\n{actual}\nexpected:\n"
            + "\n".join(expected))


def update() -> None:
    """Rewrite the expected outputs with what the commands print now."""
    import tempfile

    text = TUTORIAL.read_text()
    out, pos = [], 0
    for m in BLOCK.finditer(text):
        out.append(text[pos:m.start(1)])
        with tempfile.TemporaryDirectory() as d:
            cwd = scratch(Path(d))
            new = []
            for cmd, expected in commands(m.group(1)):
                actual = run(cmd, cwd).rstrip("\n")
                new.append(f"$ {cmd}")
                if any(x.strip() == "..." for x in expected) and matches(expected, actual):
                    new += expected  # a hand-trimmed block that still matches: keep it
                elif actual:
                    new += [x.rstrip() for x in actual.splitlines()]
            out.append("\n".join(new) + "\n")
        pos = m.end(1)
    out.append(text[pos:])
    TUTORIAL.write_text("".join(out))


def test_lab_chapter_is_for_a_shared_machine() -> None:
    """The console-lab blocks name every lab by the reader's own `$LAB`, never a name two
    students on one machine would both use, and prefix no command with sudo (how to run
    as root is said once)."""
    text = TUTORIAL.read_text()
    lab_blocks = re.findall(r"^```console-lab\n(.*?)^```", text, re.S | re.M)
    cmds = [c for body in lab_blocks for c, _ in commands(body)]
    assert any(c.startswith("LAB=") for c in cmds)
    for c in cmds:
        assert "sudo" not in c, c
        for part in re.split(r"&&|\|\||;", c):
            argv = shlex.split(part.split(">")[0])
            if argv[:2] == ["lsr", "lab"] and argv[2] == "up":
                assert argv[argv.index("--name") + 1] == "$LAB", c
            elif argv[:2] == ["lsr", "lab"] and argv[2] not in ("list",):
                assert argv[3] == "$LAB", c
            if "--lab" in argv:
                assert argv[argv.index("--lab") + 1] == "$LAB", c


def test_matcher() -> None:
    assert matches(["a   b", "...", "z"], "a b\nanything\nmore\nz\n")
    assert matches(["...", "z"], "x\ny\nz")
    assert not matches(["a b"], "a c")
    assert not matches(["a", "...", "z"], "a\nq")
    assert commands("$ lsr x\nout\n$ lsr y\n") == [("lsr x", ["out"]), ("lsr y", [])]


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        sys.path.insert(0, str(ROOT))
        update()
    else:
        print(__doc__)
