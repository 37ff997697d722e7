"""AF_PACKET I/O on one interface: the raw-frame edge of the userspace dataplane.

Two receive paths with the same interface (`recv_batch(max) -> list[bytes]`):

* `PacketPort`: non-blocking socket, `recv` in bounded batches (simple,
  always works);
* `RingPort`: a TPACKET_V2 mmap RX ring (dataplane-speed.md: ~1.4x the plain
  loop at plain-loop latency).

Both drop our own transmissions in the kernel (PACKET_IGNORE_OUTGOING, the
equivalent of skipping PACKET_OUTGOING) and bound the work per wake-up so a
flood cannot starve the control plane in the same event loop.
"""

from __future__ import annotations

import mmap
import socket
import struct

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_MPLS_UC = 0x8847
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
PACKET_STATISTICS = 6  # struct tpacket_stats: tp_packets, tp_drops (reset by each read)
TPACKET_V2 = 1
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
_HDR2 = struct.Struct("=IIIHHIIHH4x")  # struct tpacket2_hdr (32 bytes)


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def open_packet_socket(ifname: str, proto: int = ETH_P_ALL, rcvbuf: int = 4 << 20) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    try:
        s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, rcvbuf)
        s.bind((ifname, proto))
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


class PacketPort:
    """One interface: receive frames in batches, send frames."""

    pending = 0  # frames queued for a batched flush (none: send() is immediate)

    def __init__(self, ifname: str, proto: int = ETH_P_ALL) -> None:
        self.ifname = ifname
        self.sock = open_packet_socket(ifname, proto)
        self.tx_errors = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv_batch(self, limit: int = 64) -> list[bytes]:
        out: list[bytes] = []
        recv = self.sock.recv
        try:
            for _ in range(limit):
                out.append(recv(65536))
        except (BlockingIOError, InterruptedError):
            pass
        return out

    def send(self, frame: bytes | bytearray | memoryview) -> bool:
        try:
            self.sock.send(frame)
            return True
        except OSError:  # ENOBUFS, ENETDOWN (link down), EMSGSIZE: count, never raise
            self.tx_errors += 1
            return False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.sock.close()


