"""`ike.tunnel.Tunnel`: two of our IKE peers on a virtual clock (tests/ike_harness.py).

Both ends rekey on their own timers (Child SAs and the IKE SA, RFC 7296 §2.8, §2.18), so
rekeys collide (§2.8.1, §2.8.2); requests cross on a wire with random delays; a packet
stream each way counts losses. Hours run in seconds.
"""

from __future__ import annotations

import random
import struct

import pytest

from ike import IkeSession, codec
from ike.tunnel import LINGER, Lifetimes
from tests.ike_harness import Net


def outbound_changes(net: Net, n: int) -> list[tuple[int, int]]:
    """(spi_out, spi_in) of each Child SA side `n` sent on, in order."""
    return [(o, i) for _, o, i in net.sides[n].out_history]


def assert_every_rekey_changes_both_spis(net: Net) -> None:
    for n in (1, 2):
        pairs = outbound_changes(net, n)
        for (o1, i1), (o2, i2) in zip(pairs, pairs[1:], strict=False):
            assert o1 != o2 and i1 != i2, (n, pairs)


def up(lt: Lifetimes, **kw) -> Net:
    net = Net(lt, **kw)
    net.start()
    net.run_until(1.0)
    assert net.sides[1].tunnel.state == net.sides[2].tunnel.state == "established"
    return net


def test_hours_with_strongswan_default_lifetimes():
    # strongSwan's defaults (Child SA rekey 1 h, IKE SA 4 h, 10 % margins) on both ends: five
    # hours of a packet a second each way, across Child SA and IKE SA rekeys, lose nothing
    net = up(Lifetimes.of())
    net.stream(1.0, 5 * 3600)
    net.run_until(5 * 3600 + 10)
    assert net.losses() == {1: {}, 2: {}}
    assert net.sides[1].sent == net.sides[1].delivered >= 17_999
    t1, t2 = net.sides[1].tunnel, net.sides[2].tunnel
    assert t1.counters["child_rekeyed"] == t2.counters["child_rekeyed"] >= 4
    assert t1.counters["ike_rekeyed"] == t2.counters["ike_rekeyed"] >= 1
    assert len(net.sides[1].ike_spis) >= 3 and len(net.sides[2].ike_spis) >= 2  # SPIs changed
    assert_every_rekey_changes_both_spis(net)
    for n in (1, 2):
        s = net.sides[n]
        assert len(s.tunnel.children) == len(s.sad.inbound) == 1 and len(s.tunnel.session.ike_sas()) == 1
        assert s.max_children <= 2 and s.tunnel.problems(net.now) == []


@pytest.mark.parametrize("seed", [1, 2])
def test_rekeys_every_few_seconds_from_both_ends(seed):
    # Child SAs rekeyed every 2-3 s and the IKE SA every 6-7 s by whichever end's timer fires
    # first: simultaneous rekeys happen and end with one SA; not a packet is lost
    net = up(Lifetimes.of(3, 7), seed=seed)
    net.stream(0.05, 600)
    net.run_until(601)
    assert net.losses() == {1: {}, 2: {}}, net.sides[1].notes_text[-20:]
    t1, t2 = net.sides[1].tunnel, net.sides[2].tunnel
    for t in (t1, t2):  # one may be half-way at the end
        assert t.counters["child_rekeyed"] >= 200 and t.counters["ike_rekeyed"] >= 75
        assert t.counters["rekeys"] >= 50 and t.counters["ike_rekeys_requested"] >= 15  # both start some
        assert t.problems(net.now) == [] and t.state == "established"
    assert t1.counters["child_redundant"] + t2.counters["child_redundant"] >= 1  # §2.8.1 happened
    assert_every_rekey_changes_both_spis(net)
    for n in (1, 2):  # no growth: at most the old, the new and a redundant one at a time
        s = net.sides[n]
        assert s.max_children <= 3 and s.max_inbound <= 6 and s.max_ike_sas <= 4, (n, s)
        assert not s.tunnel.session._rekeying.keys() - s.tunnel.children.keys()


@pytest.mark.parametrize("seed", [1, 2])
def test_rekeys_with_lost_ike_datagrams(seed):
    # 5 % of IKE datagrams lost (retransmissions, §2.1) with lifetimes that leave them room
    rng = random.Random(seed)
    net = up(Lifetimes.of(20, 45), seed=seed)
    net.drop = lambda n, d: rng.random() < 0.05
    net.stream(0.1, 900)
    net.run_until(901)
    assert net.losses() == {1: {}, 2: {}}
    t1, t2 = net.sides[1].tunnel, net.sides[2].tunnel
    assert t1.counters["retransmits"] + t2.counters["retransmits"] > 10
    assert t1.counters["child_rekeyed"] >= 40 and t1.counters["ike_rekeyed"] >= 18
    for n in (1, 2):
        s = net.sides[n]
        assert s.tunnel.problems(net.now) == [] and s.max_children <= 3 and s.max_ike_sas <= 4


def live_pair(net: Net) -> bool:
    """Both ends send on a Child SA the other end can open."""
    a, b = net.sides[1], net.sides[2]
    return (a.outbound is not None and b.outbound is not None
            and b.sad.lookup_inbound(a.outbound.spi, a.outbound.dst) is not None
            and a.sad.lookup_inbound(b.outbound.spi, b.outbound.dst) is not None)


