"""The impairment scheduler of one link direction: drop, or hold a frame until its release time.

Pure: the caller passes the time (`now`, seconds on any monotonic clock) and a seeded
`random.Random`, and does the waiting itself (`lsr.lab.node_impair`: a timer at
`next_due()`, then `pop_due(now)`). For each frame `push(frame, now)` decides, in netem's
order:

1. **loss**: dropped with probability `loss` (counted `impair-loss`);
2. **queue**: dropped if `queue` frames are held already (tail drop, `impair-queue-full`);
3. **rate**: a token bucket of `rate` bit/s counting Ethernet frame bytes, `burst` bytes
   deep (two full-size frames, or 1 ms at the rate if more): the frame leaves once the
   bucket has paid for it, and frames leave in order;
4. **delay and jitter**: then `delay` plus a uniform sample of [-jitter, +jitter]; a frame
   never leaves before the one in front of it (no reordering: a sample that would pass the
   previous frame waits for it, as netem does with a rate set).

Released frames come out of `pop_due` in the order they went in.
"""

from __future__ import annotations

import random
from collections import deque

from lsr.core.impair import Impairment

FULL_FRAME = 1514  # bytes: an Ethernet frame of a 1500-byte MTU without FCS
LOSS = "impair-loss"
QUEUE_FULL = "impair-queue-full"


class Scheduler:
    """One direction of one impaired link (see the module docstring)."""

    def __init__(self, params: Impairment, rng: random.Random) -> None:
        self.rng = rng
        self.held: deque[tuple[float, bytes]] = deque()  # (release time, frame), in order
        self.counters = {LOSS: 0, QUEUE_FULL: 0, "impair-passed": 0}
        self.params = params
        self._tokens = 0.0  # bytes in the bucket (negative: a debt the queue is paying off)
        self._stamp: float | None = None  # when the bucket was last brought up to date
        self._last = float("-inf")  # release time of the frame last queued (no reordering)
        self.set_params(params)

    def set_params(self, params: Impairment) -> None:
        """New parameters from now on; frames already held keep their release times."""
        self.params = params
        self._rate = params.rate / 8.0  # bytes a second
        self._burst = max(2.0 * FULL_FRAME, self._rate * 1e-3)
        self._tokens = min(self._tokens, self._burst) if self._stamp is not None else self._burst

    def _rate_time(self, size: int, now: float) -> float:
        """When the token bucket lets `size` bytes leave (tokens go into debt for queued frames)."""
        if self._stamp is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        self._tokens -= size
        return now if self._tokens >= 0 else now - self._tokens / self._rate

    def push(self, frame: bytes, now: float) -> str | None:
        """Queue `frame` arriving at `now`; None, or the counter it was dropped under."""
        p = self.params
        if p.loss and self.rng.random() < p.loss:
            self.counters[LOSS] += 1
            return LOSS
        if len(self.held) >= p.queue:
            self.counters[QUEUE_FULL] += 1
            return QUEUE_FULL
        t = self._rate_time(len(frame), now) if self._rate else now
        t += p.delay
        if p.jitter:
            t += self.rng.uniform(-p.jitter, p.jitter)
        t = max(t, now, self._last)
        self._last = t
        self.held.append((t, frame))
        return None

    def next_due(self) -> float | None:
        """Release time of the first held frame (None: nothing held)."""
        return self.held[0][0] if self.held else None

    def pop_due(self, now: float) -> list[bytes]:
        """Every held frame whose time has come, in order."""
        out = []
        held = self.held
        while held and held[0][0] <= now:
            out.append(held.popleft()[1])
        self.counters["impair-passed"] += len(out)
        return out

    def clear(self) -> list[bytes]:
        """Hand back every held frame (the impairment was removed: they leave now)."""
        out = [f for _, f in self.held]
        self.held.clear()
        self.counters["impair-passed"] += len(out)
        return out
