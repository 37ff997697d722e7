"""Vector forwarding: a whole run of waiting frames per step, with numpy (VPP-style).

`forwarding.ioloop.FastPath` handles one frame per Python loop turn: about
1.3-2.6 us of interpreter time per frame. When a ring holds many frames (a busy
link), `VectorPath` handles the run of ready RX slots as arrays instead: the
header fields of every slot are read as columns, the label (or destination)
lookups, the checks, the new label stack entries, TTLs and checksums are
computed column-wise, and frames are copied RX slot -> TX slot with one fancy
index assignment per egress interface. The fixed cost is ~50 us per call and
the cost per frame ~0.1-0.2 us, so FastPath only hands over runs of at least
`VECTOR_MIN` frames; short runs (low rates, latency) stay scalar.

The same cases as the scalar fast path, with the same results and counters
(tests/test_ioloop.py checks both against `forwarding.plane`):

* MPLS ring: swap of the top label (one next hop) and PHP pop of the bottom label
  to IPv4 (RFC 3032 TTL: label TTL - 1; RFC 3443 uniform model: the IP TTL is
  lowered to it, never raised, checksum updated per RFC 1624).
* IPv4 ring: single-label push (FTN; TC from IP precedence) and plain IP
  forwarding (one next hop), IPv4 header checksum verified (RFC 1812 §5.2.2)
  and TTL - 1 with an incremental checksum update.

Anything else in the run (other labels, TTL expiry, MTU, options, ECMP, frames
not for our MAC, martian sources, ...) is returned as `bytes` for the general path, as in
FastPath. TX slots are written completely before their status word is set;
the kernel reads a TX ring only inside our `send()` (TxRing.flush).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from forwarding.afpacket import (
    ETH_HLEN,
    RX_IP1,
    RX_MAC,
    RX_NET,
    T2_LEN,
    T2_MAC,
    T2_SNAPLEN,
    T2_STATUS,
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
)
from forwarding.tables import (
    FAST_PHP,
    FAST_SWAP,
    LE_COUNTER,
    LE_HDR,
    LE_KIND,
    LE_LABEL,
    LE_MTU,
    LE_OUT_IF,
    SOURCE_OK,
)

VECTOR_MIN = 48  # fewer waiting frames than this: the scalar loop is cheaper

_U8, _U16, _U32, _I64 = np.uint8, np.uint16, np.uint32, np.int64

# A ring as arrays has one row per slot, in bytes (b), 16-bit (h) and 32-bit words (w), host
# order; the slot offsets (forwarding.afpacket's diagram) as column indices:
_W_STATUS, _W_LEN, _W_SNAP = T2_STATUS // 4, T2_LEN // 4, T2_SNAPLEN // 4  # tpacket2_hdr
_W_MAC = T2_MAC // 4  # tp_mac in the low 16 bits (tp_net above)
_W_L1 = RX_NET // 4  # RX: the top label stack entry, read little-endian
_W_HDR = _W_L1 + 1  # RX: words 0.._W_L1 (tpacket2_hdr .. the label entry)
_H_DMAC = slice(RX_MAC // 2, RX_MAC // 2 + 3)  # RX: the destination MAC
_H_IP = slice(RX_NET // 2, RX_NET // 2 + 10)  # RX: an IPv4 header (no options) on its own
_H_IP1 = slice(RX_IP1 // 2, RX_IP1 // 2 + 10)  # RX: the same under one label
_W_IPDST = (RX_NET + 16) // 4  # RX: the IPv4 destination of an unlabelled packet
_Q_DMAC = RX_MAC // 8  # RX: the 64-bit word holding the destination MAC in its top 6 bytes
_MAC48 = np.uint64(0xFFFF_FFFF_FFFF_0000)  # those 6 bytes
assert RX_MAC % 8 == 2 and RX_MAC % 2 == 0 and RX_NET % 4 == 0 and RX_IP1 % 4 == 0
_TW_L1 = TX_NET // 4  # TX: the label stack entry after the Ethernet header
_TH_VNET_LEN = TX_VNET_HDRLEN // 2  # TX: virtio_net_hdr.hdr_len
_T_ETH = slice(TX_DATA, TX_DATA + ETH_HLEN)  # TX: the Ethernet header
assert TX_NET % 4 == 0 and TX_VNET_HDRLEN % 2 == 0
_IP_TTL, _IP_CK = 8, 10  # IPv4 header (RFC 791): the TTL, the header checksum
_IP_SRC1 = 12  # IPv4 header: the source's first octet
# RFC 1812 §5.3.7, by first octet. (Index it with int64 columns: uint8 indices take numpy's
# slow path, ~4 us for a 256-frame run against ~1.)
_SRC_OK = np.frombuffer(SOURCE_OK, dtype=_U8).astype(bool)


def _arrays(port: Any) -> tuple[Any, Any, Any]:
    """(bytes, 16-bit words, 32-bit words) views of a ring, one row per slot (cached on
    the port; RingPort/TxRing.close drop them before unmapping)."""
    a = getattr(port, "np_views", None)
    if a is None:
        b = np.frombuffer(port.ring, dtype=_U8).reshape(port.nframes, port.frame_size)
        a = port.np_views = (b, b.view(_U16), b.view(_U32))
    return a


def _fold(s: Any) -> Any:
    """One's complement fold of 32-bit sums to 16 bits (RFC 1071)."""
    s = (s & 0xFFFF) + (s >> 16)
    return (s & 0xFFFF) + (s >> 16)


