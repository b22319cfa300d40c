"""Waveform augmentations shared by training data pipelines and tools."""

from __future__ import annotations

import torch
import torchaudio.functional as AF


def speed_perturb(wave: torch.Tensor, factor: float, sample_rate: int = 16000) -> torch.Tensor:
    """Play ``wave`` ``factor`` times faster (pitch moves with it), as Kaldi-style speed perturbation.

    Implemented as resampling from ``sample_rate * factor`` to ``sample_rate``: the result has
    ``len / factor`` samples. Rates are rounded to 10 Hz so the polyphase filter stays small.
    """
    if factor <= 0:
        raise ValueError("speed factor must be > 0")
    if factor == 1.0:
        return wave
    orig = int(round(sample_rate * factor / 10)) * 10
    return AF.resample(wave, orig, sample_rate)
