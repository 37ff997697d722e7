"""YAML loading that remembers where every key came from, within fixed bounds.

Errors in topology files name the line of the offending key, so values are
built straight from the parser's events (libyaml's when PyYAML has it) together
with a map from key paths to lines. Building from events, not from a composed
node tree, is what keeps big or hostile input cheap: the limits below are
enforced while the file is parsed, so a huge list or an alias bomb stops at the
limit instead of after it has been expanded in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]

# Deliberate limits, documented in README.md ("Topology files"). A 20,000-router,
# 40,000-link topology is 2.8 MB and 220,000 values; the limits leave room for that
# with every option spelt out, and stop anything bigger within ~2 s and ~200 MB.
MAX_BYTES = 16 << 20  # characters of text (checked before parsing, and before reading a file)
MAX_VALUES = 500_000  # scalars, lists and mappings (keys not counted), an alias as what it expands to
MAX_DEPTH = 32  # nesting of lists and mappings (a topology uses < 10)


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


_EventSource = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster
_STR = "tag:yaml.org,2002:str"
_resolver = yaml.resolver.Resolver()
_constructor = yaml.constructor.SafeConstructor()
_NO_KEY = object()
# Constructors of the implicit scalar types that return a value directly (not a generator).
_SIMPLE = {f"tag:yaml.org,2002:{t}": yaml.constructor.SafeConstructor.yaml_constructors[
    f"tag:yaml.org,2002:{t}"] for t in ("int", "float", "bool", "null")}
_CACHE_MAX = 4096  # plain scalars already resolved: names, numbers, flags repeat a lot


class _Frame:
    """A list or mapping being built."""

    __slots__ = ("value", "path", "line", "anchor", "first", "key", "is_map")

    def __init__(self, value: list | dict, path: Path, line: int, anchor: str | None,
                 first: int) -> None:
        self.value = value
        self.path = path
        self.line = line  # the line Located.line gives this path (own or inherited)
        self.anchor = anchor
        self.first = first  # the value count when this collection started
        self.key: Any = _NO_KEY  # a mapping's key waiting for its value
        self.is_map = isinstance(value, dict)


def _too_many(line: int) -> YamlError:
    return YamlError(line, f"more than {MAX_VALUES:,} values, the limit for a topology file "
                           "(an alias counts as what it expands to)")


def _build(events: Any) -> Located:
    """Plain data and lines from parser events, in one pass that stops at any limit.

    A line is recorded only where it differs from the nearest recorded ancestor's:
    `Located.line` gives the same answers, and a long list on one line costs no
    path per item."""
    lines: dict[Path, int] = {}
    stack: list[_Frame] = []
    anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, values it holds)
    open_anchors: set[str] = set()  # of collections not finished yet
    cache: dict[tuple[str, Any], Any] = {}
    root: Any = None
    count = 0
    documents = 0
    top: _Frame | None = None
    for ev in events:
        t = type(ev)
        line = ev.start_mark.line + 1
        if t is yaml.ScalarEvent or t is yaml.AliasEvent:
            if t is yaml.ScalarEvent:
                if ev.tag is None and not ev.style:  # plain: resolve (and remember)
                    ck = (ev.value, ev.implicit)
                    value = cache.get(ck, _NO_KEY)
                    if value is _NO_KEY:
                        value = _scalar(ev, line)
                        if len(cache) < _CACHE_MAX and len(ev.value) <= 64:
                            cache[ck] = value
                elif ev.tag is None and not ev.implicit[0]:
                    value = ev.value  # quoted: a string
                else:
                    value = _scalar(ev, line)
                size = 1
                anchor = ev.anchor
                if anchor is not None:
                    if anchor in anchors or anchor in open_anchors:
                        raise YamlError(line, f"YAML syntax error: found duplicate anchor '{anchor}'")
                    anchors[anchor] = (value, 1)
            else:
                if ev.anchor in open_anchors:
                    raise YamlError(line, "recursive alias")
                if ev.anchor not in anchors:
                    raise YamlError(line, f"YAML syntax error: found undefined alias '{ev.anchor}'")
                # Counted as expanded, built once: what it refers to is shared, never
                # copied, so an alias bomb costs its file size; readers never modify data.
                value, size = anchors[ev.anchor]
            if top is None:
                root = value
                lines[()] = line
                count += size
                continue
            if top.is_map:
                if top.key is _NO_KEY:  # this scalar is a key
                    if isinstance(value, (list, dict)):
                        raise YamlError(line, "mapping keys must be plain scalars")
                    if value in top.value:
                        raise YamlError(line, f"duplicate key '{value}'")
                    top.key = value
                    if line != top.line:
                        lines[top.path + (value,)] = line
                    continue
                top.value[top.key] = value
                top.key = _NO_KEY
            else:
                if line != top.line:
                    lines[top.path + (len(top.value),)] = line
                top.value.append(value)
            count += size
            if count > MAX_VALUES:
                raise _too_many(line)
        elif t is yaml.SequenceStartEvent or t is yaml.MappingStartEvent:
            if top is None:
                path: Path = ()
                lines[()] = eff = line
            elif top.is_map:  # a mapping's value: its path keeps the key's line
                if top.key is _NO_KEY:
                    raise YamlError(line, "mapping keys must be plain scalars")
                path = top.path + (top.key,)
                eff = lines.get(path, top.line)
            else:
                path = top.path + (len(top.value),)
                eff = line
                if line != top.line:
                    lines[path] = line
            if len(stack) >= MAX_DEPTH:
                raise YamlError(line, f"YAML nested too deeply (more than {MAX_DEPTH} levels)")
            count += 1
            if count > MAX_VALUES:
                raise _too_many(line)
            anchor = ev.anchor
            if anchor is not None:
                if anchor in anchors or anchor in open_anchors:
                    raise YamlError(line, f"YAML syntax error: found duplicate anchor '{anchor}'")
                open_anchors.add(anchor)
            top = _Frame([] if t is yaml.SequenceStartEvent else {}, path, eff, anchor, count)
            stack.append(top)
        elif t is yaml.SequenceEndEvent or t is yaml.MappingEndEvent:
            fr = stack.pop()
            if fr.anchor is not None:
                open_anchors.discard(fr.anchor)
                anchors[fr.anchor] = (fr.value, count - fr.first + 1)
            top = stack[-1] if stack else None
            if top is None:
                root = fr.value
            elif top.is_map:
                top.value[top.key] = fr.value
                top.key = _NO_KEY
            else:
                top.value.append(fr.value)
        elif t is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise YamlError(line, "YAML syntax error: expected a single document in the stream")
    if documents == 0 or root is None:
        return Located(None, {(): 1})
    return Located(root, lines)


def _scalar(ev: yaml.ScalarEvent, line: int) -> Any:
    """The value yaml.safe_load would give this scalar."""
    tag = ev.tag
    if tag is None or tag == "!":
        tag = _resolver.resolve(yaml.ScalarNode, ev.value, ev.implicit)
    if tag == _STR:
        return ev.value
    node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style)
    try:
        simple = _SIMPLE.get(tag)
        if simple is not None:  # without construct_object's bookkeeping
            return simple(_constructor, node)
        return _constructor.construct_object(node, deep=True)
    except yaml.YAMLError as e:
        raise YamlError(line, "bad value: " + " ".join(str(e).split())) from None
    finally:
        _constructor.constructed_objects.clear()
        _constructor.recursive_objects.clear()


def _events(text: str) -> Any:
    loader = _EventSource(text)
    try:
        while True:
            ev = loader.get_event()
            if ev is None or isinstance(ev, yaml.StreamEndEvent):
                return
            yield ev
    finally:
        loader.dispose()


def load_located(text: str) -> Located:
    """Parse YAML text into plain data with key positions; raises YamlError."""
    if len(text) > MAX_BYTES:
        raise YamlError(None, too_big(len(text)))
    try:
        return _build(_events(text))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise YamlError(line, f"YAML syntax error: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise YamlError(None, "YAML error: " + " ".join(str(e).split())) from None
    except RecursionError:
        raise YamlError(None, "YAML nested too deeply") from None


def too_big(size: int) -> str:
    """The error for input over MAX_BYTES."""
    return (f"larger than the {MAX_BYTES >> 20} MB a topology file may have "
            f"({size / (1 << 20):.1f} MB or more)")
