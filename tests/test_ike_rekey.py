"""CREATE_CHILD_SA in the sans-I/O session: PFS rekeys with their D-H transform, new Child SAs,
IKE SA rekeying (RFC 7296 §2.18) and simultaneous rekeys (§2.8.1 Child SA, §2.8.2 IKE SA), with
two of our sessions against each other and the crossing requests delivered by hand."""

from __future__ import annotations

import dataclasses
import random
import struct
from ipaddress import IPv4Address

import pytest
from scapy.layers.inet import IP, UDP

from forwarding.ipsec.esp import Decapsulated
from ike import (
    ChildSaDown,
    ChildSaFailed,
    ChildSaRedundant,
    ChildSaUp,
    Ignored,
    IkeConfig,
    IkeSaRekeyed,
    IkeSession,
    PeerAlive,
    SendIke,
    State,
    codec,
    crypto,
)
from ike.codec import (
    DH_CURVE25519,
    KePayload,
    NoncePayload,
    Notify,
    NotifyPayload,
    Proposal,
    Protocol,
    SaPayload,
    TrafficSelector,
    Transform,
    TransformType,
    TsPayload,
)

SITE1 = TrafficSelector(IPv4Address("192.168.1.0"), IPv4Address("192.168.1.255"))
SITE2 = TrafficSelector(IPv4Address("192.168.2.0"), IPv4Address("192.168.2.255"))
PE1, PE2 = "10.255.0.1", "10.255.0.3"
DH31 = Transform(TransformType.DH, DH_CURVE25519)


def cfg(side: int, **kw) -> IkeConfig:
    base = dict(psk=b"lsr-ipsec-test-psk", local_id=f"pe{side}.lsr.test".encode(),
                local_ts=(SITE1,) if side == 1 else (SITE2,), remote_ts=(SITE2,) if side == 1 else (SITE1,))
    base.update(kw)
    return IkeConfig(**base)


def run(a: IkeSession, b: IkeSession, actions: list) -> tuple[list, list]:
    """Deliver every SendIke until quiet; the other actions, per side."""
    events = {id(a): [], id(b): []}
    queue = [(a, x) for x in actions]
    while queue:
        src, act = queue.pop(0)
        dst = b if src is a else a
        if isinstance(act, SendIke):
            queue += [(dst, x) for x in dst.receive(act.data)]
        else:
            events[id(src)].append(act)
    return events[id(a)], events[id(b)]


def established(seed: int = 1, icfg: dict | None = None, rcfg: dict | None = None):
    i = IkeSession(cfg(1, **(icfg or {})), initiator=True, rng=random.Random(seed).randbytes)
    r = IkeSession(cfg(2, **(rcfg or {})), initiator=False, rng=random.Random(seed + 1000).randbytes)
    run(i, r, i.start())
    assert i.state is r.state is State.ESTABLISHED and len(i.children) == len(r.children) == 1
    return i, r


def only(events: list, cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


def sends(actions: list) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, SendIke)]


def opened(keys: crypto.IkeKeys, data: bytes) -> tuple[codec.Message, tuple]:
    """A sealed message and its inner payloads (with the keys of the IKE SA it was sent on)."""
    m = codec.decode(data)
    sk = m.payloads[-1]
    key = keys.sk_ei if m.flags & 0x08 else keys.sk_er
    plain = crypto.open_sk(data, len(data) - 4 - len(sk.data), key)
    assert plain is not None
    return m, codec.decode_payloads(sk.first, plain)


def first(inner: tuple, cls: type):
    return next(p for p in inner if isinstance(p, cls))


def carries(i: IkeSession, r: IkeSession) -> bool:
    """Each side's only Child SA encrypts what the other's decrypts, both ways."""
    (ci,), (cr,) = i.children.values(), r.children.values()
    ok = True
    for x, y, src, dst in ((ci, cr, "192.168.1.2", "192.168.2.3"), (cr, ci, "192.168.2.3", "192.168.1.2")):
        out, _ = x.to_sas(PE1, PE2)
        _, inb = y.to_sas(PE2, PE1)
        inner = bytes(IP(src=src, dst=dst) / UDP())
        ok &= isinstance(inb.decapsulate(out.encapsulate(inner).packet), Decapsulated)
    return ok


