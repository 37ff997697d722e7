"""Sans-I/O IKEv2 with PSK: initiator against responder in memory, codec against scapy."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.contrib import ikev2 as sk
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from forwarding.ipsec.esp import Decapsulated, Encapsulated, EspDrop
from ike import (
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
    codec,
    crypto,
)
from ike.codec import TrafficSelector

SITE1 = TrafficSelector(IPv4Address("192.168.1.0"), IPv4Address("192.168.1.255"))
SITE2 = TrafficSelector(IPv4Address("192.168.2.0"), IPv4Address("192.168.2.255"))
PE1, PE2 = "10.255.0.1", "10.255.0.3"


def cfg(side: int, **kw) -> IkeConfig:
    base = dict(
        psk=b"lsr-ipsec-test-psk",
        local_id=f"pe{side}.lsr.test".encode(),
        local_ts=(SITE1,) if side == 1 else (SITE2,),
        remote_ts=(SITE2,) if side == 1 else (SITE1,),
    )
    base.update(kw)
    return IkeConfig(**base)


def sessions(seed: int = 1, icfg: dict | None = None, rcfg: dict | None = None):
    ri, rr = random.Random(seed), random.Random(seed + 1000)
    i = IkeSession(cfg(1, **(icfg or {})), initiator=True, rng=ri.randbytes)
    r = IkeSession(cfg(2, **(rcfg or {})), initiator=False, rng=rr.randbytes)
    return i, r


def run(a: IkeSession, b: IkeSession, actions: list, log: list | None = None):
    """Deliver every SendIke from `a` to `b` and back until quiet; collect events per side."""
    events = {id(a): [], id(b): []}
    queue = [(a, x) for x in actions]
    while queue:
        src, act = queue.pop(0)
        dst = b if src is a else a
        if isinstance(act, SendIke):
            if log is not None:
                log.append((src, act.data))
            for x in dst.receive(act.data):
                queue.append((dst, x))
        else:
            events[id(src)].append(act)
    return events[id(a)], events[id(b)]


def established(seed: int = 1, **kw):
    i, r = sessions(seed, **kw)
    ei, er = run(i, r, i.start())
    return i, r, ei, er


def only(events, cls):
    return [e for e in events if isinstance(e, cls)]


# ---------------------------------------------------------------- crypto building blocks


def test_x25519_rfc7748_vector():
    # RFC 7748 §6.1
    a = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    b_pub = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert crypto.x25519_public(a).hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert crypto.x25519_shared(a, b_pub) == shared


def test_prf_plus_definition():
    import hashlib
    import hmac

    k, s = b"k" * 32, b"seed"
    t1 = hmac.new(k, s + b"\x01", hashlib.sha256).digest()
    t2 = hmac.new(k, t1 + s + b"\x02", hashlib.sha256).digest()
    assert crypto.prf_plus(k, s, 40) == (t1 + t2)[:40]
    with pytest.raises(ValueError):
        crypto.prf_plus(k, s, 255 * 32 + 1)


def test_ike_keys_layout():
    ni, nr, g, si, sr = b"n" * 32, b"m" * 32, b"g" * 32, b"i" * 8, b"r" * 8
    keys = crypto.ike_keys(ni, nr, g, si, sr, 16)
    skeyseed = crypto.prf(ni + nr, g)
    km = crypto.prf_plus(skeyseed, ni + nr + si + sr, 32 + 20 + 20 + 32 + 32)
    assert keys.skeyseed == skeyseed
    assert (keys.sk_d, keys.sk_ei, keys.sk_er, keys.sk_pi, keys.sk_pr) == (
        km[:32], km[32:52], km[52:72], km[72:104], km[104:136])
    assert "secret" in repr(keys)


def test_sk_seal_and_open_and_tamper():
    m = codec.Message(b"i" * 8, b"r" * 8, codec.Exchange.INFORMATIONAL, 0x08, 5)
    key = bytes(range(20))
    data = crypto.seal(m, [codec.NotifyPayload(codec.Notify.AUTH_FAILED)], key, b"\0" * 7 + b"\1")
    dm = codec.decode(data)
    skp = dm.payloads[-1]
    assert isinstance(skp, codec.SkPayload) and skp.first == codec.PayloadType.NOTIFY
    off = len(data) - 4 - len(skp.data)
    plain = crypto.open_sk(data, off, key)
    assert codec.decode_payloads(skp.first, plain) == (codec.NotifyPayload(codec.Notify.AUTH_FAILED),)
    for i in (0, 17, 20, 30, len(data) - 1):  # header (AAD), SK header, ciphertext, ICV
        bad = bytearray(data)
        bad[i] ^= 1
        assert crypto.open_sk(bytes(bad), off, key) is None


# ---------------------------------------------------------------- codec vs scapy


def test_scapy_parses_our_ike_sa_init():
    i, _ = sessions()
    (send,) = i.start()
    p = sk.IKEv2(send.data)
    assert p.exch_type == 34 and p.init_SPI == i.spi_i and p.length == len(send.data)
    sa = p[sk.IKEv2_SA]
    prop = sa.prop
    assert prop.proto == 1 and prop.trans_nb == 3
    t = prop.trans
    got = []
    while t is not None and isinstance(t, sk.IKEv2_Transform):
        got.append((t.transform_type, t.transform_id))
        t = t.payload if isinstance(t.payload, sk.IKEv2_Transform) else None
    assert got == [(1, 20), (2, 5), (4, 31)]
    assert p[sk.IKEv2_KE].group == 31 and len(p[sk.IKEv2_KE].ke) == 32
    assert len(p[sk.IKEv2_Nonce].nonce) == 32


def test_we_parse_scapy_messages():
    prop = sk.IKEv2_Proposal(proposal=1, proto=1, trans_nb=3, trans=(
        sk.IKEv2_Transform(transform_type=1, transform_id=20, length=12, key_length=0x800E0080)
        / sk.IKEv2_Transform(transform_type=2, transform_id=5)
        / sk.IKEv2_Transform(transform_type=4, transform_id=31)))
    pkt = (sk.IKEv2(init_SPI=b"A" * 8, exch_type=34, flags="Initiator")
           / sk.IKEv2_SA(prop=prop) / sk.IKEv2_KE(group=31, ke=b"k" * 32) / sk.IKEv2_Nonce(nonce=b"n" * 32))
    m = codec.decode(bytes(pkt))
    assert m.exchange == 34 and m.spi_i == b"A" * 8
    (sa,) = m.find(codec.SaPayload)
    assert sa.proposals[0].transforms == (
        codec.Transform(1, 20, 128), codec.Transform(2, 5), codec.Transform(4, 31))
    assert m.find(codec.KePayload)[0].group == 31


def test_scapy_parses_decrypted_ike_auth():
    log: list = []
    i, r = sessions()
    run(i, r, i.start(), log)
    auth_req = codec.decode(log[2][1])
    assert auth_req.exchange == codec.Exchange.IKE_AUTH
    skp = auth_req.payloads[-1]
    plain = crypto.open_sk(log[2][1], len(log[2][1]) - 4 - len(skp.data), i.keys.sk_ei)
    p = sk.IKEv2(bytes(sk.IKEv2(next_payload=skp.first)) + plain)
    assert p[sk.IKEv2_IDi].ID == b"pe1.lsr.test" and p[sk.IKEv2_IDi].IDtype == 2
    assert p.haslayer(sk.IKEv2_AUTH) and p.haslayer(sk.IKEv2_TSi) and p.haslayer(sk.IKEv2_TSr)
    assert p[sk.IKEv2_SA].prop.proto == 3


def test_codec_round_trip_all_payloads():
    ts = codec.TsPayload((SITE1, TrafficSelector(IPv4Address("10.0.0.1"), IPv4Address("10.0.0.1"), 6, 80, 80)))
    payloads = (
        codec.SaPayload((codec.Proposal(1, 3, b"\0\0\1\0", (codec.Transform(1, 20, 256), codec.Transform(5, 0))),
                         codec.Proposal(2, 3, b"\0\0\1\1", (codec.Transform(1, 20, 128),)))),
        codec.KePayload(31, b"x" * 32), codec.NoncePayload(b"n" * 16),
        codec.IdPayload(2, b"a.b"), codec.IdPayload(2, b"c.d", responder=True),
        codec.AuthPayload(2, b"a" * 32), ts, codec.TsPayload((SITE2,), responder=True),
        codec.NotifyPayload(16393, 3, b"\0\0\1\0", b""), codec.DeletePayload(3, (b"\0\0\1\0", b"\0\0\2\0")),
        codec.DeletePayload(1),
    )
    m = codec.Message(b"i" * 8, b"r" * 8, 37, 0x28, 9, payloads)
    assert codec.decode(codec.encode(m)) == m


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data):
    i, r = established(seed=3)[:2]
    for s in (i, r, IkeSession(cfg(2), initiator=False)):
        out = s.receive(data)
        assert all(isinstance(a, Ignored | SendIke | IkeFailed) for a in out)
    try:
        codec.decode(data)
    except codec.DecodeError:
        pass


# ---------------------------------------------------------------- exchanges


def test_establish_and_carry_esp():
    i, r, ei, er = established()
    assert i.state is State.ESTABLISHED and r.state is State.ESTABLISHED
    assert only(ei, IkeSaUp) == only(er, IkeSaUp) and len(only(ei, IkeSaUp)) == 1
    (ci,) = [e.child for e in only(ei, ChildSaUp)]
    (cr,) = [e.child for e in only(er, ChildSaUp)]
    assert (ci.spi_out, ci.spi_in) == (cr.spi_in, cr.spi_out)
    assert ci.key_out == cr.key_in and ci.key_in == cr.key_out and ci.key_in != ci.key_out
    assert len(ci.key_in) == 20 and ci.encryption == "aes-128-gcm-16"
    assert i.keys.sk_d == r.keys.sk_d and i.keys.skeyseed == r.keys.skeyseed
    # the Child SA keys drive our ESP: pe1 -> pe2 and back, selectors from the TS
    out1, in1 = ci.to_sas(PE1, PE2, "pe1")
    out2, in2 = cr.to_sas(PE2, PE1, "pe2")
    inner = bytes(IP(src="192.168.1.2", dst="192.168.2.3") / UDP() / Raw(b"hello"))
    e = out1.encapsulate(inner)
    assert isinstance(e, Encapsulated) and e.spi == cr.spi_in
    d = in2.decapsulate(e.packet)
    assert isinstance(d, Decapsulated) and d.inner == inner
    back = bytes(IP(src="192.168.2.3", dst="192.168.1.2") / UDP() / Raw(b"hi"))
    assert isinstance(in1.decapsulate(out2.encapsulate(back).packet), Decapsulated)
    stray = bytes(IP(src="10.9.9.9", dst="192.168.2.3") / UDP())
    dropped = in2.decapsulate(out1.encapsulate(stray).packet)
    assert isinstance(dropped, EspDrop) and dropped.reason.value == "policy-mismatch"


def test_deterministic_with_seeded_rng():
    log1: list = []
    log2: list = []
    i, r = sessions(7)
    run(i, r, i.start(), log1)
    i, r = sessions(7)
    run(i, r, i.start(), log2)
    assert [d for _, d in log1] == [d for _, d in log2]
    assert len(log1) == 4  # IKE_SA_INIT and IKE_AUTH, request and response


def test_wrong_psk_auth_failed():
    i, r, ei, er = established(rcfg={"psk": b"another-psk"})
    assert r.state is State.FAILED and i.state is State.FAILED
    assert [e.notify for e in only(er, IkeFailed)] == [24]
    (f,) = only(ei, IkeFailed)
    assert f.notify == 24 and "refused" in f.reason
    assert not only(ei, ChildSaUp) and not only(er, ChildSaUp)


def test_wrong_peer_identity_auth_failed():
    i, r, ei, er = established(rcfg={"remote_id": b"pe9.lsr.test"})
    assert [e.notify for e in only(ei, IkeFailed)] == [24]


def test_initiator_checks_responder_identity():
    i, r, ei, er = established(icfg={"remote_id": b"pe9.lsr.test"})
    assert i.state is State.FAILED and [e.notify for e in only(ei, IkeFailed)] == [24]


def test_no_proposal_chosen():
    i, r, ei, er = established(icfg={"ike_key_bits": 256})
    (f,) = only(ei, IkeFailed)
    assert f.notify == 14 and i.state is State.FAILED


def test_esp_no_proposal_keeps_ike_sa():
    i, r, ei, er = established(icfg={"esp_key_bits": 256})
    assert i.state is State.ESTABLISHED
    assert [e.notify for e in only(ei, ChildSaFailed)] == [14]


def test_ts_unacceptable():
    other = TrafficSelector(IPv4Address("172.16.0.0"), IPv4Address("172.16.0.255"))
    i, r, ei, er = established(icfg={"local_ts": (other,)})
    assert [e.notify for e in only(ei, ChildSaFailed)] == [38]


def test_aes256_everywhere():
    i, r, ei, er = established(icfg={"ike_key_bits": 256, "esp_key_bits": 256},
                               rcfg={"ike_key_bits": 256, "esp_key_bits": 256})
    (c,) = [e.child for e in only(ei, ChildSaUp)]
    assert c.encryption == "aes-256-gcm-16" and len(c.key_in) == 36


@pytest.mark.parametrize("pfs", [True, False])
@pytest.mark.parametrize("who", ["initiator", "responder"])
def test_rekey_child_then_old_deleted(pfs, who):
    i, r, ei, er = established(icfg={"pfs": pfs}, rcfg={"pfs": pfs})
    old_i = only(ei, ChildSaUp)[0].child
    a, b = (i, r) if who == "initiator" else (r, i)
    old_a = next(iter(a.children.values()))
    ea, eb = run(a, b, a.rekey_child(old_a.spi_in))
    (ua,) = only(ea, ChildSaUp)
    (ub,) = only(eb, ChildSaUp)
    assert ua.replaces == old_a.spi_in and ub.replaces == old_a.spi_out
    assert ua.child.key_out == ub.child.key_in and ua.child.key_out not in (old_i.key_in, old_i.key_out)
    assert only(ea, ChildSaDown) == [ChildSaDown(old_a.spi_in, old_a.spi_out)]
    assert only(eb, ChildSaDown) == [ChildSaDown(old_a.spi_out, old_a.spi_in, "deleted by peer")]
    assert list(a.children) == [ua.child.spi_in] and list(b.children) == [ub.child.spi_in]
    # the new SA carries traffic
    o, _ = ua.child.to_sas(PE1, PE2)
    _, n = ub.child.to_sas(PE2, PE1)
    src, dst = ("192.168.1.2", "192.168.2.3") if who == "initiator" else ("192.168.2.3", "192.168.1.2")
    assert isinstance(n.decapsulate(o.encapsulate(bytes(IP(src=src, dst=dst) / UDP())).packet), Decapsulated)


def test_rekey_twice_in_a_row_is_queued():
    i, r, *_ = established()
    spi = next(iter(i.children))
    acts = i.rekey_child(spi)
    assert i.liveness() == []  # one request in flight; the next waits
    ei, er = run(i, r, acts)
    assert len(only(ei, ChildSaUp)) == 1 and len(only(ei, ChildSaDown)) == 1
    assert only(ei, PeerAlive) == [PeerAlive()]


def test_liveness_and_delete_child_and_close():
    i, r, *_ = established()
    ei, er = run(i, r, i.liveness())
    assert only(ei, PeerAlive) and not er
    spi = next(iter(i.children))
    ei, er = run(i, r, i.delete_child(spi))
    assert len(only(ei, ChildSaDown)) == 1 and len(only(er, ChildSaDown)) == 1
    assert not i.children and not r.children
    ei, er = run(r, i, r.liveness())  # the responder may send requests too
    assert only(ei, PeerAlive)
    ei, er = run(i, r, i.close())
    assert only(ei, IkeSaDown) and only(er, IkeSaDown)
    assert i.state is State.DELETED and r.state is State.DELETED
    with pytest.raises(IkeError):
        i.liveness()


def test_tampered_and_replayed_messages():
    i, r, *_ = established()
    (send,) = i.liveness()
    bad = bytearray(send.data)
    bad[-3] ^= 1
    assert r.receive(bytes(bad)) == [Ignored("SK payload does not verify")]
    (resp,) = r.receive(send.data)
    assert r.receive(send.data) == [resp]  # a retransmitted request gets the same response
    assert i.receive(resp.data) == [PeerAlive()]
    assert i.receive(resp.data)[0].__class__ is Ignored  # duplicate response
    assert i.retransmit() == []


def test_retransmit_outstanding_request():
    i, r = sessions()
    (first,) = i.start()
    assert i.retransmit() == [first]
    (resp,) = r.receive(first.data)
    assert r.receive(first.data) == [resp]


def test_responder_refuses_wrong_group():
    _, r = sessions()
    i2 = IkeSession(cfg(1), initiator=True, rng=random.Random(5).randbytes)
    (send,) = i2.start()
    m = codec.decode(send.data)
    ke = m.find(codec.KePayload)[0]
    bad = codec.Message(m.spi_i, m.spi_r, m.exchange, m.flags, 0,
                        tuple(codec.KePayload(19, ke.data) if p is ke else p for p in m.payloads))
    out = r.receive(codec.encode(bad))
    reply = codec.decode(out[0].data)
    assert reply.notifies() == {codec.Notify.INVALID_KE_PAYLOAD}
    assert i2.receive(out[0].data)[0].notify == 17


def test_commands_in_wrong_state():
    i, r = sessions()
    with pytest.raises(IkeError):
        r.start()
    with pytest.raises(IkeError):
        i.liveness()
    i.start()
    with pytest.raises(IkeError):
        i.start()


@pytest.mark.parametrize("id_type,size,ok", [(1, 4, True), (1, 1, False), (1, 5, False),
                                             (1, 0, False), (5, 16, True), (5, 4, False),
                                             (2, 1, True)])
def test_address_ids_have_exactly_one_address(id_type: int, size: int, ok: bool) -> None:
    """RFC 7296 §3.5: ID_IPV4_ADDR is a single four (4) octet address, ID_IPV6_ADDR sixteen;
    an FQDN (2) has no fixed length."""
    from ike.codec import DecodeError, IdPayload, PayloadType

    value = bytes([id_type, 0, 0, 0]) + bytes(range(1, size + 1))
    if ok:
        assert IdPayload.from_value(value, PayloadType.IDi, 0).data == value[4:]
    else:
        with pytest.raises(DecodeError, match="§3.5"):
            IdPayload.from_value(value, PayloadType.IDi, 0)
