"""Soft-DTW alignment of two recordings in a feature space (the library behind ``sectl align``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torchaudio

from sectl.audio import read_audio
from sectl.errors import UsageError
from sectl.options import FEATURE_KINDS
from sectl.losses.softdtw import align_pair, pairwise_cost
from sectl.losses.softdtw_kernels import band_storage
from sectl.plotting import pyplot, save_png

ALIGN_RATE = 16000
MFCC_HOP = 160  # 10 ms frames
AUTO_BAND_BYTES = 1 << 26
"""Path storage (one byte per band cell) above which a pair aligned without ``--band`` gets one: 64 MiB
keeps the full matrix up to 8192 x 8192 frames (82 s of MFCC frames) and bounds a longer pair's memory
and time (each cell costs D flops in each of three passes)."""
PLOT_FRAMES = 1000
"""Most frames per axis of the cost image kept for ``--plot``: longer pairs keep every k-th frame."""


@dataclass
class Alignment:
    """Result of aligning A (``n`` frames) with B (``m`` frames); ``to_json`` is the ``--json`` schema.

    ``band``: the Sakoe-Chiba half-width used (``None``: the full matrix), ``band_chosen`` when it was
    chosen here for a long pair. ``cost_matrix`` is for plots: every k-th frame of a long pair's.
    """

    cost: float
    divergence: float
    frames: tuple[int, int]
    hop_s: float
    path: list[tuple[int, int]]
    cost_matrix: np.ndarray = field(repr=False)
    band: int | None = None
    band_chosen: bool = False

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
            "band": self.band,
            "band_chosen": self.band_chosen,
            "path": [list(p) for p in self.path],
        }


MFCC_FFT = 512
MFCC_CHUNK = 6000
"""Frames of mel spectrogram computed at once (a minute): a long recording's STFT never exists whole."""


def mfcc_features(wave: torch.Tensor) -> torch.Tensor:
    """20 MFCCs per 10 ms frame, mean- and variance-normalised per utterance: ``(frames, 20)``.

    Equal to torchaudio's MFCC on the whole signal, in bounded memory: the mel spectrogram runs a
    chunk at a time on the reflect-padded signal (the frames of a centred STFT), and the dB floor
    (80 dB below the loudest cell of the whole) and the DCT on the small mel result.
    """
    mfcc = torchaudio.transforms.MFCC(sample_rate=ALIGN_RATE, n_mfcc=20, melkwargs={
        "n_fft": MFCC_FFT, "win_length": 400, "hop_length": MFCC_HOP, "n_mels": 40, "center": False})  # fmt: skip
    padded = torch.nn.functional.pad(wave[None], (MFCC_FFT // 2, MFCC_FFT // 2), mode="reflect")[0]
    frames = 1 + wave.shape[-1] // MFCC_HOP
    chunks = (padded[s * MFCC_HOP : (min(s + MFCC_CHUNK, frames) - 1) * MFCC_HOP + MFCC_FFT] for s in range(0, frames, MFCC_CHUNK))
    mel = torch.cat([mfcc.MelSpectrogram(chunk) for chunk in chunks], -1)
    feats = mfcc.amplitude_to_DB(mel).T @ mfcc.dct_mat
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
    raise UsageError(f"--features: unknown feature kind {kind!r}; use {', '.join(FEATURE_KINDS)}")


def available_memory() -> int | None:
    """Bytes the kernel says a new allocation can take (``MemAvailable``); ``None`` where it does not say."""
    try:
        with open("/proc/meminfo") as handle:
            return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return None


def choose_band(n: int, m: int, band: int | None, label: str = "A and B") -> tuple[int | None, bool]:
    """The band to align ``n`` x ``m`` frames with, and whether it was chosen here.

    Without ``band``, a pair whose full matrix needs more than :data:`AUTO_BAND_BYTES` of path storage
    gets the widest band within it; a given band whose storage exceeds the memory available is refused
    (one line, before allocating).
    """
    if band is None:
        if n * m <= AUTO_BAND_BYTES:
            return None, False
        chosen = max(1, math.floor((AUTO_BAND_BYTES / n - 1) * (n - 1) / (2 * (max(n, m) - 1))))
        while chosen > 1 and band_storage(n, m, chosen) > AUTO_BAND_BYTES:
            chosen -= 1
        return chosen, True
    needed, available = band_storage(n, m, band), available_memory()
    if available is not None and needed > available:
        raise UsageError(f"{label}: --band {band} on {n} x {m} frames needs {needed / 2**30:.1f} GiB for the path, "
                         f"{available / 2**30:.1f} GiB is available; pass a smaller --band")  # fmt: skip
    return band, False


def cost_image(fa: torch.Tensor, fb: torch.Tensor) -> np.ndarray:
    """The normalised cost matrix at every k-th frame, at most :data:`PLOT_FRAMES` per axis."""
    k = max(1, math.ceil(max(len(fa), len(fb)) / PLOT_FRAMES))
    return (pairwise_cost(fa[None, ::k].double(), fb[None, ::k].double())[0] / fa.shape[-1]).numpy()


def align_waves(
    a: torch.Tensor,
    b: torch.Tensor,
    features: FeatureFn = mfcc_features,
    hop_s: float = MFCC_HOP / ALIGN_RATE,
    gamma: float = 0.1,
    band: int | None = None,
    label: str = "A and B",
) -> Alignment:
    """Align two 16 kHz mono waveforms ``(T,)``; costs are normalised by the feature dimension.

    Memory follows the band (one byte per band cell for the path, no N x M matrix); a long pair
    without ``band`` gets one (see :func:`choose_band`). ``label`` names the pair in errors.
    """
    with torch.no_grad():
        fa, fb = features(a), features(b)
    band, chosen = choose_band(len(fa), len(fb), band, label)
    cost, divergence, path = align_pair(fa, fb, gamma, band, normalize_cost=True)
    return Alignment(cost, divergence, (len(fa), len(fb)), hop_s, path, cost_image(fa, fb), band, chosen)


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
    return align_waves(wave_a, wave_b, fn, hop_s, gamma, band, label=f"{a} and {b}")


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
