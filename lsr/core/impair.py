"""Link impairments: what a link's `delay`, `jitter`, `loss`, `rate` and `queue` mean.

The kernel of our machines has no netem (see the kernel note), so a lab's impairments are
applied by our own dataplane (`forwarding.impair` decides, `lsr.lab.node_impair` holds the
frames); the simulator ignores them. This module is the one definition of the values, for the
topology file (link keys) and for `lsr lab link NAME A B set ...` alike:

    delay: 20ms      # one-way, added in each direction: 40 ms more round-trip time
    jitter: 2ms      # uniform in [-jitter, +jitter] around the delay; frames never reorder
    loss: 1%         # each direction loses this share of frames (independently)
    rate: 10mbit     # each direction at most this many bits a second (Ethernet frame bytes)
    queue: 1000      # frames one direction may hold (delay and rate); beyond it: tail drop

Durations take `us`, `ms` or `s` (a bare number is milliseconds); loss a percentage (`1%`,
`0.5%`; a bare number is percent); rates tc's `bit`, `kbit`, `mbit`, `gbit` (a bare number
is bit/s; tc's `kbps`/`mbps` mean bytes a second and are refused as ambiguous).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

KEYS = ("delay", "jitter", "loss", "rate", "queue")
MAX_DELAY = 10.0  # s: more is no network a lab can use (and frames would pile up)
MAX_RATE = 100_000_000_000  # 100 gbit
DEFAULT_QUEUE = 1000  # frames, netem's default limit
MAX_QUEUE = 100_000

_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(us|ms|s)?\s*$", re.IGNORECASE)
_PERCENT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*$")
_RATE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmg]?bit|[kmg]?bps)?\s*$", re.IGNORECASE)
_DURATION_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, None: 1e-3}
_RATE_UNIT = {"bit": 1, "kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000}


@dataclass(frozen=True)
class Impairment:
    """One direction's impairment of a link (both directions get the same)."""

    delay: float = 0.0  # s
    jitter: float = 0.0  # s
    loss: float = 0.0  # fraction 0..1
    rate: int = 0  # bit/s, 0: unlimited
    queue: int = DEFAULT_QUEUE  # frames held at most

    @property
    def active(self) -> bool:
        """Does it change anything? (`queue` alone does not.)"""
        return bool(self.delay or self.jitter or self.loss or self.rate)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Impairment:
        """The inverse of to_json (seconds, a fraction, bit/s); ValueError if out of range."""
        limits = {"delay": (0, MAX_DELAY), "jitter": (0, MAX_DELAY), "loss": (0, 1),
                  "rate": (0, MAX_RATE), "queue": (1, MAX_QUEUE)}
        for k, v in d.items():
            if k not in limits:
                raise ValueError(f"unknown impairment '{k}' (allowed: {', '.join(KEYS)})")
            lo, hi = limits[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ValueError(f"{k}: {v!r} is out of range {lo}..{hi}")
        return cls(**{k: (int(v) if k in ("rate", "queue") else float(v)) for k, v in d.items()})

    def describe(self) -> str:
        """`delay 20ms jitter 2ms loss 1% rate 10mbit` (what is set; `none` when nothing)."""
        parts = []
        if self.delay:
            parts.append(f"delay {fmt_duration(self.delay)}")
        if self.jitter:
            parts.append(f"jitter {fmt_duration(self.jitter)}")
        if self.loss:
            parts.append(f"loss {self.loss * 100:g}%")
        if self.rate:
            parts.append(f"rate {fmt_rate(self.rate)}")
        if parts and self.queue != DEFAULT_QUEUE:
            parts.append(f"queue {self.queue}")
        return " ".join(parts) or "none"

    def file_values(self) -> dict[str, Any]:
        """The link keys that give this impairment in a topology file (what is set)."""
        out: dict[str, Any] = {}
        if self.delay:
            out["delay"] = fmt_duration(self.delay)
        if self.jitter:
            out["jitter"] = fmt_duration(self.jitter)
        if self.loss:
            out["loss"] = f"{self.loss * 100:g}%"
        if self.rate:
            out["rate"] = fmt_rate(self.rate)
        if self.queue != DEFAULT_QUEUE:
            out["queue"] = self.queue
        return out


def fmt_duration(s: float) -> str:
    us = round(s * 1e6)
    if us % 1000:
        return f"{us}us"
    ms = us // 1000
    return f"{ms // 1000}s" if ms and ms % 1000 == 0 else f"{ms}ms"


def fmt_rate(bps: int) -> str:
    for unit, f in (("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1_000)):
        if bps >= f and bps % f == 0:
            return f"{bps // f}{unit}"
    return f"{bps}bit"


def parse_duration(v: Any, key: str = "delay") -> float:
    """'20ms', '1.5ms', '500us', '0.2s' or a number of milliseconds -> seconds."""
    if isinstance(v, bool):
        raise ValueError(f"{key}: expected a duration like 20ms, got {v!r}")
    if isinstance(v, (int, float)):
        s = float(v) * 1e-3
    else:
        m = _DURATION.match(str(v))
        if not m:
            raise ValueError(f"{key}: expected a duration like 20ms, 500us or 0.2s, got {v!r}")
        s = float(m.group(1)) * _DURATION_UNIT[m.group(2).lower() if m.group(2) else None]
    if not 0 <= s <= MAX_DELAY:
        raise ValueError(f"{key}: {v!r} is out of range 0..{MAX_DELAY:g}s")
    return round(s, 7)


def parse_loss(v: Any) -> float:
    """'1%', '0.5%' or a number of percent -> a fraction."""
    if isinstance(v, bool):
        raise ValueError(f"loss: expected a percentage like 1%, got {v!r}")
    if isinstance(v, (int, float)):
        pct = float(v)
    else:
        m = _PERCENT.match(str(v))
        if not m:
            raise ValueError(f"loss: expected a percentage like 1% or 0.5%, got {v!r}")
        pct = float(m.group(1))
    if not 0 <= pct <= 100:
        raise ValueError(f"loss: {v!r} is out of range 0..100%")
    return round(pct / 100, 9)


def parse_rate(v: Any) -> int:
    """'10mbit', '512kbit', '1gbit' or a number of bit/s -> bit/s."""
    if isinstance(v, bool):
        raise ValueError(f"rate: expected a rate like 10mbit, got {v!r}")
    if isinstance(v, (int, float)):
        bps = float(v)
    else:
        m = _RATE.match(str(v))
        if not m:
            raise ValueError(f"rate: expected a rate like 10mbit, 512kbit or 1gbit, got {v!r}")
        unit = (m.group(2) or "bit").lower()
        if unit.endswith("bps"):
            raise ValueError(f"rate: {v!r} is ambiguous (tc's {unit} means bytes a second): "
                             f"write {m.group(1)}{unit[:-3]}bit for bits a second")
        bps = float(m.group(1)) * _RATE_UNIT[unit]
    if bps and not 1000 <= bps <= MAX_RATE:
        raise ValueError(f"rate: {v!r} is out of range 1kbit..100gbit (0: unlimited)")
    return int(bps)


def parse_queue(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_QUEUE:
        raise ValueError(f"queue: expected a number of frames 1..{MAX_QUEUE}, got {v!r}")
    return v


_PARSERS = {"delay": lambda v: parse_duration(v, "delay"),
            "jitter": lambda v: parse_duration(v, "jitter"),
            "loss": parse_loss, "rate": parse_rate, "queue": parse_queue}


def parse_value(key: str, v: Any) -> Any:
    """One key's value; ValueError naming the key."""
    if key not in _PARSERS:
        raise ValueError(f"unknown impairment '{key}' (allowed: {', '.join(KEYS)})")
    if key == "queue" and isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    return _PARSERS[key](v)


def update(base: Impairment | None, values: dict[str, Any]) -> Impairment:
    """`base` with the given raw values (file or command line) parsed and applied."""
    imp = replace(base or Impairment(), **{k: parse_value(k, v) for k, v in values.items()})
    if imp.jitter > imp.delay:
        raise ValueError(f"jitter {fmt_duration(imp.jitter)} is larger than the delay "
                         f"{fmt_duration(imp.delay)} (frames cannot leave before they arrive)")
    return imp


def parse_words(words: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`delay 20ms loss 1%` (command-line words) -> {key: raw value}."""
    if not words or len(words) % 2:
        raise ValueError("expected KEY VALUE pairs, e.g. 'delay 20ms loss 1%' "
                         f"(keys: {', '.join(KEYS)})")
    out: dict[str, str] = {}
    for k, v in zip(words[::2], words[1::2], strict=True):
        if k not in KEYS:
            raise ValueError(f"unknown impairment '{k}' (allowed: {', '.join(KEYS)})")
        out[k] = v
    return out
