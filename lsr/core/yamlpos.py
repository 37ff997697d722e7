"""YAML loading that remembers where every key came from.

Errors in topology files name the line of the offending key, so we compose the
YAML node tree once (for positions and duplicate keys) and construct plain
Python values from the same tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


class YamlError(Exception):
    """A YAML syntax problem, with the 1-based line where it was found."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class Located:
    """Plain data plus a map from key paths to 1-based line numbers."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get(())


# Aliases may repeat a node many times over (a "billion laughs" file) or
# contain themselves; a topology never needs more values than this.
MAX_VALUES = 100_000


class _Walk:
    def __init__(self) -> None:
        self.lines: dict[Path, int] = {}
        self.active: set[int] = set()  # ids of the collections being walked (cycle check)
        self.count = 0

    def walk(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise YamlError(node.start_mark.line + 1, f"more than {MAX_VALUES} values (alias expansion?)")
        self.lines[path] = node.start_mark.line + 1
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return _scalar(node)
        if id(node) in self.active:
            raise YamlError(node.start_mark.line + 1, "recursive alias")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.walk(item, path + (i,)) for i, item in enumerate(node.value)]
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlError(key_node.start_mark.line + 1, "mapping keys must be plain scalars")
                key = _scalar(key_node)
                if key in out:
                    raise YamlError(key_node.start_mark.line + 1, f"duplicate key '{key}'")
                kpath = path + (key,)
                out[key] = self.walk(value_node, kpath)
                self.lines[kpath] = key_node.start_mark.line + 1
            return out
        finally:
            self.active.discard(id(node))


_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


def _scalar(node: yaml.Node) -> Any:
    # YAML 1.1 reads a plain 65000:1 as a base-60 integer (3900001); YAML 1.2 has no base
    # 60, and in a topology file ADMIN:NUMBER is a route distinguisher or a route target
    # (RFC 4364 §4.2, RFC 4360): keep the text.
    if node.tag in (_INT_TAG, _FLOAT_TAG) and ":" in str(node.value):
        return str(node.value)
    # Otherwise resolve the scalar's tag exactly as yaml.safe_load would.
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as e:
        raise YamlError(node.start_mark.line + 1, f"bad value: {e}") from None
    finally:
        loader.dispose()


def load_located(text: str) -> Located:
    """Parse YAML text into plain data with key positions; raises YamlError."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise YamlError(line, f"YAML syntax error: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise YamlError(None, f"YAML error: {e}") from None
    except RecursionError:
        raise YamlError(None, "YAML nested too deeply") from None
    if root is None:
        return Located(None, {(): 1})
    w = _Walk()
    try:
        data = w.walk(root, ())
    except RecursionError:
        raise YamlError(None, "YAML nested too deeply") from None
    return Located(data, w.lines)
