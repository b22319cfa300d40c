"""Waveform augmentations shared by training data pipelines and tools."""

from __future__ import annotations

import torch
from torch import nn

from sectl.audio.io import Resampler, resample


def source_rate(factor: float, sample_rate: int = 16000) -> int:
    """The rate a signal at ``sample_rate`` is taken to have so that resampling it to ``sample_rate`` plays
    it ``factor`` times faster (pitch moves with it), rounded to 10 Hz so the polyphase filter stays small."""
    if factor <= 0:
        raise ValueError("speed factor must be > 0")
    return int(round(sample_rate * factor / 10)) * 10


def speed_resampler(factor: float, sample_rate: int = 16000) -> nn.Module:
    """A module that plays its input ``factor`` times faster, as :func:`speed_perturb` does, holding its
    kernel: a loss that owns one per factor moves them to its device once, so no step builds or copies
    a kernel (a host-to-device copy the first time a factor is drawn would make the GPU wait)."""
    return Resampler(source_rate(factor, sample_rate), sample_rate)  # factor 1: no kernel, the input as is


def speed_perturb(wave: torch.Tensor, factor: float, sample_rate: int = 16000) -> torch.Tensor:
    """Play ``wave`` ``factor`` times faster (pitch moves with it), as Kaldi-style speed perturbation:
    resampling from :func:`source_rate` to ``sample_rate`` gives ``len / factor`` samples (factor 1: ``wave``)."""
    return resample(wave, source_rate(factor, sample_rate), sample_rate)
