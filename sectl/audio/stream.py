"""Block-wise reading and atomic two-pass writing, so long files use bounded memory."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf
import torch

from sectl.audio.io import (
    PEAK_LIMIT,
    _open_source,
    _short,
    check_output,
    default_subtype,
    output_format,
    rounded,
)
from sectl.errors import AudioError
from sectl.fileutil import commit, temp_beside, writing

_COPY_BLOCK = 1 << 16


def read_blocks(path: str | Path, block_frames: int) -> tuple[sf._SoundFileInfo, Iterator[torch.Tensor]]:
    """File info and an iterator of float32 blocks ``(channels, <= block_frames)``.

    Validates like :func:`sectl.audio.read_audio` (missing, empty, unreadable, zero-length, NaN/Inf),
    the NaN check happening block by block.
    """
    name, source = _open_source(path)
    try:
        info = sf.info(source)
        handle = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(name, f"not a readable audio file ({_short(exc)})") from None
    if handle.frames == 0:
        handle.close()
        raise AudioError(name, "no samples after decoding (zero length)")

    def blocks() -> Iterator[torch.Tensor]:
        with handle:
            while True:
                try:
                    data = handle.read(block_frames, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    raise AudioError(name, f"decoding failed ({_short(exc)})") from None
                if data.shape[0] == 0:
                    return
                if not np.isfinite(data).all():
                    raise AudioError(name, "contains NaN or Inf samples")
                yield torch.from_numpy(np.ascontiguousarray(data.T))

    return info, blocks()


def write_blocks(
    path: str | Path,
    blocks: Iterable[torch.Tensor],
    sample_rate: int,
    channels: int,
    *,
    subtype: str | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
) -> float:
    """Write ``(channels, n)`` blocks to ``path`` atomically with whole-signal peak limiting.

    Pass 1 writes float32 to a temporary file and tracks the peak; pass 2 converts it to the target
    subtype with the limiting gain into a second temporary file, renamed over the target at the end.
    Returns the gain applied (1.0 when none was needed).
    """
    target = check_output(path, overwrite, inputs)
    fmt = output_format(target)
    subtype = subtype or default_subtype(target)
    temps: list[str] = []
    try:
        with writing(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            raw = temp_beside(target, ".raw.wav")
            temps.append(raw)
            final = temp_beside(target, ".tmp")
            temps.append(final)
            peak = 0.0
            with sf.SoundFile(raw, "w", sample_rate, channels, subtype="FLOAT", format="WAV") as f:
                for block in blocks:
                    data = block.detach().cpu().float().numpy().T
                    peak = max(peak, float(np.abs(data).max(initial=0.0)))
                    f.write(data)
            gain = PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0
            with sf.SoundFile(raw) as src, sf.SoundFile(final, "w", sample_rate, channels, subtype=subtype, format=fmt) as dst:
                for data in src.blocks(_COPY_BLOCK, dtype="float32", always_2d=True):
                    dst.write(rounded(data * gain if gain != 1.0 else data, subtype))
            commit(final, target)
            return gain
    finally:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)

