"""Ring-to-ring fast path: the common forwarding cases straight from an RX ring to a TX ring.

`FastPath(tables, tx)` works on `RingPort`s (TPACKET_V2 RX rings, one per
ingress interface and ethertype) and `TxRing`s (one per egress interface):

* `mpls(rx, my_mac, limit)`: frames of an MPLS (0x8847) ring. Single-next-hop
  swap of the top label and PHP pop of the bottom label to IPv4 are done in
  place: the frame is read from the RX slot and written into the egress TX
  slot (14-byte header, label word or patched TTL/checksum, payload: one
  memcpy each), without building a `bytes` object per frame.
* `ipv4(rx, my_mac, limit)`: frames of an IPv4 (0x0800) ring. Single-label
  push (FTN) and plain IP forwarding (RIB or connected route), one next hop.

Everything else -- reserved or unknown labels, TTL expiry, MTU/fragmentation,
ECMP, bad checksums, local or group destinations, martian addresses, RFC 8029
echo (IP to 127/8 or label TTL <= 1), ring or slot anomalies, every frame of an
MPLS ring on an interface without MPLS input -- is returned as `bytes` frames for
the caller's general path (`forwarding.plane.Dataplane.process` and the
router's hooks), so the behaviour is exactly that of `forwarding.plane`; the
counters (`RouterTables` per-label / per-prefix packets and bytes) are updated
the same way.

Each call handles at most `limit` frames (bounded work per wake-up: a flood
cannot starve the control plane sharing the event loop) and reads the ring
strictly in order, never skipping an unready slot (`RingPort.unstick`). TX rings are left with
`pending` frames; the caller flushes every TX ring once per wake-up.
"""

from __future__ import annotations

import struct
from typing import Any

from forwarding.afpacket import (
    ETH_HLEN,
    RX_IP1,
    RX_MAC,
    RX_NET,
    T2_LEN,
    T2_MAC,
    T2_SNAPLEN,
    T2_STATUS,
    TP_STATUS_KERNEL,
    TP_STATUS_SEND_REQUEST,
    TP_STATUS_USER,
    TX_BUSY,
    TX_DATA,
    TX_IP1,
    TX_NET,
    TX_VNET_HDRLEN,
    VNET_HDR,
    RingPort,
    TxRing,
    slot_struct,
)
from forwarding.plane import ttl_checksum_update
from forwarding.tables import (  # the fast path's tuple layouts live with the tables
    A_CONNECTED,
    A_NHLFE,
    FAST_SWAP,
    SOURCE_OK,
    RouterTables,
    martian_destination,
)

# Slot offsets: the diagram in forwarding.afpacket. The loops bind them to locals once a
# call: a local costs what a literal does, a module global a dict lookup per use.
_IP_TTL = 8  # the TTL's offset in an IPv4 header (RFC 791)

# RX slot: tp_status, tp_len, tp_snaplen, tp_mac, destination MAC, top label stack entry,
# all little-endian (the label entry is decoded from its LE value, see _le).
_RXM = slot_struct("<", (T2_STATUS, "I"), (T2_LEN, "I"), (T2_SNAPLEN, "I"), (T2_MAC, "H"),
                   (RX_MAC, "6s"), (RX_NET, "I")).unpack_from
# TX slot (forwarding.afpacket.TxRing: tpacket2_hdr, virtio_net_hdr, frame): tp_status,
# tp_len, tp_snaplen (frame + VNET_HDR), virtio hdr_len (frame), Ethernet header, label
# entry (LE value)
_TXM = slot_struct("<", (T2_STATUS, "I"), (T2_LEN, "I"), (T2_SNAPLEN, "I"), (TX_VNET_HDRLEN, "H"),
                   (TX_DATA, f"{ETH_HLEN}s"), (TX_NET, "I")).pack_into
# The same without a label entry
_TXE = slot_struct("<", (T2_STATUS, "I"), (T2_LEN, "I"), (T2_SNAPLEN, "I"), (TX_VNET_HDRLEN, "H"),
                   (TX_DATA, f"{ETH_HLEN}s")).pack_into
