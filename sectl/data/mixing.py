"""On-the-fly noisy/clean pairs: clean speech (+ optional room response) + noise at a random SNR.

Every batch is a pure function of ``(seed, step)``, so a resumed run sees exactly the batches an
uninterrupted one would, without saving any data-loader state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from torch.utils.data import default_collate

from sectl.data.sources import ClipCache, example_indices, list_files, random_crop


def folder_groups(folders: str | list[str], what: str) -> list[list[Path]]:
    """The audio files of each folder, one list per folder."""
    folders = [folders] if isinstance(folders, str) else list(folders)
    return [list_files(folder, what) for folder in folders]


def pick(groups: list[list[Path]], rng: np.random.Generator) -> Path:
    """A folder uniformly, then a file in it: a small real corpus is not drowned by a large synthetic one."""
    group = groups[rng.integers(len(groups))]
    return group[rng.integers(len(group))]


@dataclass
class MixingConfig:
    """Where clips come from and how they are mixed; lists of folders are sampled folder-first."""

    clean: str | list[str]
    noise: str | list[str]
    rir: str | list[str] | None = None
    segment_s: float = 2.0
    snr_db: tuple[float, float] = (-5.0, 20.0)
    gain_db: tuple[float, float] = (-20.0, 0.0)  # level of the mixture's peak relative to full scale
    rir_prob: float = 0.3
    noise_filter_prob: float = 0.5  # random low/high-pass on the noise: more noise colours


class MixingSampler:
    """Draws ``(noisy, clean)`` batches ``(B, T)`` at ``sample_rate``."""

    def __init__(self, config: MixingConfig, sample_rate: int = 16000, seed: int = 0) -> None:
        self.config, self.sample_rate, self.seed = config, sample_rate, seed
        self.cache = ClipCache(sample_rate)
        self.clean_files = folder_groups(config.clean, "data.clean")
        self.noise_files = folder_groups(config.noise, "data.noise")
        self.rir_files = folder_groups(config.rir, "data.rir") if config.rir else []
        self.length = int(config.segment_s * sample_rate)

    def rng(self, step: int, index: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, step, index])

    def batch(self, step: int, examples: int | range) -> tuple[torch.Tensor, torch.Tensor]:
        """Examples ``examples`` (a count, or indices within the global batch) of step ``step``."""
        noisy, clean = default_collate([self.draw(step, i) for i in example_indices(examples)])
        return noisy, clean

    def draw(self, step: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Example ``index`` of step ``step``'s global batch."""
        return self.example(self.rng(step, index))

    def example(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        clean = random_crop(self.cache.get(pick(self.clean_files, rng)), self.length, rng)
        if self.rir_files and rng.random() < c.rir_prob:
            clean = self._reverberate(clean, rng)
        noise = random_crop(self.cache.get(pick(self.noise_files, rng)), self.length, rng, loop=True)
        if rng.random() < c.noise_filter_prob:
            noise = self._filter(noise, rng)
        snr = rng.uniform(*c.snr_db)
        clean_power = clean.pow(2).mean().clamp_min(1e-10)
        noise_power = noise.pow(2).mean().clamp_min(1e-10)
        noise = noise * torch.sqrt(clean_power / (noise_power * 10 ** (snr / 10)))
        noisy = clean + noise
        peak = noisy.abs().max().clamp_min(1e-6)
        gain = 10 ** (rng.uniform(*c.gain_db) / 20) / peak
        return noisy * gain, clean * gain

    def _reverberate(self, clean: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        rir = self.cache.get(pick(self.rir_files, rng))
        rir = rir / rir.abs().max().clamp_min(1e-6)
        direct = int(rir.abs().argmax())
        wet = AF.fftconvolve(clean, rir)[direct : direct + clean.shape[-1]]
        # Keep the target's level: the model learns to dereverberate only as far as the target says.
        return wet * clean.pow(2).mean().sqrt() / wet.pow(2).mean().sqrt().clamp_min(1e-8)

    def _filter(self, noise: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        cutoff = float(rng.uniform(300, 6000))
        if rng.random() < 0.5:
            return AF.lowpass_biquad(noise, self.sample_rate, cutoff)
        return AF.highpass_biquad(noise, self.sample_rate, cutoff)
