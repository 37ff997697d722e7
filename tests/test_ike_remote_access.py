"""Remote access (RFC 7296 §3.15, §2.19) sans-I/O: our responder and roaming clients.

A gateway (`ike.remote_access.RemoteAccess`) and clients (`ike.tunnel.Tunnel` with
`request_vip`: our own IKE initiator asking for a virtual IP) exchange datagrams on
a virtual clock, with their SADs following the SAD operations as the lab's do.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from scapy.layers.inet import IP, UDP

from forwarding.ipsec.esp import Decapsulated, Encapsulated
from forwarding.ipsec.sad import Sad
from ike import IkeConfig, SendIke
from ike.codec import CfgAttr, CfgType, CpPayload, Notify, TrafficSelector, decode_payloads
from ike.pool import AddressPool
from ike.remote_access import HALF_OPEN, RemoteAccess, is_new_init
from ike.session import IkeSession
from ike.tunnel import (
    AddInbound,
    ClearOutbound,
    Lifetimes,
    Note,
    RemoveInbound,
    SetOutbound,
    Tunnel,
)

GW = IPv4Address("10.255.0.3")
SITE = TrafficSelector(IPv4Address("192.168.2.0"), IPv4Address("192.168.2.255"))
POOL = IPv4Network("10.99.0.0/29")  # 6 addresses
PSK = b"lsr-roam-test-psk"
IDS = tuple(f"rw{i}.roam.lsr.test".encode() for i in range(1, 9))


def gw_config(**kw: Any) -> IkeConfig:
    base: dict[str, Any] = dict(psk=PSK, local_id=b"pe2.roam.lsr.test", local_ts=(SITE,),
                                remote_ts=(TrafficSelector(POOL[0], POOL[-1]),), remote_ids=IDS,
                                nat_t=True)
    base.update(kw)
    return IkeConfig(**base)


def client_config(i: int, **kw: Any) -> IkeConfig:
    base: dict[str, Any] = dict(psk=PSK, local_id=IDS[i - 1], remote_id=b"pe2.roam.lsr.test",
                                local_ts=(), remote_ts=(SITE,), request_vip=True, nat_t=True)
    base.update(kw)
    return IkeConfig(**base)


class Roam:
    """One gateway, clients 1..n; a virtual clock and a wire with a little delay."""

    def __init__(self, n: int = 2, *, pool: AddressPool | None = None, seed: int = 1,
                 lifetimes: Lifetimes | None = None, drop: Callable[[bytes], bool] | None = None,
                 client_kw: dict[int, dict] | None = None, gw_kw: dict | None = None) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self._q: list = []
        self._seq = 0
        self.drop = drop
        self.pool = pool or AddressPool(POOL, dns=(IPv4Address("192.168.2.2"),))
        self.gw = RemoteAccess(gw_config(**(gw_kw or {})), name="roam", local=GW, pool=self.pool,
                               lifetimes=lifetimes, rng=random.Random(seed),
                               session_rng=random.Random(seed + 1).randbytes)
        self.gw_sad = Sad()
        self.gw_out: dict[str, Any] = {}
        self.notes: list[str] = []
        self.clients: dict[int, Tunnel] = {}
        self.sads: dict[int, Sad] = {}
        self.out: dict[int, Any] = {}
        self.addr: dict[int, IPv4Address] = {}
        self.gw_tick: float | None = None
        self.generation = 1  # a restarted client draws other SPIs and nonces
        for i in range(1, n + 1):
            self.add_client(i, **(client_kw or {}).get(i, {}))

    def add_client(self, i: int, **kw: Any) -> None:
        addr = IPv4Address(f"192.0.2.{i}")
        self.addr[i] = addr
        self.clients[i] = Tunnel(client_config(i, **kw), name=f"rw{i}", initiator=True, local=addr,
                                 remote=GW, lifetimes=Lifetimes.of(3600, 14400),
                                 rng=random.Random(i),
                                 session_rng=random.Random(100 * self.generation + i).randbytes)
        self.sads[i] = Sad()
        self.generation += 1

    def at(self, t: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._q, (t, self._seq, fn))

    def run(self, until: float) -> None:
        while self._q and self._q[0][0] <= until:
            t, _, fn = heapq.heappop(self._q)
            self.now = t
            fn()
        self.now = until

    def start(self, i: int) -> None:
        self.client_apply(i, self.clients[i].start(self.now))

    def client_apply(self, i: int, outs: list) -> None:
        for o in outs:
            if isinstance(o, SendIke):
                if self.drop is not None and self.drop(o.data):
                    continue
                self.at(self.now + 0.005, lambda d=o.data: self.gw_apply(
                    self.gw.receive(d, self.addr[i], 4500, self.now)))
            elif isinstance(o, AddInbound):
                self.sads[i].add_inbound(o.sa)
            elif isinstance(o, SetOutbound):
                self.out[i] = o.sa
            elif isinstance(o, ClearOutbound):
                self.out.pop(i, None)
            elif isinstance(o, RemoveInbound):
                self.sads[i].remove(o.sa)
        t = self.clients[i].next_deadline()
        if t is not None:
            self.at(max(t, self.now), lambda: self._client_tick(i, t))

    def _client_tick(self, i: int, t: float) -> None:
        if self.clients[i].next_deadline() == t:
            self.client_apply(i, self.clients[i].tick(self.now))

    def gw_apply(self, outs: list) -> None:
        for c, o in outs:
            if isinstance(o, SendIke):
                i = next(k for k, a in self.addr.items() if a == c.addr)
                self.at(self.now + 0.005, lambda d=o.data, i=i: self.client_apply(
                    i, self.clients[i].receive(d, self.now)))
            elif isinstance(o, AddInbound):
                self.gw_sad.add_inbound(o.sa)
            elif isinstance(o, SetOutbound):
                self.gw_out[o.sa.name] = o.sa
            elif isinstance(o, ClearOutbound):
                if self.gw_out.get(o.sa.name) is o.sa:
                    del self.gw_out[o.sa.name]
            elif isinstance(o, RemoveInbound):
                self.gw_sad.remove(o.sa)
            elif isinstance(o, Note):
                self.notes.append(o.text)
        t = self.gw.next_deadline()
        if t is not None and t != self.gw_tick:
            self.gw_tick = t
            self.at(max(t, self.now), lambda t=t: self._gw_fire(t))

    def _gw_fire(self, t: float) -> None:
        if self.gw_tick == t:
            self.gw_tick = None
        self.gw_apply(self.gw.tick(self.now))

    # ESP both ways between client i (its virtual IP) and a host behind the gateway
    def ping(self, i: int) -> bool:
        vip = self.clients[i].session.vip
        sa = self.out[i]
        pkt = bytes(IP(src=str(vip), dst="192.168.2.2") / UDP(dport=7) / b"hello")
        r = sa.encapsulate(pkt, self.now)
        assert isinstance(r, Encapsulated)
        got = self.gw_sad.decapsulate(r.packet, self.now)
        if not isinstance(got, Decapsulated) or got.inner != pkt:
            return False
        gw_sa = next(s for s in self.gw_out.values() if any(vip in sel.dst for sel in s.selectors))
        back = bytes(IP(src="192.168.2.2", dst=str(vip)) / UDP(sport=7) / b"olleh")
        r2 = gw_sa.encapsulate(back, self.now)
        got2 = self.sads[i].decapsulate(r2.packet, self.now)
        return isinstance(got2, Decapsulated) and got2.inner == back


def test_two_clients_each_get_their_own_address_and_carry_esp() -> None:
    net = Roam(2)
    net.start(1)
    net.start(2)
    net.run(1.0)
    vips = {i: net.clients[i].session.vip for i in (1, 2)}
    assert all(t.state == "established" for t in net.clients.values())
    assert vips == {1: IPv4Address("10.99.0.1"), 2: IPv4Address("10.99.0.2")}
    # each client's Child SA is narrowed to its own address (§2.9), the gateway's side intact
    for i in (1, 2):
        (ch,) = net.clients[i].session.children.values()
        assert ch.local_ts == (TrafficSelector(vips[i], vips[i]),) and ch.remote_ts == (SITE,)
        assert net.ping(i)
    st = net.gw.status(net.now)
    assert [(c["identity"], c["virtual_ip"], c["state"]) for c in st["clients"]] == [
        ("rw1.roam.lsr.test", "10.99.0.1", "established"), ("rw2.roam.lsr.test", "10.99.0.2", "established")]
    assert st["pool"]["in_use"] == 2 and st["pool"]["dns"] == ["192.168.2.2"]
    assert len(net.gw_out) == 2 and len(net.gw_sad.inbound) == 2


def test_disconnect_frees_the_address_and_a_reconnect_gets_one() -> None:
    net = Roam(2)
    net.start(1)
    net.start(2)
    net.run(1.0)
    net.client_apply(1, net.clients[1]._command(net.clients[1].session.close, net.now))
    net.run(2.0)
    assert net.pool.to_dict()["in_use"] == 1 and len(net.gw.clients) == 1
    assert any("virtual IP 10.99.0.1 released" in n for n in net.notes)
    assert not any(s.name.startswith("roam#1") for s in net.gw_sad.inbound.values())
    net.start(1)
    net.run(3.0)
    assert net.clients[1].state == "established" and net.clients[1].session.vip is not None
    assert net.pool.to_dict()["in_use"] == 2 and net.ping(1) and net.ping(2)


def test_a_client_that_restarts_replaces_its_old_ike_sa_and_gets_its_address_back() -> None:
    """§2.4: the restarted client (INITIAL_CONTACT is strongSwan's; ours reconnects likewise)
    authenticates on a new IKE SA; the old one is dropped and its address not leaked."""
    net = Roam(1)
    net.start(1)
    net.run(1.0)
    old = net.clients[1].session.vip
    net.add_client(1)  # a fresh process: no memory of the old IKE SA
    net.start(1)
    net.run(2.0)
    assert net.clients[1].state == "established"
    assert net.pool.to_dict()["in_use"] == 1 and len(net.gw.clients) == 1
    assert net.gw.counters["replaced"] == 1
    new = net.clients[1].session.vip
    assert new is not None and net.ping(1)
    assert {str(old), str(new)} >= {net.pool.to_dict()["leases"][0]["address"]}


def test_a_restarted_client_with_initial_contact_gets_its_own_address_again() -> None:
    net = Roam(2)
    net.start(1)
    net.start(2)
    net.run(1.0)
    assert net.clients[1].session.vip == IPv4Address("10.99.0.1")
    net.add_client(1, initial_contact=True)  # restarted: §2.4 says it holds no IKE SA with us
    net.start(1)
    net.run(2.0)
    assert net.clients[1].session.vip == IPv4Address("10.99.0.1") and net.pool.reclaimed == 1
    assert net.pool.to_dict()["in_use"] == 2 and len(net.gw.clients) == 2
    assert net.gw.counters["replaced"] == 1 and net.ping(1) and net.ping(2)
    assert not any(s.name.startswith("roam#1") for s in net.gw_sad.inbound.values())


def test_initial_contact_reuses_the_identitys_address() -> None:
    pool = AddressPool(POOL)
    a, b = object(), object()
    assert pool.assign(b"rw1", a) == IPv4Address("10.99.0.1")
    assert pool.assign(b"rw1", b) == IPv4Address("10.99.0.2")  # a second IKE SA, no INITIAL_CONTACT
    c = object()
    assert pool.assign(b"rw1", c, replace=True) == IPv4Address("10.99.0.2")  # its last one
    assert pool.release(a) is None and pool.release(b) is None and pool.reclaimed == 2
    assert pool.assign(b"rw2", object(), IPv4Address("10.99.0.5")) == IPv4Address("10.99.0.5")
    assert pool.assign(b"rw3", object(), IPv4Address("10.99.0.5")) == IPv4Address("10.99.0.1")
    assert pool.assign(b"rw4", object(), IPv4Address("10.98.0.1")) == IPv4Address("10.99.0.3")


def test_pool_exhausted_is_internal_address_failure_ike_sa_stays() -> None:
    net = Roam(3, pool=AddressPool(IPv4Network("10.99.0.0/30")))  # 2 addresses
    for i in (1, 2, 3):
        net.start(i)
        net.run(net.now + 1.0)
    assert [net.clients[i].session.vip for i in (1, 2)] == [IPv4Address("10.99.0.1"), IPv4Address("10.99.0.2")]
    third = net.clients[3]
    assert third.state == "established" and third.session.vip is None and not third.children
    assert third._create_error == "INTERNAL_ADDRESS_FAILURE"
    gw3 = next(c for c in net.gw.status(net.now)["clients"] if c["identity"] == "rw3.roam.lsr.test")
    assert gw3["virtual_ip"] is None and gw3["state"] == "error"  # no Child SA: an error


def test_no_cp_request_is_failed_cp_required() -> None:
    net = Roam(1, client_kw={1: {"request_vip": False, "local_ts": (TrafficSelector(
        IPv4Address("10.99.0.1"), IPv4Address("10.99.0.1")),)}})
    net.start(1)
    net.run(1.0)
    c = net.clients[1]
    assert c.state == "established" and not c.children and c._create_error == "FAILED_CP_REQUIRED"
    assert net.pool.to_dict()["in_use"] == 0


def test_wrong_psk_is_auth_failed_on_both_sides_and_nothing_is_leased() -> None:
    net = Roam(1, client_kw={1: {"psk": b"not-the-right-psk"}})
    net.start(1)
    net.run(1.0)
    assert net.clients[1].state == "failed" and "AUTH_FAILED" in net.clients[1].error
    st = net.gw.status(net.now)
    assert st["clients"] == [] and st["pool"]["in_use"] == 0
    (f,) = st["failures"]
    assert "AUTH_FAILED" in f["error"] and f["remote"] == "192.0.2.1"


def test_an_identity_not_in_the_list_is_refused() -> None:
    net = Roam(1, client_kw={1: {"local_id": b"stranger.lsr.test"}})
    net.start(1)
    net.run(1.0)
    assert net.clients[1].state == "failed" and net.gw.status(net.now)["failures"]


def test_rekeys_keep_the_address_and_the_narrowed_selectors() -> None:
    net = Roam(2, lifetimes=Lifetimes.of(5, 12))
    net.start(1)
    net.start(2)
    net.run(40.0)
    for i in (1, 2):
        assert net.clients[i].counters["child_rekeyed"] >= 3, net.clients[i].counters
        assert net.clients[i].counters["ike_rekeyed"] >= 1
        assert net.ping(i)
    assert net.pool.to_dict()["in_use"] == 2
    assert [c["virtual_ip"] for c in net.gw.status(net.now)["clients"]] == ["10.99.0.1", "10.99.0.2"]


def test_half_open_ike_sas_are_forgotten_and_their_number_bounded() -> None:
    net = Roam(1, drop=lambda d: d[18] == 35)  # every IKE_AUTH lost: half-open at the gateway
    net.gw.max_clients = 3
    for _ in range(5):
        net.client_apply(1, net.clients[1].start(net.now))
        net.run(net.now + 0.1)
    assert len(net.gw.clients) == 3 and net.gw.counters["refused_full"] == 2
    net.run(net.now + HALF_OPEN + 1)
    assert not net.gw.clients and net.gw.counters["half_open_dropped"] == 3


def test_junk_and_unknown_spis_change_nothing() -> None:
    net = Roam(1)
    net.start(1)
    net.run(1.0)
    rng = random.Random(5)
    for _ in range(300):
        data = rng.randbytes(rng.randint(0, 120))
        net.gw_apply(net.gw.receive(data, IPv4Address("203.0.113.9"), 4500, net.now))
    assert len(net.gw.clients) == 1 and net.ping(1)
    assert not is_new_init(b"\0" * 28)


def test_responder_reply_holds_the_cfg_reply() -> None:
    """The IKE_AUTH response itself: CFG_REPLY with the address and the pool's DNS (§3.15.1)."""
    pool = AddressPool(POOL, dns=(IPv4Address("192.168.2.2"),))
    gw = IkeSession(gw_config(), initiator=False, rng=random.Random(3).randbytes, pool=pool)
    cl = IkeSession(client_config(1), initiator=True, rng=random.Random(4).randbytes)
    (init,) = [a for a in cl.start() if isinstance(a, SendIke)]
    (resp,) = [a for a in gw.receive(init.data) if isinstance(a, SendIke)]
    (auth,) = [a for a in cl.receive(resp.data) if isinstance(a, SendIke)]
    (answer,) = [a for a in gw.receive(auth.data) if isinstance(a, SendIke)]
    from ike import crypto
    from ike.codec import decode

    m = decode(answer.data)
    sk = m.payloads[-1]
    plain = crypto.open_sk(answer.data, len(answer.data) - 4 - len(sk.data), cl.keys.sk_er)
    inner = decode_payloads(sk.first, plain)
    (cp,) = [p for p in inner if isinstance(p, CpPayload)]
    assert cp.cfg_type == CfgType.CFG_REPLY
    assert [a.address for a in cp.get(CfgAttr.INTERNAL_IP4_ADDRESS)] == [IPv4Address("10.99.0.1")]
    assert [a.address for a in cp.get(CfgAttr.INTERNAL_IP4_DNS)] == [IPv4Address("192.168.2.2")]
    acts = cl.receive(answer.data)
    assert cl.vip == IPv4Address("10.99.0.1") and gw.vip == cl.vip
    assert Notify.AUTH_FAILED not in {getattr(a, "notify", None) for a in acts}
