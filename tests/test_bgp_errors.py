"""RFC 7606 revised error handling: each malformed attribute gets its section's approach
(treat-as-withdraw, attribute discard or session reset), the strongest one wins."""

from __future__ import annotations

import struct

import pytest

from bgp.attrs import Handling
from bgp.messages import MessageError, Update, decode_message
from bgp.nlri import IPV4_VPN

M = bytes.fromhex("ff" * 16)
TAW, DISCARD, RESET = Handling.TREAT_AS_WITHDRAW, Handling.ATTRIBUTE_DISCARD, Handling.SESSION_RESET

REACH = "80 0e 1f 0001 80 0c 0000000000000000 0aff0001 00 68 003e81 0000fde800000001 0a01"
ORIGIN = "40 01 01 00"
AS_PATH = "40 02 00"
NEXT_HOP = "40 03 04 0a000001"


def update(*attrs: str, nlri: str = "", withdrawn: str = "") -> bytes:
    a = bytes.fromhex("".join(attrs).replace(" ", ""))
    w = bytes.fromhex(withdrawn.replace(" ", ""))
    n = bytes.fromhex(nlri.replace(" ", ""))
    body = struct.pack("!H", len(w)) + w + struct.pack("!H", len(a)) + a + n
    return M + struct.pack("!HB", 19 + len(body), 2) + body


def handling(wire: bytes) -> tuple[Handling | None, int | None]:
    try:
        u = decode_message(wire)
    except MessageError as e:
        return RESET, e.subcode
    assert isinstance(u, Update)
    worst = max(u.problems, key=lambda p: p.handling, default=None)
    return (worst.handling, worst.subcode) if worst else (None, None)


# (name, attributes after MP_REACH, expected approach, NOTIFICATION subcode, RFC 7606 section)
CASES = [
    ("origin-length", ["40 01 02 0000", AS_PATH], TAW, 5, "7.1"),
    ("origin-value", ["40 01 01 03", AS_PATH], TAW, 6, "7.1"),
    ("as-path-segment-type", [ORIGIN, "40 02 06 05 01 0000fde9"], TAW, 11, "7.2"),
    ("as-path-overrun", [ORIGIN, "40 02 06 02 02 0000fde9"], TAW, 11, "7.2"),
    ("as-path-empty-segment", [ORIGIN, "40 02 02 02 00"], TAW, 11, "7.2"),
    ("as-path-confed", [ORIGIN, "40 02 06 03 01 0000fde9"], TAW, 11, "7.2"),
    ("med-length", [ORIGIN, AS_PATH, "80 04 03 000005"], TAW, 5, "7.4"),
    ("local-pref-length", [ORIGIN, AS_PATH, "40 05 02 0064"], TAW, 5, "7.5"),
    ("atomic-aggregate-length", [ORIGIN, AS_PATH, "40 06 01 00"], DISCARD, 5, "7.6"),
    ("aggregator-length", [ORIGIN, AS_PATH, "c0 07 05 0000fde9 00"], DISCARD, 5, "7.7"),
    ("communities-length", [ORIGIN, AS_PATH, "c0 08 03 000001"], TAW, 5, "7.8"),
    ("communities-empty", [ORIGIN, AS_PATH, "c0 08 00"], TAW, 5, "7.8"),
    ("originator-id-length", [ORIGIN, AS_PATH, "80 09 05 0a00000100"], TAW, 5, "7.9"),
    ("cluster-list-length", [ORIGIN, AS_PATH, "80 0a 06 0a0000010000"], TAW, 5, "7.10"),
    ("ext-communities-length", [ORIGIN, AS_PATH, "c0 10 07 0002fde8000000"], TAW, 5, "7.14"),
    ("as4-path-malformed", [ORIGIN, AS_PATH, "c0 11 03 020100"], None, None, "RFC 6793 §6"),
    ("flags-origin-optional", ["c0 01 01 00", AS_PATH], TAW, 4, "3 c)"),
    ("flags-med-transitive", [ORIGIN, AS_PATH, "c0 04 04 00000005"], TAW, 4, "3 c)"),
    ("duplicate-origin", [ORIGIN, ORIGIN, AS_PATH], DISCARD, 1, "3 g)"),
    ("duplicate-mp-reach", [ORIGIN, AS_PATH, REACH], RESET, 1, "3 g)"),
    ("unrecognized-well-known", [ORIGIN, AS_PATH, "40 63 01 00"], RESET, 2, "RFC 4271 §6.3"),
    ("missing-origin", [AS_PATH], TAW, 3, "3 d)"),
    ("missing-as-path", [ORIGIN], TAW, 3, "3 d)"),
    ("attribute-overruns-total", [ORIGIN, AS_PATH, "c0 08 08 00000001"], TAW, 5, "4"),
    ("header-truncated", [ORIGIN, AS_PATH, "c0 08"], TAW, 1, "4"),
    ("discard-and-withdraw", [ORIGIN, AS_PATH, "40 06 01 00", "80 04 03 000005"], TAW, 5, "3"),
    ("withdraw-and-reset", ["40 01 01 03", AS_PATH, "40 63 01 00"], RESET, 2, "3"),
]


