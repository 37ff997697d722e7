"""The LSDB's MaxAge bookkeeping (RFC 2328 §14): one heap entry per LSA, not per instance."""

from __future__ import annotations

from ipaddress import IPv4Address

from ospf.lsdb import Lsdb
from ospf.packets import INITIAL_SEQ, MAX_AGE, LinkType, Lsa, LsType, RouterLink, RouterLsaBody


def _lsa(k: int, seq: int, age: int = 0) -> Lsa:
    rid = IPv4Address(f"10.255.{k // 250}.{k % 250}")
    body = RouterLsaBody(0, (RouterLink(rid, IPv4Address("255.255.255.255"), LinkType.STUB, seq
                                        - INITIAL_SEQ),))
    return Lsa.build(LsType.ROUTER, rid, rid, seq, body, age=age)


def test_new_instances_do_not_pile_up_in_the_expiry_heap():
    db = Lsdb()
    keys = range(1, 201)
    for n in range(20):  # 20 instances of each of 200 LSAs, a second apart
        for k in keys:
            db.install(_lsa(k, INITIAL_SEQ + n), float(n))
    assert len(db._expiry) <= 64 + 250  # 4,000 before
    # the current instances expire MaxAge after their installation, not the first ones'
    assert db.next_expiry() == 19.0 + MAX_AGE
    assert db.expired(18.0 + MAX_AGE) == []
    assert sorted(int(k.adv_router) for k in db.expired(19.0 + MAX_AGE)) == \
        [int(IPv4Address(f"10.255.{k // 250}.{k % 250}")) for k in keys]
    assert db.next_expiry() is None


def test_an_older_aged_instance_and_a_removed_lsa():
    db = Lsdb()
    db.install(_lsa(1, INITIAL_SEQ), 0.0)
    db.install(_lsa(1, INITIAL_SEQ + 1, age=100), 10.0)  # arrives 100 s old: expires sooner
    assert db.next_expiry() == 10.0 + MAX_AGE - 100
    db.install(_lsa(2, INITIAL_SEQ), 0.0)
    db.remove(_lsa(2, INITIAL_SEQ).key)
    assert db.expired(10.0 + MAX_AGE - 100) == [_lsa(1, INITIAL_SEQ).key]
    assert db.next_expiry() is None


def test_an_lsa_expires_at_its_time_whatever_the_float_rounding():
    """MaxAge is reached at installed + MaxAge - age; `now - installed` may then come out a
    hair under MaxAge - age (0.3 + 3600 - 0.3 < 3600 in floats): the LSA expires all the
    same (once it was dropped from the heap and stayed in the database forever)."""
    for installed, age in ((0.30000000000000004, 0), (12.345, 17), (1e-7, 3599)):
        db = Lsdb()
        db.install(_lsa(1, INITIAL_SEQ, age=age), installed)
        when = db.next_expiry()
        assert when == installed + MAX_AGE - age
        assert db.expired(when) == [_lsa(1, INITIAL_SEQ).key], (installed, age)
        assert db.get(_lsa(1, INITIAL_SEQ).key).age(when) == MAX_AGE