def _ready_run(r32: Any, i: int, limit: int) -> int:
    """How many slots from i on (not past the ring's end) are ready, up to limit."""
    st = r32[i:min(i + limit, r32.shape[0]), _W_STATUS] & TP_STATUS_USER
    return int(st.size if st.all() else st.argmin())


class IlmColumns(NamedTuple):
    """FastPath.label_entry_table() as sorted columns (one row per label, one next hop)."""

    keys: Any  # the LE value of (label << 12), sorted: what a slot's label word is matched on
    kind: Any  # FAST_SWAP / FAST_PHP
    oif: Any  # the egress as an index into oifs
    hdrs: Any  # the 14-byte Ethernet headers, one row each
    base: Any  # the out label's bits, LE (swap)
    mtu: Any
    ctrs: list  # the ILM counters
    oifs: list  # egress interface names, sorted


class VectorPath:
    """The vector cases of one router's FastPath (same tables, same TX rings)."""

    def __init__(self, fast: Any) -> None:
        self.fast = fast
        self._ver = -1
        self._le: Any = None
        self.ar = np.arange(1 << 13, dtype=_I64)

    # ------------------------------------------------------------ tables

    def _ilm(self) -> IlmColumns:
        """fast_ilm (one next hop) as sorted columns, keyed like FastPath's LE table."""
        led = self.fast.label_entry_table()
        if self._le is led:
            return self._cols
        keys = sorted(led)
        ents = [led[k] for k in keys]
        oifs = sorted({e[LE_OUT_IF] for e in ents})
        self._cols = IlmColumns(
            np.array(keys, dtype=_U32),
            np.array([e[LE_KIND] for e in ents], dtype=_U8),
            np.array([oifs.index(e[LE_OUT_IF]) for e in ents], dtype=_I64),
            np.frombuffer(b"".join(e[LE_HDR] for e in ents), dtype=_U8).reshape(-1, ETH_HLEN)
            if ents else np.zeros((0, ETH_HLEN), _U8),
            np.array([e[LE_LABEL] for e in ents], dtype=_U32),
            np.array([e[LE_MTU] for e in ents], dtype=_I64),
            [e[LE_COUNTER] for e in ents],
            oifs,
        )
        self._le = led
        return self._cols

    # ------------------------------------------------------------ helpers

    def _slow(self, rx: RingPort, i: int, bad: Any) -> list[bytes]:
        """The frames of rows `bad` (relative to i), in order, copied for the general path."""
        out: list[bytes] = []
        slots = rx.slot_views()
        for j in np.flatnonzero(bad).tolist():
            sv = slots[i + j]
            mac = sv[T2_MAC] | sv[T2_MAC + 1] << 8
            snap = int.from_bytes(sv[T2_SNAPLEN:T2_SNAPLEN + 4], "little")
            out.append(bytes(sv[mac:mac + snap]))
        return out

    def _tx_rows(self, tx: TxRing, c: int) -> Any:
        """Rows of the next c TX slots, or None if they are not all free even after a flush."""
        _tb, _t16, t32 = _arrays(tx)
        ti, tn = tx.index, tx.nframes
        rows = slice(ti, ti + c) if ti + c <= tn else (ti + self.ar[:c]) % tn
        if (t32[rows, _W_STATUS] & TX_BUSY).any():
            tx.flush()
            if (t32[rows, _W_STATUS] & TX_BUSY).any():
                return None
        return rows

    @staticmethod
    def _count(ctrs: list, pos: Any, nbytes: Any, n: int) -> None:
        pk = np.bincount(pos, minlength=n)
        by = np.bincount(pos, weights=nbytes, minlength=n)
        for k in np.flatnonzero(pk).tolist():
            c = ctrs[k]
            c[0] += int(pk[k])
            c[1] += int(by[k])

    # ------------------------------------------------------------ MPLS

    def mpls(self, rx: RingPort, my_mac: bytes, limit: int) -> tuple[int, int, list[bytes]]:
        """(frames received, frames forwarded here, frames for the general path)."""
        rb, r16, r32 = _arrays(rx)
        i = rx.index
        k = _ready_run(r32, i, limit)
        done = (0, 0, []) if k == 0 else self._mpls_uniform(rx, rb, r16, r32, i, k, my_mac)
        if done is not None:
            return done
        keys, kind, oif, hdrs, base, mtu, ctrs, oifs = self._ilm()
        if not keys.size:  # nothing to switch here: all of it the general way
            slow = self._slow(rx, i, np.ones(k, bool))
            r32[i:i + k, _W_STATUS] = 0
            rx.index = (i + k) % rx.nframes
            return k, 0, slow
        rows = slice(i, i + k)
        h = r32[rows, :_W_HDR].astype(_I64)  # status, len, snaplen, mac | net<<16, .., label word
        ln, w = h[:, _W_LEN], h[:, _W_L1]
        dm = (r16[rows, _H_DMAC] == np.frombuffer(my_mac, dtype=_U16)).all(axis=1)
        ok = (h[:, _W_MAC] & 0xFFFF == RX_MAC) & dm & (w >> 24 > 1) & (ln == h[:, _W_SNAP]) \
            & (ln >= 34)
        key = w & 0x00F0FFFF
        pos = np.minimum(np.searchsorted(keys, key), keys.size - 1)
        ok &= keys[pos] == key
        kd = kind[pos]
        swap = ok & (kd == FAST_SWAP) & (ln - 14 <= mtu[pos])
        php = ok & (kd == FAST_PHP) & (w & 0x10000 != 0) & (ln >= 38)
        total = ttl = None
        if php.any():  # the IPv4 header under the bottom label
            ip = rb[rows, RX_IP1:RX_IP1 + 12].astype(_I64)
            total, ttl = ip[:, 2] << 8 | ip[:, 3], ip[:, _IP_TTL]
            ck_ok = _fold(r16[rows, _H_IP1].sum(axis=1, dtype=_I64)) == 0xFFFF  # byte-order free
            php &= (ip[:, 0] == 0x45) & (total >= 20) & (total <= mtu[pos]) & (18 + total <= ln)
            php &= ck_ok & (rb[rows, RX_IP1 + 16] != 127)  # 127/8: RFC 8029, general path
        good = swap | php
        oif_k = oif[pos]
        fwd = 0
        txs = self.fast.tx
        for g, name in enumerate(oifs):
            m = good & (oif_k == g)
            c = int(m.sum())
            if not c:
                continue
            tx = txs.get(name)
            trows = self._tx_rows(tx, c) if type(tx) is TxRing else None
            if trows is None:  # no TX ring, or it is full: the general path decides
                good &= ~m
                continue
            tb, t16, t32 = _arrays(tx)
            sel = np.flatnonzero(m)
            sw, pp = swap[sel], php[sel]
            if sw.all():
                self._swap_rows(rb, tb, t16, t32, i + sel, trows, ln[sel], w[sel], hdrs[pos[sel]],
                                base[pos[sel]])
            elif pp.all():
                self._php_rows(rb, tb, t16, t32, i + sel, trows, w[sel], total[sel], ttl[sel],
                               hdrs[pos[sel]])
            else:
                tr = trows if not isinstance(trows, slice) else np.arange(trows.start, trows.stop)
                a, b = np.flatnonzero(sw), np.flatnonzero(pp)
                sa, sb = sel[a], sel[b]
                self._swap_rows(rb, tb, t16, t32, i + sa, tr[a], ln[sa], w[sa], hdrs[pos[sa]],
                                base[pos[sa]])
                self._php_rows(rb, tb, t16, t32, i + sb, tr[b], w[sb], total[sb], ttl[sb],
                               hdrs[pos[sb]])
            t32[trows, _W_STATUS] = TP_STATUS_SEND_REQUEST  # after the slot is complete
            tx.index = (tx.index + c) % tx.nframes
            tx.pending += c
            fwd += c
        if fwd:
            nb = np.where(swap, ln, (total + 14) if total is not None else 0)[good]
            self._count(ctrs, pos[good], nb, len(ctrs))
        slow = self._slow(rx, i, ~good) if fwd < k else []
        r32[rows, _W_STATUS] = 0  # slots back to the kernel (TP_STATUS_KERNEL)
        rx.index = (i + k) % rx.nframes
        return k, fwd, slow

    def _mpls_uniform(self, rx: RingPort, rb: Any, r16: Any, r32: Any, i: int, k: int,
                      my_mac: bytes) -> tuple[int, int, list[bytes]] | None:
        """The common busy-link case in few array operations: every frame of the run has the
        same label, is for us and takes the fast path (None: not so, use the general way)."""
        rows = slice(i, i + k)
        h = r32[rows, :_W_HDR]
        w = h[:, _W_L1]
        key = w & 0x00F0FFFF
        k0 = int(key[0])
        if int(key.max()) != k0 or int(key.min()) != k0:
            return None
        e = self.fast.label_entry_table().get(k0)
        if e is None:
            return None
        kind, out_if, hdr, base, mtu, ctr = e
        tx = self.fast.tx.get(out_if)
        if type(tx) is not TxRing:
            return None
        ln = h[:, _W_LEN]
        lo, hi = int(ln.min()), int(ln.max())
        mine = np.uint64(int.from_bytes(my_mac, "little") << 16)  # the MAC's bytes, LE, in _MAC48
        r64 = rb.view(np.uint64)
        if not ((r64[rows, _Q_DMAC] & _MAC48) == mine).all() or int((w >> 24).min()) <= 1 \
                or lo < 34 or not ((h[:, _W_MAC] & 0xFFFF) == RX_MAC).all() \
                or not (h[:, _W_SNAP] == ln).all():
            return None
        if kind == FAST_SWAP:
            if hi - 14 > mtu:
                return None
        else:  # PHP: bottom of stack, a plain IPv4 header with a good checksum, fits
            if lo < 38 or not (w & 0x10000).all():
                return None
            ip = rb[rows, RX_IP1:RX_IP1 + 12]
            if not (ip[:, 0] == 0x45).all() or (rb[rows, RX_IP1 + 16] == 127).any():
                return None
            total = (ip[:, 2].astype(np.int64) << 8) | ip[:, 3]
            tlo, thi = int(total.min()), int(total.max())
            if tlo < 20 or thi > mtu or not (18 + total <= ln).all() \
                    or not (_fold(r16[rows, _H_IP1].sum(axis=1, dtype=_I64)) == 0xFFFF).all():
                return None
        trows = self._tx_rows(tx, k)
        if trows is None:
            return None
        tb, t16, t32 = _arrays(tx)
        h14 = np.frombuffer(hdr, dtype=_U8)
        if kind == FAST_SWAP:
            self._swap_rows(rb, tb, t16, t32, rows, trows, ln, w, h14, base)
            nbytes = int(ln.sum())
        else:
            self._php_rows(rb, tb, t16, t32, rows, trows, w, total, ip[:, _IP_TTL].astype(_I64),
                           h14)
            nbytes = int(total.sum()) + 14 * k
        t32[trows, _W_STATUS] = TP_STATUS_SEND_REQUEST
        tx.index = (tx.index + k) % tx.nframes
        tx.pending += k
        ctr[0] += k
        ctr[1] += nbytes
        r32[rows, _W_STATUS] = 0
        rx.index = (i + k) % rx.nframes
        return k, k, []

    @staticmethod
    def _swap_rows(rb: Any, tb: Any, t16: Any, t32: Any, rr: Any, tr: Any, ln: Any, w: Any,
                   hdr: Any, base: Any) -> None:
        """Swap: header, new top label entry (TC and S kept, TTL - 1), rest of the frame.
        rr/tr: RX/TX rows (slices or index arrays); hdr, base: per row or one for all."""
        top = int(ln.max())
        tb[tr, TX_IP1:TX_DATA + top] = rb[rr, RX_IP1:RX_MAC + top]
        tb[tr, _T_ETH] = hdr
        t32[tr, _TW_L1] = base | ((w & 0xFF0F0000) - 0x1000000)  # label word, read LE
        t32[tr, _W_LEN] = t32[tr, _W_SNAP] = ln + VNET_HDR  # with the virtio header
        t16[tr, _TH_VNET_LEN] = ln  # virtio_net_hdr.hdr_len: the whole frame (see TxRing)

    def _php_rows(self, rb: Any, tb: Any, t16: Any, t32: Any, rr: Any, tr: Any, w: Any,
                  total: Any, ttl: Any, hdr: Any) -> None:
        """PHP: IPv4 header, the packet, IP TTL lowered to the label's (uniform model)."""
        top = int(total.max())
        tb[tr, TX_NET:TX_NET + top] = rb[rr, RX_IP1:RX_IP1 + top]
        tb[tr, _T_ETH] = hdr
        if self.fast.tables.uniform:
            out_ttl = (w >> 24) - 1
            lower = ttl > out_ttl  # RFC 3443: the TTL never increases
            if lower.any():
                ix = np.flatnonzero(lower)
                trl = tr[ix] if not isinstance(tr, slice) else tr.start + ix
                old, new = ttl[ix], out_ttl[ix]
                ipb = rb[rr[ix] if not isinstance(rr, slice) else rr.start + ix,
                         RX_IP1:RX_IP1 + 12].astype(_I64)
                proto, ck = ipb[:, _IP_TTL + 1], ipb[:, _IP_CK] << 8 | ipb[:, _IP_CK + 1]
                x = (~ck & 0xFFFF) + (~((old << 8) | proto) & 0xFFFF) + ((new << 8) | proto)
                ck = ~_fold(x) & 0xFFFF  # RFC 1624 eqn. 3
                tb[trl, TX_NET + _IP_TTL] = new
                tb[trl, TX_NET + _IP_CK] = ck >> 8
                tb[trl, TX_NET + _IP_CK + 1] = ck & 0xFF
        n = total + 14
        t32[tr, _W_LEN] = t32[tr, _W_SNAP] = n + VNET_HDR
        t16[tr, _TH_VNET_LEN] = n

    # ------------------------------------------------------------ IPv4

    def ipv4(self, rx: RingPort, my_mac: bytes, limit: int) -> tuple[int, int, list[bytes]]:
        """(frames received, frames forwarded here, frames for the general path)."""
        fast = self.fast
        t = fast.tables
        cache = fast.ip_entries()
        rb, r16, r32 = _arrays(rx)
        i = rx.index
        k = _ready_run(r32, i, limit)
        done = (0, 0, []) if k == 0 else self._ipv4_uniform(rx, rb, r16, r32, i, k, my_mac)
        if done is not None:
            return done
        rows = slice(i, i + k)
        h = r32[rows, :_W_MAC + 1].astype(_I64)
        ln = h[:, _W_LEN]
        ip = rb[rows, RX_NET:RX_NET + 20].astype(_I64)  # the IPv4 header (frame offset 14)
        total = ip[:, 2] << 8 | ip[:, 3]
        ttl = ip[:, _IP_TTL]
        ck = ip[:, _IP_CK] << 8 | ip[:, _IP_CK + 1]
        dst = ip[:, 16] << 24 | ip[:, 17] << 16 | ip[:, 18] << 8 | ip[:, 19]
        dm = (r16[rows, _H_DMAC] == np.frombuffer(my_mac, dtype=_U16)).all(axis=1)
        ok = (ln == h[:, _W_SNAP]) & (ln >= 34) & (h[:, _W_MAC] & 0xFFFF == RX_MAC) & dm \
            & (ip[:, 0] == 0x45)
        ok &= (ttl > 1) & (total >= 20) & (total <= ln - 14) & _SRC_OK[ip[:, _IP_SRC1]]
        ok &= _fold(r16[rows, _H_IP].sum(axis=1, dtype=_I64)) == 0xFFFF
        # One lookup per distinct destination (FastPath's per-destination cache).
        uniq, inv = np.unique(dst, return_inverse=True)
        oifs: list[str] = []
        e_oif, e_push, e_lw, e_mtu, e_hdr, e_ctr = [], [], [], [], [], []
        for d in uniq.tolist():
            e = cache.get(d, cache)
            if e is cache:
                e = fast.cache_ip_entry(d)
            if e is None:
                e_oif.append(-1)
                e_push.append(False)
                e_lw.append(0)
                e_mtu.append(0)
                e_hdr.append(bytes(ETH_HLEN))
                e_ctr.append(None)
                continue
            push, out_if, hdr, lw, mtu, ctr = e
            if out_if not in oifs:
                oifs.append(out_if)
            e_oif.append(oifs.index(out_if))
            e_push.append(push)
            e_lw.append(lw)
            e_mtu.append(mtu)
            e_hdr.append(hdr)
            e_ctr.append(ctr)
        inv = inv.reshape(-1)
        oif_k = np.array(e_oif, dtype=_I64)[inv]
        ok &= (oif_k >= 0) & (total <= np.array(e_mtu, dtype=_I64)[inv])
        push_k = np.array(e_push, dtype=bool)[inv]
        hdrs = np.frombuffer(b"".join(e_hdr), dtype=_U8).reshape(-1, ETH_HLEN)
        lws = np.array(e_lw, dtype=_I64)
        # TTL - 1 and its checksum (RFC 1624: ~m + m' is the constant 0xFEFF)
        nttl = ttl - 1
        nck = ~_fold((~ck & 0xFFFF) + 0xFEFF) & 0xFFFF
        uniform = t.uniform
        fwd = 0
        for g, name in enumerate(oifs):
            m = ok & (oif_k == g)
            c = int(m.sum())
            if not c:
                continue
            tx = fast.tx.get(name)
            trows = self._tx_rows(tx, c) if type(tx) is TxRing else None
            if trows is None:
                ok &= ~m
                continue
            tb, t16, t32 = _arrays(tx)
            sel = np.flatnonzero(m)
            tr = trows if not isinstance(trows, slice) else np.arange(trows.start, trows.stop)
            ps = push_k[sel]
            for part, off in ((np.flatnonzero(ps), 4), (np.flatnonzero(~ps), 0)):
                if not part.size:
                    continue
                s, trp = sel[part], tr[part]
                rr = i + s
                tot = total[s]
                top = int(tot.max())
                at = TX_NET + off  # the IPv4 header in the TX slot (after the label if pushed)
                tb[trp, at:at + top] = rb[rr, RX_NET:RX_NET + top]
                tb[trp, _T_ETH] = hdrs[inv[s]]
                if off:  # FTN push: label | TC from IP precedence | TTL (RFC 3443)
                    lab = lws[inv[s]] | ((ip[s, 1] >> 5) << 17)
                    lab |= (nttl[s] if uniform else 255) << 24
                    t32[trp, _TW_L1] = lab
                tb[trp, at + _IP_TTL] = nttl[s]
                tb[trp, at + _IP_CK] = nck[s] >> 8
                tb[trp, at + _IP_CK + 1] = nck[s] & 0xFF
                n = tot + 14 + off
                t32[trp, _W_LEN] = t32[trp, _W_SNAP] = n + VNET_HDR
                t16[trp, _TH_VNET_LEN] = n
            t32[trows, _W_STATUS] = TP_STATUS_SEND_REQUEST
            tx.index = (tx.index + c) % tx.nframes
            tx.pending += c
            fwd += c
        if fwd:
            nb = (total + np.where(push_k, 18, 14))[ok]
            u = inv[ok]
            ctrs = [c if c is not None else [0, 0] for c in e_ctr]
            self._count(ctrs, u, nb, len(ctrs))
        slow = self._slow(rx, i, ~ok) if fwd < k else []
        r32[rows, _W_STATUS] = 0
        rx.index = (i + k) % rx.nframes
        return k, fwd, slow

    def _ipv4_uniform(self, rx: RingPort, rb: Any, r16: Any, r32: Any, i: int, k: int,
                      my_mac: bytes) -> tuple[int, int, list[bytes]] | None:
        """Every frame of the run to one destination, for us, on the fast path (else None)."""
        fast = self.fast
        rows = slice(i, i + k)
        d = r32[rows, _W_IPDST]  # the destination address, read little-endian
        d0 = int(d[0])
        if int(d.max()) != d0 or int(d.min()) != d0:
            return None
        dst = int.from_bytes(d0.to_bytes(4, "little"), "big")
        cache = fast.ip_entries()
        e = cache.get(dst, cache)
        if e is cache:
            e = fast.cache_ip_entry(dst)
        if e is None:
            return None
        push, out_if, hdr, lw, mtu, ctr = e
        tx = fast.tx.get(out_if)
        if type(tx) is not TxRing:
            return None
        h = r32[rows, :_W_MAC + 1]
        ln = h[:, _W_LEN]
        ip = rb[rows, RX_NET:RX_NET + _IP_SRC1 + 1]
        total = (ip[:, 2].astype(_I64) << 8) | ip[:, 3]
        mine = np.uint64(int.from_bytes(my_mac, "little") << 16)
        if int(ln.min()) < 34 or not (h[:, _W_SNAP] == ln).all() \
                or not ((h[:, _W_MAC] & 0xFFFF) == RX_MAC).all() \
                or not ((rb.view(np.uint64)[rows, _Q_DMAC] & _MAC48) == mine).all() \
                or not (ip[:, 0] == 0x45).all() or int(ip[:, _IP_TTL].min()) <= 1 \
                or not _SRC_OK[ip[:, _IP_SRC1].astype(_I64)].min() \
                or int(total.min()) < 20 or int(total.max()) > mtu or not (total <= ln - 14).all() \
                or not (_fold(r16[rows, _H_IP].sum(axis=1, dtype=_I64)) == 0xFFFF).all():
            return None
        trows = self._tx_rows(tx, k)
        if trows is None:
            return None
        tb, t16, t32 = _arrays(tx)
        top = int(total.max())
        off = 4 if push else 0  # the label pushed
        at = TX_NET + off  # the IPv4 header in the TX slot
        tb[trows, at:at + top] = rb[rows, RX_NET:RX_NET + top]
        tb[trows, _T_ETH] = np.frombuffer(hdr, dtype=_U8)
        nttl = ip[:, _IP_TTL] - 1
        ck = (ip[:, _IP_CK].astype(_I64) << 8) | ip[:, _IP_CK + 1]
        ck = ~_fold((~ck & 0xFFFF) + 0xFEFF) & 0xFFFF  # RFC 1624 for TTL - 1
        if push:  # FTN: one label, TC from IP precedence, TTL (RFC 3443)
            lab = lw | ((ip[:, 1].astype(_U32) >> 5) << 17)
            t32[trows, _TW_L1] = lab | ((nttl.astype(_U32) << 24) if fast.tables.uniform
                                        else 255 << 24)
        tb[trows, at + _IP_TTL] = nttl
        tb[trows, at + _IP_CK] = ck >> 8
        tb[trows, at + _IP_CK + 1] = ck & 0xFF
        n = total + 14 + off
        t32[trows, _W_LEN] = t32[trows, _W_SNAP] = n + VNET_HDR
        t16[trows, _TH_VNET_LEN] = n
        t32[trows, _W_STATUS] = TP_STATUS_SEND_REQUEST
        tx.index = (tx.index + k) % tx.nframes
        tx.pending += k
        ctr[0] += k
        ctr[1] += int(n.sum())
        r32[rows, _W_STATUS] = 0
        rx.index = (i + k) % rx.nframes
        return k, k, []
