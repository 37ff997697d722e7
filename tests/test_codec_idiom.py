"""The one codec idiom (lsr.core.codec) and the three codecs that use it: LDP, RFC 8029
echo, IKEv2. Registries refuse duplicates; every registered class round-trips its
value; random values and payload chains raise only the codec's DecodeError."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ike import codec as ike
from ldp import messages as ldp
from lsr.core.codec import DecodeError, Registry, type_codes
from lsr.oam import echo

# ---------------------------------------------------------------- the registry


def _cls(name: str, **attrs: object) -> type:
    def value(self) -> bytes:
        return b""

    @classmethod
    def from_value(cls, v: bytes) -> object:
        return cls()

    return type(name, (), {"value": value, "from_value": from_value, **attrs})


def test_registry_refuses_a_duplicate_code() -> None:
    reg: Registry[object] = Registry("test")
    first = reg.register(_cls("A", TYPE=7))
    with pytest.raises(ValueError, match=r"test: type 0x7 is already A, cannot register B"):
        reg.register(_cls("B", TYPE=7))
    with pytest.raises(ValueError, match="already A"):
        reg.register(_cls("C", TYPES=(8, 7)))
    assert reg.get(7) is first and 8 not in reg and reg.codes() == {7}  # nothing half-registered


def test_registry_refuses_a_class_outside_the_idiom() -> None:
    reg: Registry[object] = Registry("test")
    with pytest.raises(TypeError, match="needs an int TYPE"):
        reg.register(_cls("NoType"))
    with pytest.raises(TypeError, match="distinct int TYPES"):
        reg.register(_cls("Twice", TYPES=(3, 3)))
    with pytest.raises(TypeError, match="has no from_value"):
        reg.register(type("NoDecode", (), {"TYPE": 1, "value": lambda self: b""}))

    @reg.register
    @dataclass(frozen=True)
    class Two:
        TYPES: ClassVar[tuple[int, int]] = (4, 5)

        def value(self) -> bytes:
            return b""

        @classmethod
        def from_value(cls, v: bytes) -> Two:
            return cls()

    assert reg.get(4) is reg.get(5) is Two and type_codes(Two) == (4, 5) and len(reg) == 2


def test_each_codec_registers_its_code_points() -> None:
    assert ldp.MESSAGES.codes() == {int(t) for t in ldp.MsgType}
    assert ldp.TLVS.codes() <= {int(t) for t in ldp.TlvType}
    assert echo.TLVS.codes() == {int(t) for t in echo.TlvType} - {
        echo.TlvType.DOWNSTREAM_MAPPING, echo.TlvType.VENDOR_ENTERPRISE,
    }  # fmt: skip
    assert echo.FECS.codes() == {int(t) for t in echo.FecType}
    assert ike.PAYLOADS.codes() == {int(t) for t in ike.PayloadType} - {0}


def test_decode_errors_share_the_core_base() -> None:
    for err in (ldp.DecodeError, echo.DecodeError, ike.DecodeError):
        assert issubclass(err, DecodeError)
    # each codec still catches only its own
    assert not issubclass(echo.DecodeError, ike.DecodeError)


# ---------------------------------------------------------------- LDP TLVs

LDP_TLVS = [
    ldp.FecTlv((ldp.PrefixFec(IPv4Network("10.1.0.0/16")), ldp.PrefixFec(IPv4Network("0.0.0.0/0")))),
    ldp.FecTlv((ldp.WildcardFec(),)),
    ldp.GenericLabelTlv(1000),
    ldp.AddressListTlv(ldp.AddressFamily.IPV6, (IPv6Address("2001:db8::1"),)),
    ldp.HopCountTlv(3),
    ldp.PathVectorTlv((IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"))),
    ldp.Status.of(ldp.StatusCode.SHUTDOWN, 7, 0x400),
    ldp.CommonHelloParamsTlv(15, True, False, True),
    ldp.TransportAddressTlv(IPv4Address("10.255.0.1")),
    ldp.TransportAddressTlv(IPv6Address("2001:db8::2")),
    ldp.ConfigSeqTlv(9),
    ldp.LabelRequestIdTlv(77),
    ldp.CommonSessionParamsTlv(1, 180, False, False, 0, 4096, ldp.LdpId(IPv4Address("10.0.0.9"))),
]


@pytest.mark.parametrize("tlv", LDP_TLVS, ids=lambda t: type(t).__name__)
def test_ldp_tlv_round_trip(tlv) -> None:
    assert ldp.TLVS.get(tlv.TYPE) is type(tlv)
    assert type(tlv).from_value(tlv.value(), tlv.TYPE) == tlv


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(ldp.TLVS.codes())), st.binary(max_size=40))
def test_ldp_tlv_random_values_raise_only_decode_error(code: int, value: bytes) -> None:
    cls = ldp.TLVS.get(code)
    assert cls is not None
    try:
        cls.from_value(value, code)
    except ldp.DecodeError:
        pass


# ---------------------------------------------------------------- echo FEC sub-TLVs


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(echo.FECS.codes())), st.binary(max_size=32))  # VPN IPv6: 25
def test_echo_fec_random_values_raise_only_decode_error(code: int, value: bytes) -> None:
    cls = echo.FECS.get(code)
    assert cls is not None
    try:
        fec = cls.from_value(value, 0)
    except echo.DecodeError:
        return
    assert cls.from_value(fec.value(), 0) == fec


# ---------------------------------------------------------------- IKEv2 payloads

SEL = ike.TrafficSelector(IPv4Address("10.0.0.0"), IPv4Address("10.0.0.255"))
IKE_PAYLOADS = [
    ike.SaPayload((ike.Proposal(1, 3, b"\0\0\1\0", (ike.Transform(1, 20, 256), ike.Transform(5, 0))),)),
    ike.KePayload(31, b"k" * 32),
    ike.NoncePayload(b"n" * 32),
    ike.IdPayload(2, b"pe1"),
    ike.IdPayload(2, b"pe2", responder=True),
    ike.AuthPayload(2, b"a" * 32),
    ike.TsPayload((SEL,)),
    ike.TsPayload((SEL, SEL), responder=True),
    ike.NotifyPayload(ike.Notify.REKEY_SA, 3, b"\0\0\1\0"),
    ike.DeletePayload(3, (b"\0\0\1\0",)),
    ike.CpPayload(2, (ike.CfgAttribute(1, b"\x0a\x63\0\1"), ike.CfgAttribute(3))),
    ike.SkPayload(ike.PayloadType.IDi, b"sealed"),
]


@pytest.mark.parametrize("p", IKE_PAYLOADS, ids=lambda p: f"{type(p).__name__}-{p.TYPE}")
def test_ike_payload_round_trip(p) -> None:
    assert ike.PAYLOADS.get(p.TYPE) is type(p)
    nxt = p.first if isinstance(p, ike.SkPayload) else 0
    assert ike.decode_payload(p.TYPE, p.value(), nxt) == p


def test_ike_id_body_alias() -> None:
    p = ike.IdPayload(2, b"pe1")
    assert p.body() == p.value() == b"\x02\0\0\0pe1"


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(ike.PAYLOADS.codes())), st.binary(max_size=80))
def test_ike_payload_random_bodies_raise_only_decode_error(code: int, body: bytes) -> None:
    try:
        ike.decode_payload(code, body, 0)
    except ike.DecodeError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(ike.PAYLOADS.codes()) + [0, 1, 43, 255]), st.binary(max_size=160))
def test_ike_payload_chains_raise_only_decode_error(first: int, data: bytes) -> None:
    """decode_payloads runs on decrypted SK content too, outside decode()'s net."""
    try:
        ike.decode_payloads(first, data)
    except ike.DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(IKE_PAYLOADS[:-1]), min_size=1, max_size=4), st.data())
def test_ike_mutated_chains_raise_only_decode_error(payloads, data) -> None:
    first, chain = ike.encode_payloads(payloads)
    assert ike.decode_payloads(first, chain) == tuple(payloads)
    i = data.draw(st.integers(0, len(chain) - 1))
    mutated = chain[:i] + struct.pack("!B", data.draw(st.integers(0, 255))) + chain[i + 1 :]
    try:
        ike.decode_payloads(first, mutated)
    except ike.DecodeError:
        pass
