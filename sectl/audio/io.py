"""Reading and writing audio files safely.

Reading validates everything that later stages would otherwise trip over (missing, empty, truncated
or non-audio files, NaN/Inf samples) and reports it as an :class:`~sectl.errors.AudioError` naming the
file. Writing is atomic (temporary file in the target folder, then rename), never touches an input,
and never replaces an existing file unless asked to.
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np
import soundfile as sf
import torch
import torchaudio

from sectl.audio.sinc import SparseSinc, uses_kernels
from sectl.device import host_side
from sectl.audio.formats import AUDIO_EXTENSIONS, SUFFIX_FORMATS
from sectl.errors import AudioError, OutputExistsError, first_line
from sectl.fileutil import InputTargetError, atomic_write_bytes, same_file, write_stdout

STDIO = "-"
"""Path value meaning standard input (for reading) or standard output (for writing)."""

PEAK_LIMIT = 0.999
"""Largest absolute sample written; louder signals are scaled down as a whole (never clipped)."""


@dataclass
class Audio:
    """Float32 samples shaped ``(channels, frames)`` with their sample rate."""

    samples: torch.Tensor
    sample_rate: int
    subtype: str | None = None  # soundfile subtype of the source file, e.g. "PCM_16"

    @property
    def duration(self) -> float:
        return self.samples.shape[-1] / self.sample_rate


class Resampler(torchaudio.transforms.Resample):
    """torchaudio's sinc resampler (its kernel a buffer). Its call is marked as host work by design
    (:func:`sectl.device.host_side`): torchaudio takes the output length through a 0-d CPU tensor,
    which reads no device value, so the training-step guards let it through."""

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        with host_side():
            return super().forward(waveform)


_RESAMPLERS: dict[tuple, Resampler] = {}


def resample(samples: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Band-limited resampling along the last axis (no-op when the rates match), as
    ``torchaudio.functional.resample`` computes it.

    The windowed-sinc kernel of each rate pair is built once per device and dtype and kept (a few
    pairs: the models' rates, the SSL teacher's, the speed factors), rather than on every call: a
    training step resamples every batch. Pairs whose kernel would be huge (7999 -> 16000 Hz) compute the
    same filter tap by tap (:mod:`sectl.audio.sinc`).
    """
    if orig_rate == new_rate:
        return samples
    if not uses_kernels(orig_rate, new_rate):
        return SparseSinc(orig_rate, new_rate)(samples)
    key = (orig_rate, new_rate, samples.device, samples.dtype)
    if key not in _RESAMPLERS:
        if len(_RESAMPLERS) >= 32:
            _RESAMPLERS.pop(next(iter(_RESAMPLERS)))
        # Built once per rate pair and device, then kept; a normal tensor even when first built under
        # inference mode (enhance), since training later backpropagates through it.
        with host_side(), torch.inference_mode(False):
            resampler = Resampler(orig_rate, new_rate, dtype=samples.dtype)
            if samples.device.type == "cuda":  # from pinned memory: the copy does not wait for the GPU's queue
                resampler.kernel = resampler.kernel.pin_memory().to(samples.device, non_blocking=True)
            _RESAMPLERS[key] = resampler.to(samples.device)
    return _RESAMPLERS[key](samples)


def _check_wav_length(name: str, header: bytes, size: int) -> None:
    """Refuse a WAV whose ``data`` chunk declares more bytes than the file holds (an interrupted copy).

    libsndfile silently reads what is there, so a cut-off file would be processed as a short one.
    Streaming writers put 0 or 0xFFFFFFFF in the size field: those are not declarations.
    """
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return
    offset = 12
    while offset + 8 <= len(header):
        chunk, length = header[offset : offset + 4], int.from_bytes(header[offset + 4 : offset + 8], "little")
        if chunk == b"data":
            available = size - (offset + 8)
            if 0 < length < 0xFFFFFFFF and length > available:
                raise AudioError(name, f"truncated: the header declares {length} bytes of audio, the file holds {max(0, available)}")
            return
        offset += 8 + length + (length & 1)


def _open_source(path: str | Path) -> tuple[str, BinaryIO | str]:
    """Name used in messages and what soundfile should read (stdin is buffered first)."""
    if str(path) == STDIO:
        data = sys.stdin.buffer.read()
        if not data:
            raise AudioError("<stdin>", "no data on standard input")
        _check_wav_length("<stdin>", data[:65536], len(data))
        return "<stdin>", io.BytesIO(data)
    p = Path(path)
    if p.is_symlink() and not p.exists():
        raise AudioError(p, "broken or looping symbolic link")
    if not p.exists():
        raise AudioError(p, "file not found")
    if p.is_dir():
        raise AudioError(p, "is a folder, not an audio file")
    if p.stat().st_size == 0:
        raise AudioError(p, "file is empty")
    try:
        with open(p, "rb") as handle:
            _check_wav_length(str(p), handle.read(65536), p.stat().st_size)
    except OSError as exc:  # permissions, I/O errors: the file exists but cannot be read
        raise AudioError(p, f"cannot read the file ({exc.strerror or type(exc).__name__})") from None
    return str(p), str(p)


