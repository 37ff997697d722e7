"""A lab's secrets and root's writes against local users (issue 21, items 1 and 3).

tests/data/secrets.yaml holds every kind of secret a lab knows: TCP MD5 keys of
LDP sessions with an FRR node, OSPF MD5 keys, manual ESP keys and an IKE PSK
shared with a strongSwan gateway. With the lab up, root lists everything the lab
made (its directories under RUN_DIR, files new since `lab up` in /tmp, /var/tmp,
/dev/shm and /run, and the unix sockets of every process in its namespaces);
then a probe runs as another user (`setpriv`, the system's python) and tries to
read every file (looking for each secret, raw and hex), to connect to every
socket, and to read every process's command line:

* `nobody` reads no secret, reaches no socket, writes in no directory;
* `frr` reads only its own node's keys (its config) and reaches only its own
  daemons' sockets;
* a symlink `frr` plants, under every name root writes, in every directory it can
  write, never redirects a write of root's (an LFIB update, teardown).

Abstract unix sockets are per network namespace: every process of the lab lives
in a lab namespace, which a user outside needs root to enter (`ip netns exec`),
so those are unreachable from the root namespace (checked: no lab process holds
a socket in it).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, is_root
from tests.wait import wait_for

PYTHON = "/usr/bin/python3"  # the probe's interpreter: one another user can run


def _missing() -> str | None:
    if not is_root():
        return "needs root"
    from lsr.lab import frr, strongswan

    why = frr.missing_tools() or strongswan.missing_tools()
    if why:
        return why
    if shutil.which("setpriv") is None or not os.access(PYTHON, os.X_OK):
        return f"needs setpriv and {PYTHON}"
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return "no user nobody"
    return None


WHY = _missing()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(WHY is not None, reason=str(WHY))]

if WHY is None:
    import lsr.lab as lab
    from lsr.core.topology import Topology, load_topology
    from lsr.lab import frr
    from lsr.lab import state as lab_state

NAME = f"hs{os.getpid() % 10000}"
AS_NOBODY = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]
AS_FRR = ["--reuid=frr", "--regid=frr", "--init-groups"]  # frr and frrvty, as its daemons
ELSEWHERE = ("/tmp", "/var/tmp", "/dev/shm", "/run")

# Runs as the other user: JSON in on stdin, JSON out on stdout. Standard library only.
PROBE = r'''
import errno, json, os, socket, sys

req = json.load(sys.stdin)
DENIED = {errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.ELOOP}


def read(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        chunks = []
        while sum(map(len, chunks)) < 64 << 20:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    except OSError:
        return b""
    finally:
        os.close(fd)


def found(data):
    return sorted(n for n, v in secrets.items() if bytes.fromhex(v) in data)


def reach(path):
    """How this user can reach a unix socket (None: permission denied or no such path)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_UNIX, kind) as s:
            s.settimeout(2)
            try:
                s.connect(path)
                return "connected"
            except OSError as e:
                if e.errno in DENIED:
                    return None
                if e.errno != errno.EPROTOTYPE:
                    return errno.errorcode.get(e.errno, str(e.errno))  # passed the permission check
    return "EPROTOTYPE"


secrets = req.get("secrets", {})
out = {"uid": os.getuid(), "gids": sorted(set(os.getgroups()) | {os.getgid()})}
if req["op"] == "look":
    out["readable"], out["secrets"], out["sockets"], out["cmdlines"] = [], {}, {}, {}
    for p in req["files"]:
        data = read(p)
        if data is not None:
            out["readable"].append(p)
            if found(data):
                out["secrets"][p] = found(data)
    for p in req["sockets"]:
        how = reach(p)
        if how:
            out["sockets"][p] = how
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            data = read(f"/proc/{pid}/cmdline")
            if data and found(data):
                out["cmdlines"][pid] = found(data)
    out["writable"] = [d for d in req["dirs"] if os.access(d, os.W_OK | os.X_OK)]
elif req["op"] == "plant":
    out["writable"], out["planted"] = [], []
    for d in req["dirs"]:
        if not os.access(d, os.W_OK | os.X_OK):
            continue
        out["writable"].append(d)
        for name in req["names"]:
            p = os.path.join(d, name)
            try:
                os.unlink(p)  # a file of root's in a directory of ours: ours to remove
            except OSError:
                pass
            try:
                os.symlink(req["target"], p)
                out["planted"].append(p)
            except OSError:
                pass