def seal_as(s: IkeSession, exchange: int, payloads: list) -> bytes:
    """A request `s` sends on its current IKE SA, payloads as given (to craft a peer's request)."""
    mid = s.sa.next_mid
    s.sa.next_mid += 1
    return s._sealed(s.sa, exchange, mid, False, payloads)


# ---------------------------------------------------------------- PFS (the first bug)


def test_pfs_rekey_names_its_dh_group_both_ways():
    # RFC 7296 §1.3.1, §3.3.2: a CREATE_CHILD_SA with a KE payload offers that D-H group in its
    # proposal, and the answer chooses it; strongSwan refused ours (NO_PROPOSAL_CHOSEN) without it
    i, r = established()
    (req,) = sends(i.rekey_child(next(iter(i.children))))
    _, inner = opened(i.keys, req)
    (p,) = first(inner, SaPayload).proposals
    assert first(inner, KePayload).group == DH_CURVE25519 and DH31 in p.transforms
    (resp,) = sends(r.receive(req))
    _, rinner = opened(i.keys, resp)
    (rp,) = first(rinner, SaPayload).proposals
    assert DH31 in rp.transforms and first(rinner, KePayload).group == DH_CURVE25519
    assert [t.type for t in rp.transforms].count(TransformType.DH) == 1  # §3.3.6: exactly one


def test_ike_auth_proposal_has_no_dh_transform():
    # §1.2: IKE_AUTH carries no KE payload, so its SA payload names no D-H group
    i = IkeSession(cfg(1), initiator=True, rng=random.Random(3).randbytes)
    r = IkeSession(cfg(2), initiator=False, rng=random.Random(4).randbytes)
    (m1,) = sends(i.start())
    (m2,) = sends(r.receive(m1))
    (m3,) = sends(i.receive(m2))
    _, inner = opened(i.keys, m3)
    (p,) = first(inner, SaPayload).proposals
    assert TransformType.DH not in {t.type for t in p.transforms}


def test_responder_refuses_ke_without_dh_transform():
    # the proposal we used to send: a KE payload but no D-H transform (strongSwan answered
    # NO_PROPOSAL_CHOSEN); our responder now refuses it the same way
    i, r = established()
    ci = next(iter(i.children.values()))
    dh = bytes(range(32))
    req = seal_as(i, codec.Exchange.CREATE_CHILD_SA, [
        NotifyPayload(Notify.REKEY_SA, Protocol.ESP, struct.pack("!I", ci.spi_in)),
        SaPayload((Proposal(1, Protocol.ESP, b"\x01\x02\x03\x04", (
            Transform(TransformType.ENCR, 20, 128), Transform(TransformType.ESN, 0))),)),
        NoncePayload(b"n" * 32), KePayload(DH_CURVE25519, crypto.x25519_public(dh)),
        TsPayload(ci.local_ts), TsPayload(ci.remote_ts, responder=True)])
    out = r.receive(req)
    _, inner = opened(i.keys, sends(out)[0])
    assert {p.notify for p in inner if isinstance(p, NotifyPayload)} == {Notify.NO_PROPOSAL_CHOSEN}
    assert not only(out, ChildSaUp) and len(r.children) == 1


def test_pfs_keys_come_from_the_new_dh_exchange(monkeypatch):
    # §2.17: KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr): the keys change with the D-H result
    shared: list[bytes] = []
    real = crypto.x25519_shared
    monkeypatch.setattr(crypto, "x25519_shared", lambda p, q: shared.append(real(p, q)) or shared[-1])
    i, r = established()
    shared.clear()
    (req,) = sends(i.rekey_child(next(iter(i.children))))
    _, qin = opened(i.keys, req)
    out_r = r.receive(req)
    (resp,) = sends(out_r)
    _, rin = opened(i.keys, resp)
    out_i = i.receive(resp)
    (up,) = only(out_i, ChildSaUp)
    ni, nr = first(qin, NoncePayload).nonce, first(rin, NoncePayload).nonce
    assert len(shared) == 2 and shared[0] == shared[1]  # both ends computed the same g^ir
    k_ir, k_ri = crypto.child_keys(i.keys.sk_d, ni, nr, 16, shared[0])
    assert (up.child.key_out, up.child.key_in) == (k_ir, k_ri)
    assert k_ir not in crypto.child_keys(i.keys.sk_d, ni, nr, 16)  # not the no-PFS keys
    assert only(r.receive(req), ChildSaUp) == []  # a retransmission gets the cached answer


