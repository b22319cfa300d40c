"""The files beside the page: each version's audio in a format browsers play, at one gain per utterance, and its
spectrogram."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sectl.audio import read_audio, resample, write_audio
from sectl.audio.io import PEAK_LIMIT
from sectl.fileutil import atomic_write_bytes

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
"""The rates Opus encodes; other audio is resampled to 48 kHz for it."""

SPECTROGRAM_RATE = 16000
N_FFT, HOP = 512, 128  # 32 ms windows, 8 ms hop: speech harmonics stay visible in a ~120 px tall image
DYNAMIC_RANGE_DB = 80.0


@dataclass
class Clip:
    """One file as the page will play it (mono, at the rate it is written), before its utterance's gain."""

    samples: torch.Tensor  # (1, time)
    rate: int
    duration: float  # seconds
    source_samples: torch.Tensor  # (time,) at the source's rate, for the spectrogram
    source_rate: int


def read_clip(source: Path, audio_format: str, cutoff_hz: float | None = None) -> Clip:
    """``source`` mono, at its own rate (Opus: 48 kHz unless the rate is one Opus has), low-passed at ``cutoff_hz``
    when given (MUSHRA's anchors, :mod:`sectl.report.anchors`)."""
    audio = read_audio(source)
    samples, rate = audio.samples, audio.sample_rate
    if cutoff_hz is not None:
        from sectl.report.anchors import lowpass

        samples = lowpass(samples, rate, cutoff_hz)
    if audio_format == "opus" and rate not in OPUS_RATES:
        samples, rate = resample(samples, rate, 48000), 48000
    return Clip(samples, rate, audio.duration, audio.samples[0], audio.sample_rate)


def shared_gain(clips: list[Clip]) -> float:
    """One gain for every version of an utterance: 1, or what brings the loudest peak among them to
    :data:`sectl.audio.io.PEAK_LIMIT`. Limiting each file alone would change the versions' relative levels, and
    level is what listeners hear first when they switch."""
    peak = max((float(c.samples.abs().max()) for c in clips if c.samples.numel()), default=0.0)
    return 1.0 if peak <= PEAK_LIMIT else PEAK_LIMIT / peak


def write_clip(clip: Clip, target: Path, gain: float, inputs: list[Path]) -> None:
    """``clip`` scaled by ``gain`` as ``target`` (its suffix names the format: .wav, .flac or .opus)."""
    write_audio(target, clip.samples * gain, clip.rate, overwrite=True, inputs=inputs)


def spectrogram_samples(clip: Clip) -> torch.Tensor:
    """The source's samples at :data:`SPECTROGRAM_RATE` (the spectrograms share one scale per utterance, so the
    gain does not matter to them)."""
    return resample(clip.source_samples, clip.source_rate, SPECTROGRAM_RATE)


def power_db(samples: torch.Tensor) -> np.ndarray:
    """Log power spectrogram ``(bins, frames)`` in dB."""
    window = torch.hann_window(N_FFT)
    spec = torch.stft(samples.float(), N_FFT, HOP, window=window, return_complex=True, center=True)
    return (10 * torch.log10(spec.abs().square() + 1e-12)).numpy()


def write_spectrograms(powers: list[np.ndarray], targets: list[Path]) -> None:
    """One PNG per version on a shared scale (the loudest version's peak at the top of the colour map), so
    the versions of an utterance compare by eye: less noise is darker, not renormalised away."""
    import matplotlib.image

    top = max(float(p.max()) for p in powers)
    for power, target in zip(powers, targets):
        image = np.clip((power - top + DYNAMIC_RANGE_DB) / DYNAMIC_RANGE_DB, 0.0, 1.0)
        buffer = io.BytesIO()
        matplotlib.image.imsave(buffer, image[::-1], cmap="magma", vmin=0.0, vmax=1.0, format="png")
        atomic_write_bytes(target, buffer.getvalue())
