"""IPsec for the MPLS core: RFC 4303 ESP tunnel mode between edge routers (pure).

`esp` (SA, encapsulate/decapsulate), `replay` (anti-replay window), `spd` and
`sad` (RFC 4301 databases), `engine` (one router's decisions), `config` (the
topology file's `ipsec:` section). No sockets, no clocks: time comes in as
`now` arguments.
"""

from forwarding.ipsec.engine import Bypass, IpsecEngine
from forwarding.ipsec.esp import (
    Decapsulated,
    DropReason,
    Encapsulated,
    EspDrop,
    SecurityAssociation,
)
from forwarding.ipsec.replay import ReplayWindow
from forwarding.ipsec.sad import Sad
from forwarding.ipsec.spd import Action, Policy, Selector, Spd

__all__ = [
    "Action",
    "Bypass",
    "Decapsulated",
    "DropReason",
    "Encapsulated",
    "EspDrop",
    "IpsecEngine",
    "Policy",
    "ReplayWindow",
    "Sad",
    "SecurityAssociation",
    "Selector",
    "Spd",
]
