"""Stopping a run on SIGINT or SIGTERM at a step boundary, so the step it reached is saved.

The signal handler only records the request; the training loop looks at it between steps, where the
state is whole, saves ``last.pt`` and raises :class:`StopRequested`. Under ``torchrun`` the signal
reaches every rank, but not within the same step: each rank casts its vote into the all-reduce that
every step already makes (:meth:`sectl.train.distributed.Workers.all_true`), and all ranks read the
agreed vote ``lag`` steps later, so they stop after the same step without an extra collective. On a
GPU the vote is copied to pinned host memory behind the step and read once the device has finished
that step, while the next one is already queued: the device never waits for the host.
"""

from __future__ import annotations

import signal
import threading
from collections import deque
from typing import Any

import torch

SIGNALS = (signal.SIGINT, signal.SIGTERM)
KEEP_GOING = 1 << 20
"""A stop vote that asks for nothing (larger than any signal number: the all-reduce takes the minimum)."""


class StopRequested(KeyboardInterrupt):
    """The run stopped on a signal after saving ``step`` (a KeyboardInterrupt, so callers that stop on
    Ctrl-C keep doing so); ``signum`` is the signal (exit status ``128 + signum``)."""

    def __init__(self, signum: int, step: int, path: str) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}; step {step} is saved in {path}")
        self.signum, self.step, self.path = signum, step, path


class StopSignals:
    """While entered (in the main thread), SIGINT and SIGTERM set :attr:`signum` instead of raising.

    Every signal only records itself: under ``torchrun`` in a terminal a rank gets Ctrl-C twice (from the
    terminal and forwarded by torchrun), so a second one cannot mean "stop at once"; SIGKILL does that.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _record(self, signum: int, frame: Any) -> None:
        self.signum = self.signum or signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._record) for s in SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}


class StopVote:
    """This rank's request to stop, agreed over the ranks inside a collective every step makes.

    :attr:`mine` is :data:`KEEP_GOING` or the number of the signal that asked to stop, on the rank's
    device; it rides along the step's ``all_true`` all-reduce (a minimum: one rank's signal stops them
    all, and every rank names the same one), which leaves the agreed value in :attr:`agreed`.
    :meth:`after_step` keeps it; :meth:`stop_now`, before a step, reads the one kept ``lag`` steps
    earlier: 1 on a CPU (already computed), 2 on a GPU (that step is finished on the device while the
    next one runs, so reading it makes nobody wait).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mine = torch.full((), KEEP_GOING, dtype=torch.int32, device=device)
        self.agreed: torch.Tensor | None = None
        self.asked = False
        self.lag = 2 if device.type == "cuda" else 1
        self._kept: deque[tuple[torch.cuda.Event | None, torch.Tensor | None]] = deque()

    def ask(self, signum: int) -> None:
        """Vote to stop (between steps: the next step's collective carries it)."""
        if not self.asked:
            self.mine.fill_(int(signum))
            self.asked = True

    def after_step(self) -> None:
        """Keep this step's agreed vote, copied to the host without waiting (none: the step made no collective)."""
        agreed, self.agreed = self.agreed, None
        if agreed is None or self.device.type != "cuda":
            self._kept.append((None, agreed))
            return
        host = torch.empty((), dtype=agreed.dtype, pin_memory=True)
        host.copy_(agreed, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._kept.append((event, host))

    def stop_now(self) -> int | None:
        """The signal every rank stops on before this step (the vote agreed ``lag`` steps ago, the same on
        every rank), or ``None``."""
        if len(self._kept) < self.lag:
            return None
        event, value = self._kept.popleft()
        if event is not None:
            event.synchronize()
        signum = KEEP_GOING if value is None else int(value)
        return None if signum == KEEP_GOING else signum