@pytest.mark.parametrize("name,attrs,want,sub,section", CASES, ids=[c[0] for c in CASES])
def test_each_attribute_error_gets_its_approach(name, attrs, want, sub, section):
    wire = update(REACH, *attrs)
    if name == "as4-path-malformed":  # AS4_PATH only matters on a 2-octet session
        from bgp.attrs import AS2
        u = decode_message(wire.replace(bytes.fromhex("40 02 00".replace(" ", "")),
                                        bytes.fromhex("400200"), 1), AS2)
        assert [p.handling for p in u.problems] == [DISCARD]
        return
    assert handling(wire) == (want, sub), section


def test_treat_as_withdraw_keeps_the_nlri_to_withdraw():
    u = decode_message(update(REACH, "40 01 01 03", AS_PATH))
    assert u.handling == TAW and u.mp_reach is not None and u.mp_reach.nlri
    assert u.mp_reach.family == IPV4_VPN


def test_attribute_discard_drops_only_that_attribute():
    u = decode_message(update(REACH, ORIGIN, AS_PATH, "c0 07 05 0000fde9 00",
                              "40 05 04 00000064"))
    assert u.handling == DISCARD
    assert u.attrs.aggregator is None and u.attrs.local_pref == 100


def test_ipv4_nlri_needs_next_hop():
    assert handling(update(ORIGIN, AS_PATH, nlri="18 c0a801")) == (TAW, 3)
    assert handling(update(ORIGIN, AS_PATH, NEXT_HOP, nlri="18 c0a801")) == (None, None)
    # RFC 7606 §7.3: a NEXT_HOP of the wrong length, or no unicast address
    assert handling(update(ORIGIN, AS_PATH, "40 03 05 0a00000100", nlri="18 c0a801")) == (TAW, 5)
    assert handling(update(ORIGIN, AS_PATH, "40 03 04 00000000", nlri="18 c0a801")) == (TAW, 8)
    assert handling(update(ORIGIN, AS_PATH, "40 03 04 e0000005", nlri="18 c0a801")) == (TAW, 8)


@pytest.mark.parametrize("wire,sub", [
    # RFC 7606 §7.11: a VPN next hop of 4 octets (not 12) hides where the NLRI starts.
    (update("80 0e 13 0001 80 04 0aff0001 00 68 003e81 0000fde800000001 0a01", ORIGIN, AS_PATH), 9),
    # NLRI that cannot be parsed cannot be withdrawn (§3 j), §5.3)
    (update("80 0e 1f 0001 80 0c 0000000000000000 0aff0001 00 78 003e81 0000fde800000001 0a01",
            ORIGIN, AS_PATH), 9),
    (update("80 0e 1c 0001 80 0c 0000000000000000 0aff0001 00 40 003e81 00000000 0a01",
            ORIGIN, AS_PATH), 9),
    (update(ORIGIN, AS_PATH, NEXT_HOP, nlri="21 c0a80101 00"), 10),
    (update(ORIGIN, AS_PATH, NEXT_HOP, nlri="18 c0a8"), 10),
    (update(withdrawn="20 0a01"), 10),
    # Withdrawn Routes Length past the message (RFC 4271 §6.3)
    (M + struct.pack("!HB", 25, 2) + bytes.fromhex("0010 0000 0000"), 1),
    # the attribute list broke before any NLRI showed up: nothing to withdraw (§3 j)
    (update(ORIGIN, "c0 08 08 00000001"), 5),
], ids=["mp-next-hop-length", "mp-nlri-length", "mp-nlri-short", "nlri-33-bits",
        "nlri-overrun", "withdrawn-overrun", "withdrawn-length", "broken-list-no-nlri"])
def test_session_reset_cases(wire, sub):
    with pytest.raises(MessageError) as e:
        decode_message(wire)
    assert (e.value.code, e.value.subcode) == (3, sub)


def test_mp_unreach_alone_needs_no_attributes():
    u = decode_message(update("80 0f 11 0001 80 68 800000 0000fde800000001 0a01"))
    assert u.handling is None and u.attrs is None and len(u.mp_unreach.nlri) == 1


def test_unnegotiable_family_is_discarded_not_fatal():
    u = decode_message(update("80 0e 0a 0019 46 04 0a000001 00 00", ORIGIN, AS_PATH))
    assert u.handling == DISCARD and u.mp_reach is None
