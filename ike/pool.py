"""Virtual IP address pool of a remote-access responder (RFC 7296 §3.15, §2.19).

The responder hands each remote-access client one INTERNAL_IP4_ADDRESS from
the pool in its CFG_REPLY, and takes it back when the client's IKE SA goes.
Like strongSwan's in-memory pools, a client (by its authenticated identity)
gets its previous address again if that address is still free, else the lowest
free one; an address the client asks for (the INTERNAL_IP4_ADDRESS of its
CFG_REQUEST, §3.15.1 "the initiator MAY ask for a specific address") is given
if free and in the pool. Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network


@dataclass
class Lease:
    address: IPv4Address
    identity: bytes
    owner: object  # the IKE SA (session) holding it


@dataclass
class AddressPool:
    """Addresses of `network` (without its network and broadcast addresses when it has
    them), handed out one per IKE SA."""

    network: IPv4Network
    dns: tuple[IPv4Address, ...] = ()
    leases: dict[IPv4Address, Lease] = field(default_factory=dict)  # in use
    last: dict[bytes, IPv4Address] = field(default_factory=dict)  # identity -> its last address
    reclaimed: int = 0  # stale leases taken back on INITIAL_CONTACT

    def addresses(self) -> list[IPv4Address]:
        if self.network.prefixlen >= 31:
            return list(self.network)
        return list(self.network.hosts())

    @property
    def size(self) -> int:
        n = self.network.num_addresses
        return n if self.network.prefixlen >= 31 else n - 2

    def assign(self, identity: bytes, owner: object, requested: IPv4Address | None = None,
               replace: bool = False) -> IPv4Address | None:
        """An address for `owner` (one per owner: asking again gives the same), or None
        when the pool is exhausted (INTERNAL_ADDRESS_FAILURE, §3.15.4). With `replace`
        (the client sent INITIAL_CONTACT, RFC 7296 §2.4: it has no other IKE SA with us)
        the leases other owners hold for this identity are stale and taken back first."""
        for lease in self.leases.values():
            if lease.owner is owner:
                return lease.address
        if replace:
            for a in [a for a, lease in self.leases.items() if lease.identity == identity]:
                del self.leases[a]
                self.reclaimed += 1
        free = self._free
        choice = next((a for a in (requested, self.last.get(identity)) if a is not None and free(a)), None)
        if choice is None:
            choice = next((a for a in self.addresses() if free(a)), None)
        if choice is None:
            return None
        self.leases[choice] = Lease(choice, identity, owner)
        self.last[identity] = choice
        return choice

    def _free(self, a: IPv4Address) -> bool:
        return a in self.network and a not in self.leases and (
            self.network.prefixlen >= 31 or a not in (self.network.network_address,
                                                      self.network.broadcast_address))

    def release(self, owner: object) -> IPv4Address | None:
        """Give back the address `owner` holds (None if it holds none)."""
        for a, lease in list(self.leases.items()):
            if lease.owner is owner:
                del self.leases[a]
                return a
        return None

    def holder(self, identity: bytes) -> list[Lease]:
        return [lease for lease in self.leases.values() if lease.identity == identity]

    def to_dict(self) -> dict[str, object]:
        return {"network": str(self.network), "size": self.size, "in_use": len(self.leases),
                "reclaimed": self.reclaimed,
                "dns": [str(d) for d in self.dns],
                "leases": [{"address": str(lease.address), "identity": lease.identity.decode(errors="replace")}
                           for lease in sorted(self.leases.values(), key=lambda x: x.address)]}


__all__ = ["AddressPool", "Lease"]
