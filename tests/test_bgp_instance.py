"""One BGP speaker driven by hand: OPEN checks and hold time negotiation (§4.2, §6.2),
the FSM's NOTIFICATIONs, collision resolution (§6.8), and the decision process
(§9.1.2.2 a-g, RFC 4456 §9) step by step."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from bgp import events as ev
from bgp.attrs import AS_SEQUENCE, AsPath, PathAttrs
from bgp.config import BgpConfig, PeerConfig
from bgp.instance import BgpInstance
from bgp.messages import (
    KEEPALIVE_BYTES,
    FourOctetAs,
    Multiprotocol,
    Notification,
    Open,
    Update,
    decode_message,
    encode,
)
from bgp.nlri import IPV4_UNICAST, Nlri
from bgp.rib import Path, select

from .test_bgp_sim import TOPO, Simulation, load_topology

ME, PEER = IPv4Address("10.255.0.1"), IPv4Address("10.255.0.2")


def inst(hold: int = 90, peer_as: int = 65000) -> BgpInstance:
    return BgpInstance(BgpConfig(65000, ME, ME, (PeerConfig(PEER, peer_as),), hold_time=hold))


def accept(b: BgpInstance, conn: int = -1) -> list:
    b.handle(ev.Start(), 0)
    return b.handle(ev.TcpAccepted(conn, ME, PEER), 0)


def sent(actions: list) -> list:
    return [decode_message(a.data) for a in actions if isinstance(a, ev.TcpSend)]


def their_open(asn: int = 65000, hold: int = 90, bid: str = "10.255.0.2") -> bytes:
    return encode(Open(asn, hold, IPv4Address(bid), (Multiprotocol(1, 1), FourOctetAs(asn))))


def test_accepted_connection_sends_open_with_our_capabilities():
    b = inst()
    out = accept(b)
    [op] = sent(out)
    assert isinstance(op, Open) and op.asn == 65000 and op.hold_time == 90 and op.bgp_id == ME
    assert op.families() == {(1, 1), (1, 128)} and op.has(FourOctetAs)
    assert ev.StartTimer("hold:-1", 240.0) in out  # §8.2.2: 4 minutes until the OPEN
    assert b.state_of(PEER).value == "OpenSent"


def test_unknown_address_is_refused():
    b = inst()
    b.handle(ev.Start(), 0)
    assert b.handle(ev.TcpAccepted(-1, ME, IPv4Address("10.9.9.9")), 0) == [ev.TcpClose(-1)]


def test_hold_time_is_the_smaller_and_keepalive_a_third():
    b = inst(hold=90)
    accept(b)
    out = b.handle(ev.TcpData(-1, their_open(hold=30)), 1)
    assert ev.StartTimer("hold:-1", 30) in out and ev.StartTimer("keepalive:-1", 10.0) in out
    assert [type(m) for m in sent(out)] == [type(decode_message(KEEPALIVE_BYTES))]
    out = b.handle(ev.TcpData(-1, KEEPALIVE_BYTES), 2)
    assert b.state_of(PEER).value == "Established"
    # End-of-RIB for the one family both sides have (RFC 4760 §8, RFC 4724 §2)
    assert sent(out) == [Update()]


def test_hold_time_zero_means_no_timers():
    b = inst(hold=90)
    accept(b)
    out = b.handle(ev.TcpData(-1, their_open(hold=0)), 1)
    assert ev.CancelTimer("hold:-1") in out
    assert not [a for a in out if isinstance(a, ev.StartTimer) and a.timer.startswith("keepalive")]


def test_bad_peer_as_and_own_identifier():
    b = inst(peer_as=65001)
    accept(b)
    out = b.handle(ev.TcpData(-1, their_open(asn=65002)), 1)
    assert sent(out) == [Notification(2, 2)] and ev.TcpClose(-1) in out  # §6.2 Bad Peer AS
    assert -1 not in b.peers[PEER].conns  # (our own connect attempt is still under way)
    b = inst()
    accept(b)
    out = b.handle(ev.TcpData(-1, their_open(bid=str(ME))), 1)  # RFC 6286 §2.2
    assert sent(out) == [Notification(2, 3, ME.packed)]


def test_update_before_established_is_an_fsm_error():
    b = inst()
    accept(b)
    b.handle(ev.TcpData(-1, their_open()), 1)
    out = b.handle(ev.TcpData(-1, encode(Update())), 1)
    assert sent(out) == [Notification(5, 2)]  # RFC 6608: in OpenConfirm


def test_hold_timer_expiry_sends_its_notification():
    b = inst()
    accept(b)
    b.handle(ev.TcpData(-1, their_open()), 1)
    b.handle(ev.TcpData(-1, KEEPALIVE_BYTES), 1)
    out = b.handle(ev.TimerExpired("hold:-1"), 91)
    assert sent(out) == [Notification(4, 0)] and b.state_of(PEER).value == "Idle"
    assert ev.StartTimer(f"start:{PEER}", 1.0) in out  # restarts by itself (Event 3)


def test_collision_keeps_the_connection_of_the_higher_identifier():
    """§6.8: both connections of a pair reach OpenConfirm; the one initiated by the
    speaker with the higher BGP Identifier stays, the other gets Cease / Connection
    Collision Resolution (RFC 4486 §4, subcode 7). Both ways round."""
    for peer_id, keep_ours in (("10.255.0.2", False), ("10.255.0.0", True)):
        peer = IPv4Address(peer_id)
        b = BgpInstance(BgpConfig(65000, ME, ME, (PeerConfig(peer, 65000),), hold_time=90))
        (conn,) = [a.conn for a in b.handle(ev.Start(), 0) if isinstance(a, ev.TcpConnect)]
        b.handle(ev.TcpConnected(conn), 0)  # ours: OPEN sent
        b.handle(ev.TcpAccepted(-1, ME, peer), 0)  # theirs: OPEN sent
        b.handle(ev.TcpData(conn, their_open(bid=peer_id)), 1)  # ours -> OpenConfirm
        out = b.handle(ev.TcpData(-1, their_open(bid=peer_id)), 1)  # theirs: collision
        loser = -1 if keep_ours else conn
        assert Notification(6, 7) in sent(out), sent(out)
        assert ev.TcpClose(loser) in out
        assert list(b.peers[peer].conns) == [conn if keep_ours else -1]


def test_simultaneous_open_in_the_simulator_ends_with_one_connection():
    """The simulator opens both connections of each pair at the same time: one stays,
    the same at both ends (one's outgoing is the other's incoming), whichever §6.8 rule
    decided (OpenConfirm against OpenConfirm: the higher Identifier; one Established
    first: it stays, §6.8 last paragraph)."""
    s = Simulation(load_topology(TOPO))
    assert s.run(max_time=120).converged
    seen = 0
    for i in s.bgp.values():
        for p in i.peers.values():
            assert len(p.conns) == 1 and p.session is not None
            back = s.bgp[s.name_of(str(p.address))].peers[i.cfg.local_address]
            assert p.session.outgoing != back.session.outgoing
            seen += 1
    assert seen == 8


# ---------------------------------------------------------------- decision process

D = Nlri(IPv4Network("10.1.0.0/16"))
RID, CID = IPv4Address("10.255.0.99"), IPv4Address("10.255.0.99")


def path(peer: str, *, lp: int | None = 100, asp=(), origin=0, med=None, ebgp=False,
         nh="10.0.0.1", pid=None, originator=None, clusters=()) -> Path:
    a = PathAttrs(origin=origin, as_path=AsPath(((AS_SEQUENCE, tuple(asp)),) if asp else ()),
                  med=med, local_pref=lp,
                  originator_id=IPv4Address(originator) if originator else None,
                  cluster_list=tuple(IPv4Address(c) for c in clusters))
    return Path(IPV4_UNICAST, D, a, IPv4Address(nh), None, IPv4Address(peer),
                IPv4Address(pid or peer), 65000, ebgp)


def pick(*paths: Path, cost=None) -> Path | None:
    costs = cost or {}
    return select(paths, lambda p: costs.get(str(p.next_hop), 10), 65000, RID, CID)


def test_decision_steps_in_order():
    a, b = path("1.1.1.1"), path("2.2.2.2")
    assert pick(a, path("2.2.2.2", lp=200)).peer == IPv4Address("2.2.2.2")  # LOCAL_PREF
    assert pick(path("1.1.1.1", asp=(1, 2)), path("2.2.2.2", asp=(3,))) \
        .peer == IPv4Address("2.2.2.2")  # a) AS_PATH length
    assert pick(path("1.1.1.1", origin=2), b).peer == b.peer  # b) ORIGIN
    # c) MED only between routes from the same neighbouring AS
    assert pick(path("1.1.1.1", asp=(7,), med=5), path("2.2.2.2", asp=(7,), med=1)).peer == b.peer
    assert pick(path("1.1.1.1", asp=(7,), med=5), path("2.2.2.2", asp=(8,), med=1)).peer == a.peer
    assert pick(path("1.1.1.1", asp=(7,), med=None), path("2.2.2.2", asp=(7,), med=1)) \
        .peer == a.peer  # no MED = the lowest (0)
    # d) eBGP over iBGP
    assert pick(path("1.1.1.1", asp=(65001,)), path("2.2.2.2", ebgp=True, asp=(65001,))) \
        .peer == b.peer
    # e) IGP cost to the next hop
    assert pick(path("1.1.1.1", nh="10.0.0.1"), path("2.2.2.2", nh="10.0.0.2"),
                cost={"10.0.0.1": 30, "10.0.0.2": 20}).peer == b.peer
    # f) lowest BGP Identifier, the ORIGINATOR_ID standing for it (RFC 4456 §9)
    assert pick(path("1.1.1.1", pid="9.9.9.9"), path("2.2.2.2", pid="8.8.8.8")).peer == b.peer
    assert pick(path("1.1.1.1", originator="7.7.7.7", clusters=("5.5.5.5",)),
                path("2.2.2.2", pid="8.8.8.8")).peer == a.peer
    # then the shorter CLUSTER_LIST, then g) the lower peer address
    assert pick(path("1.1.1.1", originator="7.7.7.7", clusters=("5.5.5.5", "6.6.6.6")),
                path("2.2.2.2", originator="7.7.7.7", clusters=("5.5.5.5",))).peer == b.peer
    assert pick(path("2.2.2.2", pid="7.7.7.7"), path("1.1.1.1", pid="7.7.7.7")).peer == a.peer


def test_ineligible_paths():
    assert pick(path("1.1.1.1"), cost={"10.0.0.1": None}) is None  # unresolvable next hop
    assert pick(path("1.1.1.1", asp=(65000,))) is None  # AS loop
    assert pick(path("1.1.1.1", originator=str(RID))) is None  # RFC 4456 §8
    assert pick(path("1.1.1.1", originator="7.7.7.7", clusters=(str(CID),))) is None


def test_passive_peer_never_connects_and_keeps_listening():
    """PassiveTcpEstablishment (§8.1.1), read as FRR's `neighbor X passive` does: the
    ConnectRetryTimer expiring in Active (Event 9) restarts the timer but opens no
    connection, so the peer stays Active and an incoming connection still gets in."""
    b = BgpInstance(BgpConfig(65000, ME, ME, (PeerConfig(PEER, 65000, passive=True),)))
    out = b.handle(ev.Start(), 0)
    assert not [a for a in out if isinstance(a, ev.TcpConnect)]
    for t in (120.0, 240.0):
        out = b.handle(ev.TimerExpired(f"connect-retry:{PEER}"), t)
        assert not [a for a in out if isinstance(a, ev.TcpConnect)]
        assert ev.StartTimer(f"connect-retry:{PEER}", 120.0) in out
        assert b.state_of(PEER).value == "Active"
    out = b.handle(ev.TcpAccepted(-1, ME, PEER), 250.0)
    assert [type(m).__name__ for m in sent(out)] == ["Open"]
