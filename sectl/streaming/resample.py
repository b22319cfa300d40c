"""A streaming resampler equal to the offline one (``torchaudio.functional.resample``) on the whole signal.

torchaudio's resampler is a strided convolution: after reducing the rates by their gcd, output block
``i`` (``new`` samples) reads input ``[i orig - width, i orig + width + orig)``. A block is emitted as
soon as that span has arrived, by running the offline function on a buffer that starts a whole number
of blocks back with ``width`` samples of history: its output there is the offline output, exactly,
and no private torchaudio code is needed.
"""

from __future__ import annotations

import math

import torch

from sectl.audio import resample

LOWPASS_FILTER_WIDTH = 6  # torchaudio's defaults, which sectl.audio.resample uses
ROLLOFF = 0.99


class StreamingResampler:
    """``feed(x (C, n)) -> resampled samples available so far``; ``flush()`` -> the rest, then reset."""

    def __init__(self, orig_rate: int, new_rate: int) -> None:
        self.orig_rate, self.new_rate = orig_rate, new_rate
        g = math.gcd(orig_rate, new_rate)
        self.orig, self.new = orig_rate // g, new_rate // g
        self.width = math.ceil(LOWPASS_FILTER_WIDTH * self.orig / (min(self.orig, self.new) * ROLLOFF))
        self.history_blocks = -(-self.width // self.orig)
        self.reset()

    @property
    def latency(self) -> int:
        """Input samples a block waits for beyond its own: the filter's one-sided span (worst case)."""
        return self.width + self.orig - 1

    def reset(self) -> None:
        self.buffer: torch.Tensor | None = None
        self.buffer_block = 0  # global block index of buffer[..., 0]
        self.received = 0
        self.emitted_blocks = 0

    def _take(self, stop: int) -> torch.Tensor:
        """Output samples from the first not yet emitted up to global index ``stop``."""
        offset = self.buffer_block * self.new
        out = resample(self.buffer, self.orig_rate, self.new_rate)
        return out[..., self.emitted_blocks * self.new - offset : stop - offset]

    def feed(self, x: torch.Tensor) -> torch.Tensor:
        self.buffer = x if self.buffer is None else torch.cat([self.buffer, x], dim=-1)
        self.received += x.shape[-1]
        complete = (self.received - self.width) // self.orig  # blocks whose whole span has arrived
        if complete <= self.emitted_blocks:
            return x.new_zeros(*x.shape[:-1], 0)
        out = self._take(complete * self.new)
        self.emitted_blocks = complete
        keep_from = max(self.buffer_block, complete - self.history_blocks)
        self.buffer = self.buffer[..., (keep_from - self.buffer_block) * self.orig :]
        self.buffer_block = keep_from
        return out

    def flush(self) -> torch.Tensor:
        if self.buffer is None:
            return torch.zeros(0)
        out = self._take(math.ceil(self.new * self.received / self.orig))
        self.reset()
        return out
