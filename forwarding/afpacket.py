"""AF_PACKET I/O on one interface: the raw-frame edge of the userspace dataplane.

Two receive paths with the same interface (`recv_batch(max) -> list[bytes]`):

* `PacketPort`: non-blocking socket, `recv` in bounded batches (simple,
  always works);
* `RingPort`: a TPACKET_V2 mmap RX ring (measured when the dataplane was designed:
  1.4-1.6x the frames/s of a plain recv loop at nearly its per-hop latency, 34 vs
  30 us p50 at 1,000 frames/s; TPACKET_V3's 1 ms block timeout held frames back:
  ~310 us. Current numbers: docs/benchmarks.md).

The layout of a ring slot is spelled out below (`T2_*`, `RX_*`, `TX_*`); the fast
paths (forwarding.ioloop, forwarding.vector) address slots with these names.

Both drop our own transmissions in the kernel (PACKET_IGNORE_OUTGOING, the
equivalent of skipping PACKET_OUTGOING) and bound the work per wake-up so a
flood cannot starve the control plane in the same event loop.

Which socket sees which frame (`RingPort(..., bpf=NOT_OTHERHOST)` on the MPLS and
IPv4 rings, `PacketPort(..., bpf=REST)` beside them): the kernel takes a VLAN tag
off a received frame before any packet socket sees it (net/core/dev.c,
skb_vlan_untag) and hands a frame with a VLAN ID it has no device for to the
protocol sockets as if untagged, marked PACKET_OTHERHOST. So the protocol rings
refuse PACKET_OTHERHOST frames in the kernel (a BPF filter: they are not for us,
or were tagged), and one ETH_P_ALL socket per interface takes exactly what the
rings do not -- tagged frames (VLAN ID != 0), frames for another MAC, ethertypes
other than IPv4, MPLS and ARP (ARP is the kernel's) -- with the tag put back in
place from PACKET_AUXDATA (`PacketPort`, `RingPort.recv_batch` do that for every
frame), so the dataplane sees each frame once, as it was on the wire. A
priority tag (VLAN ID 0) is taken off and the frame handled as untagged, as the
kernel does.

An interface that goes down (`ip link set IF down`, or `lsr lab link` doing it)
leaves ENETDOWN in sk_err of every packet socket bound to it with a protocol
(net/packet/af_packet.c, packet_notifier). poll() reports POLLERR for as long as
it is there, which makes an event-loop reader callback runnable at every turn;
only a recv() or getsockopt(SO_ERROR) clears it, and a ring reader never calls
recv(). So a reader whose wake-up found no frames calls `take_error()`: without
it a router spins at 100% of a core from the first flap on.
"""

from __future__ import annotations

import ctypes
import mmap
import socket
import struct

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_MPLS_UC = 0x8847
ETH_HLEN = 14  # destination MAC, source MAC, ethertype
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
PACKET_STATISTICS = 6  # struct tpacket_stats: tp_packets, tp_drops (reset by each read)
PACKET_AUXDATA = 8  # struct tpacket_auxdata with every recvmsg(): the VLAN tag taken off
TPACKET_V2 = 1
TP_STATUS_KERNEL = 0  # RX slot status: the kernel's to fill
TP_STATUS_USER = 1  # RX slot status: a frame for us to read
_READY = bytes(b & TP_STATUS_USER for b in range(256))  # status byte -> 1 if ready, else 0
TP_STATUS_VLAN_VALID = 0x10  # tp_vlan_tci holds the tag the kernel took off
TP_STATUS_VLAN_TPID_VALID = 0x40  # tp_vlan_tpid holds its TPID (0x8100, 0x88a8)
ETH_P_8021Q = 0x8100
PACKET_OTHERHOST = 3  # sll_pkttype: not for this host (another MAC, or a VLAN we lack)

# ---------------------------------------------------------------- classic BPF socket filters
#
# (struct sock_filter: code, jt, jf, k; jumps count the instructions skipped.) Loads from
# SKF_AD_OFF + n read the skb's metadata rather than the frame (linux/filter.h).
SO_ATTACH_FILTER = 26
_SKF_AD = -0x1000
_LD_AD = 0x20  # BPF_LD | BPF_W | BPF_ABS
_LDH = 0x28  # BPF_LD | BPF_H | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
_PKTTYPE, _VLAN_TAG, _VLAN_TAG_PRESENT = _SKF_AD + 4, _SKF_AD + 44, _SKF_AD + 48
_ALL = 0x40000  # accept: up to this many bytes

