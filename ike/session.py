"""Sans-I/O IKEv2 (RFC 7296) with a pre-shared key: one IKE SA, initiator or responder.

The session takes datagrams (`receive(data)`) and commands (`start`,
`rekey_child`, `delete_child`, `liveness`, `close`) and returns actions (frozen
dataclasses): `SendIke(data)` for the driver to send on UDP 500/4500, and
events for the dataplane (`IkeSaUp`, `ChildSaUp` with the ESP keys,
`ChildSaDown`, `IkeFailed`, `IkeSaDown`, `PeerAlive`, `Ignored`). No sockets,
no clocks; randomness (SPIs, nonces, DH private keys) comes from the injected
`rng(n) -> bytes`, so runs are reproducible in tests. Retransmission is the
driver's timer: it calls `retransmit()`.

What each command or acceptable message does to the IKE SA is the table of
`ike.fsm`: every change of `state` goes through `_step`. This module keeps the
message layer (retransmissions, Message IDs, SPIs, integrity) and the handlers.

Proposal: IKE = ENCR_AES_GCM_16 (RFC 5282) + PRF_HMAC_SHA2_256 + Curve25519
(group 31); ESP = ENCR_AES_GCM_16, no ESN. Exchanges: IKE_SA_INIT, IKE_AUTH
(PSK, §2.15), CREATE_CHILD_SA rekeying a Child SA (§1.3.3, optional PFS) and
INFORMATIONAL (Delete, liveness). One request in flight per side (window 1).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, summarize_address_range
from typing import Any, ClassVar

from forwarding.ipsec.esp import SecurityAssociation
from forwarding.ipsec.spd import Selector
from ike import crypto, fsm
from ike.codec import (
    AUTH_PSK,
    DH_CURVE25519,
    ENCR_AES_GCM_16,
    ESN_NONE,
    HEADER_LEN,
    ID_FQDN,
    PRF_HMAC_SHA2_256,
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
    Transform,
    TransformType,
    TsPayload,
    decode,
    decode_payloads,
    encode,
)
from ike.fsm import FsmError, IkeSaFsm, Outcome, State

NAT_DETECTION_SOURCE_IP = 16388  # RFC 7296 §3.10.1
NAT_DETECTION_DESTINATION_IP = 16389
FLAG_I = 0x08
FLAG_R = 0x20
CHILD_SA_NOT_FOUND = 44
ZERO_SPI = bytes(8)


@dataclass(frozen=True)
class IkeConfig:
    psk: bytes
    local_id: bytes  # FQDN, e.g. b"pe1.lsr.test"
    local_ts: tuple[TrafficSelector, ...]  # our customer side
    remote_ts: tuple[TrafficSelector, ...]  # the peer's customer side
    remote_id: bytes | None = None  # required peer identity (None = any)
    ike_key_bits: int = 128
    esp_key_bits: int = 128
    pfs: bool = True  # KE payload in CREATE_CHILD_SA
    # RFC 7296 §2.23 NAT traversal: send NAT_DETECTION_*_IP notifies in IKE_SA_INIT with a
    # source hash that cannot match, so the peer "detects" a NAT and both sides carry ESP
    # in UDP 4500 (RFC 3948), as strongSwan's `encap = yes` does. The driver moves to 4500.
    nat_t: bool = False
    remote_addr: tuple[IPv4Address, int] | None = None  # for the destination hash

    def __repr__(self) -> str:
        return f"IkeConfig(local_id={self.local_id!r}, remote_id={self.remote_id!r}, psk=<secret>)"


# ---------------------------------------------------------------- actions


@dataclass(frozen=True)
class SendIke:
    data: bytes


@dataclass(frozen=True)
class IkeSaUp:
    spi_i: str
    spi_r: str


@dataclass(frozen=True)
class ChildSa:
    """Both directions of an ESP Child SA, from this router's point of view."""

    spi_in: int
    spi_out: int
    encryption: str
    key_in: bytes  # AES key ‖ salt
    key_out: bytes
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]

    def __repr__(self) -> str:
        return f"ChildSa(in=0x{self.spi_in:08x}, out=0x{self.spi_out:08x}, {self.encryption})"

    def to_sas(
        self, local: IPv4Address | str, remote: IPv4Address | str, name: str = "child", **kw: object
    ) -> tuple[SecurityAssociation, SecurityAssociation]:
        """(outbound, inbound) ESP SAs for forwarding.ipsec (tunnel endpoints = IKE peers)."""
        out_sel = _selectors(self.local_ts, self.remote_ts)
        in_sel = _selectors(self.remote_ts, self.local_ts)
        out = SecurityAssociation(name=f"{name}-out", spi=self.spi_out, src=local, dst=remote,
                                  encryption=self.encryption, enc_key=self.key_out,
                                  selectors=out_sel, **kw)  # type: ignore[arg-type]
        inb = SecurityAssociation(name=f"{name}-in", spi=self.spi_in, src=remote, dst=local,
                                  encryption=self.encryption, enc_key=self.key_in,
                                  selectors=in_sel, **kw)  # type: ignore[arg-type]
        return out, inb


