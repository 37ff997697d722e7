"""RFC 4303 §3.4.3 anti-replay window (receiver side), with ESN inference.

The window's right edge `top` is the highest sequence number whose ICV
verified. A sequence number is acceptable if it is right of the window, or
inside it and not yet seen. The caller does::

    if not w.check(seq): drop REPLAY          # cheap pre-check, before the ICV
    verify ICV (drop ICV_FAILED, window untouched)
    w.update(seq)                             # only after the ICV verified

Size 0 turns anti-replay off (every sequence number passes) while `top` is
still tracked, because ESN inference needs it (RFC 4303 App. A2).
"""

from __future__ import annotations

DEFAULT_WINDOW = 64  # RFC 4303 §3.4.3: 64 SHOULD be the default
MIN_WINDOW = 32  # ... and a minimum of 32 MUST be supported
MAX_WINDOW = 1 << 16  # our own cap (bitmap in a Python int)

_MASK32 = 0xFFFFFFFF


class ReplayWindow:
    """Bitmap anti-replay window. Bit i of `bitmap` = seq `top - i` was received."""

    __slots__ = ("size", "top", "bitmap", "mask")

    def __init__(self, size: int = DEFAULT_WINDOW) -> None:
        if size != 0 and not MIN_WINDOW <= size <= MAX_WINDOW:
            raise ValueError(f"replay window {size}: must be 0 (off) or {MIN_WINDOW}..{MAX_WINDOW}")
        self.size = size
        self.top = 0  # highest authenticated sequence number (0 = nothing received yet)
        self.bitmap = 0
        self.mask = (1 << size) - 1  # bits of the window

    @property
    def enabled(self) -> bool:
        return self.size > 0

    def check(self, seq: int) -> bool:
        """True if `seq` may be accepted (does not change state)."""
        if not self.enabled:
            return True
        if seq == 0:  # §3.3.3: the first packet sent is 1; 0 is never valid
            return False
        if seq > self.top:
            return True
        offset = self.top - seq
        if offset >= self.size:  # left of the window
            return False
        return not (self.bitmap >> offset) & 1

    def update(self, seq: int) -> None:
        """Record `seq` as received. Call only after its ICV verified (§3.4.3)."""
        if seq > self.top:
            shift = seq - self.top
            if self.enabled:
                self.bitmap = ((self.bitmap << shift) | 1) & self.mask if shift < self.size else 1
            self.top = seq
        elif self.enabled:
            offset = self.top - seq
            if offset < self.size:
                self.bitmap |= 1 << offset

    def seen(self, seq: int) -> bool:
        """True if `seq` is inside the window and marked received (for tests/show)."""
        offset = self.top - seq
        return self.enabled and 0 <= offset < self.size and bool((self.bitmap >> offset) & 1)

    def infer_esn(self, seq_lo: int) -> int:
        """Full 64-bit sequence number for a received low half (RFC 4303 App. A2.2).

        Uses the window size W for the guess (W = 64 when anti-replay is off).
        A wrong guess makes the ICV fail, and then nothing is updated.
        """
        w = self.size or DEFAULT_WINDOW
        tl = self.top & _MASK32
        th = self.top >> 32
        if tl >= w - 1:  # Case A: window within one subspace
            seq_hi = th if seq_lo >= tl - w + 1 else th + 1
        else:  # Case B: window spans two subspaces
            if seq_lo >= (tl - w + 1) & _MASK32:
                seq_hi = th - 1
            else:
                seq_hi = th
        if seq_hi < 0:  # the very beginning: nothing left of seq_hi 0
            seq_hi = 0
        return (seq_hi << 32) | seq_lo

    def snapshot(self) -> tuple[int, int]:
        return (self.top, self.bitmap)
