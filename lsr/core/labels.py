"""MPLS label values and the reserved range (RFC 3032 §2.1, RFC 7274)."""

from __future__ import annotations

IPV4_EXPLICIT_NULL = 0
ROUTER_ALERT = 1
IPV6_EXPLICIT_NULL = 2
IMPLICIT_NULL = 3  # signalled only, never on the wire (RFC 3032 §2.1)
ELI = 7  # entropy label indicator (RFC 6790)
GAL = 13  # generic associated channel label (RFC 5586)
OAM_ALERT = 14
EXTENSION = 15

MIN_UNRESERVED = 16
MAX_LABEL = (1 << 20) - 1  # 1048575

RESERVED_NAMES = {
    IPV4_EXPLICIT_NULL: "explicit-null",
    ROUTER_ALERT: "router-alert",
    IPV6_EXPLICIT_NULL: "ipv6-explicit-null",
    IMPLICIT_NULL: "imp-null",
    ELI: "eli",
    GAL: "gal",
    OAM_ALERT: "oam-alert",
    EXTENSION: "extension",
}


def is_reserved(label: int) -> bool:
    """Labels 0-15 are reserved and never allocated to a FEC."""
    return 0 <= label < MIN_UNRESERVED


def label_name(label: int) -> str:
    """Human form used in tables: 'imp-null' for 3, the number otherwise."""
    return RESERVED_NAMES.get(label, str(label)) if label == IMPLICIT_NULL else str(label)
