"""Benchmark: loading a big topology file, and refusing files past the limits.

    python -m benchmarks.bench_topology [--routers 20000] [--extra 20001] [--reps 3]

A random topogen topology (spanning tree + extra links, every link with a cost) is
written to a temp file; `lsr topo validate` runs on it in a fresh interpreter, and its
CPU seconds, wall seconds and peak RSS are reported, with the YAML step (read + parse)
timed on its own in this process. Then the same for files the limits refuse.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.topogen import random_topology_yaml  # noqa: E402
from lsr.core import yamlpos  # noqa: E402

MB = 1 << 20
# The CLI, reporting its peak RSS at exit: VmHWM of its own memory (a child's ru_maxrss
# starts from the RSS of the parent it was forked from, this benchmark's).
CLI = ("import atexit, sys; atexit.register(lambda: sys.stderr.write(next(ln for ln in "
       "open('/proc/self/status') if ln.startswith('VmHWM')))); "
       "from lsr.cli import main; sys.argv[0] = 'lsr'; main()")


def validate(path: Path) -> tuple[float, float, int, str]:
    """CPU s, wall s, peak RSS (MB) and the first output line of `lsr topo validate`."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", CLI, "topo", "validate", str(path)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = p.stdout.read()
    _, _, ru = os.wait4(p.pid, 0)  # this child's own CPU time
    wall = time.perf_counter() - t0
    p.returncode = 0  # reaped above
    lines = out.strip().splitlines()
    hwm = next(int(ln.split()[1]) for ln in lines if ln.startswith("VmHWM"))
    return ru.ru_utime + ru.ru_stime, wall, hwm >> 10, lines[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routers", type=int, default=20_000)
    ap.add_argument("--extra", type=int, default=20_001, help="links beyond the spanning tree")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        big = Path(d) / "big.yaml"
        big.write_text(random_topology_yaml(a.routers, a.extra, 1, max_cost=20, name="big"))
        text = big.read_text()
        t0 = time.process_time()
        yamlpos.load_located(text)
        print(f"{big.stat().st_size / MB:.1f} MB; YAML read + parse: "
              f"{time.process_time() - t0:.2f} s CPU")
        for _ in range(a.reps):
            cpu, wall, rss, line = validate(big)
            print(f"validate: {cpu:.2f} s CPU, {wall:.2f} s wall, {rss} MB peak RSS: {line}")
        refused = {
            "flow list 50 MB": "name: x\nl: [" + "0, " * (50 * MB // 3) + "]\n",
            "block list 15 MB": "name: x\nl:\n" + "- 0\n" * (15 * MB // 4),
            "mappings 15 MB": "name: x\nl: [" + "{a: 0}, " * (15 * MB // 8) + "]\n",
        }
        for what, body in refused.items():
            f = Path(d) / "refused.yaml"
            f.write_text(body)
            cpu, wall, rss, line = validate(f)
            print(f"{what}: {cpu:.2f} s CPU, {wall:.2f} s wall, {rss} MB peak RSS: {line}")


if __name__ == "__main__":
    main()