def _selectors(src: tuple[TrafficSelector, ...], dst: tuple[TrafficSelector, ...]) -> list[Selector]:
    out = []
    for s in src:
        for d in dst:
            proto = s.protocol or d.protocol or None
            for sn in summarize_address_range(s.start, s.end):
                for dn in summarize_address_range(d.start, d.end):
                    out.append(Selector(sn, dn, proto))
    return out


@dataclass(frozen=True)
class ChildSaUp:
    child: ChildSa
    replaces: int | None = None  # spi_in of the Child SA this one rekeys


@dataclass(frozen=True)
class ChildSaDown:
    spi_in: int
    spi_out: int


@dataclass(frozen=True)
class ChildSaFailed:
    notify: int


@dataclass(frozen=True)
class IkeFailed:
    reason: str
    notify: int | None = None


@dataclass(frozen=True)
class IkeSaDown:
    reason: str


@dataclass(frozen=True)
class PeerAlive:
    pass


@dataclass(frozen=True)
class Ignored:
    reason: str


Action = (SendIke | IkeSaUp | ChildSaUp | ChildSaDown | ChildSaFailed | IkeFailed | IkeSaDown
          | PeerAlive | Ignored)


class IkeError(Exception):
    """A command that the session's state does not allow."""


# What a transition's handler returns: how it ended (`ike.fsm.after`) and the actions it made.
Result = tuple[Outcome, list[Action]]
DONE = Outcome.DONE


@dataclass
class _Request:
    exchange: int
    kind: str  # "init" | "auth" | "rekey" | "delete" | "delete-ike" | "liveness"
    data: bytes = b""
    mid: int = 0
    ctx: dict = field(default_factory=dict)


# ---------------------------------------------------------------- the session


