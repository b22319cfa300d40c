"""A streaming resampler equal to the offline one (:func:`sectl.audio.resample`) on the whole signal.

Both ways of resampling are plans with the same four answers: how many outputs the inputs received so far
complete, which input the next output reads first, how to compute a span of outputs from the inputs kept,
and the delay. torchaudio's kernels (:class:`Kernels`) work in blocks: after reducing the rates by their
gcd, output block ``i`` (``new`` samples) reads input ``[i orig - width, i orig + width + orig)``, so a block
is emitted once that span has arrived, by running the offline function on a buffer that starts a whole
number of blocks back with ``width`` samples of history: its output there is the offline output, exactly,
and no private torchaudio code is needed. Pairs resampled tap by tap (:class:`sectl.audio.sinc.SparseSinc`)
emit each output as soon as its own ``2 width + 1`` inputs have arrived.
"""

from __future__ import annotations

import copy
from typing import Protocol

import torch

from sectl.audio import resample
from sectl.audio.sinc import SparseSinc, filter_width, reduced, uses_kernels


class Plan(Protocol):
    latency: int

    def length(self, n: int) -> int: ...

    def ready(self, received: int) -> int: ...

    def keep_from(self, output: int) -> int: ...

    def outputs(self, x: torch.Tensor, start: int, first: int, stop: int) -> torch.Tensor: ...


class Kernels:
    """torchaudio's block-wise kernels, through the offline function (see the module's docstring)."""

    def __init__(self, orig_rate: int, new_rate: int) -> None:
        self.orig_rate, self.new_rate = orig_rate, new_rate
        self.orig, self.new = reduced(orig_rate, new_rate)
        self.width = filter_width(self.orig, self.new)
        self.history_blocks = -(-self.width // self.orig)

    @property
    def latency(self) -> int:
        """Input samples a block waits for beyond its own: the filter's one-sided span (worst case)."""
        return self.width + self.orig - 1

    def length(self, n: int) -> int:
        return -(-self.new * n // self.orig)

    def ready(self, received: int) -> int:
        return max(0, (received - self.width) // self.orig) * self.new  # blocks whose whole span has arrived

    def keep_from(self, output: int) -> int:
        return max(0, output // self.new - self.history_blocks) * self.orig

    def outputs(self, x: torch.Tensor, start: int, first: int, stop: int) -> torch.Tensor:
        offset = start // self.orig * self.new  # ``start`` is a block boundary (keep_from)
        return resample(x, self.orig_rate, self.new_rate)[..., first - offset : stop - offset]


def plan(orig_rate: int, new_rate: int) -> Plan:
    return Kernels(orig_rate, new_rate) if uses_kernels(orig_rate, new_rate) else SparseSinc(orig_rate, new_rate)


class StreamingResampler:
    """``feed(x (C, n)) -> resampled samples available so far``; ``flush()`` -> the rest, then reset."""

    def __init__(self, orig_rate: int, new_rate: int) -> None:
        self.orig_rate, self.new_rate = orig_rate, new_rate
        self.plan = plan(orig_rate, new_rate)
        self.reset()

    @property
    def latency(self) -> int:
        """Worst-case input samples between an input sample's arrival and the output that covers it."""
        return self.plan.latency

    def reset(self) -> None:
        self.buffer: torch.Tensor | None = None
        self.start = 0  # global index of buffer[..., 0]
        self.received = 0
        self.emitted = 0

    def split(self, rows: list[int]) -> "StreamingResampler":
        """A copy holding channels ``rows`` of the history (the counters are shared by every channel)."""
        part = copy.copy(self)
        part.buffer = None if self.buffer is None else self.buffer[rows]
        return part

    def feed(self, x: torch.Tensor) -> torch.Tensor:
        # Its own copy: the caller may refill ``x`` in place (an audio callback's block) before the next feed.
        self.buffer = x.clone() if self.buffer is None else torch.cat([self.buffer, x], dim=-1)
        self.received += x.shape[-1]
        ready = self.plan.ready(self.received)
        if ready <= self.emitted:
            return x.new_zeros(*x.shape[:-1], 0)
        out = self.plan.outputs(self.buffer, self.start, self.emitted, ready)
        self.emitted = ready
        keep = self.plan.keep_from(ready)
        self.buffer = self.buffer[..., keep - self.start :]
        self.start = keep
        return out

    def flush(self) -> torch.Tensor:
        """The outputs still owed (the input's end is zero-padded, as offline); empty after an empty input."""
        if not self.received:
            out = torch.zeros(0) if self.buffer is None else self.buffer[..., :0]
        else:
            out = self.plan.outputs(self.buffer, self.start, self.emitted, self.plan.length(self.received))
        self.reset()
        return out
