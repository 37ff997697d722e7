"""The dependency contract: layers, imports only point down (docs/architecture.md, "Layers").

This file is the ONE place the contract lives. It reads every import in `lsr/`, `ldp/`,
`ospf/`, `bgp/`, `ike/` and `forwarding/` with `ast` (module-level and function-level `import` / `from ...
import`, and `importlib.import_module("...")` with a literal or f-string prefix) and
checks:

1. layers: a module imports only from its own layer or a lower one (table `LAYERS`);
2. protocols: the control-plane packages never import each other, `forwarding` imports
   no control-plane package, and a control-plane package imports `forwarding` only when
   `PROTOCOL_DEPS` says so (ike installs SAs made of forwarding.ipsec types; ldp does not:
   the LFIB contract is `lsr/core/lfib.py`);
3. `lsr.cli` is the top: nothing outside it imports it;
4. pure packages (`PURE`) import no I/O module (`IO_MODULES`) except the few edge modules
   declared in `IO_EXEMPT`, and the core imports no third-party package but `CORE_THIRD_PARTY`;
5. no import cycles between modules (function-level imports count too);
6. no private reach-ins: no `from m import _name` from another module, no `obj._attr` on
   an object whose module is not this one (`reach_ins`), except the few in `REACH_IN_OK`.

A failure prints one line per violation, e.g.
`lsr/core/bad.py:3 imports lsr.lab (core -> edge)`: move the code, or the import, down.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lsr", "ldp", "ospf", "bgp", "ike", "forwarding")

# Top to bottom. A module belongs to the entry with the longest matching prefix.
LAYERS: dict[str, tuple[str, ...]] = {
    "edge": ("lsr.cli", "lsr.lab", "lsr.sim", "lsr.simpart", "lsr.simray", "lsr.teach",
             "lsr.render", "lsr.web"),
    "checking": ("lsr.oam",),
    "protocols": ("ldp", "ospf", "bgp", "ike", "forwarding"),
    "core": ("lsr.core", "lsr.errors", "lsr"),  # `lsr` = lsr/__init__.py (a docstring)
}
# Which protocol package may import which: control plane -> dataplane only, where declared.
PROTOCOL_DEPS: dict[str, frozenset[str]] = {
    "ldp": frozenset(),
    "ospf": frozenset(),
    "bgp": frozenset(),
    "ike": frozenset({"forwarding"}),
    "forwarding": frozenset(),
}
TOP = "lsr.cli"  # the click commands: nothing below imports them

PURE = ("lsr.core", "lsr.errors", "lsr.oam", "ldp", "ospf", "bgp", "ike", "forwarding")
IO_MODULES = frozenset({
    "subprocess", "socket", "asyncio", "selectors", "select", "mmap", "fcntl", "signal",
    "threading", "multiprocessing", "time", "pyroute2", "click", "rich", "scapy",
})
# The edge modules inside pure packages, and the I/O modules each one may import.
IO_EXEMPT: dict[str, frozenset[str]] = {
    "forwarding.afpacket": frozenset({"socket", "mmap"}),  # AF_PACKET TPACKET_V2 rings
}
CORE_THIRD_PARTY = frozenset({"networkx", "yaml"})
# (module, private name) reach-ins still allowed: none (the fast path has public names).
REACH_IN_OK: frozenset[tuple[str, str]] = frozenset()
STDLIB_PRIVATE = frozenset({"os._exit", "sys._getframe"})  # documented, underscore or not
STDLIB = frozenset(sys.stdlib_module_names)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    path: str  # its file, relative to the tree root
    line: int
    target: str  # the imported module, dotted (resolved to a submodule where one exists)


@functools.cache
def _parse(path: Path, rel: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(rel))  # once per file per run (several checks)


def _module_name(rel: Path) -> str:
    parts = rel.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(root: Path, dotted: str) -> bool:
    p = root.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _literal_prefix(node: ast.expr) -> str | None:
    """The module named by import_module's argument: a literal, or an f-string's literal
    head up to its last dot (`f"lsr.cli.{mod}"` -> `lsr.cli`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str) and "." in head.value:
            return head.value.rsplit(".", 1)[0]
    return None


def scan(root: Path) -> list[Import]:
    """Every import of every module under `root`'s packages, in file order."""
    found: list[Import] = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root)
            mod = _module_name(rel)
            is_pkg = path.name == "__init__.py"
            for node in ast.walk(_parse(path, rel)):
                targets: list[str] = []
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                        base = base[: len(base) - (node.level - 1)]
                        head = ".".join(base + ([node.module] if node.module else []))
                    else:
                        head = node.module or ""
                    # `from lsr.lab import frr` imports the module lsr.lab.frr
                    subs = [f"{head}.{a.name}" for a in node.names]
                    targets = [s for s in subs if _is_module(root, s)] or [head]
                    if len(targets) < len(subs) and targets[0] != head:
                        targets.append(head)  # names defined in the package itself too
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute | ast.Name)
                    and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
                    and node.args
                ):
                    t = _literal_prefix(node.args[0])
                    targets = [t] if t else []
                for t in targets:
                    found.append(Import(mod, str(rel), node.lineno, t))
    found.sort(key=lambda i: (i.path, i.line, i.target))
    return found