def test_failed_rekey_is_reported_as_failed():
    # the rekey initiator without PFS, the responder requiring it: NO_PROPOSAL_CHOSEN, and the
    # session says so (no ChildSaUp: the keys did not change)
    i, r = established(icfg={"pfs": False})
    spi = next(iter(i.children))
    ei, er = run(i, r, i.rekey_child(spi))
    assert ei == [ChildSaFailed(Notify.NO_PROPOSAL_CHOSEN, rekeying=spi)]
    assert not er and list(i.children) == [spi] and len(r.children) == 1


# ---------------------------------------------------------------- new Child SAs (§1.3.1)


@pytest.mark.parametrize("who", ["initiator", "responder"])
def test_create_child_sa_without_rekey_sa(who):
    # used to be answered CHILD_SA_NOT_FOUND: a CREATE_CHILD_SA without REKEY_SA is a new Child SA
    i, r = established()
    a, b = (i, r) if who == "initiator" else (r, i)
    ea, eb = run(a, b, a.create_child())
    (ua,), (ub,) = only(ea, ChildSaUp), only(eb, ChildSaUp)
    assert ua.replaces is None and ua.ours and ub.replaces is None and not ub.ours
    assert ua.child.key_out == ub.child.key_in and ua.child.key_in == ub.child.key_out
    assert ua.child.spi_out == ub.child.spi_in and ua.child.local_ts == ub.child.remote_ts
    assert len(a.children) == len(b.children) == 2
    run(a, b, a.delete_child(next(iter(a.children))))  # the first one goes: the new one carries
    assert carries(i, r)


def test_create_child_with_foreign_selectors_is_refused():
    i, r = established()
    i.config = dataclasses.replace(i.config, local_ts=(TrafficSelector(IPv4Address("10.9.9.0"),
                                                                       IPv4Address("10.9.9.255")),))
    ei, er = run(i, r, i.create_child())
    assert ei == [ChildSaFailed(Notify.TS_UNACCEPTABLE)] and not er


def test_child_sa_not_found_deletes_it_silently():
    # §2.25: the peer no longer has the Child SA we rekey: drop ours, the driver creates anew
    i, r = established()
    spi = next(iter(i.children))
    r.children.clear()  # the responder lost it
    ei, er = run(i, r, i.rekey_child(spi))
    c = ei[1]
    assert ei == [ChildSaFailed(Notify.CHILD_SA_NOT_FOUND, rekeying=spi),
                  ChildSaDown(spi, c.spi_out, "not found by peer")]
    assert not i.children and not er


def test_rekey_of_a_child_sa_being_deleted_is_a_temporary_failure():
    # §2.25.1: a request to rekey a Child SA the peer is closing gets TEMPORARY_FAILURE
    i, r = established()
    (delete,) = sends(r.delete_child(next(iter(r.children))))
    spi = next(iter(i.children))
    (req,) = sends(i.rekey_child(spi))
    (resp,) = sends(r.receive(req))
    assert i.receive(resp) == [ChildSaFailed(Notify.TEMPORARY_FAILURE, rekeying=spi)]
    ei, er = run(r, i, [SendIke(delete)])
    assert not i.children and not r.children


def test_both_delete_the_same_child_sa_at_once():
    # §2.25.1: a Delete for a Child SA we are deleting is answered without a Delete payload
    i, r = established()
    (di,) = sends(i.delete_child(next(iter(i.children))))
    (dr,) = sends(r.delete_child(next(iter(r.children))))
    (ai,) = sends(i.receive(dr))
    (ar,) = sends(r.receive(di))
    _, inner = opened(i.keys, ai)
    assert not any(isinstance(p, codec.DeletePayload) for p in inner)
    i.receive(ar)
    r.receive(ai)
    assert not i.children and not r.children and i.liveness()