def read_audio(
    path: str | Path,
    sample_rate: int | None = None,
    mono: bool = True,
) -> Audio:
    """Read a WAV/FLAC/OGG file (or WAV on stdin with ``"-"``) as float32.

    Args:
        path: file path, or ``"-"`` for standard input.
        sample_rate: resample to this rate; ``None`` keeps the file's rate.
        mono: average the channels into one; ``False`` keeps them.

    Raises:
        AudioError: the file is missing, empty, truncated, not audio, has no samples, or holds
            NaN/Inf values.
    """
    name, source = _open_source(path)
    try:
        with sf.SoundFile(source) as handle:  # a file or stdin's bytes: the subtype is known either way
            rate, subtype = handle.samplerate, handle.subtype
            data = handle.read(dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise AudioError(name, f"not a readable audio file ({_short(exc)})") from None
    except (RuntimeError, ValueError) as exc:  # truncated headers surface as these
        raise AudioError(name, f"not a readable audio file ({_short(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError(name, "no samples after decoding (zero length)")
    if not np.isfinite(data).all():
        raise AudioError(name, "contains NaN or Inf samples")
    samples = torch.from_numpy(np.ascontiguousarray(data.T))
    if mono and samples.shape[0] > 1:
        samples = samples.mean(dim=0, keepdim=True)
    if sample_rate is not None:
        samples = resample(samples, rate, sample_rate)
        rate = sample_rate
    return Audio(samples=samples, sample_rate=int(rate), subtype=subtype)


def _short(exc: Exception) -> str:
    return re.sub(r"Error opening <_io\.BytesIO object at 0x[0-9a-f]+>: ", "", first_line(exc))  # stdin has no name


def limit_peak(samples: torch.Tensor, limit: float = PEAK_LIMIT) -> tuple[torch.Tensor, float]:
    """Scale the whole signal down if its peak exceeds ``limit``.

    Returns the signal and the gain applied (1.0 when untouched), so callers can report limiting.
    Scaling, unlike clipping, adds no distortion.
    """
    peak = float(samples.abs().max()) if samples.numel() else 0.0
    if peak <= limit:
        return samples, 1.0
    gain = limit / peak
    return samples * gain, gain


def check_output(path: str | Path, overwrite: bool, inputs: Iterable[str | Path]) -> Path:
    """The target path, once it is known not to be an input nor an existing file (unless ``overwrite``)."""
    target = Path(path)
    for source in inputs:
        if str(source) != STDIO and same_file(source, target):
            raise InputTargetError(f"{target}: is an input of this command; an output cannot replace it, even with --overwrite")
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target}: output exists (use --overwrite to replace it)")
    return target


def output_format(path: Path) -> str:
    """soundfile format from the suffix (WAV when there is none)."""
    suffix = path.suffix.lower()
    if not suffix:
        return "WAV"
    if suffix not in SUFFIX_FORMATS:
        raise AudioError(path, f"cannot write {suffix} audio; use one of {', '.join(AUDIO_EXTENSIONS)}")
    return SUFFIX_FORMATS[suffix]


def default_subtype(path: Path, source_subtype: str | None = None) -> str:
    """Keep the source's PCM/float subtype where the target format supports it, else PCM_16 (Vorbis for OGG)."""
    fmt = output_format(path)
    if fmt == "OGG":
        return "OPUS" if path.suffix.lower() == ".opus" else "VORBIS"
    if fmt == "MP3":
        return "MPEG_LAYER_III"
    if source_subtype and sf.check_format(fmt, source_subtype):
        return source_subtype
    return "PCM_16"


INTEGER_SCALES = {"PCM_S8": 2**7, "PCM_U8": 2**7, "PCM_16": 2**15, "PCM_24": 2**23}
"""Full scale of the integer subtypes whose samples :func:`rounded` puts on the integer grid."""


def rounded(data: np.ndarray, subtype: str) -> np.ndarray:
    """``data`` on the integer grid of ``subtype``, rounded to nearest: libsndfile converts floats to integers by
    flooring (-0.25 LSB becomes -1), a bias of half an LSB that ``--stream``'s PCM (rounded) does not have."""
    scale = INTEGER_SCALES.get(subtype)
    if scale is None:
        return data
    return (np.clip(np.round(data * scale), -scale, scale - 1) / scale).astype(data.dtype, copy=False)


def write_audio(
    path: str | Path,
    samples: torch.Tensor | np.ndarray,
    sample_rate: int,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
    subtype: str | None = None,
) -> float:
    """Write ``(channels, frames)`` or ``(frames,)`` samples atomically.

    Args:
        path: target file, or ``"-"`` for WAV on standard output.
        overwrite: allow replacing an existing output file.
        inputs: files that must never be written over, whatever ``overwrite`` says.
        subtype: soundfile subtype (default: ``PCM_16`` for WAV/FLAC, ``VORBIS`` for OGG).

    Returns:
        The gain applied by peak limiting (1.0 when the signal was left as it is).

    Raises:
        OutputExistsError: the target is an input, or exists and ``overwrite`` is false.
    """
    tensor = torch.as_tensor(samples, dtype=torch.float32).detach().cpu()
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(0)
    tensor, gain = limit_peak(tensor)
    data = tensor.numpy().T
    if str(path) == STDIO:
        buffer = io.BytesIO()
        sf.write(buffer, rounded(data, subtype or "PCM_16"), sample_rate, format="WAV", subtype=subtype or "PCM_16")
        write_stdout(buffer.getvalue())
        return gain
    target = check_output(path, overwrite, inputs)
    buffer = io.BytesIO()
    subtype = subtype or default_subtype(target)
    sf.write(buffer, rounded(data, subtype), sample_rate, format=output_format(target), subtype=subtype)
    atomic_write_bytes(target, buffer.getvalue())
    return gain


