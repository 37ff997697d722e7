"""What `forwarding.plane.decide` returns: Forward | Deliver | Drop(reason).

Frozen, slotted dataclasses; `to_json()` gives the shape used by the
hop-by-hop walk and by `RouterTables.counters_json()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DropReason(StrEnum):
    """Why a frame was not forwarded (one counter per reason per router)."""

    NO_ILM_ENTRY = "no-ilm-entry"  # unknown top label: discard, never IP-forward (RFC 3031 §3.18)
    UNTAGGED_LABELLED = "untagged-labelled"  # untagged label (no next-hop label) with labels below
    TTL_EXPIRED = "ttl-expired"  # RFC 3032 §2.4, RFC 791; ICMP Time Exceeded was generated if allowed
    MALFORMED = "malformed"  # truncated frame, no S bit, bad IPv4 header, label 3 on the wire
    NO_ROUTE = "no-route"  # no FTN entry nor route for the destination
    NO_NEIGHBOR = "no-neighbor"  # destination on a connected subnet but no known station / next hop MAC
    MTU_EXCEEDED = "mtu-exceeded"  # too big and cannot be fragmented (not IPv4 under the stack)
    FRAG_NEEDED = "frag-needed"  # too big with DF set: ICMP 3/4 generated (RFC 3032 §3, RFC 1191)
    RESERVED_LABEL = "reserved-label"  # labels 4..15 (RFC 3032 §2.1, RFC 7274)
    NOT_IP = "not-ip"  # an ethertype nobody here handles (ARP is not one: it is delivered)
    IPV6_UNSUPPORTED = "ipv6-unsupported"  # IPv6 on an interface without IPv6 (a core link)
    MPLS_MULTICAST = "mpls-multicast"  # ethertype 0x8848: not supported, dropped (RFC 5332)
    NOT_FOR_US = "not-for-us"  # Ethernet destination is neither our MAC nor broadcast
    UNKNOWN_INTERFACE = "unknown-interface"  # in_if is not an interface of this router
    # MPLS on an interface LDP does not run on (a customer port): never label-switched, or a
    # host could send a label it learned past the SPD and VPN isolation (Linux drops these
    # too unless net.mpls.conf.<if>.input is set)
    MPLS_INPUT_DISABLED = "mpls-input-disabled"
    VLAN_TAGGED = "vlan-tagged"  # 802.1Q / 802.1ad tag (VID != 0): router ports are untagged
    MARTIAN_SOURCE = "martian-source"  # 0/8, 127/8, 224/4, 240/4 source: RFC 1812 §5.3.7
    MARTIAN_DESTINATION = "martian-destination"  # 0/8, 127/8, 240/4 destination: RFC 1812 §5.3.7
    # IPv6 (forwarding.ip6, forwarding.plane6); IPV6_UNSUPPORTED above is now IPv6 on an
    # interface without IPv6 (a core link: 6PE keeps the core IPv4, RFC 4798)
    IPV6_MALFORMED = "ipv6-malformed"  # < 40 octets, version not 6, payload length past the end
    IPV6_EXT_CHAIN = "ipv6-ext-chain"  # extension header chain truncated or out of order (RFC 8200 §4, RFC 7112)
    IPV6_CHAIN_TOO_LONG = "ipv6-chain-too-long"  # more extension headers than we walk (ip6.MAX_EXT_HEADERS)
    ICMPV6_MALFORMED = "icmpv6-malformed"  # ICMPv6 for us: truncated, bad checksum, invalid ND (RFC 4861 §7.1.1)
    PACKET_TOO_BIG = "packet-too-big"  # IPv6 (+ labels) over the link MTU: ICMPv6 Packet Too Big sent (RFC 4443 §3.2)


@dataclass(frozen=True, slots=True)
class Forward:
    """Send `frame` (a whole Ethernet frame) out of `out_if`.

    `more` holds further frames for the same interface (IP fragments, RFC 3032 §3).
    `op` is push|swap|pop|forward; `labels_in`/`labels_out` are label values,
    top first; `ttl` is the outgoing TTL (top label's, or IP's when unlabelled).
    """

    out_if: str
    frame: bytes
    op: str
    labels_in: tuple[int, ...] = ()
    labels_out: tuple[int, ...] = ()
    ttl: int = 0
    neighbor: str = ""
    more: tuple[bytes, ...] = ()

    @property
    def frames(self) -> tuple[bytes, ...]:
        return (self.frame, *self.more)

    def to_json(self) -> dict:
        return {
            "result": "forward", "op": self.op, "out_interface": self.out_if,
            "neighbor": self.neighbor, "labels_in": list(self.labels_in),
            "labels_out": list(self.labels_out), "ttl": self.ttl, "frames": 1 + len(self.more),
        }


@dataclass(frozen=True, slots=True)
class Deliver:
    """For this router's own stack: `packet` is the IPv4 packet (labels removed;
    for kind "router-alert" the labelled packet as received: stack + payload).

    `kind` is "local" (addressed to one of our addresses, broadcast or
    multicast), "nd" (IPv6 Neighbor Discovery), "router-alert" (label 1 on top, RFC 3032 §2.1: to the control
    plane) or "kernel" (ARP: the router's kernel answers it; `packet` is the ARP
    payload). `labelled` says the frame arrived with labels, so the kernel did
    not see it as IP: a runtime must inject `packet` into the local stack.
    """

    packet: bytes
    kind: str = "local"
    labelled: bool = False
    labels_in: tuple[int, ...] = ()
    ttl: int = 0
    # What the router answers itself (IPv6: its kernel has none): Neighbor Advertisement,
    # Echo Reply, Port Unreachable (forwarding.plane6)
    replies: tuple[Forward, ...] = ()

    def to_json(self) -> dict:
        return {"result": "deliver", "kind": self.kind, "labelled": self.labelled,
                "labels_in": list(self.labels_in), "ttl": self.ttl}


@dataclass(frozen=True, slots=True)
class Drop:
    """Not forwarded. `replies` are ICMP errors this router sends because of it."""

    reason: DropReason
    detail: str = ""
    labels_in: tuple[int, ...] = ()
    ttl: int = 0
    replies: tuple[Forward, ...] = ()

    def to_json(self) -> dict:
        return {"result": "drop", "reason": self.reason.value, "detail": self.detail,
                "labels_in": list(self.labels_in), "ttl": self.ttl,
                "replies": [r.to_json() for r in self.replies]}


Result = Forward | Deliver | Drop