# The MPLS and IPv4 rings: everything but PACKET_OTHERHOST (see the module docstring).
NOT_OTHERHOST = (
    (_LD_AD, 0, 0, _PKTTYPE),
    (_JEQ, 0, 1, PACKET_OTHERHOST),
    (_RET, 0, 0, 0),
    (_RET, 0, 0, _ALL),
)
# The ETH_P_ALL socket beside them: what they do not get, ARP aside.
REST = (
    (_LD_AD, 0, 0, _VLAN_TAG_PRESENT),
    (_JEQ, 2, 0, 0),  # untagged: on to the packet type
    (_LD_AD, 0, 0, _VLAN_TAG),
    (_JSET, 6, 0, 0x0FFF),  # a VLAN ID: accept
    (_LD_AD, 0, 0, _PKTTYPE),
    (_JEQ, 4, 0, PACKET_OTHERHOST),  # accept
    (_LDH, 0, 0, 12),  # the ethertype
    (_JEQ, 3, 0, ETH_P_IP),  # the IPv4 ring's: drop
    (_JEQ, 2, 0, ETH_P_MPLS_UC),  # the MPLS ring's: drop
    (_JEQ, 1, 0, 0x0806),  # ARP, the kernel's: drop
    (_RET, 0, 0, _ALL),
    (_RET, 0, 0, 0),
)


def attach_filter(sock: socket.socket, prog: tuple[tuple[int, int, int, int], ...]) -> None:
    """SO_ATTACH_FILTER: a classic BPF program on `sock` (the kernel copies it)."""
    insns = b"".join(struct.pack("=HBBI", c, jt, jf, k & 0xFFFFFFFF) for c, jt, jf, k in prog)
    buf = ctypes.create_string_buffer(insns, len(insns))
    fprog = struct.pack("@HP", len(prog), ctypes.addressof(buf))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def with_vlan_tag(frame: bytes, status: int, tci: int, tpid: int) -> bytes:
    """The frame as it was on the wire: the VLAN tag the kernel took off (PACKET_AUXDATA or
    a ring slot's tp_status / tp_vlan_tci / tp_vlan_tpid) put back after the MACs. A priority
    tag (VLAN ID 0) stays off, as the kernel treats the frame as untagged."""
    if not status & TP_STATUS_VLAN_VALID or not tci & 0x0FFF:
        return frame
    tp = tpid if status & TP_STATUS_VLAN_TPID_VALID and tpid else ETH_P_8021Q
    return frame[:12] + struct.pack("!HH", tp, tci) + frame[12:]

