"""Label Decision Engine with hand-fed RIBs and messages."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from ldp.lde import LabelAllocator, Lde
from ldp.messages import (
    Address,
    AddressWithdraw,
    LabelMapping,
    LabelRelease,
    LabelRequest,
    LabelWithdraw,
    PrefixFec,
    WildcardFec,
)
from lsr.core.igp import Nexthop, Route
from lsr.core.topology import LdpOptions

ME = IPv4Address("10.255.0.1")
P1, P2 = IPv4Address("10.255.0.2"), IPv4Address("10.255.0.3")
NH1, NH2 = IPv4Address("10.0.0.2"), IPv4Address("10.0.0.6")
N = IPv4Network


def rt(prefix: str, *nhs: tuple[str, str, IPv4Address], metric: int = 20) -> tuple:
    p = N(prefix)
    return p, Route(p, metric if nhs else 0, tuple(Nexthop(*x) for x in nhs))


def make(**opts):
    sent: list = []
    ids = iter(range(1, 10**6))
    lde = Lde(ME, (16, 100), LdpOptions(**opts), lambda pid, m: sent.append((pid, m)),
              lambda: next(ids))
    return lde, sent


RIB = dict([
    rt("10.255.0.1/32"),
    rt("10.255.0.4/32", ("p1", "eth1", NH1), ("p2", "eth2", NH2)),
    rt("10.255.0.2/32", ("p1", "eth1", NH1), metric=10),
    rt("10.9.0.0/16", ("p2", "eth2", NH2), metric=30),
])


def up(lde, pid, addr):
    lde.peer_up(pid, [ME])
    lde.receive(pid, Address(1, (pid, addr)))


def mapping(prefix, label):
    return LabelMapping(9, (PrefixFec(N(prefix)),), label)


def test_allocator_lowest_free():
    a = LabelAllocator(0, 20)
    assert [a.alloc() for _ in range(3)] == [16, 17, 18]
    a.free(17)
    assert a.alloc() == 17 and a.alloc() == 19


def test_local_bindings_sorted_and_egress_null():
    lde, _ = make()
    lde.rib_changed(RIB)
    lde.finish()
    assert lde.local == {N("10.9.0.0/16"): 16, N("10.255.0.1/32"): 3,
                         N("10.255.0.2/32"): 17, N("10.255.0.4/32"): 18}
    lde2, _ = make(explicit_null=True, fecs="loopbacks")
    lde2.rib_changed(RIB)
    lde2.finish()
    assert lde2.local[N("10.255.0.1/32")] == 0 and N("10.9.0.0/16") not in lde2.local


def test_ecmp_nhlfes_only_with_mappings():
    lde, sent = make()
    lde.rib_changed(RIB)
    lde.finish()
    up(lde, P1, NH1)
    up(lde, P2, NH2)
    ads = [m for pid, m in sent if pid == P1 and isinstance(m, LabelMapping)]
    assert [(str(m.fec[0].prefix), m.label) for m in ads][:2] == [("10.9.0.0/16", 16),
                                                                 ("10.255.0.1/32", 3)]
    lde.receive(P1, mapping("10.255.0.4/32", 40))
    d = lde.finish()
    (ftn,) = d.ftn_set
    assert [(n.neighbor, n.out_labels) for n in ftn.nexthops] == [(str(P1), (40,))]
    lde.receive(P2, mapping("10.255.0.4/32", 3))
    d = lde.finish()
    (ftn,) = d.ftn_set
    assert [(n.interface, n.out_labels) for n in ftn.nexthops] == [("eth1", (40,)), ("eth2", ())]
    (ilm,) = d.ilm_set
    assert ilm.in_label == 18 and [n.op for n in ilm.nexthops] == ["swap", "pop"]
    # a mapping from a non-next-hop peer is kept (liberal) but not used
    lde.receive(P2, mapping("10.255.0.2/32", 55))
    assert lde.finish() is None
    assert lde.peers[P2].lib[N("10.255.0.2/32")] == 55


def test_fec_loss_one_withdraw_per_peer_and_label_hold():
    lde, sent = make()
    lde.rib_changed(RIB)
    lde.finish()
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.9.0.0/16", 3))
    lde.finish()
    sent.clear()
    rib = dict(RIB)
    del rib[N("10.9.0.0/16")]
    lde.rib_changed(rib)
    lde.finish()
    lde.rib_changed(rib)
    lde.finish()
    wd = [m for _, m in sent if isinstance(m, LabelWithdraw)]
    assert len(wd) == 1 and wd[0].label == 16
    # label 16 is not reused before the Release
    rib2 = dict(rib, **{})
    rib2.update([rt("10.8.0.0/16", ("p1", "eth1", NH1))])
    lde.rib_changed(rib2)
    lde.finish()
    assert lde.local[N("10.8.0.0/16")] == 19
    lde.receive(P1, LabelRelease(5, (PrefixFec(N("10.9.0.0/16")),), 16))
    assert lde.labels.alloc() == 16


def test_withdraw_answered_with_release_wildcard():
    lde, sent = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.4/32", 40))
    lde.receive(P1, mapping("10.255.0.2/32", 3))
    lde.finish()
    sent.clear()
    lde.receive(P1, LabelWithdraw(7, (WildcardFec(),)))
    d = lde.finish()
    assert [type(m) for _, m in sent] == [LabelRelease]
    assert not lde.peers[P1].lib and set(d.ftn_del) == {N("10.255.0.4/32"), N("10.255.0.2/32")}


def test_address_withdraw_unmaps_nexthop():
    lde, _ = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.2/32", 3))
    lde.finish()
    assert N("10.255.0.2/32") in lde.lfib.ftn
    lde.receive(P1, AddressWithdraw(3, (NH1,)))
    d = lde.finish()
    assert d.ftn_del == (N("10.255.0.2/32"),)


def test_ordered_control_waits_for_downstream():
    lde, sent = make(control="ordered")
    lde.rib_changed(RIB)
    lde.finish()
    assert lde.local == {N("10.255.0.1/32"): 3}  # only egress
    up(lde, P1, NH1)
    up(lde, P2, NH2)
    lde.receive(P1, mapping("10.255.0.2/32", 3))
    lde.finish()
    assert lde.local[N("10.255.0.2/32")] == 16
    assert any(isinstance(m, LabelMapping) and m.fec[0].prefix == N("10.255.0.2/32")
               for pid, m in sent if pid == P2)
    sent.clear()
    lde.receive(P1, LabelWithdraw(8, (PrefixFec(N("10.255.0.2/32")),), 3))
    lde.finish()
    assert N("10.255.0.2/32") not in lde.local
    assert sum(isinstance(m, LabelWithdraw) for pid, m in sent if pid == P2) == 1


def test_conservative_releases_and_rerequests():
    lde, sent = make(retention="conservative")
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    up(lde, P2, NH2)
    sent.clear()
    lde.receive(P2, mapping("10.255.0.2/32", 55))  # P2 is not the next hop
    assert N("10.255.0.2/32") not in lde.peers[P2].lib
    assert [type(m) for _, m in sent] == [LabelRelease]
    sent.clear()
    rib = dict(RIB)
    rib.update([rt("10.255.0.2/32", ("p2", "eth2", NH2))])
    lde.rib_changed(rib)
    assert [(pid, type(m)) for pid, m in sent] == [(P2, LabelRequest)]


def test_peer_down_clears_lib():
    lde, _ = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.2/32", 3))
    lde.finish()
    lde.peer_down(P1)
    d = lde.finish()
    assert d.ftn_del == (N("10.255.0.2/32"),) and P1 not in lde.peers


def test_address_withdraw_hands_shared_address_to_other_peer():
    """Two peers list the same address; when one withdraws it (§3.5.6) the next hop
    maps to the other peer, not to nobody."""
    lde, _ = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    up(lde, P2, NH1)  # P2 also claims NH1 (last one wins the map)
    lde.receive(P1, mapping("10.255.0.2/32", 30))
    lde.receive(P2, mapping("10.255.0.2/32", 40))
    lde.finish()
    assert lde.lfib.ftn[N("10.255.0.2/32")].nexthops[0].out_labels == (40,)
    lde.receive(P2, AddressWithdraw(4, (NH1,)))
    d = lde.finish()
    (e,) = d.ftn_set
    assert e.nexthops[0].neighbor == str(P1) and e.nexthops[0].out_labels == (30,)
    lde.receive(P1, AddressWithdraw(5, (IPv4Address("10.99.0.1"),)))  # never listed: no-op
    assert lde.finish() is None


def test_local_address_changes_sent_to_every_peer():
    lde, sent = make()
    up(lde, P1, NH1)
    up(lde, P2, NH2)
    sent.clear()
    lde.addresses_removed([IPv4Address("10.0.0.1")])
    lde.addresses_added([])
    lde.addresses_added([IPv4Address("10.0.0.9")])
    assert [(pid, type(m).__name__, m.addresses) for pid, m in sent] == [
        (P1, "AddressWithdraw", (IPv4Address("10.0.0.1"),)),
        (P2, "AddressWithdraw", (IPv4Address("10.0.0.1"),)),
        (P1, "Address", (IPv4Address("10.0.0.9"),)),
        (P2, "Address", (IPv4Address("10.0.0.9"),)),
    ]


# ---------------------------------------------------------------- LMp.10a (RFC 5036 App. A.1.2)


def test_changed_mapping_for_retained_fec_releases_old_label():
    """P2 is not the next hop for 10.255.0.2/32 (liberal retention keeps its label unused).
    It maps 2001, then 2002: LMp.10a releases 2001 to P2, the LIB keeps 2002, the LFIB
    does not change."""
    lde, sent = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    up(lde, P2, NH2)
    lde.receive(P1, mapping("10.255.0.2/32", 3))
    lde.finish()
    lde.receive(P2, mapping("10.255.0.2/32", 2001))
    assert lde.finish() is None
    sent.clear()
    lde.receive(P2, mapping("10.255.0.2/32", 2002))
    (rel,) = [(pid, m) for pid, m in sent]
    assert rel[0] == P2 and isinstance(rel[1], LabelRelease)
    assert (rel[1].fec, rel[1].label) == ((PrefixFec(N("10.255.0.2/32")),), 2001)
    assert lde.peers[P2].lib[N("10.255.0.2/32")] == 2002
    assert lde.finish() is None  # not in use: nothing to reprogram
    # the same label again (a refresh) is no change: nothing released
    sent.clear()
    lde.receive(P2, mapping("10.255.0.2/32", 2002))
    assert sent == [] and lde.finish() is None


def test_changed_mapping_for_fec_in_use_releases_old_label_and_swaps_nhlfe():
    """P1 is the next hop: 2001 then 2002 releases 2001 and the FTN/ILM push/swap 2002."""
    lde, sent = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.2/32", 2001))
    d = lde.finish()
    assert d.ftn_set[0].nexthops[0].out_labels == (2001,)
    in_label = d.ilm_set[0].in_label
    sent.clear()
    lde.receive(P1, mapping("10.255.0.2/32", 2002))
    assert [(pid, m.label, m.fec) for pid, m in sent if isinstance(m, LabelRelease)] == [
        (P1, 2001, (PrefixFec(N("10.255.0.2/32")),))]
    d = lde.finish()
    (ftn,) = d.ftn_set
    assert [(n.neighbor, n.out_labels) for n in ftn.nexthops] == [(str(P1), (2002,))]
    (ilm,) = d.ilm_set
    assert ilm.in_label == in_label and ilm.nexthops[0].out_labels == (2002,)
    assert d.ftn_del == () and d.ilm_del == ()
    # our own label for the FEC did not change: no Withdraw, no new Mapping upstream
    assert not [m for _, m in sent if isinstance(m, LabelWithdraw | LabelMapping)]


def test_changed_mapping_answering_our_request_releases_nothing():
    """LMp.10 Note 6: a mapping that answers our Label Request is a new LSP, not a change
    (conservative retention re-requests a label when a peer becomes the next hop)."""
    lde, sent = make(retention="conservative")
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.2/32", 2001))
    lde.peers[P1].requested.add(N("10.255.0.2/32"))
    sent.clear()
    lde.receive(P1, mapping("10.255.0.2/32", 2002))
    assert sent == [] and lde.peers[P1].lib[N("10.255.0.2/32")] == 2002
    assert not lde.peers[P1].requested


def test_changed_mapping_conservative_not_nexthop_releases_both():
    """Conservative retention, P2 not the next hop: the old label (LMp.10a) and the new
    one (LMp.13 -> LMp.32) are both released, in that order, and nothing is kept."""
    lde, sent = make(retention="conservative")
    lde.rib_changed(RIB)
    up(lde, P2, NH2)
    lde.peers[P2].lib[N("10.255.0.2/32")] = 2001  # kept from when P2 was the next hop
    sent.clear()
    lde.receive(P2, mapping("10.255.0.2/32", 2002))
    assert [(pid, m.label) for pid, m in sent if isinstance(m, LabelRelease)] == [
        (P2, 2001), (P2, 2002)]
    assert N("10.255.0.2/32") not in lde.peers[P2].lib


def test_ipv6_prefix_fec_elements_are_not_ours_but_still_answered():
    """An IPv6 Prefix FEC element in a Withdraw or Release (a dual-stack peer) is skipped
    by the IPv4 LDE instead of raising; the Withdraw is still answered (LWd.2)."""
    from ipaddress import IPv6Network

    lde, sent = make()
    lde.rib_changed(RIB)
    up(lde, P1, NH1)
    lde.receive(P1, mapping("10.255.0.2/32", 30))
    lde.finish()
    sent.clear()
    v6 = PrefixFec(IPv6Network("2001:db8::/32"))
    fecs = (v6, PrefixFec(N("10.255.0.2/32")))
    lde.receive(P1, LabelMapping(3, (v6,), 40))
    lde.receive(P1, LabelWithdraw(4, fecs))
    assert [(type(m), m.fec) for _, m in sent] == [(LabelRelease, fecs)]
    assert lde.finish().ftn_del == (N("10.255.0.2/32"),)
    lde.receive(P1, LabelRelease(5, (v6,), 40))
    assert N("10.255.0.2/32") not in lde.peers[P1].lib