# ---------------------------------------------------------------- IKE SA rekey (§2.18)


@pytest.mark.parametrize("who", ["initiator", "responder"])
def test_ike_sa_rekey(who, monkeypatch):
    calls: list[tuple] = []
    real = crypto.ike_keys
    monkeypatch.setattr(crypto, "ike_keys", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    i, r = established()
    a, b = (i, r) if who == "initiator" else (r, i)
    old_spis, old_sk_d = (i.spi_i, i.spi_r), i.keys.sk_d
    children = {k: dict(s.children) for k, s in (("a", a), ("b", b))}
    calls.clear()
    (req,) = sends(a.rekey_ike())
    _, qin = opened(a.keys, req)
    (qsa,) = first(qin, SaPayload).proposals
    assert qsa.protocol == Protocol.IKE and len(qsa.spi) == 8 and DH31 in qsa.transforms  # §1.3.2
    assert not any(isinstance(p, TsPayload) for p in qin)
    ea, eb = run(a, b, [SendIke(req)])
    (ra,), (rb,) = only(ea, IkeSaRekeyed), only(eb, IkeSaRekeyed)
    assert ra.ours and not rb.ours and (ra.old_spi_i, ra.old_spi_r) == (old_spis[0].hex(), old_spis[1].hex())
    assert (a.spi_i, a.spi_r) == (b.spi_i, b.spi_r) and a.spi_i not in old_spis and a.spi_r not in old_spis
    assert a.spi_i == qsa.spi  # the rekey initiator's SPI is the new SPIi ...
    assert a.sa.initiator and not b.sa.initiator  # ... and it is the new original initiator
    assert a.keys == b.keys and a.keys.sk_d != old_sk_d
    # §2.18: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
    args, kw = calls[0]
    ni, nr, shared = args[0], args[1], args[2]
    assert kw["old_sk_d"] == old_sk_d and ni == first(qin, NoncePayload).nonce
    assert a.keys.skeyseed == crypto.prf(old_sk_d, shared + ni + nr)
    # the old IKE SA was deleted on both sides (§2.18); the Child SAs moved, unchanged
    assert len(a.ike_sas()) == len(b.ike_sas()) == 1 and not only(ea + eb, ChildSaDown)
    assert a.children == children["a"] and b.children == children["b"] and carries(i, r)
    # the new IKE SA starts its Message IDs at 0 and carries on
    (live,) = sends(a.liveness())
    m = codec.decode(live)
    assert (m.spi_i, m.message_id) == (a.spi_i, 0)
    ea, eb = run(a, b, [SendIke(live)])
    assert only(ea, PeerAlive)
    ea, eb = run(b, a, b.rekey_child(next(iter(b.children))))
    assert len(only(ea, ChildSaUp)) == 1 and len(a.children) == len(b.children) == 1 and carries(i, r)
    # the old SPIs mean nothing any more
    stale = codec.encode(codec.Message(old_spis[0], old_spis[1], codec.Exchange.INFORMATIONAL,
                                       0x08, 7, (codec.NoncePayload(b"x" * 16),)))
    assert a.receive(stale) == [Ignored("IKE SPIs do not match")]


def test_ike_rekey_refused_keeps_the_ike_sa():
    i, r = established()
    # a proposal the responder cannot take (AES-CBC without integrity): NO_PROPOSAL_CHOSEN
    bad = seal_as(i, codec.Exchange.CREATE_CHILD_SA, [
        SaPayload((Proposal(1, Protocol.IKE, b"Q" * 8, (Transform(TransformType.ENCR, 12, 128),
                                                        Transform(TransformType.PRF, 5), DH31)),)),
        NoncePayload(b"n" * 32), KePayload(DH_CURVE25519, crypto.x25519_public(bytes(range(32))))])
    out = r.receive(bad)
    _, rin = opened(i.keys, sends(out)[0])
    assert {p.notify for p in rin if isinstance(p, NotifyPayload)} == {Notify.NO_PROPOSAL_CHOSEN}
    assert r.state is State.ESTABLISHED and len(r.ike_sas()) == 1 and not only(out, IkeSaRekeyed)


# ---------------------------------------------------------------- simultaneous rekeys


def child_collision(seed: int, order: str) -> tuple[str, IkeSession, IkeSession, list, list]:
    """Both ends rekey the same Child SA at once (§2.8.1). `order`: "crossing" (each gets the
    other's request first) or "late" (the initiator gets its response before the peer's request)."""
    i, r = established(seed)
    (qa,) = sends(i.rekey_child(next(iter(i.children))))
    (qb,) = sends(r.rekey_child(next(iter(r.children))))
    keys = i.keys
    ev_i: list = []
    ev_r: list = []
    out_r = r.receive(qa)  # r answers i's request, noting the collision
    (ra,) = sends(out_r)
    ev_r += [x for x in out_r if not isinstance(x, SendIke)]
    pending: list[tuple[IkeSession, bytes]] = []
    if order == "crossing":
        out_i = i.receive(qb)
        (rb,) = sends(out_i)
        ev_i += [x for x in out_i if not isinstance(x, SendIke)]
        out_i2 = i.receive(ra)
        out_r2 = r.receive(rb)
    else:  # i learns of the collision only after its own exchange completed
        out_i2 = i.receive(ra)
        out_i = i.receive(qb)
        (rb,) = sends(out_i)
        ev_i += [x for x in out_i if not isinstance(x, SendIke)]
        out_r2 = r.receive(rb)
    for src, out, ev in ((i, out_i2, ev_i), (r, out_r2, ev_r)):
        ev += [x for x in out if not isinstance(x, SendIke)]
        pending += [(src, d) for d in sends(out)]
    while pending:
        src, d = pending.pop(0)
        dst = r if src is i else i
        out = dst.receive(d)
        (ev_r if dst is r else ev_i).extend(x for x in out if not isinstance(x, SendIke))
        pending += [(dst, x) for x in sends(out)]
    if order == "late":  # i deleted the old one before r's request came: §2.25.1
        return "r", i, r, ev_i, ev_r
    nonces = [first(opened(keys, d)[1], NoncePayload).nonce for d in (qa, ra, qb, rb)]
    redundant = "i" if min(nonces[:2]) < min(nonces[2:]) else "r"
    return redundant, i, r, ev_i, ev_r


@pytest.mark.parametrize("order", ["crossing", "late"])
def test_simultaneous_child_rekey(order):
    # "late": i's exchange completed, and i is deleting the old Child SA, when r's request
    # comes: r gets TEMPORARY_FAILURE (§2.25.1) and i's new Child SA is the one
    outcomes = set()
    for seed in range(12):
        redundant, i, r, ev_i, ev_r = child_collision(seed, order)
        if order == "late":
            assert [f.notify for f in only(ev_r, ChildSaFailed)] == [Notify.TEMPORARY_FAILURE]
        outcomes.add(redundant)
        # one Child SA is left on each side, the same one, and it carries traffic
        assert len(i.children) == len(r.children) == 1, (seed, i.children, r.children)
        (ci,), (cr,) = i.children.values(), r.children.values()
        assert (ci.spi_in, ci.spi_out) == (cr.spi_out, cr.spi_in) and carries(i, r)
        # the survivor is the one the other exchange made (§2.8.1: lowest nonce is redundant)
        mine = {"i": [u for u in only(ev_i, ChildSaUp) if u.ours], "r": [u for u in only(ev_r, ChildSaUp) if u.ours]}
        loser, winner = redundant, "r" if redundant == "i" else "i"
        survivor = ci if winner == "i" else cr
        assert mine[winner][0].child.spi_in == survivor.spi_in, seed
        if order == "crossing":
            assert mine[loser][0].redundant, seed
            assert only(ev_i if winner == "i" else ev_r, ChildSaRedundant), seed
        assert not i._rekeying and not r._rekeying and not i._deleting and not r._deleting
    assert outcomes == ({"i", "r"} if order == "crossing" else {"r"})  # both ends lose sometimes


def ike_collision(seed: int) -> tuple[str, IkeSession, IkeSession, list, list]:
    """Both ends rekey the IKE SA at once, requests crossing (§2.8.2); FIFO each way."""
    i, r = established(seed)
    keys = i.keys
    (qa,) = sends(i.rekey_ike())
    (qb,) = sends(r.rekey_ike())
    out_r = r.receive(qa)
    out_i = i.receive(qb)
    (ra,), (rb,) = sends(out_r), sends(out_i)
    nonces = [first(opened(keys, d)[1], NoncePayload).nonce for d in (qa, ra, qb, rb)]
    ev = {id(i): [], id(r): []}
    for s_, out in ((i, out_i), (r, out_r)):
        ev[id(s_)] += [x for x in out if not isinstance(x, SendIke)]
    out_i2, out_r2 = i.receive(ra), r.receive(rb)
    pending = [(i, d) for d in sends(out_i2)] + [(r, d) for d in sends(out_r2)]
    for s_, out in ((i, out_i2), (r, out_r2)):
        ev[id(s_)] += [x for x in out if not isinstance(x, SendIke)]
    while pending:
        src, d = pending.pop(0)
        dst = r if src is i else i
        out = dst.receive(d)
        ev[id(dst)] += [x for x in out if not isinstance(x, SendIke)]
        pending += [(dst, x) for x in sends(out)]
    return ("i" if min(nonces[:2]) < min(nonces[2:]) else "r"), i, r, ev[id(i)], ev[id(r)]


def test_simultaneous_ike_sa_rekey():
    outcomes = set()
    for seed in range(12):
        redundant, i, r, ev_i, ev_r = ike_collision(seed)
        outcomes.add(redundant)
        # one IKE SA is left on both sides, the same one, with the Child SA
        assert i.ike_sas() == [{**x} for x in r.ike_sas()] and len(i.ike_sas()) == 1, seed
        assert (i.spi_i, i.spi_r) == (r.spi_i, r.spi_r) and i.keys == r.keys
        winner = r if redundant == "i" else i
        assert winner.sa.initiator  # the survivor is the winner's rekey (§2.8.2)
        assert len(i.children) == len(r.children) == 1 and carries(i, r)
        assert not only(ev_i + ev_r, ChildSaDown)
        ea, eb = run(i, r, i.rekey_child(next(iter(i.children))))  # and it works
        assert len(only(ea, ChildSaUp)) == 1 and carries(i, r)
    assert outcomes == {"i", "r"}


def deliver(a: IkeSession, b: IkeSession, pending: list[tuple[IkeSession, bytes]]) -> None:
    """Deliver (sender, datagram) pairs in order, and whatever they cause, until quiet."""
    while pending:
        src, d = pending.pop(0)
        dst = b if src is a else a
        pending += [(dst, x) for x in sends(dst.receive(d))]


def test_ike_rekey_crossing_a_child_rekey():
    # §2.25: with its Child SA rekey in flight, r refuses the IKE SA rekey (TEMPORARY_FAILURE:
    # were the IKE SA replaced, a lost answer to its request could not be asked for again);
    # i answers r's request; then i's next try goes through
    for seed in range(6):
        i, r = established(seed)
        old = (i.spi_i, i.spi_r)
        (qa,) = sends(i.rekey_ike())
        (qb,) = sends(r.rekey_child(next(iter(r.children))))
        out_r, out_i = r.receive(qa), i.receive(qb)
        (ra,) = sends(out_r)
        _, inner = opened(i.keys, ra)
        assert {p.notify for p in inner if isinstance(p, NotifyPayload)} == {Notify.TEMPORARY_FAILURE}
        assert [type(a).__name__ for a in i.receive(ra)] == ["IkeRekeyFailed"]
        deliver(i, r, [(i, d) for d in sends(out_i)])
        assert len(i.children) == len(r.children) == 1 and carries(i, r), seed
        ea, eb = run(i, r, i.rekey_ike())
        assert only(ea, IkeSaRekeyed) and len(i.ike_sas()) == len(r.ike_sas()) == 1, seed
        assert (i.spi_i, i.spi_r) == (r.spi_i, r.spi_r) != old and carries(i, r)
