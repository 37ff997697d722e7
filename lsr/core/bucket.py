"""A token bucket on the caller's clock: how LDP and OSPF bound new neighbours a second.

Pure (the clock is passed in: virtual time in the simulator, `time.monotonic()` in a
lab router), so a flood bound is as deterministic as the rest of a simulation.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; full on first use."""

    rate: float
    burst: float
    tokens: float = -1.0  # < 0: not used yet
    stamp: float = 0.0

    def take(self, now: float) -> bool:
        """Spend one token at time `now`; False (nothing spent) when there is none."""
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = max(self.stamp, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
