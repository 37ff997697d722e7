"""Sans-I/O IKEv2 (RFC 7296) with PSK, AES-GCM-16, PRF-HMAC-SHA-256 and Curve25519."""

from ike.session import (
    ChildSa,
    ChildSaDown,
    ChildSaFailed,
    ChildSaUp,
    Ignored,
    IkeConfig,
    IkeError,
    IkeFailed,
    IkeSaDown,
    IkeSaUp,
    IkeSession,
    PeerAlive,
    SendIke,
    State,
)

__all__ = [
    "ChildSa", "ChildSaDown", "ChildSaFailed", "ChildSaUp", "IkeConfig", "IkeError", "IkeFailed",
    "IkeSaDown", "IkeSaUp", "IkeSession", "Ignored", "PeerAlive", "SendIke", "State",
]
