"""Clean-speech crops for models that reconstruct their input (speech VAEs)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import default_collate

from sectl.data.mixing import folder_groups, pick
from sectl.data.sources import ClipCache, example_indices, random_crop


class SpeechSampler:
    """Batches ``(B, T)`` of clean crops at a random level; a pure function of ``(seed, step)``."""

    def __init__(self, clean: str | list[str], segment_s: float, sample_rate: int, seed: int = 0,
                 gain_db: tuple[float, float] = (-20.0, 0.0)) -> None:  # fmt: skip
        self.files = folder_groups(clean, "data.clean")
        self.cache = ClipCache(sample_rate)
        self.length, self.seed, self.gain_db = int(segment_s * sample_rate), seed, gain_db

    def batch(self, step: int, examples: int | range) -> torch.Tensor:
        return default_collate([self.draw(step, i) for i in example_indices(examples)])

    def draw(self, step: int, index: int) -> torch.Tensor:
        """Example ``index`` of step ``step``'s global batch."""
        rng = np.random.default_rng([self.seed, step, index])
        crop = random_crop(self.cache.get(pick(self.files, rng)), self.length, rng)
        peak = crop.abs().max().clamp_min(1e-6)
        return crop * 10 ** (rng.uniform(*self.gain_db) / 20) / peak
