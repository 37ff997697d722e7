"""Sans-I/O IKEv2 (RFC 7296) with a pre-shared key: one IKE SA and its rekeyed successors.

The session takes datagrams (`receive(data)`) and commands (`start`,
`rekey_child`, `create_child`, `delete_child`, `rekey_ike`, `liveness`,
`close`) and returns actions (`ike.actions`): `SendIke(data)` for the driver
to send on UDP 500/4500, and events for the dataplane (`IkeSaUp`,
`IkeSaRekeyed`, `ChildSaUp` with the ESP keys, `ChildSaDown`, `IkeFailed`,
...). No sockets, no clocks; randomness (SPIs, nonces, DH private keys) comes
from the injected `rng(n) -> bytes`, so runs are reproducible in tests.
Retransmission is the driver's timer: it calls `retransmit()`.

A session holds the current IKE SA and, while a rekey (§2.18) finishes, the
IKE SAs it replaced (`_IkeSa`: SPIs, keys, Message IDs, a window of one, and
its state in the table of `ike.fsm`: every change of state goes through
`_step`). Datagrams go to the IKE SA their SPIs name. The Child SAs belong to
the session, so an IKE SA rekey moves them all at once.

Exchanges: IKE_SA_INIT, IKE_AUTH (PSK, §2.15), CREATE_CHILD_SA for a new Child
SA (§1.3.1), a Child SA rekey (§1.3.3, PFS with a D-H transform in the
proposal) and an IKE SA rekey (§1.3.2, §2.18), INFORMATIONAL (Delete,
liveness). Simultaneous rekeys end with one SA: the one made with the lowest
nonce is closed by its creator (§2.8.1 Child SA, §2.8.2 IKE SA).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, ClassVar

from ike import crypto, fsm
from ike.actions import (
    DOWN_BY_PEER,
    DOWN_BY_US,
    DOWN_IKE,
    DOWN_NOT_FOUND,
    Action,
    ChildSa,
    ChildSaDown,
    ChildSaFailed,
    ChildSaRedundant,
    ChildSaUp,
    Ignored,
    IkeFailed,
    IkeRekeyFailed,
    IkeSaDown,
    IkeSaRekeyed,
    IkeSaUp,
    PeerAlive,
    SendIke,
)
from ike.codec import (
    AUTH_PSK,
    DH_CURVE25519,
    HEADER_LEN,
    ID_FQDN,
    AuthPayload,
    DecodeError,
    DeletePayload,
    Exchange,
    IdPayload,
    KePayload,
    Message,
    NoncePayload,
    Notify,
    NotifyPayload,
    Payload,
    Proposal,
    Protocol,
    SaPayload,
    SkPayload,
    TrafficSelector,
    TsPayload,
    decode,
    decode_payloads,
    encode,
)
from ike.fsm import FsmError, IkeSaFsm, Outcome, State
from ike.proposals import Dh, esp_proposal, ike_proposal, pick

NAT_DETECTION_SOURCE_IP = 16388  # RFC 7296 §3.10.1
NAT_DETECTION_DESTINATION_IP = 16389
FLAG_I = 0x08
FLAG_R = 0x20
CHILD_SA_NOT_FOUND = Notify.CHILD_SA_NOT_FOUND
ZERO_SPI = bytes(8)
NONCE_LEN = 32  # §2.10: at least half the PRF key size (SHA-256: 32)
ERROR_NOTIFY_MAX = 16383  # §3.10.1: notify types below 16384 are errors


@dataclass(frozen=True)
class IkeConfig:
    psk: bytes
    local_id: bytes  # FQDN, e.g. b"pe1.lsr.test"
    local_ts: tuple[TrafficSelector, ...]  # our customer side
    remote_ts: tuple[TrafficSelector, ...]  # the peer's customer side
    remote_id: bytes | None = None  # required peer identity (None = any)
    ike_key_bits: int = 128
    esp_key_bits: int = 128
    pfs: bool = True  # KE payload (and its D-H transform) in CREATE_CHILD_SA; required of the peer
    # RFC 7296 §2.23 NAT traversal: send NAT_DETECTION_*_IP notifies in IKE_SA_INIT with a
    # source hash that cannot match, so the peer "detects" a NAT and both sides carry ESP
    # in UDP 4500 (RFC 3948), as strongSwan's `encap = yes` does. The driver moves to 4500.
    nat_t: bool = False
    remote_addr: tuple[IPv4Address, int] | None = None  # for the destination hash

    def __repr__(self) -> str:
        return f"IkeConfig(local_id={self.local_id!r}, remote_id={self.remote_id!r}, psk=<secret>)"


class IkeError(Exception):
    """A command that the session's state does not allow."""


# What a transition's handler returns: how it ended (`ike.fsm.after`) and the actions it made.
Result = tuple[Outcome, list[Action]]
DONE = Outcome.DONE
REFUSED = Outcome.REFUSED


@dataclass
class _Request:
    exchange: int
    kind: str  # "init" | "auth" | "rekey" | "create" | "rekey-ike" | "delete" | "delete-ike" | "liveness"
    data: bytes = b""
    mid: int = 0
    ctx: dict = field(default_factory=dict)


class _IkeSa:
    """One IKE SA: SPIs, keys, Message IDs, its request slot (§2.3 window of one), its state."""

    def __init__(self, spi_i: bytes, spi_r: bytes, initiator: bool,
                 keys: crypto.IkeKeys | None = None, state: State = State.IDLE) -> None:
        self.spi_i = spi_i
        self.spi_r = spi_r
        self.initiator = initiator  # the original initiator of this IKE SA (§2.2, §2.18)
        self.keys = keys
        self.fsm = IkeSaFsm(state)
        self.next_mid = 0  # for requests we send
        self.expect_mid = 0  # for requests we receive
        self.outstanding: _Request | None = None
        self.queue: list[Callable[[], _Request | None]] = []
        self.last_response: tuple[int, bytes] | None = None
        self.iv = 0
        self.rekey: dict[str, Any] | None = None  # our IKE SA rekey in flight
        # §2.8.2: the peer's rekey of this IKE SA that we answered while ours was in flight
        self.collision: tuple[bytes, bytes, _IkeSa] | None = None
        self.deleting = False  # our Delete of this IKE SA is queued or in flight

    @property
    def state(self) -> State:
        return self.fsm.state

    def __repr__(self) -> str:
        return f"IkeSa({self.spi_i.hex()}/{self.spi_r.hex()} {self.state})"


# ---------------------------------------------------------------- the session