# ---------------------------------------------------------------- TPACKET_V2 ring slots
#
# include/uapi/linux/if_packet.h, Documentation/networking/packet_mmap.rst. A ring is
# blocks of RING_BLOCK bytes cut into slots of frame_size bytes (2048 here); each slot
# starts with a struct tpacket2_hdr, fields in host byte order (T2_* are their offsets):
#
#   0              4              8              12             14             16
#   +--------------+--------------+--------------+--------------+--------------+
#   |  tp_status   |    tp_len    |  tp_snaplen  |    tp_mac    |    tp_net    |
#   |     u32      |     u32      |     u32      |     u16      |     u16      |
#   +--------------+--------------+--------------+--------------+--------------+
#   16             20             24             26             28             32
#   +--------------+--------------+--------------+--------------+--------------+
#   |    tp_sec    |   tp_nsec    | tp_vlan_tci  | tp_vlan_tpid |  tp_padding  |
#   |     u32      |     u32      |     u16      |     u16      |    4 x u8    |
#   +--------------+--------------+--------------+--------------+--------------+
#
# tp_status is the hand-over word: RX slots TP_STATUS_KERNEL <-> TP_STATUS_USER, TX slots
# TP_STATUS_AVAILABLE <-> TP_STATUS_SEND_REQUEST (then SENDING while the kernel copies).
#
#   RX slot (RingPort)                            TX slot (TxRing, PACKET_VNET_HDR)
#   0   tpacket2_hdr                              0   tpacket2_hdr (status, len, snaplen)
#   32  struct sockaddr_ll (20 bytes)             32  TX_VNET: struct virtio_net_hdr (10 bytes)
#   52  unused                                    34    its hdr_len (u16): TX_VNET_HDRLEN
#   66  RX_MAC: the frame, Ethernet header        42  TX_DATA: the frame, Ethernet header
#   80  RX_NET: label stack entry / IPv4 header   56  TX_NET: label stack entry / IPv4 header
#   84  RX_IP1: IPv4 under one label              60  TX_IP1: IPv4 under one label
#
# RX: the kernel (net/packet/af_packet.c, tpacket_rcv) writes TPACKET2_HDRLEN =
# TPACKET_ALIGN(32) + sizeof(struct sockaddr_ll) = 52 bytes of header and places the frame
# so that its network header is aligned: tp_net = TPACKET_ALIGN(52 + max(14, 16)) = 80,
# tp_mac = tp_net - 14 = 66 for an untagged Ethernet frame. The fast paths check tp_mac ==
# RX_MAC on every frame and leave anything else to the general path (which reads tp_mac).
# TX: without PACKET_TX_HAS_OFF the kernel reads a slot's data at TPACKET2_HDRLEN -
# sizeof(struct sockaddr_ll) = 32 (tpacket_parse_header); with PACKET_VNET_HDR that data
# is a virtio_net_hdr (flags u8, gso_type u8, hdr_len, gso_size, csum_start, csum_offset
# u16, little-endian here), then the frame; tp_len and tp_snaplen count both.

T2_STATUS, T2_LEN, T2_SNAPLEN, T2_MAC, T2_NET = 0, 4, 8, 12, 14  # tpacket2_hdr fields
T2_SEC, T2_NSEC, T2_VLAN_TCI, T2_VLAN_TPID = 16, 20, 24, 26
_HDR2 = struct.Struct("=IIIHHIIHH4x")  # struct tpacket2_hdr
_STATUS = struct.Struct("=I")  # tp_status alone
TPACKET_ALIGNMENT = 16
SOCKADDR_LL_SIZE = 20  # struct sockaddr_ll


def tpacket_align(x: int) -> int:
    """TPACKET_ALIGN(x) of if_packet.h: x rounded up to TPACKET_ALIGNMENT."""
    return (x + TPACKET_ALIGNMENT - 1) & ~(TPACKET_ALIGNMENT - 1)


TPACKET2_HDRLEN = tpacket_align(_HDR2.size) + SOCKADDR_LL_SIZE  # 52
RX_NET = tpacket_align(TPACKET2_HDRLEN + max(ETH_HLEN, 16))  # 80: tp_net, untagged Ethernet
RX_MAC = RX_NET - ETH_HLEN  # 66: tp_mac, where the frame starts
TX_VNET = TPACKET2_HDRLEN - SOCKADDR_LL_SIZE  # 32: where the kernel reads a TX slot's data
VNET_HDR = 10  # struct virtio_net_hdr
TX_VNET_HDRLEN = TX_VNET + 2  # virtio_net_hdr.hdr_len
TX_DATA = TX_VNET + VNET_HDR  # 42: where a frame's bytes start in a TX slot
# Where the fast paths find what follows the Ethernet header (one label: 4 bytes)
RX_IP1 = RX_NET + 4  # 84: an IPv4 header under one label in an RX slot
TX_NET = TX_DATA + ETH_HLEN  # 56: a label stack entry / an IPv4 header in a TX slot
TX_IP1 = TX_NET + 4  # 60: an IPv4 header under one label in a TX slot
RING_BLOCK = 1 << 16  # tp_block_size: bytes per ring block (a multiple of the page size)
_TPACKET_REQ = struct.Struct("IIII")  # tp_block_size, tp_block_nr, tp_frame_size, tp_frame_nr
_TPACKET_STATS = struct.Struct("II")  # tp_packets, tp_drops