_HDR = slot_struct("=", (T2_STATUS, "I"), (T2_LEN, "I"), (T2_SNAPLEN, "I"),
                   (T2_MAC, "H")).unpack_from
# An IPv4 header (RFC 791): version/IHL, (ToS), total length, (id, frag), TTL, protocol,
# header checksum
_MIP = struct.Struct("!BxH4xBBH").unpack_from
# A frame from its start: destination MAC, (source, ethertype) | IPv4 version/IHL, ToS, total
# length, (id, frag), TTL, protocol, checksum, the source's first octet, destination
_IP = struct.Struct("!6s8xBBH4xBBHB3xI").unpack_from
_H10 = struct.Struct("!10H").unpack_from  # an IPv4 header as 16-bit words (checksum)
_TTLCK = struct.Struct("!BBH").pack_into  # IPv4 TTL, protocol (unchanged), header checksum
_KERNEL = TP_STATUS_KERNEL.to_bytes(4, "little")  # an RX slot back to the kernel
_STATUS = slice(T2_STATUS, T2_STATUS + 4)  # a slot's tp_status
_MISS = object()


def _le(word: int) -> int:
    """The value a big-endian 32-bit word has when read little-endian."""
    return int.from_bytes(word.to_bytes(4, "big"), "little")


def _tx_leave(tx: TxRing | None, ti: int, pend: int) -> None:
    """Give a TX ring back its cursor: the next free slot and the frames queued in it."""
    if tx is not None:
        tx.index = ti
        tx.pending += pend


class VersionedDict(dict):
    """A dict that counts its changes (RouterTables.fast_ilm, so derived tables know when
    to rebuild). Reads are plain dict reads."""

    version = 0

    def __setitem__(self, k: Any, v: Any) -> None:
        self.version += 1
        super().__setitem__(k, v)

    def __delitem__(self, k: Any) -> None:
        self.version += 1
        super().__delitem__(k)

    def pop(self, *a: Any) -> Any:
        self.version += 1
        return super().pop(*a)

    def popitem(self) -> Any:
        self.version += 1
        return super().popitem()

    def clear(self) -> None:
        self.version += 1
        super().clear()

    def update(self, *a: Any, **kw: Any) -> None:
        self.version += 1
        super().update(*a, **kw)

    def setdefault(self, k: Any, v: Any = None) -> Any:
        self.version += 1
        return super().setdefault(k, v)


