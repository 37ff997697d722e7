"""Feeding a sans-I/O protocol engine in a router runtime: events in order, actions out."""

from __future__ import annotations

import collections
import logging
import traceback
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("lsr.lab")


def drain(queue: collections.deque, handle: Callable[[Any], Iterable[Any]],
          do: Callable[[Any], None], counters: collections.Counter, proto: str) -> None:
    """Hand each queued event to `handle` (the engine) and carry out the actions it
    returns with `do`, until the queue is empty (an action may queue more events). An
    exception in either is counted (`<proto>_errors`, `action_errors`) and logged: a bad
    packet or an engine bug must not stop the router."""
    while queue:
        e = queue.popleft()
        try:
            actions = handle(e)
        except Exception:
            counters[f"{proto}_errors"] += 1
            log.error("%s.handle(%s) failed:\n%s", proto, type(e).__name__,
                      traceback.format_exc())
            continue
        for a in actions:
            try:
                do(a)
            except Exception:
                counters["action_errors"] += 1
                log.error("%s action %s failed:\n%s", proto, type(a).__name__,
                          traceback.format_exc())