def slot_struct(order: str, *fields: tuple[int, str]) -> struct.Struct:
    """A struct for some fields of a ring slot: `fields` are (slot offset, struct code) in
    increasing offset order; the bytes between them are skipped. `order` as in struct
    ("<", "=", "!"): the fast paths read label stack entries little-endian on purpose."""
    fmt, at = order, 0
    for off, code in fields:
        if off < at:
            raise ValueError(f"slot field at {off} overlaps the previous one (ends at {at})")
        fmt += (f"{off - at}x" if off > at else "") + code
        at = off + struct.calcsize(order + code)
    return struct.Struct(fmt)


def _ring_req(frame_size: int, frames: int) -> tuple[bytes, int, int]:
    """(struct tpacket_req, blocks, slots) for about `frames` slots of `frame_size` bytes."""
    per_block = RING_BLOCK // frame_size
    blocks = max(1, frames // per_block)
    return _TPACKET_REQ.pack(RING_BLOCK, blocks, frame_size, blocks * per_block), blocks, \
        blocks * per_block


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def open_packet_socket(ifname: str, proto: int = ETH_P_ALL, rcvbuf: int = 4 << 20,
                       bpf: tuple[tuple[int, int, int, int], ...] | None = None) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    try:
        if bpf is not None:  # before bind: no frame gets in unfiltered
            attach_filter(s, bpf)
        s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, rcvbuf)
        s.bind((ifname, proto))
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


_AUX = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata: status .. vlan_tci, vlan_tpid
_AUX_SPACE = socket.CMSG_SPACE(_AUX.size)


class PacketPort:
    """One interface: receive frames in batches (VLAN tags put back, `with_vlan_tag`), send
    frames. `bpf`: a socket filter (`REST`, beside the rings)."""

    pending = 0  # frames queued for a batched flush (none: send() is immediate)
    _error = 0  # an error recv() raised, for take_error()

    def __init__(self, ifname: str, proto: int = ETH_P_ALL,
                 bpf: tuple[tuple[int, int, int, int], ...] | None = None) -> None:
        self.ifname = ifname
        self.sock = open_packet_socket(ifname, proto, bpf=bpf)
        self.tx_errors = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv_batch(self, limit: int = 64) -> list[bytes]:
        out: list[bytes] = []
        recvmsg, aux, space = self.sock.recvmsg, _AUX.unpack_from, _AUX_SPACE
        try:
            for _ in range(limit):
                data, anc, _flags, _addr = recvmsg(65536, space)
                for level, kind, cdata in anc:
                    if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= _AUX.size:
                        st, _ln, _snap, _mac, _net, tci, tpid = aux(cdata)
                        data = with_vlan_tag(data, st, tci, tpid)
                out.append(data)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:  # the socket's pending error (ENETDOWN), cleared by this recv
            self._error = e.errno or -1
        return out

    def take_error(self) -> int:
        """The error the kernel left on this socket (an errno; 0 if none), cleared: call it
        after a wake-up that found no frames. A pending error makes poll() report POLLERR
        until it is read, so the event loop would call the reader again and again."""
        err, self._error = self._error, 0
        try:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or err
        except OSError:
            pass
        return err

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
                 frames: int = 1024,
                 bpf: tuple[tuple[int, int, int, int], ...] | None = None) -> None:
        self.ifname = ifname
        self.tx_errors = 0
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        try:
            if bpf is not None:  # before bind: no frame gets in unfiltered
                attach_filter(s, bpf)
            s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            req, blocks, nframes = _ring_req(frame_size, frames)
            s.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.bind((ifname, proto))
            s.setblocking(False)
            self.ring = mmap.mmap(s.fileno(), RING_BLOCK * blocks, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            s.close()
            raise
        self.sock = s
        self.view = memoryview(self.ring)
        self.frame_size = frame_size
        self.nframes = nframes
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
            if not ring[off] & TP_STATUS_USER:  # tp_status's low byte (T2_STATUS = 0)
                break  # strictly in order: see unstick()
            st, _len, snaplen, mac, _net, _s, _ns, tci, tpid = _HDR2.unpack_from(view, off)
            f = bytes(view[off + mac : off + mac + snaplen])
            out.append(with_vlan_tag(f, st, tci, tpid) if st & TP_STATUS_VLAN_VALID else f)
            _STATUS.pack_into(ring, off + T2_STATUS, TP_STATUS_KERNEL)
            i = (i + 1) % n
        self.index = i
        return out

    def drops(self) -> int:
        """Frames the kernel dropped because the ring was full, since this socket opened."""
        try:
            _pkts, dropped = _TPACKET_STATS.unpack(
                self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _TPACKET_STATS.size))
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
        if not ring[i * fs] & TP_STATUS_USER:  # tp_status's low byte (T2_STATUS = 0)
            # Every slot's status byte in one C-speed slice, the first ready one after
            # ours found by bytes.find (a Python loop over 1,024 slots, every second on
            # every ring, was most of an idle router's CPU).
            status = ring[0:n * fs:fs].translate(_READY)
            k = (status[i + 1:] + status[:i]).find(1)
            if k >= 0:
                j = (i + 1 + k) % n
        if j is None or self._stuck != (i, j):
            self._stuck = None if j is None else (i, j)  # look again next time
            return 0
        self._stuck = None
        self.index = j
        return (j - i) % n

    def ready(self) -> bool:
        """A frame waits at our index (the ring watchdog reads only then)."""
        return bool(self.ring[self.index * self.frame_size] & TP_STATUS_USER)

    def close(self) -> None:
        self.np_views = None  # forwarding.vector's arrays export the mmap's buffer
        for v in self._slots or ():
            v.release()
        self.view.release()
        self.ring.close()
        self.sock.close()


