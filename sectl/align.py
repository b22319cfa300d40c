"""Soft-DTW alignment of two recordings in a feature space (the library behind ``sectl align``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torchaudio

from sectl.audio import read_audio
from sectl.errors import UsageError
from sectl.losses.softdtw import SoftDTW, hard_alignment_path, pairwise_cost
from sectl.plotting import pyplot, save_png

ALIGN_RATE = 16000
MFCC_HOP = 160  # 10 ms frames


@dataclass
class Alignment:
    """Result of aligning A (``n`` frames) with B (``m`` frames); ``to_json`` is the ``--json`` schema."""

    cost: float
    divergence: float
    frames: tuple[int, int]
    hop_s: float
    path: list[tuple[int, int]]
    cost_matrix: np.ndarray = field(repr=False)

    @property
    def mean_warp_s(self) -> float:
        """Mean absolute time offset |t_A - t_B| along the path, in seconds."""
        p = np.asarray(self.path, dtype=float)
        return float(np.abs(p[:, 0] - p[:, 1]).mean() * self.hop_s)

    @property
    def slope(self) -> float:
        """Least-squares slope of B's frame index against A's along the path (1 = same tempo)."""
        p = np.asarray(self.path, dtype=float)
        return float(np.polyfit(p[:, 0], p[:, 1], 1)[0]) if len(p) > 1 else 1.0

    def to_json(self) -> dict:
        return {
            "cost": self.cost,
            "divergence": self.divergence,
            "frames": list(self.frames),
            "hop_s": self.hop_s,
            "mean_warp_s": self.mean_warp_s,
            "slope": self.slope,
            "path": [list(p) for p in self.path],
        }


def mfcc_features(wave: torch.Tensor) -> torch.Tensor:
    """20 MFCCs per 10 ms frame, mean- and variance-normalised per utterance: ``(frames, 20)``."""
    transform = torchaudio.transforms.MFCC(
        sample_rate=ALIGN_RATE, n_mfcc=20, melkwargs={"n_fft": 512, "win_length": 400, "hop_length": MFCC_HOP, "n_mels": 40}
    )
    feats = transform(wave).T
    return (feats - feats.mean(0)) / (feats.std(0) + 1e-5)


FeatureFn = Callable[[torch.Tensor], torch.Tensor]
MIN_FRAMES = 4
"""Fewest feature frames per signal that an alignment (and its slope) means anything for."""


def feature_extractor(kind: str, model: str | Path | None = None, device: str = "cpu") -> tuple[FeatureFn, float]:
    """The feature function for ``kind`` and its hop in seconds; networks compute on ``device``."""
    if kind == "mfcc":
        return mfcc_features, MFCC_HOP / ALIGN_RATE
    if kind == "ssl":
        from sectl.models.teachers.ssl import ssl_feature_extractor

        return ssl_feature_extractor(model, device=device)
    if kind == "model":
        if model is None:
            raise UsageError("--features model needs --model (a model name, run folder or checkpoint)")
        from sectl.models.io.loading import encoder_feature_extractor

        return encoder_feature_extractor(model, ALIGN_RATE, device)
    raise UsageError(f"--features: unknown feature kind {kind!r}; use mfcc, ssl or model")


def align_waves(
    a: torch.Tensor,
    b: torch.Tensor,
    features: FeatureFn = mfcc_features,
    hop_s: float = MFCC_HOP / ALIGN_RATE,
    gamma: float = 0.1,
    band: int | None = None,
) -> Alignment:
    """Align two 16 kHz mono waveforms ``(T,)``; costs are normalised by the feature dimension."""
    with torch.no_grad():
        fa, fb = features(a).double(), features(b).double()
        sdtw = SoftDTW(gamma=gamma, bandwidth=band, normalize_cost=True)
        div = SoftDTW(gamma=gamma, bandwidth=band, normalize_cost=True, divergence=True)
        cost = sdtw(fa[None], fb[None]).item()
        divergence = div(fa[None], fb[None]).item()
        matrix = pairwise_cost(fa[None], fb[None])[0] / fa.shape[-1]
    path = hard_alignment_path(matrix, band)
    return Alignment(cost, divergence, (fa.shape[0], fb.shape[0]), hop_s, path, matrix.numpy())


def align_files(
    a: str | Path,
    b: str | Path,
    features: str = "mfcc",
    model: str | Path | None = None,
    gamma: float = 0.1,
    band: int | None = None,
    device: str = "cpu",
) -> Alignment:
    """Read two recordings (any rate; resampled to 16 kHz mono) and align them (features on ``device``)."""
    wave_a = read_audio(a, sample_rate=ALIGN_RATE).samples[0]
    wave_b = read_audio(b, sample_rate=ALIGN_RATE).samples[0]
    fn, hop_s = feature_extractor(features, model, device)
    needed = MIN_FRAMES * hop_s + 0.025  # a few frames after the analysis window
    for path, wave in ((a, wave_a), (b, wave_b)):
        if wave.shape[-1] < needed * ALIGN_RATE:
            raise UsageError(f"{path}: {wave.shape[-1] / ALIGN_RATE * 1000:.0f} ms is too short to align in {features} "
                             f"features (needs at least {needed * 1000:.0f} ms)")  # fmt: skip
    return align_waves(wave_a, wave_b, fn, hop_s, gamma, band)


def plot_alignment(alignment: Alignment, path: str | Path, labels: tuple[str, str] = ("A", "B"), overwrite: bool = False) -> None:
    """Cost matrix with the hard path, time axes in seconds, saved as PNG."""
    plt = pyplot()
    n, m = alignment.frames
    hop = alignment.hop_s
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(alignment.cost_matrix.T, origin="lower", aspect="auto", cmap="magma", extent=(0, n * hop, 0, m * hop))
    p = np.asarray(alignment.path) * hop + hop / 2
    ax.plot(p[:, 0], p[:, 1], color="cyan", linewidth=1.2, label="alignment path")
    ax.set_xlabel(f"{labels[0]} time (s)")
    ax.set_ylabel(f"{labels[1]} time (s)")
    ax.set_title(f"soft-DTW cost {alignment.cost:.3g}, divergence {alignment.divergence:.3g}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    save_png(fig, path, overwrite)
