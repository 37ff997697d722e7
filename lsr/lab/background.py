"""A computation forked off `lsr lab up`: the simulator's converged state of the lab
(`lsr.lab.expected`) runs while namespaces, links and routers are made, not after the
routers started (200 routers: 14 s of CPU that had held the convergence check back,
competing with 200 converging routers for two cores).

The child writes its pickled result to a file in the lab's state directory and exits
(its memory goes with it); `result()` waits for it. If the child fails, `result()`
computes the value here instead: the answer never depends on the fork.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsr.lab.files import write_file

NICE = -10


class Background:
    """`fn()` computed in a forked child; `result()` once it is needed."""

    def __init__(self, fn: Callable[[], Any], out: Path) -> None:
        self.fn = fn
        self.out = out
        self.pid = os.fork()
        if self.pid == 0:  # the child: compute, write, leave (never return)
            code = 1
            try:
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)  # `up`'s handlers are not ours
                with contextlib.suppress(OSError):  # (root only)
                    # Ahead of the routers for the CPU: `lab up` waits for this result,
                    # and among 200 starting routers it had a 200th of two cores.
                    os.nice(NICE)
                write_file(out, pickle.dumps(fn(), protocol=pickle.HIGHEST_PROTOCOL), 0o600)
                code = 0
            except BaseException:  # noqa: S110  (result() computes it again, and says why)
                pass
            finally:
                os._exit(code)

    def result(self) -> Any:
        """The value: the child's, or (it failed) computed here."""
        if self.pid > 0:
            _, status = os.waitpid(self.pid, 0)
            self.pid = 0
            if os.waitstatus_to_exitcode(status) == 0:
                with contextlib.suppress(OSError, pickle.UnpicklingError, EOFError):
                    value = pickle.loads(self.out.read_bytes())
                    self.out.unlink()
                    return value
        return self.fn()

    def cancel(self) -> None:
        """End the child (by its PID) and reap it: `up` failed or was interrupted."""
        if self.pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0
        with contextlib.suppress(OSError):
            self.out.unlink()