class FastPath:
    """Fast forwarding between the rings of one router (see module docstring)."""

    def __init__(self, tables: RouterTables, tx: dict[str, Any], vector: bool = True,
                 vector_min: int = 0) -> None:
        self.tables = tables
        self.tx = tx  # out_if -> TxRing (anything else: general path)
        if type(tables.fast_ilm) is not VersionedDict:
            tables.fast_ilm = VersionedDict(tables.fast_ilm)
        self._le: dict[int, tuple] = {}
        self._le_version = -1
        self._ip: dict[int, tuple | None] = {}  # destination -> ip_entry (or None)
        self._ip_lpm: Any = None  # the tables' lpm_cache object _ip was filled under
        self.vector: Any = None  # forwarding.vector.VectorPath: long runs of waiting frames
        self.vector_min = 0
        if vector:
            try:
                from forwarding.vector import VECTOR_MIN, VectorPath
            except ImportError:  # numpy missing: the scalar loop does everything
                pass
            else:
                self.vector, self.vector_min = VectorPath(self), vector_min or VECTOR_MIN

    def long_run(self, rx: RingPort, limit: int) -> bool:
        """At least vector_min frames wait in a row (slot i and slot i + vector_min - 1
        ready; the kernel fills slots in order), without wrapping the ring."""
        i, m = rx.index, self.vector_min
        if limit < m or i + m > rx.nframes:
            return False
        s = rx.slot_views()
        return bool(s[i][T2_STATUS] & s[i + m - 1][T2_STATUS] & TP_STATUS_USER)

    # ------------------------------------------------------------ tables

    def label_entry_table(self) -> dict[int, tuple]:
        """fast_ilm re-keyed for little-endian reads of the label stack entry: the LE value
        of (label << 12) -> (LE_KIND, .., LE_COUNTER), labels with one next hop only (ECMP:
        the general path hashes). Rebuilt when fast_ilm changed; the same object otherwise."""
        fast = self.tables.fast_ilm
        if self._le_version == fast.version:
            return self._le
        le: dict[int, tuple] = {}
        for label, (kind, ch, ctr) in list(fast.items()):
            if len(ch) != 1:
                continue  # ECMP: the general path hashes
            out_if, hdr, lbits, mtu = ch[0]
            le[_le(label << 12)] = (kind, out_if, hdr, _le(lbits), mtu, ctr)
        self._le, self._le_version = le, fast.version
        return le

    def ip_entries(self) -> dict[int, tuple | None]:
        """The per-destination cache of `ip_entry` results, emptied whenever the tables' LPM
        changed (RouterTables.lpm_cache is then a new object). Read it with .get(dst, miss);
        fill it with `cache_ip_entry`."""
        t = self.tables
        if self._ip_lpm is not t.lpm_cache:
            self._ip.clear()
            self._ip_lpm = t.lpm_cache
        return self._ip

    def forget_ip_entries(self) -> None:
        """Empty the per-destination cache: an egress changed type (an impaired link's port is
        no TxRing, so its destinations go the general way; lsr.lab.node_impair)."""
        self._ip.clear()

    def cache_ip_entry(self, dst: int) -> tuple | None:
        """ip_entry(dst), remembered in ip_entries() (which stays bounded)."""
        cache = self._ip
        e = cache[dst] = self.ip_entry(dst)
        if len(cache) > 4096:
            cache.clear()
        return e

    def ip_entry(self, dst: int) -> tuple | None:
        """(IP_PUSH, .., IP_COUNTER) for a destination the fast path forwards itself (one next
        hop, resolved, a TxRing, at most one label to push), else None."""
        t = self.tables
        if dst in t.own or dst in t.local_bcast or dst >> 28 == 0xE or martian_destination(dst):
            return None
        a = t.lookup(dst)
        if a is None:
            return None
        if a.kind == A_CONNECTED:
            nh = t.connected_nhlfe(a.out_if, dst)
        elif a.kind == A_NHLFE and len(a.nhs) == 1:
            nh = a.nhs[0]
        else:
            return None
        if not nh.resolved or type(self.tx.get(nh.out_if)) is not TxRing:
            return None
        if a.kind == A_NHLFE and nh.out_labels:
            if len(nh.out_labels) != 1:
                return None
            return (True, nh.out_if, nh.hdr_mpls, _le((nh.out_labels[0] << 12) | 0x100), nh.mtu - 4,
                    a.counter)
        return (False, nh.out_if, nh.hdr_ip, 0, nh.mtu, a.counter)

    # ------------------------------------------------------------ MPLS

    def mpls(self, rx: RingPort, my_mac: bytes, limit: int) -> tuple[int, int, list[bytes]]:
        """(frames received, frames forwarded here, frames for the general path). On an
        interface without MPLS input (`my_mac` is not one of tables.mpls_mac: a customer
        port) every frame goes to the general path, which drops it."""
        if my_mac not in self.tables.mpls_mac.values():
            slow = rx.recv_batch(limit)
            return len(slow), 0, slow
        if self.vector is not None and self.long_run(rx, limit):
            return self.vector.mpls(rx, my_mac, limit)
        slots, nfr = rx.slot_views(), rx.nframes
        i = rx.index
        led = self.label_entry_table()
        uniform = self.tables.uniform
        txs = self.tx
        rx_eth, rx_ip1, tx_eth, tx_net, tx_ip1 = RX_MAC, RX_IP1, TX_DATA, TX_NET, TX_IP1
        tx_ttl, vnet, ready, send, busy, swap = TX_NET + _IP_TTL, VNET_HDR, TP_STATUS_USER, \
            TP_STATUS_SEND_REQUEST, TX_BUSY, FAST_SWAP
        slow: list[bytes] = []
        got = 0
        cur_if = None
        cur: Any = None
        tslots: Any = None
        ti = tn = pend = 0
        while got < limit:
            sv = slots[i]
            # status, tp_len, tp_snaplen, tp_mac, destination MAC, label stack entry (LE)
            st, ln, snap, mac, dmac, w = _RXM(sv)
            if not st & ready:
                break  # strictly in order (RingPort.unstick)
            got += 1
            e = led.get(w & 0x00F0FFFF)  # the 20 label bits, read little-endian
            if e is not None and mac == rx_eth and dmac == my_mac and w >> 24 > 1 and ln == snap \
                    and ln >= 34:
                kind, out_if, hdr, base, mtu, ctr = e
                if cur_if != out_if:  # another egress
                    # Written out here and in ipv4(): as a function call per egress change it
                    # cost 4-7% a frame when frames alternate egresses (bench_dataplane --only
                    # inproc, "scalar swap+php, 2 egress": 1,590 -> 1,665-1,700 ns). The rare
                    # paths (TX slot busy, end of the call) share _tx_leave.
                    if cur is not None:  # leave the TX ring in use: its next slot, frames queued
                        cur.index = ti
                        cur.pending += pend
                    cur_if, cur, pend = out_if, txs.get(out_if), 0
                    if type(cur) is not TxRing:
                        cur = None  # no TX ring there: the general path sends
                    else:
                        tslots, ti, tn = cur.slot_views(), cur.index, cur.nframes
                if cur is not None:
                    tv = tslots[ti]
                    if tv[0] & busy:  # tp_status: slot still the kernel's: flush, look again
                        _tx_leave(cur, ti, pend)
                        pend = 0
                        cur.flush()
                        if tv[0] & busy:
                            cur = cur_if = None
                    if cur is not None:
                        if kind == swap:  # TC, S kept; TTL - 1 (> 1: no borrow)
                            if ln - 14 <= mtu:
                                _TXM(tv, 0, send, ln + vnet, ln + vnet, ln, hdr,
                                     base | ((w & 0xFF0F0000) - 0x1000000))
                                tv[tx_ip1:tx_eth + ln] = sv[rx_ip1:rx_eth + ln]
                                ti = ti + 1 if ti + 1 < tn else 0
                                pend += 1
                                ctr[0] += 1
                                ctr[1] += ln
                                sv[_STATUS] = _KERNEL
                                i = i + 1 if i + 1 < nfr else 0
                                continue
                        elif w & 0x10000 and ln >= 38:  # PHP pop of the bottom label: IPv4 out
                            vihl, total, ttl, proto, ck = _MIP(sv, rx_ip1)
                            if vihl == 0x45 and 20 <= total <= mtu and 18 + total <= ln:
                                s_ = sum(_H10(sv, rx_ip1))
                                s_ = (s_ & 0xFFFF) + (s_ >> 16)
                                if (s_ & 0xFFFF) + (s_ >> 16) == 0xFFFF:  # header checksum OK
                                    tv[tx_net:tx_net + total] = sv[rx_ip1:rx_ip1 + total]
                                    out_ttl = (w >> 24) - 1
                                    if uniform and ttl > out_ttl:  # RFC 3443: never increase
                                        _TTLCK(tv, tx_ttl, out_ttl, proto,
                                               ttl_checksum_update(ck, ttl, out_ttl, proto))
                                    n = 14 + total
                                    _TXE(tv, 0, send, n + vnet, n + vnet, n, hdr)
                                    ti = ti + 1 if ti + 1 < tn else 0
                                    pend += 1
                                    ctr[0] += 1
                                    ctr[1] += n
                                    sv[_STATUS] = _KERNEL
                                    i = i + 1 if i + 1 < nfr else 0
                                    continue
            slow.append(bytes(sv[mac:mac + snap]))
            sv[_STATUS] = _KERNEL
            i = i + 1 if i + 1 < nfr else 0
        _tx_leave(cur, ti, pend)
        rx.index = i
        return got, got - len(slow), slow

    # ------------------------------------------------------------ IPv4

    def ipv4(self, rx: RingPort, my_mac: bytes, limit: int) -> tuple[int, int, list[bytes]]:
        """(frames received, frames forwarded here, frames for the general path)."""
        if self.vector is not None and self.long_run(rx, limit):
            return self.vector.ipv4(rx, my_mac, limit)
        t = self.tables
        cache = self.ip_entries()
        slots, nfr = rx.slot_views(), rx.nframes
        i = rx.index
        uniform = t.uniform
        txs = self.tx
        rx_eth, rx_net, tx_net, tx_ip1 = RX_MAC, RX_NET, TX_NET, TX_IP1
        tx_ttl, tx_ttl1, vnet, ready, send, busy = TX_NET + _IP_TTL, TX_IP1 + _IP_TTL, \
            VNET_HDR, TP_STATUS_USER, TP_STATUS_SEND_REQUEST, TX_BUSY
        src_ok = SOURCE_OK
        slow: list[bytes] = []
        got = 0
        cur_if = None
        cur: Any = None
        tslots: Any = None
        ti = tn = pend = 0
        while got < limit:
            sv = slots[i]
            st, ln, snap, mac = _HDR(sv)
            if not st & ready:
                break
            got += 1
            if ln == snap and ln >= 34 and mac == rx_eth:
                dmac, vihl, tos, total, ttl, proto, ck, src1, dst = _IP(sv, rx_eth)
                # (a martian source, RFC 1812 §5.3.7: the general path drops it)
                if dmac == my_mac and vihl == 0x45 and ttl > 1 and 20 <= total <= ln - 14 \
                        and src_ok[src1]:
                    e = cache.get(dst, _MISS)
                    if e is _MISS:
                        e = self.cache_ip_entry(dst)
                    if e is not None:
                        push, out_if, hdr, lw, mtu, ctr = e
                        s_ = sum(_H10(sv, rx_net))  # IPv4 header checksum must verify
                        s_ = (s_ & 0xFFFF) + (s_ >> 16)
                        if total <= mtu and (s_ & 0xFFFF) + (s_ >> 16) == 0xFFFF:
                            if cur_if != out_if:  # another egress
                                # (as in mpls(): written out, a call here costs 4-7% a frame)
                                if cur is not None:  # leave the TX ring in use
                                    cur.index = ti
                                    cur.pending += pend
                                cur_if, cur, pend = out_if, txs.get(out_if), 0
                                if type(cur) is not TxRing:
                                    cur = None  # no TX ring there: the general path sends
                                else:
                                    tslots, ti, tn = cur.slot_views(), cur.index, cur.nframes
                            if cur is not None:
                                tv = tslots[ti]
                                if tv[0] & busy:  # tp_status: still the kernel's: flush, look again
                                    _tx_leave(cur, ti, pend)
                                    pend = 0
                                    cur.flush()
                                    if tv[0] & busy:
                                        cur = cur_if = None
                            if cur is not None:
                                ttl -= 1
                                # RFC 1624 for TTL - 1: ~m + m' is the constant 0xFEFF
                                x = (~ck & 0xFFFF) + 0xFEFF
                                ck = ~((x & 0xFFFF) + (x >> 16)) & 0xFFFF
                                if push:  # FTN: one label, TC from IP precedence (RFC 3443 TTL)
                                    n = 18 + total  # lw: the label entry's LE value, TC 0 TTL 0
                                    _TXM(tv, 0, send, n + vnet, n + vnet, n, hdr, lw
                                         | ((tos >> 5) << 17) | ((ttl if uniform else 255) << 24))
                                    tv[tx_ip1:tx_ip1 + total] = sv[rx_net:rx_net + total]
                                    _TTLCK(tv, tx_ttl1, ttl, proto, ck)
                                else:
                                    n = 14 + total
                                    tv[tx_net:tx_net + total] = sv[rx_net:rx_net + total]
                                    _TTLCK(tv, tx_ttl, ttl, proto, ck)
                                    _TXE(tv, 0, send, n + vnet, n + vnet, n, hdr)
                                ti = ti + 1 if ti + 1 < tn else 0
                                pend += 1
                                ctr[0] += 1
                                ctr[1] += n
                                sv[_STATUS] = _KERNEL
                                i = i + 1 if i + 1 < nfr else 0
                                continue
            slow.append(bytes(sv[mac:mac + snap]))
            sv[_STATUS] = _KERNEL
            i = i + 1 if i + 1 < nfr else 0
        _tx_leave(cur, ti, pend)
        rx.index = i
        return got, got - len(slow), slow
