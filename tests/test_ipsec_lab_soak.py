"""Ten minutes of rekeys every few seconds against strongSwan (opt-in: root, charon, time).

    LSR_SOAK=600 python3 -m pytest -s -m soak tests/test_ipsec_lab_soak.py

tests/data/ipsec-rekey.yaml: both ends rekey the Child SAs every 2-4 s and the IKE SAs every
9-10 s, with PFS, for sw1 (strongSwan initiates the IKE SA) and sw2 (we do). A ping stream to
each gateway's subnet runs the whole time. Measured: pings lost (must be 0), rekeys by each
end, the pe2 router's RSS and its SA counts every 10 s (no growth). `LSR_SOAK` is the
duration in seconds; without it the test is skipped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import is_root
from tests.wait import wait_for

SOAK = os.environ.get("LSR_SOAK")
pytestmark = [pytest.mark.netns, pytest.mark.soak,
              pytest.mark.skipif(not SOAK, reason="opt-in: LSR_SOAK=<seconds> (e.g. 600)"),
              pytest.mark.skipif(not is_root(), reason="needs root")]

if is_root():
    import lsr.lab as lab
    from lsr.core.topology import load_topology
    from lsr.lab import strongswan
    from lsr.lab.state import LabState, ns_name

    if strongswan.missing_tools():
        pytestmark.append(pytest.mark.skip(reason=strongswan.missing_tools()))

DATA = Path(__file__).parent / "data"
NAME = f"hk{os.getpid() % 1000}s"
SUBNET_ADDR = {"sw1": "172.16.1.1", "sw2": "172.16.2.1"}
SAMPLE = 10.0  # seconds between samples
WARMUP = 60.0  # RSS is compared from here on (imports, first allocations)


def _rss_kb(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1))


def test_ten_minutes_of_rekeys(tmp_path):
    duration = float(SOAK or 600)
    L = lab.up(load_topology(DATA / "ipsec-rekey.yaml"), name=NAME, timeout=40)
    pings: list[subprocess.Popen] = []
    try:
        pid = next(p["pid"] for p in LabState(NAME).read()["pids"] if p["role"] == "router:pe2")

        def conns() -> dict:
            return {c["name"]: c for c in L.query("pe2", "ipsec", view="sas")["ike"]}
        wait_for(lambda: all(c["state"] == "established" for c in conns().values()), 30, "both tunnels up")
        count = int(duration / 0.1)
        pings = [subprocess.Popen(["ip", "netns", "exec", ns_name(NAME, "ce2"), "ping", "-n", "-q", "-c",
                                   str(count), "-i", "0.1", "-W", "2", SUBNET_ADDR[gw]],
                                  stdout=subprocess.PIPE, text=True) for gw in ("sw1", "sw2")]
        t0 = time.monotonic()
        samples = []
        while any(p.poll() is None for p in pings):
            v = L.query("pe2", "ipsec", view="sas")
            samples.append({
                "t": round(time.monotonic() - t0, 1), "rss_kb": _rss_kb(pid), "sad": len(v["sas"]),
                "children": {c["name"]: len(c["children"]) for c in v["ike"]},
                "ike_sas": {c["name"]: len(c["ike_sas"]) for c in v["ike"]},
                "problems": v["problems"],
            })
            time.sleep(SAMPLE)  # the sampling pace
        totals = []
        for p in pings:
            out, _ = p.communicate(timeout=30)
            m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
            assert m, out
            totals.append((int(m.group(1)), int(m.group(2))))
        final = conns()
    finally:
        for p in pings:
            if p.poll() is None:
                p.kill()
        lab.down(NAME)
    later = [s for s in samples if s["t"] >= WARMUP]
    rss = [s["rss_kb"] for s in later]
    summary = {
        "seconds": duration, "pings": {gw: {"sent": t[0], "received": t[1], "lost": t[0] - t[1]}
                                       for gw, t in zip(("sw1", "sw2"), totals, strict=True)},
        "rss_kb": {"first": samples[0]["rss_kb"], "after_warmup": rss[0], "last": rss[-1],
                   "max": max(rss), "min": min(rss)},
        "sad_max": max(s["sad"] for s in samples), "sad_last": samples[-1]["sad"],
        "children_max": max(max(s["children"].values()) for s in samples),
        "ike_sas_max": max(max(s["ike_sas"].values()) for s in samples),
        "problem_samples": sum(1 for s in samples if s["problems"]),
        "counters": {gw: {k: v for k, v in c["counters"].items() if "rekey" in k or k in (
            "child_up", "child_redundant", "child_lost", "retransmits", "ike_sa_init")}
            for gw, c in final.items()},
    }
    (tmp_path / "soak.json").write_text(json.dumps(summary, indent=1))
    print("\nSOAK", json.dumps(summary))
    for sent, received in totals:
        assert sent == count and received == sent, summary
    # no growth: RSS after the warm-up stays within 4 MB; SAs stay bounded
    assert max(rss) - rss[0] < 4096, summary
    assert summary["sad_max"] <= 14 and summary["children_max"] <= 3 and summary["ike_sas_max"] <= 3, summary
    for gw, c in final.items():
        n = c["counters"]
        assert n.get("child_rekeyed_by_us", 0) >= 10 and n.get("child_rekeyed_by_peer", 0) >= 10, (gw, n)
        assert n.get("ike_rekeyed", 0) >= duration / 12, (gw, n)
        assert c["problems"] == [] and c["state"] == "established"
