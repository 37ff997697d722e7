"""A raw BGP peer for lab tests: a TCP client that a test drives line by line.

Run inside a lab namespace (standard library only):

    ip netns exec NS python3 tests/bgp_raw.py SRC DST TTL

It connects from SRC (bound first: the router checks the source address) to DST:179
with IP TTL `TTL`, prints ``connected``, then writes to the socket every ``send HEX``
line it reads on stdin; ``quit`` ends it. Every BGP message that arrives is printed as
``rx TYPE HEX`` (framed by the header's length), and ``eof`` when the router closes.
`RawPeer` (below) is the test side.
"""

from __future__ import annotations

import queue
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve()


def main() -> None:
    src, dst, ttl = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            print(text, flush=True)

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind((src, 0))
    s.settimeout(10)
    s.connect((dst, 179))
    s.settimeout(None)
    say("connected")

    def reader() -> None:
        buf = b""
        while True:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                say("eof")
                return
            buf += data
            while len(buf) >= 19:
                (n,) = struct.unpack_from("!H", buf, 16)
                if n < 19 or len(buf) < n:
                    break
                say(f"rx {buf[18]} {buf[:n].hex()}")
                buf = buf[n:]

    threading.Thread(target=reader, daemon=True).start()
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "send":
            try:
                s.sendall(bytes.fromhex(cmd[1]))
            except OSError as e:
                say(f"error {e}")
        elif cmd[0] == "quit":
            break
    s.close()


class RawPeer:
    """The test side: start the script in `ns`, send bytes, wait for what comes back."""

    def __init__(self, ns: str, src: str, dst: str, ttl: int = 64) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(HERE), src, dst, str(ttl)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.rx: list[tuple[int, bytes]] = []
        self.eof = False

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("exit")

    def next(self, timeout: float) -> str:
        """The next line (a `rx`, `eof`, `connected`, `exit`, ...); AssertionError at timeout."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"raw peer: nothing within {timeout} s") from None
        if line.startswith("rx "):
            _, t, h = line.split()
            self.rx.append((int(t), bytes.fromhex(h)))
        elif line in ("eof", "exit"):
            self.eof = True
        return line

    def wait_connected(self, timeout: float = 10) -> None:
        line = self.next(timeout)
        if line != "connected":
            err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
            raise AssertionError(f"raw peer did not connect: {line} {err.strip()[-300:]}")

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"send {data.hex()}\n")
        self.proc.stdin.flush()

    def wait_type(self, mtype: int, timeout: float = 10) -> bytes:
        """The next message of type `mtype` (1 OPEN, 2 UPDATE, 3 NOTIFICATION, 4 KEEPALIVE)
        received from now on; AssertionError if the connection ends first."""
        start = len(self.rx)
        while True:
            for t, m in self.rx[start:]:
                if t == mtype:
                    return m
            start = len(self.rx)
            if self.eof:
                raise AssertionError(f"raw peer: connection closed before a type {mtype}")
            self.next(timeout)

    def wait_eof(self, timeout: float = 10) -> None:
        while not self.eof:
            self.next(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__":
    main()
