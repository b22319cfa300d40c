"""Paired noisy/clean folders (matched by relative path): training crops and whole-file validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from sectl.audio import pair_files
from sectl.data.sources import ClipCache, example_indices, random_crop
from sectl.errors import ConfigError


def paired_files(noisy: str | Path, clean: str | Path, what: str) -> list[tuple[str, Path, Path]]:
    """``(name, noisy, clean)`` for every file present in both folders."""
    for folder in (noisy, clean):
        if not Path(folder).exists():
            raise ConfigError(f"{what}: {folder}: no such file or folder")
    pairing = pair_files(noisy, ref=clean)
    if not pairing.pairs:
        raise ConfigError(f"{what}: no files with the same relative path in {noisy} and {clean}")
    return [(name, est, ref) for name, ref, est in pairing.pairs]


class PairedSampler:
    """Random aligned crops from paired folders; batches are a pure function of ``(seed, step)``."""

    def __init__(self, noisy: str, clean: str, segment_s: float, sample_rate: int = 16000, seed: int = 0) -> None:
        self.pairs = paired_files(noisy, clean, "data.noisy/data.clean")
        self.cache = ClipCache(sample_rate)
        self.length, self.seed = int(segment_s * sample_rate), seed

    def batch(self, step: int, examples: int | range) -> tuple[torch.Tensor, torch.Tensor]:
        noisy, clean = default_collate([self.draw(step, i) for i in example_indices(examples)])
        return noisy, clean

    def draw(self, step: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Example ``index`` of step ``step``'s global batch: an aligned (noisy, clean) crop."""
        rng = np.random.default_rng([self.seed, step, index])
        _, n_path, c_path = self.pairs[rng.integers(len(self.pairs))]
        n, c = self.cache.get(n_path), self.cache.get(c_path)
        length = min(n.shape[-1], c.shape[-1])
        crop = random_crop(torch.stack([n[:length], c[:length]]), self.length, rng)
        return crop[0], crop[1]