json.dump(out, sys.stdout)
'''


def _probe(who: list[str], req: dict) -> dict:
    r = subprocess.run(["setpriv", *who, PYTHON, "-I", "-c", PROBE], input=json.dumps(req),
                       capture_output=True, text=True, timeout=300, cwd="/",
                       env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _secrets(topo: Topology) -> dict[str, str]:
    """name -> value (hex) of every secret in the topology, as text and as raw bytes."""
    out: dict[str, bytes] = {}
    for n in topo.routers:
        for nb, key in n.ldp.passwords:
            out[f"ldp md5 {n.name}-{nb}"] = key.encode()
        if n.ospf.md5_key:
            out["ospf md5"] = n.ospf.md5_key.encode()
    cfg = topo.extra["ipsec"]
    for sa in cfg.sas:
        for what in ("enc_key", "auth_key"):
            key = getattr(sa, what)
            out[f"{sa.name} {what}"] = key
            out[f"{sa.name} {what} (hex)"] = key.hex().encode()
    for c in cfg.ike:
        out[f"ike psk {c.name}"] = c.psk
    assert len(out) == 14 and all(len(v) >= 12 for v in out.values())
    return {k: v.hex() for k, v in out.items()}


def _trees(name: str) -> list[Path]:
    """The lab's directories under RUN_DIR: its own and any `<lab>.*` beside it."""
    run = lab_state.RUN_DIR
    return sorted(p for p in run.iterdir() if p.name == name or p.name.startswith(name + "."))


def _walk(roots: list[Path], since: float | None = None) -> dict[str, list[str]]:
    """Everything under `roots` by kind (lstat: links are not followed); with `since`, only
    files and sockets changed since then."""
    out: dict[str, list[str]] = {"dir": [], "file": [], "sock": [], "other": []}
    for root in roots:
        for d, dirs, names in os.walk(root):
            out["dir"].append(d)
            for n in names + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
                p = os.path.join(d, n)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if since is not None and st.st_ctime < since:
                    continue
                kind = ("file" if stat.S_ISREG(st.st_mode) else
                        "sock" if stat.S_ISSOCK(st.st_mode) else "other")
                out[kind].append(p)
    return out


def _lab_sockets(name: str) -> tuple[list[str], list[tuple[int, str]]]:
    """Unix sockets of every process in the lab's namespaces: (paths, [(pid, name)] of the
    ones that are not in a lab namespace, i.e. in ours)."""
    here = os.stat("/proc/self/ns/net").st_ino
    paths: set[str] = set()
    in_root_ns: list[tuple[int, str]] = []
    for ns in lab_state.LabState(name).read()["namespaces"]:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        for pid in map(int, pids.split()):
            try:
                inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]
                          for fd in os.listdir(f"/proc/{pid}/fd")
                          if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
                table = Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]
                netns = os.stat(f"/proc/{pid}/ns/net").st_ino
            except OSError:
                continue  # gone
            for row in table:
                f = row.split()
                if len(f) >= 8 and f[6] in inodes:
                    paths.add(f[7])
                    if netns == here:
                        in_root_ns.append((pid, f[7]))
    return sorted(p for p in paths if not p.startswith("@")), in_root_ns


def test_probe_sees_what_it_should():
    """The probe itself: it finds a secret in a file it may read, connects to a socket it
    may reach, and stops at a file or socket it may not open."""
    import socket
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="lsr-hs-probe-"))  # /tmp: other users can enter
    socks: list[socket.socket] = []
    try:
        scratch.chmod(0o755)
        open_f, closed_f = scratch / "open", scratch / "closed"
        open_f.write_bytes(b"xx lsrtestsecret xx")
        open_f.chmod(0o644)
        closed_f.write_bytes(b"lsrtestsecret")
        closed_f.chmod(0o600)
        for mode in (0o777, 0o755):  # connect needs write permission
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(str(scratch / f"s{mode:o}"))
            s.listen()
            (scratch / f"s{mode:o}").chmod(mode)
        got = _probe(AS_NOBODY, {"op": "look", "files": [str(open_f), str(closed_f)],
                                 "sockets": [str(scratch / "s777"), str(scratch / "s755")],
                                 "dirs": [str(scratch)],
                                 "secrets": {"s": b"lsrtestsecret".hex()}})
    finally:
        for s in socks:
            s.close()
        shutil.rmtree(scratch)
    assert got["readable"] == [str(open_f)]
    assert got["secrets"] == {str(open_f): ["s"]}
    assert got["sockets"] == {str(scratch / "s777"): "connected"}
    assert got["writable"] == []


@pytest.fixture(scope="module")
def L():
    t0 = time.time() - 1
    try:
        L = lab.up(load_topology(ROOT / "tests" / "data" / "secrets.yaml"), name=NAME,
                   timeout=60)
        wait_for(lambda: any(c["state"] == "established"
                             for c in L.query("pe2", "ipsec", view="sas")["ike"]), 30,
                 "the IKE SA with the strongSwan gateway")
        yield L, t0
    finally:
        lab.down(NAME)
    assert _trees(NAME) == [], "left after lab down"


def _everything(name: str, t0: float) -> dict:
    """What the probes look at: the lab's directories, files (its own and new ones
    elsewhere), sockets (in its directories and held by its processes)."""
    tree = _walk(_trees(name))
    assert tree["sock"] and tree["file"]
    new = _walk([Path(p) for p in ELSEWHERE if Path(p).is_dir()], since=t0)
    socks, in_root_ns = _lab_sockets(name)
    return {"dirs": tree["dir"], "files": sorted(set(tree["file"]) | set(new["file"])),
            "sockets": sorted(set(tree["sock"]) | set(socks)), "in_root_ns": in_root_ns}


def test_nobody_reads_no_secret_and_reaches_no_socket(L):
    L, t0 = L
    seen = _everything(L.name, t0)
    assert any(p.endswith("/pe1.sock") for p in seen["sockets"])
    assert any(p.endswith("/ldpd.vty") for p in seen["sockets"])
    assert any(p.endswith("/charon.vici") for p in seen["sockets"])
    got = _probe(AS_NOBODY, {"op": "look", "files": seen["files"], "sockets": seen["sockets"],
                             "dirs": seen["dirs"], "secrets": _secrets(L.topo)})
    assert got["uid"] != 0 and 0 not in got["gids"]
    assert got["secrets"] == {}, "secrets readable by nobody"
    assert got["sockets"] == {}, "sockets nobody can reach"
    assert got["cmdlines"] == {}, "secrets on command lines"
    assert got["writable"] == [], "lab directories nobody can write"
    trees = tuple(f"{t}/" for t in _trees(L.name))
    assert [p for p in got["readable"] if p.startswith(trees)] == [], "lab files nobody reads"
    assert seen["in_root_ns"] == [], "lab processes with sockets in the root namespace"


def test_frr_reads_only_its_own_keys(L, tmp_path):
    L, t0 = L
    own = "\n".join(frr.render(L.topo, "f1", tmp_path).values()).encode()
    theirs = {k: v for k, v in _secrets(L.topo).items() if bytes.fromhex(v) not in own}
    assert any("psk" in k for k in theirs) and any("enc_key" in k for k in theirs)
    seen = _everything(L.name, t0)
    got = _probe(AS_FRR, {"op": "look", "files": seen["files"], "sockets": seen["sockets"],
                          "dirs": seen["dirs"], "secrets": theirs})
    assert got["uid"] == pwd.getpwnam("frr").pw_uid
    assert got["secrets"] == {}, "other nodes' secrets readable by frr"
    foreign = {p: how for p, how in got["sockets"].items()
               if not os.path.lexists(p) or os.lstat(p).st_uid != got["uid"]}
    assert foreign == {}, "sockets of root's that frr can reach"


def test_a_symlink_planted_by_frr_never_redirects_a_root_write(L, tmp_path):
    """Must run last in this module: it takes the lab down itself (teardown writes too)."""
    L, _ = L
    target = tmp_path / "root-only"
    target.write_bytes(b"root's own\n")
    target.chmod(0o600)
    tree = _walk(_trees(L.name))
    roots = [p for p in tree["file"] + tree["sock"] + tree["other"] if os.lstat(p).st_uid == 0]
    names = {Path(p).name for p in roots}
    names |= {n + ".tmp" for n in names}  # the usual temporary-file names of atomic writes
    got = _probe(AS_FRR, {"op": "plant", "dirs": tree["dir"], "names": sorted(names),
                          "target": str(target)})
    assert got["writable"], "frr can write none of its directories: FRR would not run"
    assert got["planted"]
    # root's writes: the FRR node's dataplane rewrites its LFIB after each link change
    before = frr.read_lfib(L.name, "f1")
    L.link("pe1", "f1", up=False)
    wait_for(lambda: frr.read_lfib(L.name, "f1") not in (None, before), 20,
             "f1's dataplane to write its LFIB")
    L.link("pe1", "f1", up=True)
    lab.wait_converged(L.name, timeout=30)
    assert lab.down(L.name)
    assert target.read_bytes() == b"root's own\n", "root wrote through a link frr planted"
    exposed = sorted(p for p in roots if os.path.dirname(p) in got["writable"])
    assert exposed == [], "files of root's in directories frr can write"
