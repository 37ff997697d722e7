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


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlError(key_node.start_mark.line + 1, "mapping keys must be plain scalars")
            key = _scalar(key_node)
            if key in out:
                raise YamlError(key_node.start_mark.line + 1, f"duplicate key '{key}'")
            kpath = path + (key,)
            out[key] = _walk(value_node, kpath, lines)
            lines[kpath] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, path + (i,), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    # Resolve the scalar's tag exactly as yaml.safe_load would.
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
    if root is None:
        return Located(None, {(): 1})
    lines: dict[Path, int] = {}
    data = _walk(root, (), lines)
    return Located(data, lines)