def _owner(mod: str, table: dict[str, tuple[str, ...]]) -> str | None:
    best: tuple[int, str] | None = None
    for name, prefixes in table.items():
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and (best is None or len(p) > best[0]):
                best = (len(p), name)
    return best[1] if best else None


def _under(mod: str, prefixes: tuple[str, ...] | frozenset[str]) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


def _cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative order)."""
    graph: dict[str, set[str]] = {}
    for i in imports:
        graph.setdefault(i.module, set())
        if i.target != i.module and _under(i.target, PACKAGES):
            graph[i.module].add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def violations(root: Path) -> list[str]:
    """Every break of the contract in the tree at `root`, one line each."""
    imports = scan(root)
    rank = {name: n for n, name in enumerate(reversed(LAYERS))}  # core 0 .. edge 3
    out: list[str] = []
    used_exempt: set[tuple[str, str]] = set()
    for i in imports:
        where = f"{i.path}:{i.line} imports {i.target}"
        src = _owner(i.module, LAYERS)
        if src is None:
            out.append(f"{i.path}:{i.line} {i.module} has no layer (add it to LAYERS)")
            continue
        top = i.target.split(".")[0]
        if top in PACKAGES:
            dst = _owner(i.target, LAYERS)
            if dst is not None and rank[dst] > rank[src]:
                out.append(f"{where} ({src} -> {dst})")
            sp, dp = i.module.split(".")[0], top
            if src == dst == "protocols" and sp != dp and dp not in PROTOCOL_DEPS[sp]:
                out.append(f"{where} (protocols: {sp} -> {dp})")
            if _under(i.target, (TOP,)) and not _under(i.module, (TOP,)):
                out.append(f"{where} ({src} -> {TOP}, the top)")
            continue
        if _under(i.module, PURE) and top in IO_MODULES:
            if top in IO_EXEMPT.get(i.module, ()):
                used_exempt.add((i.module, top))
            else:
                out.append(f"{where} (I/O in pure {src} module {i.module})")
        if _owner(i.module, LAYERS) == "core" and top not in STDLIB | CORE_THIRD_PARTY:
            out.append(f"{where} (third-party in core; allowed: {sorted(CORE_THIRD_PARTY)})")
    if root == ROOT:  # an exemption nobody uses any more is dropped, so the list stays small
        for mod, names in sorted(IO_EXEMPT.items()):
            for name in sorted(names - {n for m, n in used_exempt if m == mod}):
                out.append(f"IO_EXEMPT[{mod!r}] allows {name}, which it no longer imports")
    for comp in _cycles(imports):
        out.append("import cycle: " + " <-> ".join(comp))
    return out


def _owned(tree: ast.AST) -> set[str]:
    """The private names a module defines: its functions, classes, globals, `self._x`
    attributes and `__slots__` strings. Touching those on any object is its own business."""
    own: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(n.name)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            own.add(n.id)
        elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and \
                n.value.id in ("self", "cls"):
            own.add(n.attr)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            own.add(n.value)
    return {x for x in own if x.startswith("_") and not x.startswith("__")}


def reach_ins(root: Path) -> list[str]:
    """Private names of another module used here, one line each."""
    out: list[str] = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root)
            mod = _module_name(rel)
            tree = _parse(path, rel)
            own = _owned(tree)
            # names bound to our modules (`from ldp import events as ev`): `ev._x` is theirs
            aliases = {a.asname or a.name.split(".")[0] for n in ast.walk(tree)
                       if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names
                       if (getattr(n, "module", None) or a.name).split(".")[0] in PACKAGES}
            for n in ast.walk(tree):
                if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module != mod:
                    for a in n.names:
                        if a.name.startswith("_") and not a.name.startswith("__") and \
                                (mod, a.name) not in REACH_IN_OK:
                            out.append(f"{rel}:{n.lineno} imports {n.module}.{a.name}"
                                       " (private to another module)")
                elif isinstance(n, ast.Attribute) and n.attr.startswith("_") and \
                        not n.attr.startswith("__") and (n.attr not in own or (
                            isinstance(n.value, ast.Name) and n.value.id in aliases)):
                    obj = ast.unparse(n.value)
                    if obj in ("self", "cls") or f"{obj}.{n.attr}" in STDLIB_PRIVATE or \
                            (mod, n.attr) in REACH_IN_OK:
                        continue
                    out.append(f"{rel}:{n.lineno} uses {obj}.{n.attr}"
                               " (private to another module: give it a public name)")
    return sorted(set(out))


# ---------------------------------------------------------------------------------------


def test_tree_keeps_the_contract() -> None:
    found = violations(ROOT)
    assert not found, "layer contract broken:\n" + "\n".join(found)


def test_no_private_reach_ins() -> None:
    found = reach_ins(ROOT)
    assert not found, "private reach-ins:\n" + "\n".join(found)


def test_every_module_has_a_layer() -> None:
    mods = {i.module for i in scan(ROOT)}
    assert "lsr.core.topology" in mods and "forwarding.plane" in mods
    assert all(_owner(m, LAYERS) for m in mods)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """A scratch source tree: `files` plus an empty `__init__.py` in every package above them."""
    for rel, text in files.items():
        path = tmp_path / rel
        for d in reversed(path.relative_to(tmp_path).parents):
            if d != Path("."):
                (tmp_path / d).mkdir(exist_ok=True)
                (tmp_path / d / "__init__.py").touch()
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_a_wrong_import_in_a_function_is_reported(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "lsr/core/bad.py": """\
            def f():
                import lsr.lab
                return lsr.lab
            """,
    })
    assert violations(root) == ["lsr/core/bad.py:2 imports lsr.lab (core -> edge)"]


def test_control_planes_do_not_import_each_other(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "ldp/speaker.py": "from ike import session\n",
        "ike/session.py": "from forwarding import esp\n",  # declared: allowed
        "forwarding/esp.py": "",
        "forwarding/lfib.py": "import importlib\nimportlib.import_module('ldp.speaker')\n",
    })
    assert violations(root) == [
        "forwarding/lfib.py:2 imports ldp.speaker (protocols: forwarding -> ldp)",
        "ldp/speaker.py:1 imports ike.session (protocols: ldp -> ike)",
    ]


def test_io_and_third_party_in_pure_code_are_reported(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "lsr/oam/lab.py": "import subprocess\nfrom time import monotonic\n",
        "lsr/core/crypto.py": "from cryptography.hazmat.primitives import hashes\n",
        "lsr/lab/runner.py": "import subprocess\n",  # the edge may
    })
    assert violations(root) == [
        "lsr/core/crypto.py:1 imports cryptography.hazmat.primitives"
        " (third-party in core; allowed: ['networkx', 'yaml'])",
        "lsr/oam/lab.py:1 imports subprocess (I/O in pure checking module lsr.oam.lab)",
        "lsr/oam/lab.py:2 imports time (I/O in pure checking module lsr.oam.lab)",
    ]


def test_cycles_and_the_top_are_reported(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "lsr/lab/frr.py": "def f():\n    from lsr.lab import frrplane\n",
        "lsr/lab/frrplane.py": "from lsr.lab.frr import f\n",
        "lsr/cli/__init__.py": "",
        "lsr/teach.py": "import lsr.cli\n",
    })
    assert violations(root) == [
        "lsr/teach.py:1 imports lsr.cli (edge -> lsr.cli, the top)",
        "import cycle: lsr.lab.frr <-> lsr.lab.frrplane",
    ]


def test_loading_a_plain_topology_imports_no_plugin() -> None:
    # line3 has no ipsec: / expect: section: the core loads neither plugin, nor a dataplane.
    code = (
        "import sys\n"
        "from lsr.core.topology import load_topology\n"
        "load_topology('topologies/line3.yaml')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('cryptography', 'forwarding', 'ike', 'ldp', 'bgp') or m.startswith('lsr.oam'))\n"
        "print(' '.join(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_a_private_reach_in_is_reported(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "forwarding/walk.py": "def _resolve(t, w):\n    return t._nodes[w]\n",
        "lsr/teach/step.py": """\
            from forwarding.walk import _resolve
            from ldp import events as ev


            def _plain(v):
                return ev._plain(v)  # a name twin of ours does not make theirs ours


            class Step:
                def __init__(self, t):
                    self._t = t

                def same(self, other):
                    return other._t is self._t  # its own class: fine
            """,
    })
    assert reach_ins(root) == [
        "forwarding/walk.py:2 uses t._nodes (private to another module: give it a public name)",
        "lsr/teach/step.py:1 imports forwarding.walk._resolve (private to another module)",
        "lsr/teach/step.py:6 uses ev._plain (private to another module: give it a public name)",
    ]


def test_ray_is_optional() -> None:
    """Ray is the optional extra `[ray]`: only the edge modules of `--ray` runs import it
    (the simulator's partitions, a lab's agents and the coordinator's handle on them),
    so nothing else needs it installed."""
    users = {i.module for i in scan(ROOT) if i.target.split(".")[0] == "ray"}
    allowed = {"lsr.simray", "lsr.lab.remote", "lsr.lab.agent"}
    assert users <= allowed, f"ray imported outside {sorted(allowed)}: {sorted(users)}"
