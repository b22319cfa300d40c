"""torchaudio's windowed-sinc resampler computed tap by tap: bounded cost and delay at any pair of rates.

torchaudio reduces the rates by their gcd to ``orig:new`` and convolves with ``new`` kernels of ``2 width +
orig`` taps at stride ``orig``: cheap for 147:160 (44.1 -> 48 kHz), but 7999 -> 16000 Hz is 7999:16000, a
512 MB kernel (4 GB at peak), 8,000 multiply-adds per output sample and a second of delay (a streaming output block waits
for ``orig`` input samples), all for the ``2 width + 1`` taps that are not zero. :class:`SparseSinc` reads only
those: output ``j`` sits at input position ``j orig / new`` (integer part ``q``, fraction ``r / new``) and
reads inputs ``q - width .. q + width``, weighted by the same filter (Hann-windowed sinc, width 6, rolloff
0.99), so it equals torchaudio to float rounding. Each output depends on its own inputs only, so a stream
computes exactly what the whole signal does.
"""

from __future__ import annotations

import math

import torch

LOWPASS_FILTER_WIDTH = 6  # torchaudio's defaults, which sectl.audio.resample uses
ROLLOFF = 0.99
KERNEL_FLOATS = 1 << 20
"""Pairs whose torchaudio kernels (``new x (2 width + orig)`` floats) fit in 4 MB, with blocks of at most
``BLOCK_LIMIT`` input samples (a stream's delay), keep them: every pair of the usual rates 8 to 192 kHz
(44.1:48 kHz is 147:160, 192:22.05 kHz 1280:147). Others (7999:16000 would be 512 MB) go tap by tap."""
BLOCK_LIMIT = 2048
OUTPUTS_PER_PASS = 1 << 14  # bounds the gathered taps to OUTPUTS_PER_PASS x (2 width + 1) per channel


def reduced(orig_rate: int, new_rate: int) -> tuple[int, int]:
    g = math.gcd(orig_rate, new_rate)
    return orig_rate // g, new_rate // g


def uses_kernels(orig_rate: int, new_rate: int) -> bool:
    """Whether this pair resamples with torchaudio's precomputed kernels (else tap by tap)."""
    orig, new = reduced(orig_rate, new_rate)
    return orig <= BLOCK_LIMIT and new * (2 * filter_width(orig, new) + orig) <= KERNEL_FLOATS


def filter_width(orig: int, new: int) -> int:
    """torchaudio's one-sided span in input samples, for reduced rates."""
    return math.ceil(LOWPASS_FILTER_WIDTH * orig / (min(orig, new) * ROLLOFF))


class SparseSinc:
    """``self(x)`` resamples ``(..., n)`` along the last axis; :meth:`outputs` computes any span of outputs from
    any span of inputs (what a stream has kept), with zeros outside the signal, as torchaudio pads it."""

    def __init__(self, orig_rate: int, new_rate: int) -> None:
        self.orig, self.new = reduced(orig_rate, new_rate)
        self.width = filter_width(self.orig, self.new)
        self.cutoff = min(self.orig, self.new) * ROLLOFF / self.orig  # in cycles per input sample, times 2

    @property
    def latency(self) -> int:
        """Input samples an output waits for beyond its position: the filter's one-sided span."""
        return self.width

    def length(self, n: int) -> int:
        """Output samples for ``n`` input samples, as torchaudio counts them."""
        return -(-self.new * n // self.orig)

    def ready(self, received: int) -> int:
        """Outputs whose every tap is among the first ``received`` inputs."""
        return max(0, -(-(received - self.width) * self.new // self.orig))

    def keep_from(self, output: int) -> int:
        """The first input that output ``output`` (and every later one) reads."""
        return max(0, output * self.orig // self.new - self.width)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs(x, 0, 0, self.length(x.shape[-1]))

    def outputs(self, x: torch.Tensor, start: int, first: int, stop: int) -> torch.Tensor:
        """Outputs ``first .. stop - 1`` from ``x``, which holds inputs ``start ..`` (zeros elsewhere)."""
        pieces = [self._pass(x, start, j, min(j + OUTPUTS_PER_PASS, stop)) for j in range(first, stop, OUTPUTS_PER_PASS)]
        return torch.cat(pieces, dim=-1) if pieces else x.new_zeros(*x.shape[:-1], 0)

    def _pass(self, x: torch.Tensor, start: int, first: int, stop: int) -> torch.Tensor:
        offsets = torch.arange(-self.width, self.width + 1, device=x.device)
        position = torch.arange(first, stop, device=x.device) * self.orig
        whole, fraction = position // self.new, (position % self.new).double() / self.new
        index = whole[:, None] + offsets - start
        inside = (index >= 0) & (index < x.shape[-1])
        taps = x[..., index.clamp(0, max(0, x.shape[-1] - 1))] if x.shape[-1] else x.new_zeros(*x.shape[:-1], *index.shape)
        return (taps * (self._weights(offsets, fraction) * inside).to(x.dtype)).sum(-1)

    def _weights(self, offsets: torch.Tensor, fraction: torch.Tensor) -> torch.Tensor:
        """torchaudio's ``sinc_interp_hann`` kernel at distances ``offset - fraction`` (float64)."""
        t = (offsets[None, :] - fraction[:, None]) * self.cutoff
        window = torch.where(t.abs() < LOWPASS_FILTER_WIDTH, torch.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2, 0.0)
        return torch.sinc(t) * window * self.cutoff
