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
ROWS = 128
"""Rows of a spectrogram image: the 256 bins above DC averaged in pairs (the page shows it 72 px tall)."""
MAX_COLUMNS = 1200
"""Widest spectrogram image: the page shows it about 650 px wide, so this is twice that on a HiDPI screen; longer
files average neighbouring frames (in power), so a long file's image costs what a 10 s one does, not megabytes."""
FRAMES_PER_BLOCK = 8192
"""Frames transformed at once: the memory of a spectrogram stays bounded whatever the file's length."""


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
    """Log power spectrogram ``(ROWS, frames)`` in dB, at most :data:`MAX_COLUMNS` frames: power averaged over
    pairs of bins and, for files longer than about 9.6 s, over groups of neighbouring frames. The transform runs
    :data:`FRAMES_PER_BLOCK` frames at a time, so a long file never holds its whole STFT."""
    samples = samples.float().reshape(-1)
    frames = samples.numel() // HOP + 1  # as torch.stft with center=True
    group = -(-frames // MAX_COLUMNS)
    half = N_FFT // 2
    padded = torch.nn.functional.pad(samples[None, None], (half, half), mode="reflect" if samples.numel() > half else "constant")[0, 0]
    padded = torch.nn.functional.pad(padded, (0, max(0, (frames - 1) * HOP + N_FFT - padded.numel())))
    window = torch.hann_window(N_FFT)
    block = group * max(1, FRAMES_PER_BLOCK // group)
    columns = []
    for first in range(0, frames, block):
        count = min(block, frames - first)
        segment = padded[first * HOP : (first + count - 1) * HOP + N_FFT]
        spec = torch.stft(segment, N_FFT, HOP, window=window, return_complex=True, center=False)
        power = spec.abs().square()[1:].reshape(ROWS, -1, count).mean(dim=1)  # bins 1..256 in pairs
        groups = -(-count // group)
        power = torch.nn.functional.pad(power, (0, groups * group - count))
        sums = power.reshape(ROWS, groups, group).sum(dim=2)
        sizes = torch.full((groups,), float(group))
        sizes[-1] = count - (groups - 1) * group
        columns.append(sums / sizes)
    return (10 * torch.log10(torch.cat(columns, dim=1) + 1e-12)).numpy()


def write_spectrograms(powers: list[np.ndarray], targets: list[Path]) -> None:
    """One PNG per version on a shared scale (the loudest version's peak at the top of the colour map), so
    the versions of an utterance compare by eye: less noise is darker, not renormalised away. A palette PNG of the
    colour map's 256 colours: one byte a pixel, a third of the RGB image's bytes, the same picture."""
    import matplotlib
    from PIL import Image

    palette = matplotlib.colormaps["magma"](np.linspace(0.0, 1.0, 256), bytes=True)[:, :3]
    top = max(float(p.max()) for p in powers)
    for power, target in zip(powers, targets):
        image = np.clip((power - top + DYNAMIC_RANGE_DB) / DYNAMIC_RANGE_DB, 0.0, 1.0)
        picture = Image.fromarray(np.rint(image[::-1] * 255).astype(np.uint8), mode="P")
        picture.putpalette(palette.reshape(-1).tolist())
        buffer = io.BytesIO()
        picture.save(buffer, format="png", optimize=True)
        atomic_write_bytes(target, buffer.getvalue())
