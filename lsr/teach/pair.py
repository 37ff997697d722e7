"""`SRC:DST` of `lsr draw --trace`, with IPv6 addresses in it.

An IPv6 address has colons of its own, so, as in URLs (RFC 3986 §3.2.2) and in
`ssh`/`curl` host:port, an IPv6 address is written in brackets: `[2001:db8:1::1]:[2001:db8:2::2]`,
`ce1:[2001:db8:2::2]`. Node names and IPv4 addresses need none (`ce1:ce2`,
`192.168.1.1:ce2`). A comma may separate the two ends instead (`ce1,ce2`,
`2001:db8:1::1,2001:db8:2::2`: then no brackets are needed; not `->`, which a shell
reads as a redirection unless quoted). Anything else is refused
with one line that shows the forms, never guessed at (`2001:db8::1:2001:db8::2` could
be split in several places).
"""

from __future__ import annotations

from ipaddress import IPv6Address

FORMS = ("SRC:DST (e.g. ce1:ce2), with IPv6 addresses in brackets "
         "([2001:db8:1::1]:[2001:db8:2::2]), or SRC,DST")


def _end(s: str, spec: str) -> str:
    """One end: a node name or IPv4 address as it is, a bracketed IPv6 address unbracketed."""
    if s.startswith("[") and s.endswith("]"):
        inner = s[1:-1]
        try:
            IPv6Address(inner)
        except ValueError:
            raise ValueError(f"'{s}' in '{spec}' is not a bracketed IPv6 address") from None
        return inner
    if not s or "[" in s or "]" in s:
        raise ValueError(f"--trace wants {FORMS}, got '{spec}'")
    return s


def split_pair(spec: str) -> tuple[str, str]:
    """'SRC:DST' | '[v6]:[v6]' | 'SRC,DST' -> (SRC, DST); ValueError naming the forms."""
    if "," in spec:
        a, _, b = spec.partition(",")
        return _end(a.strip(), spec), _end(b.strip(), spec)
    if spec.startswith("["):
        close = spec.find("]")
        if close < 0 or spec[close + 1:close + 2] != ":":
            raise ValueError(f"--trace wants {FORMS}, got '{spec}'")
        return _end(spec[:close + 1], spec), _end(spec[close + 2:], spec)
    a, sep, b = spec.partition(":")
    if not sep or ":" in b and not (b.startswith("[") and b.endswith("]")):
        raise ValueError(f"--trace wants {FORMS}, got '{spec}'")
    return _end(a, spec), _end(b, spec)