class IkeSession:
    def __init__(self, config: IkeConfig, *, initiator: bool,
                 rng: Callable[[int], bytes] = os.urandom) -> None:
        self.config = config
        self.initiator = initiator  # our role in IKE_SA_INIT
        self.rng = rng
        self.sa = _IkeSa(ZERO_SPI, ZERO_SPI, initiator)  # the current IKE SA
        self._sas: list[_IkeSa] = [self.sa]  # the current one and those a rekey replaced
        self.children: dict[int, ChildSa] = {}  # by spi_in
        self._ni = self._nr = b""
        self._dh = b""
        self._msg1 = self._msg2 = b""
        self._rekeying: dict[int, dict[str, Any]] = {}  # our Child SA rekeys: old spi_in -> info
        self._replaced: set[int] = set()  # Child SAs that have a successor
        self._deleting: set[int] = set()  # Child SAs whose Delete we sent (§2.25.1)

    # ------------------------------------------------------------ views of the current IKE SA

    @property
    def state(self) -> State:
        """The current IKE SA's state; it changes only in `_step` (the table of `ike.fsm`)."""
        return self.sa.state

    @property
    def spi_i(self) -> bytes:
        return self.sa.spi_i

    @property
    def spi_r(self) -> bytes:
        return self.sa.spi_r

    @property
    def keys(self) -> crypto.IkeKeys | None:
        return self.sa.keys

    @property
    def _expect_mid(self) -> int:
        return self.sa.expect_mid

    def knows(self, spi_i: bytes) -> bool:
        """A datagram with this initiator SPI belongs to one of our IKE SAs (§2.6)."""
        return any(sa.spi_i == spi_i for sa in self._sas)

    def ike_sas(self) -> list[dict[str, str]]:
        """Every IKE SA of the session: the current one first."""
        return [{"spi_i": sa.spi_i.hex(), "spi_r": sa.spi_r.hex(), "state": sa.state.value}
                for sa in sorted(self._sas, key=lambda s: s is not self.sa)]

    def replaced(self) -> list[bytes]:
        """The initiator SPIs of the IKE SAs a rekey replaced that wait for their Delete."""
        return [sa.spi_i for sa in self._sas if sa is not self.sa and sa.state not in fsm.FINAL]

    def forget(self, spi_i: bytes) -> list[Action]:
        """Drop a replaced IKE SA whose Delete never came (or was never answered): e.g. the
        peer deleted the old IKE SA before our crossing rekey's answer reached us, so it never
        learnt the keys of the redundant one to delete it (§2.8.2). The driver's timeout."""
        out: list[Action] = []
        for sa in [s for s in self._sas if s is not self.sa and s.spi_i == spi_i]:
            self._sas.remove(sa)
            req, sa.outstanding = sa.outstanding, None
            if req is not None:
                out += self._orphaned(req)
        return out

    @property
    def in_flight(self) -> tuple[tuple[bytes, int], ...]:
        """Our requests waiting for their response, by IKE SA and Message ID."""
        return tuple((sa.spi_i, sa.outstanding.mid) for sa in self._sas
                     if sa.outstanding is not None and sa.state not in fsm.FINAL)

    @property
    def awaiting_reply(self) -> bool:
        """A request of ours waits for its response (the driver runs its retransmit timer)."""
        return any(sa.outstanding is not None for sa in self._sas if sa.state not in fsm.FINAL)

    # ------------------------------------------------------------ helpers

    def _spi4(self) -> int:
        while True:
            spi = int.from_bytes(self.rng(4), "big")
            if spi >= 256 and spi not in self.children:
                return spi

    def _spi8(self) -> bytes:
        while True:
            spi = self.rng(8)
            if spi != ZERO_SPI and not self.knows(spi):
                return spi

    @staticmethod
    def _send_key(sa: _IkeSa) -> bytes:
        assert sa.keys is not None
        return sa.keys.sk_ei if sa.initiator else sa.keys.sk_er

    @staticmethod
    def _recv_key(sa: _IkeSa) -> bytes:
        assert sa.keys is not None
        return sa.keys.sk_er if sa.initiator else sa.keys.sk_ei

    def _sealed(self, sa: _IkeSa, exchange: int, mid: int, response: bool,
                payloads: list[Payload]) -> bytes:
        sa.iv += 1  # unique IV per key (RFC 5282 §3.1)
        flags = (FLAG_I if sa.initiator else 0) | (FLAG_R if response else 0)
        m = Message(sa.spi_i, sa.spi_r, exchange, flags, mid)
        return crypto.seal(m, payloads, self._send_key(sa), struct.pack("!Q", sa.iv))

    def _pick(self, sa: SaPayload | None, protocol: int, dh: Dh = Dh.IGNORE) -> Proposal | None:
        bits = self.config.ike_key_bits if protocol == Protocol.IKE else self.config.esp_key_bits
        return pick(sa, protocol, bits, dh)

    def _ts_ok(self, tsi: list[TsPayload], tsr: list[TsPayload]) -> bool:
        """Requested selectors must lie within ours (§2.9; we do not narrow)."""
        if not tsi or not tsr:
            return False
        # the requester's TSi is its local side: our remote side
        theirs_local, theirs_remote = tsi[0].selectors, tsr[0].selectors
        return _within(theirs_local, self.config.remote_ts) and _within(theirs_remote, self.config.local_ts)

    def _natd(self, spi_i: bytes, spi_r: bytes) -> list[Payload]:
        """NAT-D notifies (§2.23): SHA-1(SPIi | SPIr | IP | port); ours is forced to mismatch."""
        if not self.config.nat_t:
            return []
        fake_src = self.rng(20)
        if self.config.remote_addr is not None:
            ip, port = self.config.remote_addr
            dst = hashlib.sha1(spi_i + spi_r + ip.packed + struct.pack("!H", port)).digest()
        else:
            dst = self.rng(20)
        return [NotifyPayload(NAT_DETECTION_SOURCE_IP, data=fake_src),
                NotifyPayload(NAT_DETECTION_DESTINATION_IP, data=dst)]

    # ------------------------------------------------------------ the state machine

    def _step(self, sa: _IkeSa, event: fsm.Event, *args: Any) -> list[Action]:
        """The one driver: run the handler `ike.fsm.TABLE` names and move `sa` to its next state."""
        return sa.fsm.step(event, lambda action: self._HANDLERS[action](self, sa, *args))

    def _command(self, event: fsm.Event, *args: Any) -> list[Action]:
        try:
            return self._step(self.sa, event, *args)
        except FsmError as e:
            if event is fsm.Event.START:
                raise IkeError("start() is for an idle initiator") from e
            raise IkeError(f"IKE SA is {self.state}, not established") from e

    def _received(self, sa: _IkeSa, event: fsm.Event, unexpected: str, *args: Any) -> list[Action]:
        try:
            out = self._step(sa, event, *args)
        except FsmError:
            return [Ignored(unexpected)]
        return out + self._prune()

    def _prune(self) -> list[Action]:
        """Forget replaced IKE SAs that are gone; what was in flight on them failed (§2.25)."""
        out: list[Action] = []
        for sa in [s for s in self._sas if s is not self.sa and s.state in fsm.FINAL]:
            self._sas.remove(sa)
            req, sa.outstanding = sa.outstanding, None
            if req is not None:
                out += self._orphaned(req)
        return out

    def _orphaned(self, req: _Request) -> list[Action]:
        """A request whose IKE SA went away before its answer: tell the driver it failed."""
        if req.kind == "rekey":
            self._rekeying.pop(req.ctx["old"], None)
            return [ChildSaFailed(Notify.TEMPORARY_FAILURE, rekeying=req.ctx["old"])]
        if req.kind == "create":
            return [ChildSaFailed(Notify.TEMPORARY_FAILURE)]
        if req.kind == "rekey-ike":
            return []  # moot: the peer's rekey replaced that IKE SA (IkeSaRekeyed came)
        if req.kind == "delete" and req.ctx["spi"] in self.children:
            self._deleting.discard(req.ctx["spi"])
            spi = req.ctx["spi"]
            return self._step(self.sa, fsm.Event.DELETE_CHILD, spi) if self.state is State.ESTABLISHED else []
        return []

    # ------------------------------------------------------------ commands

    def start(self) -> list[Action]:
        """Initiator: send IKE_SA_INIT (§1.2)."""
        if not self.initiator:
            raise IkeError("start() is for an idle initiator")
        return self._command(fsm.Event.START)

    def rekey_child(self, spi_in: int) -> list[Action]:
        """CREATE_CHILD_SA replacing the Child SA whose inbound SPI is `spi_in` (§1.3.3)."""
        return self._command(fsm.Event.REKEY_CHILD, spi_in)

    def create_child(self) -> list[Action]:
        """CREATE_CHILD_SA for a new Child SA with the configured selectors (§1.3.1)."""
        return self._command(fsm.Event.CREATE_CHILD)

    def delete_child(self, spi_in: int) -> list[Action]:
        return self._command(fsm.Event.DELETE_CHILD, spi_in)

    def rekey_ike(self) -> list[Action]:
        """CREATE_CHILD_SA replacing the IKE SA (§1.3.2, §2.18)."""
        return self._command(fsm.Event.REKEY_IKE)

    def liveness(self) -> list[Action]:
        """Empty INFORMATIONAL request (§1.4, dead peer detection)."""
        return self._command(fsm.Event.LIVENESS)

    def close(self) -> list[Action]:
        """Delete the IKE SA and with it every Child SA (§1.4.1)."""
        return self._command(fsm.Event.CLOSE)

    def retransmit(self) -> list[Action]:
        """The driver's retransmission timer fired: send the outstanding requests again."""
        out = self._step(self.sa, fsm.Event.RETRANSMIT)
        for sa in self._sas:
            if sa is not self.sa and sa.outstanding is not None:
                out += self._step(sa, fsm.Event.RETRANSMIT)
        return out

    # ------------------------------------------------------------ command handlers

    def _send_init(self, sa: _IkeSa) -> Result:
        sa.spi_i = self.rng(8)
        self._ni = self.rng(NONCE_LEN)
        self._dh = self.rng(32)
        m = Message(sa.spi_i, ZERO_SPI, Exchange.IKE_SA_INIT, FLAG_I, 0, (
            SaPayload((ike_proposal(self.config.ike_key_bits),)),
            KePayload(DH_CURVE25519, crypto.x25519_public(self._dh)),
            NoncePayload(self._ni),
            *self._natd(sa.spi_i, ZERO_SPI),
        ))
        data = encode(m)
        self._msg1 = data
        sa.next_mid = 1
        sa.outstanding = _Request(Exchange.IKE_SA_INIT, "init", data, 0)
        return DONE, [SendIke(data)]

    def _child_request(self, kind: str, old: ChildSa | None) -> _Request:
        """CREATE_CHILD_SA request for a new Child SA or a rekey of `old` (§1.3.1, §1.3.3)."""
        new_spi = self._spi4()
        nonce = self.rng(NONCE_LEN)
        payloads: list[Payload] = []
        if old is not None:
            payloads.append(NotifyPayload(Notify.REKEY_SA, Protocol.ESP, struct.pack("!I", old.spi_in)))
        payloads += [SaPayload((esp_proposal(self.config.esp_key_bits, new_spi, self.config.pfs),)),
                     NoncePayload(nonce)]
        dh = b""
        if self.config.pfs:
            dh = self.rng(32)
            payloads.append(KePayload(DH_CURVE25519, crypto.x25519_public(dh)))
        local, remote = (old.local_ts, old.remote_ts) if old else (self.config.local_ts, self.config.remote_ts)
        payloads += [TsPayload(local), TsPayload(remote, responder=True)]
        return _Request(Exchange.CREATE_CHILD_SA, kind, ctx={
            "old": old.spi_in if old else None, "spi": new_spi, "nonce": nonce, "dh": dh,
            "payloads": payloads})

    def _queue_rekey(self, sa: _IkeSa, spi_in: int) -> Result:
        if spi_in not in self.children:
            raise IkeError(f"no Child SA with inbound SPI 0x{spi_in:08x}")

        def build() -> _Request | None:
            busy = self._rekeying.keys() | self._replaced | self._deleting
            if spi_in not in self.children or spi_in in busy:
                return None  # gone, or already being replaced or deleted
            req = self._child_request("rekey", self.children[spi_in])
            self._rekeying[spi_in] = {"ni": req.ctx["nonce"]}
            return req

        return DONE, self._enqueue(sa, build)

    def _queue_create_child(self, sa: _IkeSa) -> Result:
        return DONE, self._enqueue(sa, lambda: self._child_request("create", None))

    def _queue_delete_child(self, sa: _IkeSa, spi_in: int) -> Result:
        return DONE, self._enqueue(sa, self._delete_child_builder(spi_in))

    def _delete_child_builder(self, spi_in: int) -> Callable[[], _Request | None]:
        def build() -> _Request | None:
            if spi_in not in self.children or spi_in in self._deleting:
                return None
            self._deleting.add(spi_in)
            return _Request(Exchange.INFORMATIONAL, "delete", ctx={
                "spi": spi_in, "payloads": [DeletePayload(Protocol.ESP, (struct.pack("!I", spi_in),))]})
        return build

    def _queue_rekey_ike(self, sa: _IkeSa) -> Result:
        def build() -> _Request | None:
            if sa is not self.sa or sa.state is not State.ESTABLISHED or sa.rekey is not None:
                return None  # replaced meanwhile (the peer rekeyed it), or already rekeying
            spi, nonce, dh = self._spi8(), self.rng(NONCE_LEN), self.rng(32)
            sa.rekey = {"spi": spi, "nonce": nonce, "dh": dh}
            return _Request(Exchange.CREATE_CHILD_SA, "rekey-ike", ctx={**sa.rekey, "payloads": [
                SaPayload((ike_proposal(self.config.ike_key_bits, spi),)),
                NoncePayload(nonce), KePayload(DH_CURVE25519, crypto.x25519_public(dh))]})

        return DONE, self._enqueue(sa, build)

    def _queue_liveness(self, sa: _IkeSa) -> Result:
        return DONE, self._enqueue(sa, lambda: _Request(Exchange.INFORMATIONAL, "liveness",
                                                        ctx={"payloads": []}))

    def _queue_delete_ike(self, sa: _IkeSa) -> Result:
        return DONE, self._enqueue(sa, self._delete_ike_builder(sa))

    @staticmethod
    def _delete_ike_builder(sa: _IkeSa) -> Callable[[], _Request | None]:
        def build() -> _Request | None:  # `_pump` sends it only on `sa` (not on a successor)
            return _Request(Exchange.INFORMATIONAL, "delete-ike",
                            ctx={"sa": sa, "payloads": [DeletePayload(Protocol.IKE)]})
        return build

    def _resend(self, sa: _IkeSa) -> Result:
        return DONE, [SendIke(sa.outstanding.data)] if sa.outstanding else []

    def _enqueue(self, sa: _IkeSa, build: Callable[[], _Request | None]) -> list[Action]:
        sa.queue.append(build)
        return self._pump(sa)

    @staticmethod
    def _queue_next(sa: _IkeSa, build: Callable[[], _Request | None]) -> None:
        """Put a request first in line; `receive` sends it once the handler is done."""
        sa.queue.insert(0, build)

    def _pump(self, sa: _IkeSa) -> list[Action]:
        """Send the next queued request if none is in flight (§2.3: window of one)."""
        while sa.outstanding is None and sa.queue and sa.state in (State.ESTABLISHED, State.REKEYED):
            req = sa.queue.pop(0)()
            if req is None:
                continue
            if req.kind == "delete-ike":
                if req.ctx.pop("sa") is not sa:
                    continue  # a Delete for an IKE SA that a rekey replaced meanwhile
                sa.deleting = True
            req.mid = sa.next_mid
            sa.next_mid += 1
            req.data = self._sealed(sa, req.exchange, req.mid, False, req.ctx.pop("payloads"))
            sa.outstanding = req
            return [SendIke(req.data)]
        return []

    def _pump_all(self) -> list[Action]:
        out: list[Action] = []
        for sa in list(self._sas):
            out += self._pump(sa)
        return out

    # ------------------------------------------------------------ input

    def receive(self, data: bytes) -> list[Action]:
        """One received IKE datagram (without the non-ESP marker). Never raises on bad input.

        The message layer (§2.1 retransmissions, §2.2 Message IDs, §2.6 SPIs, §3.14
        integrity) is here; what an acceptable message does is the table's (`_step`).
        """
        try:
            m = decode(data)
        except DecodeError as e:
            return [Ignored(f"malformed: {e}")]
        if self.state in fsm.FINAL:
            return [Ignored(f"IKE SA is {self.state}")]
        if m.exchange == Exchange.IKE_SA_INIT and not m.is_response:
            if not self.initiator and data == self._msg1 and self._msg2:
                return [SendIke(self._msg2)]  # §2.1: a retransmitted IKE_SA_INIT
            if self.initiator or m.message_id != 0:
                return [Ignored("unexpected IKE_SA_INIT request")]
            return self._received(self.sa, fsm.Event.RX_INIT_REQUEST, "unexpected IKE_SA_INIT request",
                                  m, data)
        sa = next((s for s in self._sas if m.spi_i == s.spi_i
                   and (m.spi_r == s.spi_r or s.state is State.INIT_SENT)), None)
        if sa is None:
            return [Ignored("IKE SPIs do not match")]  # §2.6: SPIr is unknown until the response
        if sa.state in fsm.FINAL:
            return [Ignored(f"IKE SA is {sa.state}")]
        if bool(m.flags & FLAG_I) == sa.initiator:
            return [Ignored("Initiator flag says the message is our own")]
        if m.is_response:
            req = sa.outstanding
            if req is None or m.message_id != req.mid or m.exchange != req.exchange:
                return [Ignored(f"unexpected response id {m.message_id}")]
            event = _RESPONSE_EVENTS[req.kind]
            unexpected = f"unexpected response id {m.message_id}"
            if req.kind == "init":
                return self._received(sa, event, unexpected, m, data)
            inner = self._open(sa, m, data)
            if inner is None:
                return [Ignored("SK payload does not verify")]
            sa.outstanding = None  # answered, whatever the answer does
            return self._received(sa, event, unexpected, req, inner) + self._pump_all()
        # a request
        if sa.last_response and m.message_id == sa.last_response[0]:
            return [SendIke(sa.last_response[1])]  # §2.1: retransmitted request
        if m.message_id != sa.expect_mid:
            return [Ignored(f"request id {m.message_id}, expected {sa.expect_mid}")]
        inner = self._open(sa, m, data)
        if inner is None:
            return [Ignored("SK payload does not verify")]
        sa.expect_mid += 1
        if sa.state is State.ESTABLISHED:
            unexpected = f"exchange {m.exchange} not handled"
        else:
            unexpected = f"{_exchange_name(m.exchange)} in state {sa.state}"
        return self._received(sa, _request_event(m.exchange, inner), unexpected, m, inner) + self._pump_all()

    def _open(self, sa: _IkeSa, m: Message, data: bytes) -> tuple[Payload, ...] | None:
        if sa.keys is None or not m.payloads or not isinstance(m.payloads[-1], SkPayload):
            return None
        sk = m.payloads[-1]
        plain = crypto.open_sk(data, len(data) - 4 - len(sk.data), self._recv_key(sa))
        if plain is None:
            return None
        try:
            return decode_payloads(sk.first, plain)
        except DecodeError:
            return None

    def _respond(self, sa: _IkeSa, m: Message, payloads: list[Payload]) -> SendIke:
        data = self._sealed(sa, m.exchange, m.message_id, True, payloads)
        sa.last_response = (m.message_id, data)
        return SendIke(data)

    # ------------------------------------------------------------ IKE_SA_INIT

    def _answer_init(self, sa: _IkeSa, m: Message, data: bytes) -> Result:
        def refuse(n: int, ndata: bytes = b"") -> Result:
            # §1.2, §2.6: the responder keeps no state for a request it refuses
            r = Message(m.spi_i, ZERO_SPI, Exchange.IKE_SA_INIT, FLAG_R, 0, (NotifyPayload(n, data=ndata),))
            return REFUSED, [SendIke(encode(r)), Ignored(f"IKE_SA_INIT refused: {Notify(n).name}")]

        chosen = self._pick(next(iter(m.find(SaPayload)), None), Protocol.IKE)
        if chosen is None:
            return refuse(Notify.NO_PROPOSAL_CHOSEN)
        ke = m.find(KePayload)
        nonce = m.find(NoncePayload)
        if not ke or ke[0].group != DH_CURVE25519:
            return refuse(Notify.INVALID_KE_PAYLOAD, struct.pack("!H", DH_CURVE25519))  # §1.2
        if not nonce:
            return refuse(Notify.INVALID_SYNTAX)
        self._dh = self.rng(32)
        try:
            shared = crypto.x25519_shared(self._dh, ke[0].data)
        except ValueError:
            return refuse(Notify.INVALID_SYNTAX)
        sa.spi_i = m.spi_i
        sa.spi_r = self.rng(8)
        self._ni = nonce[0].nonce
        self._nr = self.rng(NONCE_LEN)
        sa.keys = crypto.ike_keys(self._ni, self._nr, shared, sa.spi_i, sa.spi_r,
                                  self.config.ike_key_bits // 8)
        r = Message(sa.spi_i, sa.spi_r, Exchange.IKE_SA_INIT, FLAG_R, 0, (
            SaPayload((chosen,)),
            KePayload(DH_CURVE25519, crypto.x25519_public(self._dh)),
            NoncePayload(self._nr),
            *(self._natd(sa.spi_i, sa.spi_r) if NAT_DETECTION_SOURCE_IP in m.notifies() else []),
        ))
        self._msg1 = data
        self._msg2 = encode(r)
        sa.last_response = (0, self._msg2)
        sa.expect_mid = 1
        return DONE, [SendIke(self._msg2)]

    def _send_auth(self, sa: _IkeSa, m: Message, data: bytes) -> Result:
        """The IKE_SA_INIT response: derive the keys and send IKE_AUTH (initiator)."""
        errs = m.notifies() & {n.value for n in Notify}
        if errs and not m.find(SaPayload):
            sa.outstanding = None
            n = min(errs)
            return Outcome.FAILED, [IkeFailed(f"responder refused IKE_SA_INIT: {Notify(n).name}", n)]
        chosen = self._pick(next(iter(m.find(SaPayload)), None), Protocol.IKE)
        ke = m.find(KePayload)
        nonce = m.find(NoncePayload)
        if chosen is None or not ke or not nonce or ke[0].group != DH_CURVE25519:
            return REFUSED, [Ignored("IKE_SA_INIT response without an acceptable SA/KE/Nonce")]
        try:
            shared = crypto.x25519_shared(self._dh, ke[0].data)
        except ValueError:
            return REFUSED, [Ignored("bad KE data")]
        sa.spi_r = m.spi_r
        self._nr = nonce[0].nonce
        self._msg2 = data
        sa.keys = crypto.ike_keys(self._ni, self._nr, shared, sa.spi_i, sa.spi_r,
                                  self.config.ike_key_bits // 8)
        # IKE_AUTH (§1.2): SK{IDi, AUTH, SAi2, TSi, TSr}; no KE, so no D-H transform in SAi2
        idi = IdPayload(ID_FQDN, self.config.local_id)
        auth = crypto.psk_auth(self.config.psk, self._msg1, self._nr, sa.keys.sk_pi, idi.body())
        spi = self._spi4()
        payloads: list[Payload] = [
            idi, AuthPayload(AUTH_PSK, auth),
            SaPayload((esp_proposal(self.config.esp_key_bits, spi, pfs=False),)),
            TsPayload(self.config.local_ts), TsPayload(self.config.remote_ts, responder=True),
        ]
        data2 = self._sealed(sa, Exchange.IKE_AUTH, 1, False, payloads)
        sa.next_mid = 2
        sa.outstanding = _Request(Exchange.IKE_AUTH, "auth", data2, 1, {"spi": spi})
        return DONE, [SendIke(data2)]

    # ------------------------------------------------------------ requests we answer

    def _answer_auth(self, sa: _IkeSa, m: Message, inner: tuple[Payload, ...]) -> Result:
        assert sa.keys is not None
        ids = [p for p in inner if isinstance(p, IdPayload) and not p.responder]
        auths = [p for p in inner if isinstance(p, AuthPayload)]
        ok = False
        if ids and auths and auths[0].method == AUTH_PSK:
            expect = crypto.psk_auth(self.config.psk, self._msg1, self._nr, sa.keys.sk_pi, ids[0].body())
            ok = hmac.compare_digest(expect, auths[0].data) and (
                self.config.remote_id is None or ids[0].data == self.config.remote_id
            )
        if not ok:  # §2.21.2: answer AUTH_FAILED and forget the IKE SA
            send = self._respond(sa, m, [NotifyPayload(Notify.AUTH_FAILED)])
            return Outcome.FAILED, [send, IkeFailed("initiator authentication failed", Notify.AUTH_FAILED)]
        idr = IdPayload(ID_FQDN, self.config.local_id, responder=True)
        my_auth = crypto.psk_auth(self.config.psk, self._msg2, self._ni, sa.keys.sk_pr, idr.body())
        head: list[Payload] = [idr, AuthPayload(AUTH_PSK, my_auth)]
        # the IKE SA is up even if its first Child SA is refused (§1.2, §2.21.2)
        up = IkeSaUp(sa.spi_i.hex(), sa.spi_r.hex())
        chosen = self._pick(_sa_payload(inner), Protocol.ESP, Dh.IGNORE)
        if chosen is None:
            return DONE, [self._respond(sa, m, head + [NotifyPayload(Notify.NO_PROPOSAL_CHOSEN)]), up,
                          ChildSaFailed(Notify.NO_PROPOSAL_CHOSEN)]
        tsi, tsr = _ts(inner)
        if not self._ts_ok(tsi, tsr):
            return DONE, [self._respond(sa, m, head + [NotifyPayload(Notify.TS_UNACCEPTABLE)]), up,
                          ChildSaFailed(Notify.TS_UNACCEPTABLE)]
        spi_in = self._spi4()
        k_ir, k_ri = crypto.child_keys(sa.keys.sk_d, self._ni, self._nr, self.config.esp_key_bits // 8)
        child = self._child(spi_in, struct.unpack("!I", chosen.spi)[0], k_ir, k_ri,
                            tsr[0].selectors, tsi[0].selectors)
        send = self._respond(sa, m, head + [
            SaPayload((Proposal(chosen.number, Protocol.ESP, struct.pack("!I", spi_in), chosen.transforms),)),
            tsi[0], tsr[0],
        ])
        return DONE, [send, up, ChildSaUp(child)]

    def _child(self, spi_in: int, spi_out: int, key_in: bytes, key_out: bytes,
               local_ts: tuple[TrafficSelector, ...], remote_ts: tuple[TrafficSelector, ...]) -> ChildSa:
        child = ChildSa(spi_in, spi_out, f"aes-{self.config.esp_key_bits}-gcm-16", key_in, key_out,
                        local_ts, remote_ts)
        self.children[spi_in] = child
        return child

    def _by_spi_out(self, raw: bytes) -> ChildSa | None:
        """Our Child SA whose outbound SPI is `raw` (the peer names SAs by its inbound SPI)."""
        if len(raw) != 4:
            return None
        spi = struct.unpack("!I", raw)[0]
        return next((c for c in self.children.values() if c.spi_out == spi), None)

    def _answer_create_child(self, sa: _IkeSa, m: Message, inner: tuple[Payload, ...]) -> Result:
        """A new Child SA (§1.3.1) or, with REKEY_SA, the rekey of one (§1.3.3)."""
        assert sa.keys is not None

        def refuse(n: int, spi: bytes = b"", data: bytes = b"") -> Result:
            proto = Protocol.ESP if spi else 0
            return DONE, [self._respond(sa, m, [NotifyPayload(n, proto, spi, data)])]

        rekey = [p for p in inner if isinstance(p, NotifyPayload) and p.notify == Notify.REKEY_SA]
        old = None
        if rekey:
            old = self._by_spi_out(rekey[0].spi)
            if old is None:  # §2.25: the peer may create it from scratch
                return refuse(Notify.CHILD_SA_NOT_FOUND, rekey[0].spi)
            if old.spi_in in self._deleting:  # §2.25.1: we are closing it
                return refuse(Notify.TEMPORARY_FAILURE)
        nonce = [p for p in inner if isinstance(p, NoncePayload)]
        ke = [p for p in inner if isinstance(p, KePayload)]
        if self.config.pfs and not ke:
            return refuse(Notify.NO_PROPOSAL_CHOSEN)  # our policy wants PFS (§1.3.1 KE optional)
        chosen = self._pick(_sa_payload(inner), Protocol.ESP, Dh.NEED if ke else Dh.NONE)
        if chosen is None or not nonce:
            return refuse(Notify.NO_PROPOSAL_CHOSEN)
        tsi, tsr = _ts(inner)
        if old is None and not self._ts_ok(tsi, tsr):
            return refuse(Notify.TS_UNACCEPTABLE)
        shared = b""
        reply_ke: list[Payload] = []
        if ke:
            if ke[0].group != DH_CURVE25519:  # §1.3.1: the group we want
                return refuse(Notify.INVALID_KE_PAYLOAD, data=struct.pack("!H", DH_CURVE25519))
            dh = self.rng(32)
            try:
                shared = crypto.x25519_shared(dh, ke[0].data)
            except ValueError:
                return refuse(Notify.INVALID_SYNTAX)
            reply_ke = [KePayload(DH_CURVE25519, crypto.x25519_public(dh))]
        nr = self.rng(NONCE_LEN)
        k_ir, k_ri = crypto.child_keys(sa.keys.sk_d, nonce[0].nonce, nr, self.config.esp_key_bits // 8, shared)
        spi_in = self._spi4()
        if old is not None:
            local_ts, remote_ts = old.local_ts, old.remote_ts
        else:
            local_ts, remote_ts = tsr[0].selectors, tsi[0].selectors
        child = self._child(spi_in, struct.unpack("!I", chosen.spi)[0], k_ir, k_ri, local_ts, remote_ts)
        send = self._respond(sa, m, [
            SaPayload((Proposal(chosen.number, Protocol.ESP, struct.pack("!I", spi_in), chosen.transforms),)),
            NoncePayload(nr), *reply_ke,
            TsPayload(remote_ts), TsPayload(local_ts, responder=True),
        ])
        if old is None:
            return DONE, [send, ChildSaUp(child)]
        self._replaced.add(old.spi_in)
        mine = self._rekeying.get(old.spi_in)
        if mine is not None:  # §2.8.1: we rekey it too; note the collision, answer as usual
            mine["peer"] = (nonce[0].nonce, nr, spi_in)
        # §2.8: the old Child SA stays until the peer (the rekey initiator) deletes it
        return DONE, [send, ChildSaUp(child, replaces=old.spi_in)]

    def _answer_rekey_ike(self, sa: _IkeSa, m: Message, inner: tuple[Payload, ...]) -> Result:
        """The peer rekeys this IKE SA (§2.18): answer, and the new IKE SA becomes the current one."""
        assert sa.keys is not None

        def refuse(n: int, data: bytes = b"") -> Result:
            return REFUSED, [self._respond(sa, m, [NotifyPayload(n, data=data)])]

        if sa.deleting:
            return refuse(Notify.TEMPORARY_FAILURE)  # §2.25.2: we are closing it
        if sa.outstanding is not None and sa.outstanding.kind != "rekey-ike":
            # §2.25: an exchange of ours is in flight on this IKE SA; were it replaced now,
            # a lost answer to ours could not be asked for again (as strongSwan does)
            return refuse(Notify.TEMPORARY_FAILURE)
        chosen = self._pick(_sa_payload(inner), Protocol.IKE)
        nonce = [p for p in inner if isinstance(p, NoncePayload)]
        ke = [p for p in inner if isinstance(p, KePayload)]
        if chosen is None or len(chosen.spi) != 8 or chosen.spi == ZERO_SPI:
            return refuse(Notify.NO_PROPOSAL_CHOSEN)
        if not ke or ke[0].group != DH_CURVE25519:
            return refuse(Notify.INVALID_KE_PAYLOAD, struct.pack("!H", DH_CURVE25519))
        if not nonce:
            return refuse(Notify.INVALID_SYNTAX)
        dh = self.rng(32)
        try:
            shared = crypto.x25519_shared(dh, ke[0].data)
        except ValueError:
            return refuse(Notify.INVALID_SYNTAX)
        spi_r, nr = self._spi8(), self.rng(NONCE_LEN)
        ni = nonce[0].nonce
        # §2.18: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), SPIs of the new SA; the
        # rekey initiator is the new IKE SA's original initiator
        keys = crypto.ike_keys(ni, nr, shared, chosen.spi, spi_r, self.config.ike_key_bits // 8,
                               old_sk_d=sa.keys.sk_d)
        new = _IkeSa(chosen.spi, spi_r, initiator=False, keys=keys, state=State.ESTABLISHED)
        send = self._respond(sa, m, [
            SaPayload((Proposal(chosen.number, Protocol.IKE, spi_r, chosen.transforms),)),
            NoncePayload(nr), KePayload(DH_CURVE25519, crypto.x25519_public(dh)),
        ])
        self._sas.append(new)
        if sa.rekey is not None:
            # §2.8.2: ours is in flight: note the collision; the answer to ours decides which
            # new IKE SA stays (until then this one stays current, in state REKEYED)
            sa.collision = (ni, nr, new)
            return DONE, [send]
        return DONE, [send, *self._switch(sa, new, ours=False)]

    def _switch(self, old: _IkeSa, new: _IkeSa, ours: bool) -> list[Action]:
        """`new` becomes the current IKE SA; requests not yet sent on `old` go with it."""
        self.sa = new
        new.queue[:0] = old.queue
        old.queue = []
        return [IkeSaRekeyed(new.spi_i.hex(), new.spi_r.hex(), old.spi_i.hex(), old.spi_r.hex(), ours)]

    def _refuse_busy(self, sa: _IkeSa, m: Message, inner: tuple[Payload, ...]) -> Result:
        """§2.25: this IKE SA is being replaced; the peer may try again on the new one."""
        return DONE, [self._respond(sa, m, [NotifyPayload(Notify.TEMPORARY_FAILURE)])]

    def _answer_informational(self, sa: _IkeSa, m: Message, inner: tuple[Payload, ...]) -> Result:
        out: list[Action] = []
        reply: list[Payload] = []
        for d in (p for p in inner if isinstance(p, DeletePayload)):
            if d.protocol == Protocol.IKE:  # RX_DELETE_IKE_REQUEST: the table moves to DELETED
                send = self._respond(sa, m, [])
                if sa is not self.sa:  # a new IKE SA from a collision not yet decided (§2.8.2):
                    return DONE, [send]  # the peer found it redundant; the Child SAs stay
                return DONE, [send, *self._all_down(), IkeSaDown("deleted by peer")]
            mine = []
            for raw in d.spis:
                c = self._by_spi_out(raw)
                if c is None:
                    continue
                del self.children[c.spi_in]
                self._forget_child(c.spi_in)
                if c.spi_in in self._deleting:  # §2.25.1: both close it; no Delete in the reply
                    self._deleting.discard(c.spi_in)
                    out.append(ChildSaDown(c.spi_in, c.spi_out, DOWN_BY_US))
                    continue
                out.append(ChildSaDown(c.spi_in, c.spi_out, DOWN_BY_PEER))
                mine.append(struct.pack("!I", c.spi_in))
            if mine:
                reply.append(DeletePayload(Protocol.ESP, tuple(mine)))  # §1.4.1: delete ours too
        return DONE, [self._respond(sa, m, reply), *out]

    def _answer_delete_rekeyed(self, sa: _IkeSa, m: Message, inner: tuple[Payload, ...]) -> Result:
        """The peer deletes an IKE SA a rekey replaced (§2.18): its Child SAs have moved on."""
        send = self._respond(sa, m, [])
        if sa is not self.sa:
            return DONE, [send]
        # still current: both rekeyed it (§2.8.2) and the answer to ours has not come; the
        # peer deletes the old one, so its new IKE SA won (ours is dropped with this one)
        peer_new = sa.collision[2] if sa.collision else None
        sa.collision = None
        if peer_new is not None and peer_new.state is State.ESTABLISHED:
            return DONE, [send, *self._switch(sa, peer_new, ours=False)]
        return DONE, [send, *self._all_down(), IkeSaDown("deleted by peer")]

    def _forget_child(self, spi_in: int) -> None:
        # `_rekeying` stays until our rekey's response: a collision noted for the old Child
        # SA still decides (§2.8.1) after the peer, the winner, deleted it
        self._replaced.discard(spi_in)

    def _all_down(self) -> list[Action]:
        out: list[Action] = [ChildSaDown(c.spi_in, c.spi_out, DOWN_IKE) for c in self.children.values()]
        self.children.clear()
        self._rekeying.clear()
        self._replaced.clear()
        self._deleting.clear()
        return out

    # ------------------------------------------------------------ responses to our requests

    def _check_auth(self, sa: _IkeSa, req: _Request, inner: tuple[Payload, ...]) -> Result:
        """The IKE_AUTH response (initiator)."""
        assert sa.keys is not None
        notifies = _notifies(inner)
        if Notify.AUTH_FAILED in notifies:
            return Outcome.FAILED, [IkeFailed("responder refused our authentication (wrong PSK or ID?)",
                                              Notify.AUTH_FAILED)]
        ids = [p for p in inner if isinstance(p, IdPayload) and p.responder]
        auths = [p for p in inner if isinstance(p, AuthPayload)]
        ok = bool(ids and auths) and hmac.compare_digest(
            crypto.psk_auth(self.config.psk, self._msg2, self._ni, sa.keys.sk_pr, ids[0].body()),
            auths[0].data,
        ) and (self.config.remote_id is None or ids[0].data == self.config.remote_id)
        if not ok:
            return Outcome.FAILED, [IkeFailed("responder authentication failed", Notify.AUTH_FAILED)]
        out: list[Action] = [IkeSaUp(sa.spi_i.hex(), sa.spi_r.hex())]
        for n in (Notify.NO_PROPOSAL_CHOSEN, Notify.TS_UNACCEPTABLE):
            if n in notifies:
                return DONE, out + [ChildSaFailed(n)]
        chosen = self._pick(_sa_payload(inner), Protocol.ESP, Dh.IGNORE)
        tsi, tsr = _ts(inner)
        if chosen is None or not tsi or not tsr:
            return DONE, out + [ChildSaFailed(Notify.NO_PROPOSAL_CHOSEN)]
        k_ir, k_ri = crypto.child_keys(sa.keys.sk_d, self._ni, self._nr, self.config.esp_key_bits // 8)
        child = self._child(req.ctx["spi"], struct.unpack("!I", chosen.spi)[0], k_ri, k_ir,
                            tsi[0].selectors, tsr[0].selectors)
        return DONE, out + [ChildSaUp(child, ours=True)]

    def _install_child(self, sa: _IkeSa, req: _Request, inner: tuple[Payload, ...]) -> Result:
        """The CREATE_CHILD_SA response to our new Child SA (§1.3.1) or rekey (§1.3.3, §2.8)."""
        assert sa.keys is not None
        old_spi: int | None = req.ctx["old"]
        mine = self._rekeying.pop(old_spi, {}) if old_spi is not None else {}
        errors = {n for n in _notifies(inner) if n <= ERROR_NOTIFY_MAX}

        def failed(n: int) -> Result:
            out: list[Action] = [ChildSaFailed(n, rekeying=old_spi)]
            if n == Notify.CHILD_SA_NOT_FOUND and old_spi in self.children:
                c = self.children.pop(old_spi)  # §2.25: delete it silently; the driver creates anew
                self._forget_child(old_spi)
                out.append(ChildSaDown(c.spi_in, c.spi_out, DOWN_NOT_FOUND))
            return DONE, out

        if errors:
            return failed(min(errors))
        dh = req.ctx["dh"]
        chosen = self._pick(_sa_payload(inner), Protocol.ESP, Dh.NEED if dh else Dh.NONE)
        nonce = [p for p in inner if isinstance(p, NoncePayload)]
        ke = [p for p in inner if isinstance(p, KePayload)]
        if chosen is None or not nonce or (dh and not ke):
            return failed(Notify.NO_PROPOSAL_CHOSEN)
        shared = b""
        if dh:
            if ke[0].group != DH_CURVE25519:
                return failed(Notify.INVALID_KE_PAYLOAD)
            try:
                shared = crypto.x25519_shared(dh, ke[0].data)
            except ValueError:
                return failed(Notify.INVALID_SYNTAX)
        nr = nonce[0].nonce
        k_ir, k_ri = crypto.child_keys(sa.keys.sk_d, req.ctx["nonce"], nr, self.config.esp_key_bits // 8, shared)
        old = self.children.get(old_spi) if old_spi is not None else None
        if old is not None:
            local_ts, remote_ts = old.local_ts, old.remote_ts
        else:
            tsi, tsr = _ts(inner)
            if not tsi or not tsr:
                return failed(Notify.TS_UNACCEPTABLE)
            local_ts, remote_ts = tsi[0].selectors, tsr[0].selectors
        child = self._child(req.ctx["spi"], struct.unpack("!I", chosen.spi)[0], k_ri, k_ir,
                            local_ts, remote_ts)
        peer = mine.get("peer")
        if old is None:  # new, or its predecessor went meanwhile (§2.25.1)
            if peer is not None and min(req.ctx["nonce"], nr) < min(peer[0], peer[1]):
                # §2.8.1: the peer won a simultaneous rekey and already deleted the old one
                self._queue_next(self.sa, self._delete_child_builder(child.spi_in))
                return DONE, [ChildSaUp(child, replaces=old_spi, ours=True, redundant=True)]
            return DONE, [ChildSaUp(child, ours=True)]
        self._replaced.add(old.spi_in)
        if peer is not None and peer[2] in self.children:
            # §2.8.1: both rekeyed it. The SA made with the lowest of the four nonces is
            # redundant and closed by its creator; the creator of the other deletes the old one.
            if min(req.ctx["nonce"], nr) < min(peer[0], peer[1]):
                self._queue_next(self.sa, self._delete_child_builder(child.spi_in))
                return DONE, [ChildSaUp(child, replaces=old.spi_in, ours=True, redundant=True)]
            self._queue_next(self.sa, self._delete_child_builder(old.spi_in))
            return DONE, [ChildSaUp(child, replaces=old.spi_in, ours=True), ChildSaRedundant(peer[2])]
        # §2.8: the rekey initiator deletes the old Child SA
        self._queue_next(self.sa, self._delete_child_builder(old.spi_in))
        return DONE, [ChildSaUp(child, replaces=old.spi_in, ours=True)]

    def _install_rekeyed_ike(self, sa: _IkeSa, req: _Request, inner: tuple[Payload, ...]) -> Result:
        """The response to our IKE SA rekey (§2.18); after a collision, §2.8.2 picks one."""
        assert sa.keys is not None
        sa.rekey = None
        errors = {n for n in _notifies(inner) if n <= ERROR_NOTIFY_MAX}
        chosen = self._pick(_sa_payload(inner), Protocol.IKE)
        nonce = [p for p in inner if isinstance(p, NoncePayload)]
        ke = [p for p in inner if isinstance(p, KePayload)]
        if errors or chosen is None or len(chosen.spi) != 8 or not nonce or not ke \
                or ke[0].group != DH_CURVE25519:
            return REFUSED, [IkeRekeyFailed(min(errors) if errors else Notify.NO_PROPOSAL_CHOSEN)]
        try:
            shared = crypto.x25519_shared(req.ctx["dh"], ke[0].data)
        except ValueError:
            return REFUSED, [IkeRekeyFailed(Notify.INVALID_SYNTAX)]
        ni, nr = req.ctx["nonce"], nonce[0].nonce
        keys = crypto.ike_keys(ni, nr, shared, req.ctx["spi"], chosen.spi, self.config.ike_key_bits // 8,
                               old_sk_d=sa.keys.sk_d)
        new = _IkeSa(req.ctx["spi"], chosen.spi, initiator=True, keys=keys, state=State.ESTABLISHED)
        self._sas.append(new)
        collision, sa.collision = sa.collision, None
        if collision is None:
            if sa is self.sa:
                out = self._switch(sa, new, ours=True)
                # §2.18: the Delete of the old IKE SA is the last request sent on it
                self._queue_next(sa, self._delete_ike_builder(sa))
                return DONE, out
            collision = (b"", b"", self.sa)  # replaced meanwhile: ours is the redundant one
        peer_new = collision[2]
        alive = peer_new.state is State.ESTABLISHED
        if alive and min(ni, nr) < min(collision[0], collision[1]):
            # §2.8.2: ours has the lowest nonce: redundant; we made it, we delete it; the
            # peer's stays and the peer (its creator) deletes the old one
            out = self._switch(sa, peer_new, ours=False) if sa is self.sa else []
            out += self._step(new, fsm.Event.REDUNDANT)
            self._queue_next(new, self._delete_ike_builder(new))
            return DONE, out
        # ours stays: the Child SAs move to it; the peer deletes its redundant one, we the old
        out = self._switch(sa, new, ours=True)
        if alive:
            out += self._step(peer_new, fsm.Event.REDUNDANT)
        self._queue_next(sa, self._delete_ike_builder(sa))
        return DONE, out

    def _hand_over(self, sa: _IkeSa) -> Result:
        """This IKE SA lost a simultaneous rekey (§2.8.2): requests not yet sent go to the current one."""
        self.sa.queue.extend(sa.queue)
        sa.queue = []
        return DONE, []

    def _remove_child(self, sa: _IkeSa, req: _Request, inner: tuple[Payload, ...]) -> Result:
        """The response to our Delete of a Child SA (§1.4.1)."""
        spi = req.ctx["spi"]
        self._deleting.discard(spi)
        c = self.children.pop(spi, None)
        self._forget_child(spi)
        return DONE, [ChildSaDown(c.spi_in, c.spi_out, DOWN_BY_US)] if c else []

    def _peer_alive(self, sa: _IkeSa, req: _Request, inner: tuple[Payload, ...]) -> Result:
        return DONE, [PeerAlive()]

    def _ike_deleted(self, sa: _IkeSa, req: _Request, inner: tuple[Payload, ...]) -> Result:
        """The response to our Delete of the IKE SA (§1.4.1)."""
        return DONE, [*self._all_down(), IkeSaDown("deleted")]

    def _forget_rekeyed(self, sa: _IkeSa, req: _Request, inner: tuple[Payload, ...]) -> Result:
        """The peer answered our Delete of a replaced IKE SA (§2.18)."""
        return DONE, []

    # ------------------------------------------------------------ the table's actions

    _HANDLERS: ClassVar[dict[fsm.Action, Callable[..., Result]]] = {
        fsm.Action.SEND_INIT: _send_init,
        fsm.Action.QUEUE_REKEY: _queue_rekey,
        fsm.Action.QUEUE_CREATE_CHILD: _queue_create_child,
        fsm.Action.QUEUE_DELETE_CHILD: _queue_delete_child,
        fsm.Action.QUEUE_REKEY_IKE: _queue_rekey_ike,
        fsm.Action.QUEUE_LIVENESS: _queue_liveness,
        fsm.Action.QUEUE_DELETE_IKE: _queue_delete_ike,
        fsm.Action.RESEND: _resend,
        fsm.Action.ANSWER_INIT: _answer_init,
        fsm.Action.SEND_AUTH: _send_auth,
        fsm.Action.ANSWER_AUTH: _answer_auth,
        fsm.Action.CHECK_AUTH: _check_auth,
        fsm.Action.ANSWER_CREATE_CHILD: _answer_create_child,
        fsm.Action.ANSWER_REKEY_IKE: _answer_rekey_ike,
        fsm.Action.ANSWER_INFORMATIONAL: _answer_informational,
        fsm.Action.ANSWER_DELETE_REKEYED: _answer_delete_rekeyed,
        fsm.Action.REFUSE_BUSY: _refuse_busy,
        fsm.Action.INSTALL_CHILD: _install_child,
        fsm.Action.INSTALL_REKEYED_IKE: _install_rekeyed_ike,
        fsm.Action.HAND_OVER: _hand_over,
        fsm.Action.REMOVE_CHILD: _remove_child,
        fsm.Action.PEER_ALIVE: _peer_alive,
        fsm.Action.IKE_DELETED: _ike_deleted,
        fsm.Action.FORGET_REKEYED: _forget_rekeyed,
    }


# The response events, by the kind of request they answer (one in flight, §2.3).
_RESPONSE_EVENTS = {
    "init": fsm.Event.RX_INIT_RESPONSE,
    "auth": fsm.Event.RX_AUTH_RESPONSE,
    "rekey": fsm.Event.RX_REKEY_RESPONSE,
    "create": fsm.Event.RX_CREATE_CHILD_RESPONSE,
    "rekey-ike": fsm.Event.RX_REKEY_IKE_RESPONSE,
    "delete": fsm.Event.RX_DELETE_CHILD_RESPONSE,
    "liveness": fsm.Event.RX_LIVENESS_RESPONSE,
    "delete-ike": fsm.Event.RX_DELETE_IKE_RESPONSE,
}


def _request_event(exchange: int, inner: tuple[Payload, ...]) -> fsm.Event:
    """The event for a request that passed the message layer (IKE_SA_INIT is handled before)."""
    if exchange == Exchange.IKE_AUTH:
        return fsm.Event.RX_AUTH_REQUEST
    if exchange == Exchange.CREATE_CHILD_SA:
        sa = _sa_payload(inner)
        if sa is not None and any(p.protocol == Protocol.IKE for p in sa.proposals):
            return fsm.Event.RX_REKEY_IKE_REQUEST  # §1.3.2
        return fsm.Event.RX_CREATE_CHILD_REQUEST
    if exchange == Exchange.INFORMATIONAL:
        if any(isinstance(p, DeletePayload) and p.protocol == Protocol.IKE for p in inner):
            return fsm.Event.RX_DELETE_IKE_REQUEST
        return fsm.Event.RX_INFORMATIONAL_REQUEST
    return fsm.Event.RX_OTHER_REQUEST


def _exchange_name(exchange: int) -> str:
    try:
        return Exchange(exchange).name
    except ValueError:  # e.g. IKE_INTERMEDIATE (RFC 9242): we do not implement it
        return f"exchange {exchange}"


def _sa_payload(inner: tuple[Payload, ...]) -> SaPayload | None:
    return next((p for p in inner if isinstance(p, SaPayload)), None)


def _ts(inner: tuple[Payload, ...]) -> tuple[list[TsPayload], list[TsPayload]]:
    return ([p for p in inner if isinstance(p, TsPayload) and not p.responder],
            [p for p in inner if isinstance(p, TsPayload) and p.responder])


def _notifies(inner: tuple[Payload, ...]) -> set[int]:
    return {p.notify for p in inner if isinstance(p, NotifyPayload)}


def _within(inner: tuple[TrafficSelector, ...], outer: tuple[TrafficSelector, ...]) -> bool:
    return all(
        any(o.start <= i.start and i.end <= o.end and o.start_port <= i.start_port
            and i.end_port <= o.end_port and o.protocol in (0, i.protocol) for o in outer)
        for i in inner
    )


__all__ = [
    "HEADER_LEN", "Action", "ChildSa", "ChildSaDown", "ChildSaFailed", "ChildSaRedundant", "ChildSaUp",
    "IkeConfig", "IkeError", "IkeFailed", "IkeRekeyFailed", "IkeSaDown", "IkeSaRekeyed", "IkeSaUp",
    "IkeSession", "Ignored", "PeerAlive", "SendIke", "State",
]