PACKET_TX_RING = 13
PACKET_VNET_HDR = 15
TP_STATUS_AVAILABLE = 0  # TX slot status: ours to fill
TP_STATUS_SEND_REQUEST = 1  # TX slot status: filled, for the kernel to send
TP_STATUS_SENDING = 2
TP_STATUS_WRONG_FORMAT = 4
TX_BUSY = TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING | TP_STATUS_WRONG_FORMAT  # not ours yet
# tp_status, tp_len, tp_snaplen (both count the virtio header), virtio_net_hdr.hdr_len
_TXSLOT = slot_struct("=", (T2_STATUS, "I"), (T2_LEN, "I"), (T2_SNAPLEN, "I"),
                      (TX_VNET_HDRLEN, "H"))


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
        self.tx_dropped = 0  # frames queued while the interface was down, never sent
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            req, blocks, nframes = _ring_req(frame_size, frames)
            s.setsockopt(SOL_PACKET, PACKET_TX_RING, req)
            s.bind((ifname, 0))
            s.setblocking(False)
            self.ring = mmap.mmap(s.fileno(), RING_BLOCK * blocks, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            s.close()
            raise
        self.sock = s
        self.frame_size = frame_size
        self.max_len = frame_size - TX_DATA
        self.nframes = nframes
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
        if n > self.max_len or ring[off] & TX_BUSY:  # slot still the kernel's (tp_status)
            self.flush()
            if n > self.max_len or ring[off] & TX_BUSY:
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
            # Whatever the error, what is still queued goes now or never: left in the ring
            # it would go out with the next send() on this interface, maybe seconds later
            # (after ENOBUFS the kernel puts the frame it dropped back in the queue).
            self.tx_dropped += self._drop_queued()

    def _drop_queued(self) -> int:
        """Give back the slots still queued after a send() that failed, and return how
        many: all of them when the kernel did not look at the ring (interface down or
        gone: tpacket_snd checks that first), else those from the one it could not send
        (its status set back to a send request, its head left on it). Left queued they
        would go out with the next send(): after an outage, frames seconds late. The
        kernel sends from its own head, which did not move past them, so our index goes
        back to the first of them."""
        ring, fs, n = self.ring, self.frame_size, self.nframes
        i, k = self.index, 0
        while k < n and ring[(i - 1) % n * fs] == TP_STATUS_SEND_REQUEST:  # tp_status low byte
            i = (i - 1) % n
            _STATUS.pack_into(ring, i * fs + T2_STATUS, TP_STATUS_AVAILABLE)
            k += 1
        self.index = i
        return k

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
