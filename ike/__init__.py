"""Sans-I/O IKEv2 (RFC 7296) with PSK, AES-GCM-16, PRF-HMAC-SHA-256 and Curve25519."""

from ike.session import (
    ChildSa,
    ChildSaDown,
    ChildSaFailed,
    ChildSaRedundant,
    ChildSaUp,
    Ignored,
    IkeConfig,
    IkeError,
    IkeFailed,
    IkeRekeyFailed,
    IkeSaDown,
    IkeSaRekeyed,
    IkeSaUp,
    IkeSession,
    PeerAlive,
    SendIke,
    State,
)

__all__ = [
    "ChildSa", "ChildSaDown", "ChildSaFailed", "ChildSaRedundant", "ChildSaUp", "IkeConfig",
    "IkeError", "IkeFailed", "IkeRekeyFailed", "IkeSaDown", "IkeSaRekeyed", "IkeSaUp", "IkeSession",
    "Ignored", "PeerAlive", "SendIke", "State",
]