class RingPort(PacketPort):
    """PacketPort whose receive side is a TPACKET_V2 mmap ring."""

    def __init__(self, ifname: str, proto: int = ETH_P_ALL, frame_size: int = 2048,
                 frames: int = 1024) -> None:
        self.ifname = ifname
        self.tx_errors = 0
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        try:
            s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            block = 1 << 16
            per_block = block // frame_size
            blocks = max(1, frames // per_block)
            s.setsockopt(SOL_PACKET, PACKET_RX_RING,
                         struct.pack("IIII", block, blocks, frame_size, blocks * per_block))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.bind((ifname, proto))
            s.setblocking(False)
            self.ring = mmap.mmap(s.fileno(), block * blocks, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            s.close()
            raise
        self.sock = s
        self.view = memoryview(self.ring)
        self.frame_size = frame_size
        self.nframes = blocks * per_block
        self.index = 0
        self._drops = 0
        self._stuck: tuple[int, int] | None = None  # unstick(): (our index, next ready slot)
        self._slots: list[memoryview] | None = None

    def recv_batch(self, limit: int = 64) -> list[bytes]:
        out: list[bytes] = []
        ring, view, fs, n = self.ring, self.view, self.frame_size, self.nframes
        i = self.index
        for _ in range(limit):
            off = i * fs
            if not ring[off] & TP_STATUS_USER:
                break  # strictly in order: see unstick()
            _st, _len, snaplen, mac, _net, _s, _ns, _tci, _tpid = _HDR2.unpack_from(view, off)
            out.append(bytes(view[off + mac : off + mac + snaplen]))
            struct.pack_into("I", ring, off, TP_STATUS_KERNEL)
            i = (i + 1) % n
        self.index = i
        return out

    def drops(self) -> int:
        """Frames the kernel dropped because the ring was full, since this socket opened."""
        try:
            _pkts, dropped = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        except OSError:
            return self._drops
        self._drops += dropped
        return self._drops

    def slot_views(self) -> list[memoryview]:
        """One memoryview per ring slot (built on first use): the fast path
        (forwarding.ioloop) indexes slots without offset arithmetic."""
        if self._slots is None:
            fs = self.frame_size
            self._slots = [self.view[k * fs:(k + 1) * fs] for k in range(self.nframes)]
        return self._slots

    def unstick(self) -> int:
        """Safety net, called about once a second: if the slot at our index is unready while
        a later slot is ready, and the very same was true at the previous call, jump to that
        ready slot and return how many slots were skipped (0 normally).

        The kernel claims V2 slots strictly in order (the ring's head moves only when a
        frame is written) and every claimed slot is set ready, so a reader that never
        skips stays in step. A reader must not skip an unready slot on its own: it may be
        a claimed slot whose copy is under way (another CPU, or a softirq between two
        of our reads); skipping it leaves a ready slot behind us, the kernel's head stops
        there (every frame dropped as "ring full") and, the slot before the head being
        free, poll() never reports the ring readable again. Only a slot that stayed
        unready for a whole second with the same ready slot after it is taken as lost.
        """
        ring, fs, n, i = self.ring, self.frame_size, self.nframes, self.index
        j = None
        if not ring[i * fs] & TP_STATUS_USER:
            for k in range(1, n):
                if ring[(i + k) % n * fs] & TP_STATUS_USER:
                    j = (i + k) % n
                    break
        if j is None or self._stuck != (i, j):
            self._stuck = None if j is None else (i, j)  # look again next time
            return 0
        self._stuck = None
        self.index = j
        return (j - i) % n

    def close(self) -> None:
        self.np_views = None  # forwarding.vector's arrays export the mmap's buffer
        for v in self._slots or ():
            v.release()
        self.view.release()
        self.ring.close()
        self.sock.close()


PACKET_TX_RING = 13
PACKET_VNET_HDR = 15
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1
TP_STATUS_WRONG_FORMAT = 4
# A V2 TX slot: tpacket2_hdr (TPACKET_ALIGN: 32 bytes), then a 10-byte struct virtio_net_hdr
# (PACKET_VNET_HDR), then the frame. tp_len/tp_snaplen count the virtio header too.
VNET_HDR = 10
TX_DATA = 32 + VNET_HDR  # where a frame's bytes start in a TX slot
_VNET_HDRLEN = 32 + 2  # virtio_net_hdr.hdr_len in a TX slot (little-endian 16 bits)
_TXSLOT = struct.Struct("=III22xH")  # tp_status, tp_len, tp_snaplen, (..), vnet hdr_len


class TxRing:
    """A TPACKET_V2 TX ring on one interface: queue frames, one `send()` per batch.

    The socket has protocol 0, so it receives nothing. A frame that finds the
    ring full, or is too big for a slot, goes out with a plain `send()` after
    a flush, so nothing is silently lost here.

    Each slot carries a virtio_net_hdr (PACKET_VNET_HDR) whose hdr_len is the
    whole frame: the kernel then copies the frame into the skb's linear area
    instead of attaching the ring page as a zero-copy fragment, which veth
    would copy again into a freshly allocated page per frame (skb_copy_ubufs:
    ~5% of the end-to-end CPU). (No PACKET_QDISC_BYPASS:
    it would hide our transmissions from tcpdump on the router's interfaces.)
    """

    def __init__(self, ifname: str, frame_size: int = 2048, frames: int = 512) -> None:
        self.ifname = ifname
        self.tx_errors = 0
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            block = 1 << 16
            per_block = block // frame_size
            blocks = max(1, frames // per_block)
            s.setsockopt(SOL_PACKET, PACKET_TX_RING,
                         struct.pack("IIII", block, blocks, frame_size, blocks * per_block))
            s.bind((ifname, 0))
            s.setblocking(False)
            self.ring = mmap.mmap(s.fileno(), block * blocks, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            s.close()
            raise
        self.sock = s
        self.frame_size = frame_size
        self.max_len = frame_size - TX_DATA
        self.nframes = blocks * per_block
        self.index = 0
        self.pending = 0
        self._slots: list[memoryview] | None = None
        self._plain: socket.socket | None = None  # fallback for frames the ring can't take

    def slot_views(self) -> list[memoryview]:
        """One memoryview per ring slot, built on first use (forwarding.ioloop)."""
        if self._slots is None:
            view, fs = memoryview(self.ring), self.frame_size
            self._slots = [view[k * fs:(k + 1) * fs] for k in range(self.nframes)]
            view.release()
        return self._slots

    def send(self, frame: bytes | bytearray | memoryview) -> bool:
        n = len(frame)
        off = self.index * self.frame_size
        ring = self.ring
        if n > self.max_len or ring[off] & 0x7:  # slot still owned by the kernel
            self.flush()
            if n > self.max_len or ring[off] & 0x7:
                # Not via self.sock: a TX-ring socket's send() transmits the ring and
                # ignores the buffer (and it expects a vnet header): a plain socket.
                try:
                    if self._plain is None:
                        p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                        p.bind((self.ifname, 0))
                        self._plain = p
                    self._plain.send(frame)
                    return True
                except OSError:
                    self.tx_errors += 1
                    return False
        ring[off + TX_DATA : off + TX_DATA + n] = frame
        _TXSLOT.pack_into(ring, off, TP_STATUS_SEND_REQUEST, n + VNET_HDR, n + VNET_HDR, n)
        self.index = (self.index + 1) % self.nframes
        self.pending += 1
        return True

    def flush(self) -> None:
        if not self.pending:
            return
        self.pending = 0
        try:
            self.sock.send(b"")
        except OSError:  # ENOBUFS, ENETDOWN: the frames are lost like on a real wire
            self.tx_errors += 1

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.np_views = None
        for v in self._slots or ():
            v.release()
        self.ring.close()
        self.sock.close()
        if self._plain is not None:
            self._plain.close()
