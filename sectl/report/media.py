"""The files beside the page: each version's audio in a format browsers play, and its spectrogram."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from sectl.audio import read_audio, resample, write_audio
from sectl.fileutil import atomic_write_bytes

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
"""The rates Opus encodes; other audio is resampled to 48 kHz for it."""

SPECTROGRAM_RATE = 16000
N_FFT, HOP = 512, 128  # 32 ms windows, 8 ms hop: speech harmonics stay visible in a ~120 px tall image
DYNAMIC_RANGE_DB = 80.0


def write_version_audio(source: Path, target: Path, inputs: list[Path]) -> tuple[torch.Tensor, float]:
    """Copy ``source`` as ``target`` (its suffix names the format: .wav, .flac or .opus), mono, at its own rate
    (Opus: 48 kHz unless the rate is one Opus has); levels are kept, so versions compare as they are.
    Returns the mono samples at :data:`SPECTROGRAM_RATE` and the duration in seconds."""
    audio = read_audio(source)
    samples, rate = audio.samples, audio.sample_rate
    if target.suffix == ".opus" and rate not in OPUS_RATES:
        samples, rate = resample(samples, rate, 48000), 48000
    write_audio(target, samples, rate, overwrite=True, inputs=inputs)
    return resample(audio.samples[0], audio.sample_rate, SPECTROGRAM_RATE), audio.duration


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


def write_anchor(reference: Path, target: Path, cutoff_hz: float, inputs: list[Path]) -> None:
    """MUSHRA's low-pass anchor of ``reference`` at ``cutoff_hz`` (:mod:`sectl.report.anchors`), as ``target``."""
    from sectl.report.anchors import lowpass

    audio = read_audio(reference)
    samples, rate = lowpass(audio.samples, audio.sample_rate, cutoff_hz), audio.sample_rate
    if target.suffix == ".opus" and rate not in OPUS_RATES:
        samples, rate = resample(samples, rate, 48000), 48000
    write_audio(target, samples, rate, overwrite=True, inputs=inputs)
