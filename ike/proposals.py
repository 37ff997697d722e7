"""Our SA proposals and the choice among the peer's (RFC 7296 §2.7, §3.3).

IKE: ENCR_AES_GCM_16 (RFC 5282) + PRF_HMAC_SHA2_256 + Curve25519 (group 31).
ESP: ENCR_AES_GCM_16, no ESN, and in a CREATE_CHILD_SA with a KE payload (PFS)
the D-H transform of that group: a proposal must name the group its KE payload
uses (§1.3.1 "the SA offers MUST include the Diffie-Hellman group of the KEi",
§3.3.2), while the IKE_AUTH exchange has no KE payload and so no D-H transform
(§1.2: "Implementations SHOULD omit the whole transform substructure").
"""

from __future__ import annotations

import struct
from enum import StrEnum

from ike.codec import (
    DH_CURVE25519,
    DH_NONE,
    ENCR_AES_GCM_16,
    ESN_NONE,
    PRF_HMAC_SHA2_256,
    Proposal,
    Protocol,
    SaPayload,
    Transform,
    TransformType,
)


class Dh(StrEnum):
    """What a proposal must say about Diffie-Hellman, by exchange."""

    IGNORE = "ignore"  # IKE_AUTH: no KE payload; a D-H transform other than NONE is left out
    NEED = "need"  # a KE payload goes with it: the proposal must offer our group
    NONE = "none"  # CREATE_CHILD_SA without KE: the proposal must not ask for one


def ike_proposal(bits: int, spi: bytes = b"") -> Proposal:
    """IKE SA proposal; `spi` is empty in IKE_SA_INIT, 8 octets in an IKE SA rekey (§3.3.1)."""
    return Proposal(1, Protocol.IKE, spi, (
        Transform(TransformType.ENCR, ENCR_AES_GCM_16, bits),
        Transform(TransformType.PRF, PRF_HMAC_SHA2_256),
        Transform(TransformType.DH, DH_CURVE25519),
    ))


def esp_proposal(bits: int, spi: int, pfs: bool) -> Proposal:
    """ESP proposal with our inbound SPI; with `pfs` it names the KE payload's group."""
    dh = (Transform(TransformType.DH, DH_CURVE25519),) if pfs else ()
    return Proposal(1, Protocol.ESP, struct.pack("!I", spi), (
        Transform(TransformType.ENCR, ENCR_AES_GCM_16, bits), *dh,
        Transform(TransformType.ESN, ESN_NONE),
    ))


def pick(sa: SaPayload | None, protocol: int, bits: int, dh: Dh = Dh.IGNORE) -> Proposal | None:
    """The first acceptable proposal (§2.7), reduced to the transforms we chose: exactly
    one of each type (§3.3.6). `dh` applies to ESP; an IKE proposal always needs group 31."""
    if sa is None:
        return None
    want: list[tuple[int, int, int | None]] = [(TransformType.ENCR, ENCR_AES_GCM_16, bits)]
    if protocol == Protocol.IKE:
        want += [(TransformType.PRF, PRF_HMAC_SHA2_256, None), (TransformType.DH, DH_CURVE25519, None)]
    else:
        if dh is Dh.NEED:
            want.append((TransformType.DH, DH_CURVE25519, None))
        want.append((TransformType.ESN, ESN_NONE, None))
    for p in sa.proposals:
        if p.protocol != protocol or (protocol == Protocol.ESP and len(p.spi) != 4):
            continue
        if protocol == Protocol.IKE and any(t.type == TransformType.INTEG for t in p.transforms):
            continue  # an AEAD proposal has no INTEG transform (RFC 5282 §8)
        groups = {t.id for t in p.transforms if t.type == TransformType.DH}
        if protocol == Protocol.ESP and dh is Dh.NONE and groups - {DH_NONE}:
            continue  # it wants a key exchange we did not get (or send)
        chosen = []
        for ttype, tid, kl in want:
            t = next((t for t in p.transforms if (t.type, t.id, t.key_length) == (ttype, tid, kl)), None)
            if t is None and ttype == TransformType.ESN and not any(
                x.type == TransformType.ESN for x in p.transforms
            ):
                t = Transform(TransformType.ESN, ESN_NONE)  # absent = no ESN
            if t is None:
                break
            chosen.append(t)
        else:
            return Proposal(p.number, p.protocol, p.spi, tuple(chosen))
    return None
