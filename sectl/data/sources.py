"""Loading clips for training: a bounded cache of decoded, resampled files and seeded random crops."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from sectl.audio import find_audio_files, read_audio
from sectl.errors import ConfigError


class ClipCache:
    """Decoded mono clips at one rate, least-recently-used files evicted past ``max_bytes``."""

    def __init__(self, sample_rate: int, max_bytes: int = 2 * 2**30) -> None:
        self.sample_rate, self.max_bytes = sample_rate, max_bytes
        self._clips: OrderedDict[Path, torch.Tensor] = OrderedDict()
        self._bytes = 0

    def get(self, path: Path) -> torch.Tensor:
        if path in self._clips:
            self._clips.move_to_end(path)
            return self._clips[path]
        clip = read_audio(path, sample_rate=self.sample_rate).samples[0]
        self._clips[path] = clip
        self._bytes += clip.numel() * 4
        while self._bytes > self.max_bytes and len(self._clips) > 1:
            _, old = self._clips.popitem(last=False)
            self._bytes -= old.numel() * 4
        return clip


def list_files(folders: str | list[str] | None, what: str) -> list[Path]:
    """Audio files under one or several folders; an empty result is a configuration error."""
    if folders is None:
        return []
    folders = [folders] if isinstance(folders, (str, Path)) else list(folders)
    files: list[Path] = []
    for folder in folders:
        if not Path(folder).exists():
            raise ConfigError(f"{what}: {folder}: no such file or folder")
        files.extend(find_audio_files(folder))
    if not files:
        raise ConfigError(f"{what}: no audio files in {', '.join(map(str, folders))}")
    return files


def example_indices(examples: int | range) -> range:
    """``examples`` as indices within a step's global batch: a count ``n`` means ``range(n)``; a rank of a
    data-parallel run passes its own slice, so each example's randomness is the same whoever draws it."""
    return range(examples) if isinstance(examples, int) else examples


def random_crop(clip: torch.Tensor, length: int, rng: np.random.Generator, loop: bool = False) -> torch.Tensor:
    """A ``length``-sample excerpt along the last axis (the same for every leading channel).

    Short clips are zero-padded at a random offset, or tiled from a random start when ``loop``.
    """
    n = clip.shape[-1]
    if n >= length:
        start = int(rng.integers(0, n - length + 1))
        return clip[..., start : start + length]
    if loop:
        tiled = clip.repeat(*([1] * (clip.dim() - 1)), -(-length // n) + 1)
        start = int(rng.integers(0, n))
        return tiled[..., start : start + length]
    out = clip.new_zeros((*clip.shape[:-1], length))
    offset = int(rng.integers(0, length - n + 1))
    out[..., offset : offset + n] = clip
    return out