@pytest.mark.parametrize("deleter", [1, 2])
def test_deleted_child_sa_is_created_again(deleter):
    # the connection is configured, so its Child SA comes back (§1.3.1 CREATE_CHILD_SA) when
    # either end deletes it; only one end creates it (no duplicate)
    net = up(Lifetimes.of(600, 3600))
    net.stream(0.01, 20)
    net.run_until(5)
    before = set(net.sides[1].tunnel.children)
    assert net.command(deleter, "delete")["deleted"]
    t0 = net.now
    while not (live_pair(net) and not before & set(net.sides[1].tunnel.children)):
        net.run_until(net.now + 0.01)
        assert net.now - t0 < 2, net.sides[1].notes_text
    back = net.now - t0
    net.run_until(20)
    assert back < 0.2  # the initiator creates it at once
    for n in (1, 2):
        t = net.sides[n].tunnel
        assert len(t.children) == 1 and t.problems(net.now) == [], t.status(net.now)
        assert t.counters["child_create"] == (1 if n == 1 else 0)
    lost = sum(sum(s.lost.values()) for s in net.sides.values())
    assert lost <= 2 * back / 0.01 + 4  # only while it was gone


def test_missing_child_sa_is_an_error_until_it_is_back():
    net = up(Lifetimes.of(600, 3600))
    t2 = net.sides[2].tunnel
    t2.keep_up_delay = 60.0  # the responder would wait; the initiator is cut off for a while
    net.drop = lambda n, d: n == 1 and codec.decode(d).exchange == codec.Exchange.CREATE_CHILD_SA
    net.command(1, "delete")
    net.run_until(3)
    st = net.sides[1].tunnel.status(net.now)
    assert st["state"] == "error" and st["ike_state"] == "established"
    assert [p["problem"] for p in st["problems"]] == ["missing"] and "no Child SA" in st["error"]
    net.drop = None
    net.run_until(30)  # the initiator retries (its creation got no answer) and it is back
    for n in (1, 2):
        st = net.sides[n].tunnel.status(net.now)
        assert st["state"] == "established" and st["problems"] == [] and st["error"] is None, st


def test_failing_rekeys_expiry_and_loss_are_errors():
    # side 1 rekeys without PFS, side 2 requires it (and never rekeys first): every rekey
    # fails (NO_PROPOSAL_CHOSEN), the Child SA passes its rekey time, expires, is gone, and
    # its creation fails too; each stage is an error, never "established"
    net = up(Lifetimes.of(3, 3600), cfg1={"pfs": False}, lifetimes2=Lifetimes.of(1000, 3600))
    seen: dict[str, str] = {}
    text = []
    t1 = net.sides[1].tunnel
    for _ in range(200):
        net.run_until(net.now + 0.05)
        st = t1.status(net.now)
        for p in st["problems"]:
            seen.setdefault(p["problem"], st["state"])
    text = net.sides[1].notes_text
    assert set(seen) >= {"rekey-failing", "expiring", "missing", "create-failing"}, seen
    assert set(seen.values()) == {"error"}
    assert any("rekey of" in x and "failed: NO_PROPOSAL_CHOSEN" in x for x in text)
    assert not any("rekeyed" in x for x in text)  # a failed rekey is never logged as one
    assert any("expired after 4 s without a successor" in x for x in text)
    assert t1.counters["child_rekeyed"] == 0 and t1.counters["rekey_failed"] >= 2


def test_a_forged_ike_sa_init_does_not_replace_the_ike_sa():
    # the responder negotiates a new IKE_SA_INIT aside; only one that authenticates (the peer
    # restarted) replaces the established IKE SA
    net = up(Lifetimes.of(600, 3600))
    net.stream(0.05, 30)
    t2 = net.sides[2].tunnel
    spis = (t2.session.spi_i, t2.session.spi_r)
    for k in range(50):  # IKE_SA_INITs from strangers (no PSK): answered, never authenticated
        other = IkeSession(net.sides[1].tunnel.config, initiator=True, rng=random.Random(k).randbytes)
        net.apply(2, t2.receive(other.start()[0].data, net.now))
    net.run_until(10)
    assert (t2.session.spi_i, t2.session.spi_r) == spis and t2.state == "established"
    assert t2.counters["ike_sa_init_aside"] == 50
    # the peer really restarts: its new IKE SA authenticates and replaces ours
    net.apply(1, net.sides[1].tunnel.start(net.now))
    net.run_until(12)
    assert (t2.session.spi_i, t2.session.spi_r) != spis and t2.state == "established"
    assert t2.session.spi_i == net.sides[1].tunnel.session.spi_i and live_pair(net)


def test_random_datagrams_change_nothing():
    net = up(Lifetimes.of(600, 3600))
    net.stream(0.05, 20)
    rng = random.Random(7)
    s1, s2 = net.sides[1].tunnel.session, net.sides[2].tunnel.session
    for k in range(2000):
        n = 1 + k % 2
        s = s1 if n == 1 else s2
        kind = k % 4
        if kind == 0:
            data = rng.randbytes(rng.randrange(0, 300))
        else:  # a plausible header: our SPIs or an IKE_SA_INIT, then junk
            spi_i, spi_r = (s.spi_i, s.spi_r) if kind != 3 else (rng.randbytes(8), bytes(8))
            body = rng.randbytes(rng.randrange(0, 200))
            exch = rng.choice([34, 35, 36, 37, 43]) if kind != 3 else 34
            hdr = struct.pack("!8s8sBBBBII", spi_i, spi_r, rng.choice([33, 46, 40, 0]), 0x20, exch,
                              rng.choice([0, 0x08, 0x20, 0x28]), rng.randrange(0, 8), 28 + len(body))
            data = hdr + body
        net.at(net.now + k * 0.005, lambda d=data, n=n: net.apply(n, net.sides[n].tunnel.receive(d, net.now)))
    net.run_until(20 + LINGER)
    assert net.losses() == {1: {}, 2: {}}
    for side in net.sides.values():
        assert side.tunnel.state == "established" and side.tunnel.problems(net.now) == []
        assert len(side.tunnel.children) == 1