class IkeSession:
    def __init__(self, config: IkeConfig, *, initiator: bool,
                 rng: Callable[[int], bytes] = os.urandom) -> None:
        self.config = config
        self.initiator = initiator
        self.rng = rng
        self.fsm = IkeSaFsm()
        self.spi_i = ZERO_SPI
        self.spi_r = ZERO_SPI
        self.keys: crypto.IkeKeys | None = None
        self.children: dict[int, ChildSa] = {}  # by spi_in
        self._ni = self._nr = b""
        self._dh = b""
        self._msg1 = self._msg2 = b""
        self._next_mid = 0  # for requests we send
        self._expect_mid = 0  # for requests we receive
        self._outstanding: _Request | None = None
        self._queue: list[Callable[[], _Request | None]] = []
        self._last_response: tuple[int, bytes] | None = None
        self._iv = 0

    # ------------------------------------------------------------ helpers

    def _spi4(self) -> int:
        while True:
            spi = int.from_bytes(self.rng(4), "big")
            if spi >= 256 and spi not in self.children:
                return spi

    def _send_key(self) -> bytes:
        assert self.keys is not None
        return self.keys.sk_ei if self.initiator else self.keys.sk_er

    def _recv_key(self) -> bytes:
        assert self.keys is not None
        return self.keys.sk_er if self.initiator else self.keys.sk_ei

    def _flags(self, response: bool) -> int:
        return (FLAG_I if self.initiator else 0) | (FLAG_R if response else 0)

    def _sealed(self, exchange: int, mid: int, response: bool, payloads: list[Payload]) -> bytes:
        self._iv += 1  # unique IV per key (RFC 5282 §3.1)
        m = Message(self.spi_i, self.spi_r, exchange, self._flags(response), mid)
        return crypto.seal(m, payloads, self._send_key(), struct.pack("!Q", self._iv))

    def _ike_proposal(self) -> Proposal:
        return Proposal(1, Protocol.IKE, b"", (
            Transform(TransformType.ENCR, ENCR_AES_GCM_16, self.config.ike_key_bits),
            Transform(TransformType.PRF, PRF_HMAC_SHA2_256),
            Transform(TransformType.DH, DH_CURVE25519),
        ))

    def _esp_proposal(self, spi: int) -> Proposal:
        return Proposal(1, Protocol.ESP, struct.pack("!I", spi), (
            Transform(TransformType.ENCR, ENCR_AES_GCM_16, self.config.esp_key_bits),
            Transform(TransformType.ESN, ESN_NONE),
        ))

    def _pick(self, sa: SaPayload | None, protocol: int) -> Proposal | None:
        """The first acceptable proposal (§2.7), reduced to the transforms we chose."""
        if sa is None:
            return None
        bits = self.config.ike_key_bits if protocol == Protocol.IKE else self.config.esp_key_bits
        want: list[tuple[int, int, int | None]] = [(TransformType.ENCR, ENCR_AES_GCM_16, bits)]
        if protocol == Protocol.IKE:
            want += [(TransformType.PRF, PRF_HMAC_SHA2_256, None), (TransformType.DH, DH_CURVE25519, None)]
        else:
            want += [(TransformType.ESN, ESN_NONE, None)]
        for p in sa.proposals:
            if p.protocol != protocol or (protocol == Protocol.ESP and len(p.spi) != 4):
                continue
            if protocol == Protocol.IKE and any(t.type == TransformType.INTEG for t in p.transforms):
                continue  # an AEAD proposal has no INTEG transform (RFC 5282 §8)
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

    @property
    def state(self) -> State:
        """The IKE SA's state; it changes only in `_step` (the table of `ike.fsm`)."""
        return self.fsm.state

    def _step(self, event: fsm.Event, *args: Any) -> list[Action]:
        """The one driver: run the handler `ike.fsm.TABLE` names and move to its next state."""
        return self.fsm.step(event, lambda action: self._HANDLERS[action](self, *args))

    def _command(self, event: fsm.Event, *args: Any) -> list[Action]:
        try:
            return self._step(event, *args)
        except FsmError as e:
            if event is fsm.Event.START:
                raise IkeError("start() is for an idle initiator") from e
            raise IkeError(f"IKE SA is {self.state}, not established") from e

    def _received(self, event: fsm.Event, unexpected: str, *args: Any) -> list[Action]:
        try:
            return self._step(event, *args)
        except FsmError:
            return [Ignored(unexpected)]

    # ------------------------------------------------------------ commands

    def start(self) -> list[Action]:
        """Initiator: send IKE_SA_INIT (§1.2)."""
        if not self.initiator:
            raise IkeError("start() is for an idle initiator")
        return self._command(fsm.Event.START)

    def rekey_child(self, spi_in: int) -> list[Action]:
        """CREATE_CHILD_SA replacing the Child SA whose inbound SPI is `spi_in` (§1.3.3)."""
        return self._command(fsm.Event.REKEY_CHILD, spi_in)

    def delete_child(self, spi_in: int) -> list[Action]:
        return self._command(fsm.Event.DELETE_CHILD, spi_in)

    def liveness(self) -> list[Action]:
        """Empty INFORMATIONAL request (§1.4, dead peer detection)."""
        return self._command(fsm.Event.LIVENESS)

    def close(self) -> list[Action]:
        """Delete the IKE SA and with it every Child SA (§1.4.1)."""
        return self._command(fsm.Event.CLOSE)

    def retransmit(self) -> list[Action]:
        """The driver's retransmission timer fired: send the outstanding request again."""
        return self._step(fsm.Event.RETRANSMIT)

    # ------------------------------------------------------------ command handlers

    def _send_init(self) -> Result:
        self.spi_i = self.rng(8)
        self._ni = self.rng(32)
        self._dh = self.rng(32)
        m = Message(self.spi_i, ZERO_SPI, Exchange.IKE_SA_INIT, FLAG_I, 0, (
            SaPayload((self._ike_proposal(),)),
            KePayload(DH_CURVE25519, crypto.x25519_public(self._dh)),
            NoncePayload(self._ni),
            *self._natd(self.spi_i, ZERO_SPI),
        ))
        data = encode(m)
        self._msg1 = data
        self._next_mid = 1
        self._outstanding = _Request(Exchange.IKE_SA_INIT, "init", data, 0)
        return DONE, [SendIke(data)]

    def _queue_rekey(self, spi_in: int) -> Result:
        if spi_in not in self.children:
            raise IkeError(f"no Child SA with inbound SPI 0x{spi_in:08x}")

        def build() -> _Request | None:
            if spi_in not in self.children:
                return None
            new_spi = self._spi4()
            nonce = self.rng(32)
            payloads: list[Payload] = [
                NotifyPayload(Notify.REKEY_SA, Protocol.ESP, struct.pack("!I", spi_in)),
                SaPayload((self._esp_proposal(new_spi),)),
                NoncePayload(nonce),
            ]
            dh = b""
            if self.config.pfs:
                dh = self.rng(32)
                payloads.append(KePayload(DH_CURVE25519, crypto.x25519_public(dh)))
            payloads += [TsPayload(self.config.local_ts), TsPayload(self.config.remote_ts, responder=True)]
            return _Request(Exchange.CREATE_CHILD_SA, "rekey", ctx={
                "old": spi_in, "spi": new_spi, "nonce": nonce, "dh": dh, "payloads": payloads})

        return DONE, self._enqueue(build)

    def _queue_delete_child(self, spi_in: int) -> Result:
        def build() -> _Request | None:
            if spi_in not in self.children:
                return None
            return _Request(Exchange.INFORMATIONAL, "delete", ctx={
                "spi": spi_in, "payloads": [DeletePayload(Protocol.ESP, (struct.pack("!I", spi_in),))]})

        return DONE, self._enqueue(build)

    def _queue_liveness(self) -> Result:
        return DONE, self._enqueue(lambda: _Request(Exchange.INFORMATIONAL, "liveness", ctx={"payloads": []}))

    def _queue_delete_ike(self) -> Result:
        return DONE, self._enqueue(lambda: _Request(Exchange.INFORMATIONAL, "delete-ike",
                                                    ctx={"payloads": [DeletePayload(Protocol.IKE)]}))

    @property
    def awaiting_reply(self) -> bool:
        """A request of ours waits for its response (the driver runs its retransmit timer)."""
        return self._outstanding is not None

    def _resend(self) -> Result:
        return DONE, [SendIke(self._outstanding.data)] if self._outstanding else []

    def _enqueue(self, build: Callable[[], _Request | None]) -> list[Action]:
        self._queue.append(build)
        return self._pump()

    def _pump(self) -> list[Action]:
        """Send the next queued request if none is in flight (§2.3: window of one)."""
        while self._outstanding is None and self._queue and self.state is State.ESTABLISHED:
            req = self._queue.pop(0)()
            if req is None:
                continue
            req.mid = self._next_mid
            self._next_mid += 1
            req.data = self._sealed(req.exchange, req.mid, False, req.ctx.pop("payloads"))
            self._outstanding = req
            return [SendIke(req.data)]
        return []

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
            return self._received(fsm.Event.RX_INIT_REQUEST, "unexpected IKE_SA_INIT request", m, data)
        if m.spi_i != self.spi_i or (m.spi_r != self.spi_r and self.state is not State.INIT_SENT):
            return [Ignored("IKE SPIs do not match")]  # §2.6: SPIr is unknown until the response
        if bool(m.flags & FLAG_I) == self.initiator:
            return [Ignored("Initiator flag says the message is our own")]
        if m.is_response:
            req = self._outstanding
            if req is None or m.message_id != req.mid or m.exchange != req.exchange:
                return [Ignored(f"unexpected response id {m.message_id}")]
            event = _RESPONSE_EVENTS[req.kind]
            unexpected = f"unexpected response id {m.message_id}"
            if req.kind == "init":
                return self._received(event, unexpected, m, data)
            inner = self._open(m, data)
            if inner is None:
                return [Ignored("SK payload does not verify")]
            self._outstanding = None  # answered, whatever the answer does
            return self._received(event, unexpected, req, inner) + self._pump()
        # a request
        if self._last_response and m.message_id == self._last_response[0]:
            return [SendIke(self._last_response[1])]  # §2.1: retransmitted request
        if m.message_id != self._expect_mid:
            return [Ignored(f"request id {m.message_id}, expected {self._expect_mid}")]
        inner = self._open(m, data)
        if inner is None:
            return [Ignored("SK payload does not verify")]
        self._expect_mid += 1
        if self.state is State.ESTABLISHED:
            unexpected = f"exchange {m.exchange} not handled"
        else:
            unexpected = f"{_exchange_name(m.exchange)} in state {self.state}"
        return self._received(_request_event(m.exchange, inner), unexpected, m, inner)

    def _open(self, m: Message, data: bytes) -> tuple[Payload, ...] | None:
        if self.keys is None or not m.payloads or not isinstance(m.payloads[-1], SkPayload):
            return None
        sk = m.payloads[-1]
        plain = crypto.open_sk(data, len(data) - 4 - len(sk.data), self._recv_key())
        if plain is None:
            return None
        try:
            return decode_payloads(sk.first, plain)
        except DecodeError:
            return None

    def _respond(self, m: Message, payloads: list[Payload]) -> SendIke:
        data = self._sealed(m.exchange, m.message_id, True, payloads)
        self._last_response = (m.message_id, data)
        return SendIke(data)

    # ------------------------------------------------------------ IKE_SA_INIT

    def _answer_init(self, m: Message, data: bytes) -> Result:
        def refuse(n: int, ndata: bytes = b"") -> Result:
            # §1.2, §2.6: the responder keeps no state for a request it refuses
            r = Message(m.spi_i, ZERO_SPI, Exchange.IKE_SA_INIT, FLAG_R, 0, (NotifyPayload(n, data=ndata),))
            return Outcome.REFUSED, [SendIke(encode(r)), Ignored(f"IKE_SA_INIT refused: {Notify(n).name}")]

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
        self.spi_i = m.spi_i
        self.spi_r = self.rng(8)
        self._ni = nonce[0].nonce
        self._nr = self.rng(32)
        self.keys = crypto.ike_keys(self._ni, self._nr, shared, self.spi_i, self.spi_r,
                                    self.config.ike_key_bits // 8)
        r = Message(self.spi_i, self.spi_r, Exchange.IKE_SA_INIT, FLAG_R, 0, (
            SaPayload((chosen,)),
            KePayload(DH_CURVE25519, crypto.x25519_public(self._dh)),
            NoncePayload(self._nr),
            *(self._natd(self.spi_i, self.spi_r) if NAT_DETECTION_SOURCE_IP in m.notifies() else []),
        ))
        self._msg1 = data
        self._msg2 = encode(r)
        self._last_response = (0, self._msg2)
        self._expect_mid = 1
        return DONE, [SendIke(self._msg2)]

    def _send_auth(self, m: Message, data: bytes) -> Result:
        """The IKE_SA_INIT response: derive the keys and send IKE_AUTH (initiator)."""
        errs = m.notifies() & {n.value for n in Notify}
        if errs and not m.find(SaPayload):
            self._outstanding = None
            n = min(errs)
            return Outcome.FAILED, [IkeFailed(f"responder refused IKE_SA_INIT: {Notify(n).name}", n)]
        chosen = self._pick(next(iter(m.find(SaPayload)), None), Protocol.IKE)
        ke = m.find(KePayload)
        nonce = m.find(NoncePayload)
        if chosen is None or not ke or not nonce or ke[0].group != DH_CURVE25519:
            return Outcome.REFUSED, [Ignored("IKE_SA_INIT response without an acceptable SA/KE/Nonce")]
        try:
            shared = crypto.x25519_shared(self._dh, ke[0].data)
        except ValueError:
            return Outcome.REFUSED, [Ignored("bad KE data")]
        self.spi_r = m.spi_r
        self._nr = nonce[0].nonce
        self._msg2 = data
        self.keys = crypto.ike_keys(self._ni, self._nr, shared, self.spi_i, self.spi_r,
                                    self.config.ike_key_bits // 8)
        # IKE_AUTH (§1.2): SK{IDi, AUTH, SAi2, TSi, TSr}
        idi = IdPayload(ID_FQDN, self.config.local_id)
        auth = crypto.psk_auth(self.config.psk, self._msg1, self._nr, self.keys.sk_pi, idi.body())
        spi = self._spi4()
        payloads: list[Payload] = [
            idi, AuthPayload(AUTH_PSK, auth), SaPayload((self._esp_proposal(spi),)),
            TsPayload(self.config.local_ts), TsPayload(self.config.remote_ts, responder=True),
        ]
        data2 = self._sealed(Exchange.IKE_AUTH, 1, False, payloads)
        self._next_mid = 2
        self._outstanding = _Request(Exchange.IKE_AUTH, "auth", data2, 1, {"spi": spi})
        return DONE, [SendIke(data2)]

    # ------------------------------------------------------------ requests we answer

    def _answer_auth(self, m: Message, inner: tuple[Payload, ...]) -> Result:
        assert self.keys is not None
        ids = [p for p in inner if isinstance(p, IdPayload) and not p.responder]
        auths = [p for p in inner if isinstance(p, AuthPayload)]
        ok = False
        if ids and auths and auths[0].method == AUTH_PSK:
            expect = crypto.psk_auth(self.config.psk, self._msg1, self._nr, self.keys.sk_pi, ids[0].body())
            ok = hmac.compare_digest(expect, auths[0].data) and (
                self.config.remote_id is None or ids[0].data == self.config.remote_id
            )
        if not ok:  # §2.21.2: answer AUTH_FAILED and forget the IKE SA
            send = self._respond(m, [NotifyPayload(Notify.AUTH_FAILED)])
            return Outcome.FAILED, [send, IkeFailed("initiator authentication failed", Notify.AUTH_FAILED)]
        idr = IdPayload(ID_FQDN, self.config.local_id, responder=True)
        my_auth = crypto.psk_auth(self.config.psk, self._msg2, self._ni, self.keys.sk_pr, idr.body())
        head: list[Payload] = [idr, AuthPayload(AUTH_PSK, my_auth)]
        # the IKE SA is up even if its first Child SA is refused (§1.2, §2.21.2)
        up = IkeSaUp(self.spi_i.hex(), self.spi_r.hex())
        chosen = self._pick(next((p for p in inner if isinstance(p, SaPayload)), None), Protocol.ESP)
        if chosen is None:
            return DONE, [self._respond(m, head + [NotifyPayload(Notify.NO_PROPOSAL_CHOSEN)]), up,
                          ChildSaFailed(Notify.NO_PROPOSAL_CHOSEN)]
        tsi = [p for p in inner if isinstance(p, TsPayload) and not p.responder]
        tsr = [p for p in inner if isinstance(p, TsPayload) and p.responder]
        if not self._ts_ok(tsi, tsr):
            return DONE, [self._respond(m, head + [NotifyPayload(Notify.TS_UNACCEPTABLE)]), up,
                          ChildSaFailed(Notify.TS_UNACCEPTABLE)]
        spi_in = self._spi4()
        k_ir, k_ri = crypto.child_keys(self.keys.sk_d, self._ni, self._nr, self.config.esp_key_bits // 8)
        child = self._child(spi_in, struct.unpack("!I", chosen.spi)[0], k_ir, k_ri,
                            tsr[0].selectors, tsi[0].selectors)
        send = self._respond(m, head + [
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

    def _answer_create_child(self, m: Message, inner: tuple[Payload, ...]) -> Result:
        assert self.keys is not None
        rekey = [p for p in inner if isinstance(p, NotifyPayload) and p.notify == Notify.REKEY_SA]
        old = None
        if rekey and len(rekey[0].spi) == 4:
            peer_in = struct.unpack("!I", rekey[0].spi)[0]  # the peer's inbound = our outbound
            old = next((c for c in self.children.values() if c.spi_out == peer_in), None)
        if old is None:
            return DONE, [self._respond(m, [NotifyPayload(CHILD_SA_NOT_FOUND, Protocol.ESP,
                                                          rekey[0].spi if rekey else b"")])]
        chosen = self._pick(next((p for p in inner if isinstance(p, SaPayload)), None), Protocol.ESP)
        nonce = [p for p in inner if isinstance(p, NoncePayload)]
        ke = [p for p in inner if isinstance(p, KePayload)]
        if chosen is None or not nonce:
            return DONE, [self._respond(m, [NotifyPayload(Notify.NO_PROPOSAL_CHOSEN)])]
        shared = b""
        reply_ke: list[Payload] = []
        if ke:
            if ke[0].group != DH_CURVE25519:
                return DONE, [self._respond(m, [NotifyPayload(Notify.INVALID_KE_PAYLOAD,
                                                              data=struct.pack("!H", DH_CURVE25519))])]
            dh = self.rng(32)
            try:
                shared = crypto.x25519_shared(dh, ke[0].data)
            except ValueError:
                return DONE, [self._respond(m, [NotifyPayload(Notify.INVALID_SYNTAX)])]
            reply_ke = [KePayload(DH_CURVE25519, crypto.x25519_public(dh))]
        nr = self.rng(32)
        k_ir, k_ri = crypto.child_keys(self.keys.sk_d, nonce[0].nonce, nr, self.config.esp_key_bits // 8, shared)
        spi_in = self._spi4()
        child = self._child(spi_in, struct.unpack("!I", chosen.spi)[0], k_ir, k_ri,
                            old.local_ts, old.remote_ts)
        send = self._respond(m, [
            SaPayload((Proposal(chosen.number, Protocol.ESP, struct.pack("!I", spi_in), chosen.transforms),)),
            NoncePayload(nr), *reply_ke,
            TsPayload(old.remote_ts), TsPayload(old.local_ts, responder=True),
        ])
        # §2.8: the old Child SA stays until the peer (the rekey initiator) deletes it
        return DONE, [send, ChildSaUp(child, replaces=old.spi_in)]

    def _answer_informational(self, m: Message, inner: tuple[Payload, ...]) -> Result:
        out: list[Action] = []
        reply: list[Payload] = []
        for d in (p for p in inner if isinstance(p, DeletePayload)):
            if d.protocol == Protocol.IKE:  # RX_DELETE_IKE_REQUEST: the table moves to DELETED
                send = self._respond(m, [])
                return DONE, [send, *self._all_down(), IkeSaDown("deleted by peer")]
            mine = []
            for raw in d.spis:
                if len(raw) != 4:
                    continue
                peer_in = struct.unpack("!I", raw)[0]
                c = next((c for c in self.children.values() if c.spi_out == peer_in), None)
                if c is not None:
                    del self.children[c.spi_in]
                    out.append(ChildSaDown(c.spi_in, c.spi_out))
                    mine.append(struct.pack("!I", c.spi_in))
            if mine:
                reply.append(DeletePayload(Protocol.ESP, tuple(mine)))  # §1.4.1: delete ours too
        return DONE, [self._respond(m, reply), *out]

    def _all_down(self) -> list[Action]:
        out: list[Action] = [ChildSaDown(c.spi_in, c.spi_out) for c in self.children.values()]
        self.children.clear()
        return out

    # ------------------------------------------------------------ responses to our requests

    def _check_auth(self, req: _Request, inner: tuple[Payload, ...]) -> Result:
        """The IKE_AUTH response (initiator)."""
        assert self.keys is not None
        notifies = _notifies(inner)
        if Notify.AUTH_FAILED in notifies:
            return Outcome.FAILED, [IkeFailed("responder refused our authentication (wrong PSK or ID?)",
                                              Notify.AUTH_FAILED)]
        ids = [p for p in inner if isinstance(p, IdPayload) and p.responder]
        auths = [p for p in inner if isinstance(p, AuthPayload)]
        ok = bool(ids and auths) and hmac.compare_digest(
            crypto.psk_auth(self.config.psk, self._msg2, self._ni, self.keys.sk_pr, ids[0].body()),
            auths[0].data,
        ) and (self.config.remote_id is None or ids[0].data == self.config.remote_id)
        if not ok:
            return Outcome.FAILED, [IkeFailed("responder authentication failed", Notify.AUTH_FAILED)]
        out: list[Action] = [IkeSaUp(self.spi_i.hex(), self.spi_r.hex())]
        for n in (Notify.NO_PROPOSAL_CHOSEN, Notify.TS_UNACCEPTABLE):
            if n in notifies:
                return DONE, out + [ChildSaFailed(n)]
        chosen = self._pick(next((p for p in inner if isinstance(p, SaPayload)), None), Protocol.ESP)
        tsi = [p for p in inner if isinstance(p, TsPayload) and not p.responder]
        tsr = [p for p in inner if isinstance(p, TsPayload) and p.responder]
        if chosen is None or not tsi or not tsr:
            return DONE, out + [ChildSaFailed(Notify.NO_PROPOSAL_CHOSEN)]
        k_ir, k_ri = crypto.child_keys(self.keys.sk_d, self._ni, self._nr, self.config.esp_key_bits // 8)
        child = self._child(req.ctx["spi"], struct.unpack("!I", chosen.spi)[0], k_ri, k_ir,
                            tsi[0].selectors, tsr[0].selectors)
        return DONE, out + [ChildSaUp(child)]

    def _install_rekeyed(self, req: _Request, inner: tuple[Payload, ...]) -> Result:
        """The CREATE_CHILD_SA response to our rekey (§1.3.3)."""
        assert self.keys is not None
        notifies = _notifies(inner)
        chosen = self._pick(next((p for p in inner if isinstance(p, SaPayload)), None), Protocol.ESP)
        nonce = [p for p in inner if isinstance(p, NoncePayload)]
        ke = [p for p in inner if isinstance(p, KePayload)]
        if chosen is None or not nonce or (req.ctx["dh"] and not ke):
            return DONE, [ChildSaFailed(min(notifies) if notifies else Notify.NO_PROPOSAL_CHOSEN)]
        shared = b""
        if req.ctx["dh"]:
            try:
                shared = crypto.x25519_shared(req.ctx["dh"], ke[0].data)
            except ValueError:
                return DONE, [ChildSaFailed(Notify.INVALID_SYNTAX)]
        k_ir, k_ri = crypto.child_keys(self.keys.sk_d, req.ctx["nonce"], nonce[0].nonce,
                                       self.config.esp_key_bits // 8, shared)
        old = self.children[req.ctx["old"]]
        child = self._child(req.ctx["spi"], struct.unpack("!I", chosen.spi)[0], k_ri, k_ir,
                            old.local_ts, old.remote_ts)
        out: list[Action] = [ChildSaUp(child, replaces=old.spi_in)]
        # §2.8: the rekey initiator deletes the old Child SA
        old_spi = old.spi_in
        self._queue.insert(0, lambda: _Request(Exchange.INFORMATIONAL, "delete", ctx={
            "spi": old_spi, "payloads": [DeletePayload(Protocol.ESP, (struct.pack("!I", old_spi),))]}))
        return DONE, out

    def _remove_child(self, req: _Request, inner: tuple[Payload, ...]) -> Result:
        """The response to our Delete of a Child SA (§1.4.1)."""
        c = self.children.pop(req.ctx["spi"], None)
        return DONE, [ChildSaDown(c.spi_in, c.spi_out)] if c else []

    def _peer_alive(self, req: _Request, inner: tuple[Payload, ...]) -> Result:
        return DONE, [PeerAlive()]

    def _ike_deleted(self, req: _Request, inner: tuple[Payload, ...]) -> Result:
        """The response to our Delete of the IKE SA (§1.4.1)."""
        return DONE, [*self._all_down(), IkeSaDown("deleted")]

    # ------------------------------------------------------------ the table's actions

    _HANDLERS: ClassVar[dict[fsm.Action, Callable[..., Result]]] = {
        fsm.Action.SEND_INIT: _send_init,
        fsm.Action.QUEUE_REKEY: _queue_rekey,
        fsm.Action.QUEUE_DELETE_CHILD: _queue_delete_child,
        fsm.Action.QUEUE_LIVENESS: _queue_liveness,
        fsm.Action.QUEUE_DELETE_IKE: _queue_delete_ike,
        fsm.Action.RESEND: _resend,
        fsm.Action.ANSWER_INIT: _answer_init,
        fsm.Action.SEND_AUTH: _send_auth,
        fsm.Action.ANSWER_AUTH: _answer_auth,
        fsm.Action.CHECK_AUTH: _check_auth,
        fsm.Action.ANSWER_CREATE_CHILD: _answer_create_child,
        fsm.Action.ANSWER_INFORMATIONAL: _answer_informational,
        fsm.Action.INSTALL_REKEYED: _install_rekeyed,
        fsm.Action.REMOVE_CHILD: _remove_child,
        fsm.Action.PEER_ALIVE: _peer_alive,
        fsm.Action.IKE_DELETED: _ike_deleted,
    }


# The response events, by the kind of request they answer (one in flight, §2.3).
_RESPONSE_EVENTS = {
    "init": fsm.Event.RX_INIT_RESPONSE,
    "auth": fsm.Event.RX_AUTH_RESPONSE,
    "rekey": fsm.Event.RX_REKEY_RESPONSE,
    "delete": fsm.Event.RX_DELETE_CHILD_RESPONSE,
    "liveness": fsm.Event.RX_LIVENESS_RESPONSE,
    "delete-ike": fsm.Event.RX_DELETE_IKE_RESPONSE,
}


def _request_event(exchange: int, inner: tuple[Payload, ...]) -> fsm.Event:
    """The event for a request that passed the message layer (IKE_SA_INIT is handled before)."""
    if exchange == Exchange.IKE_AUTH:
        return fsm.Event.RX_AUTH_REQUEST
    if exchange == Exchange.CREATE_CHILD_SA:
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


def _notifies(inner: tuple[Payload, ...]) -> set[int]:
    return {p.notify for p in inner if isinstance(p, NotifyPayload)}


def _within(inner: tuple[TrafficSelector, ...], outer: tuple[TrafficSelector, ...]) -> bool:
    return all(
        any(o.start <= i.start and i.end <= o.end and o.start_port <= i.start_port
            and i.end_port <= o.end_port and o.protocol in (0, i.protocol) for o in outer)
        for i in inner
    )


__all__ = [
    "HEADER_LEN", "Action", "ChildSa", "ChildSaDown", "ChildSaFailed", "ChildSaUp", "IkeConfig",
    "IkeError", "IkeFailed", "IkeSaDown", "IkeSaUp", "IkeSession", "Ignored", "PeerAlive",
    "SendIke", "State",
]
