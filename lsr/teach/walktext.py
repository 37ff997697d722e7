"""Words for a packet walk (`forwarding.walk` JSON), shared by `lsr sim trace`, its
`--step` view and `lsr report`: the ECMP hash inputs and choice, and how an ICMP
error travels back."""

from __future__ import annotations

from typing import Any

ONWARD = "on along the LSP to its egress, which routes it back (RFC 3032 §2.3.2)"


def flow_text(w: dict[str, Any]) -> str:
    """The ECMP hash inputs of a walk: '192.168.1.1 -> 192.168.2.2, udp, ports 1 -> 2'
    (forwarding.plane hashes them with CRC-32 seeded per router)."""
    ports = f", ports {w['sport']} -> {w['dport']}" if w.get("sport") is not None else ""
    return f"{w['src']} -> {w['dst']}, {w['proto']}{ports}"


def ecmp_text(h: dict[str, Any]) -> str:
    """A hop's ECMP choice: 'hash 0x7216a2cc mod 2 = 0 -> p1 (of p1, p2)'."""
    e = h["ecmp"]
    n = len(e["choices"])
    return (f"hash 0x{e['hash']:08x} mod {n} = {e['index']} -> {e['choices'][e['index']]} "
            f"(of {', '.join(e['choices'])})")


def icmp_title(h: dict[str, Any]) -> str:
    """How the ICMP error a hop sent travels: on along the LSP, or routed back."""
    i = h["icmp"]
    how = ONWARD if i.get("onward") else "routed back by IP"
    return f"ICMP {i['type']}/{i['code']} {i['src']} -> {i['dst']} from {h['router']}, {how}"
