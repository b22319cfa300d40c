"""Turning what a user types after ``--model`` into an enhancer.

Accepted, in this order: nothing or ``default`` (the bundled default), the name of a bundled model
(:data:`BUNDLED`), the name of a published pretrained model (``deepfilternet3``, ``nsnet2``, ``gtcrn``,
``gtcrn-dns3``, ``gtcrn-dns3-stream``: converted from the official files, see :mod:`sectl.models.io.pretrained`), a run folder (its best, else last
checkpoint), or a checkpoint file. Name resolution sits above checkpoint I/O, which knows no names.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sectl.device import module_device, resolve_device
from sectl.errors import ModelError, SectlError, UsageError
from sectl.modelfiles import refuse_onnx_graph
from sectl.models.base import Enhancer, frames_per_second
from sectl.models.io.checkpoint import enhancer_from_checkpoint, load_checkpoint, model_from_checkpoint
from sectl.models.io.pretrained import PRETRAINED, load_pretrained

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
BUNDLED = {
    "default": WEIGHTS / "deepfilternet3.pt",  # DeepFilterNet3 as published, converted (see weights/README.md)
    "sectl-demucs": WEIGHTS / "sectl_demucs.pt",  # the Demucs trained here on synthetic speech (the 0.1 default)
}
DEFAULT_MODEL = BUNDLED["default"]


def model_names() -> list[str]:
    """Every name ``--model`` accepts besides paths."""
    return [*BUNDLED, *PRETRAINED]


def resolve_model_path(source: str | Path | None) -> Path:
    """The checkpoint file behind ``source``: a bundled name, a run folder or a file (not pretrained names)."""
    if source is None or str(source) in BUNDLED:
        path = BUNDLED[str(source or "default")]
        if not path.is_file():
            raise SectlError(f"bundled model {source or 'default'!r} is missing from this installation ({path})")
        return path
    path = Path(source)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            candidate = path / "checkpoints" / name
            if candidate.is_file():
                return candidate
        raise ModelError(f"{path}: run folder has no checkpoints/best.pt or checkpoints/last.pt")
    if not path.exists() and str(source) not in PRETRAINED and "/" not in str(source) and not path.suffix:
        raise UsageError(f"{source}: no such model; names: {', '.join(model_names())}, or a run folder or checkpoint")
    return path


def describe(source: str | Path | None) -> str:
    """One line saying what ``source`` loads, for the CLI's status output."""
    if source is None or str(source) in BUNDLED:
        return f"bundled model {source or 'default'!r} ({resolve_model_path(source)})"
    if str(source) in PRETRAINED:
        return f"pretrained {source} ({PRETRAINED[str(source)].credit})"
    return str(resolve_model_path(source))


def load_torch_enhancer(source: str | Path | None = None, device: str | torch.device = "cpu",
                        need: str = "a PyTorch module") -> Enhancer:  # fmt: skip
    """Load an enhancer as a PyTorch module in eval mode, on ``device`` (a name as ``--device`` takes it:
    ``auto``, ``cpu``, ``cuda``, ``cuda:1``), from a bundled or pretrained name, a run folder or a checkpoint
    file. An ONNX graph is refused before it is read, with ``need`` (what the caller needs the module for,
    e.g. ``"encoder features"``) as the reason: :func:`sectl.engines.load_enhancer` runs graphs."""
    refuse_onnx_graph(source, need)
    if source is not None and str(source) in PRETRAINED and not Path(source).exists():
        model = load_pretrained(str(source))
    else:
        model = enhancer_from_checkpoint(load_checkpoint(resolve_model_path(source)))
    return model.to(resolve_device(str(device)))


def load_codec(source: str | Path, device: str | torch.device = "cpu"):
    """Load a speech VAE from a run folder (its best checkpoint: the EMA weights) or a checkpoint file."""
    from sectl.models import CODECS

    if str(source) in PRETRAINED and not Path(source).exists():
        raise UsageError(f"{source}: a pretrained enhancer, not a speech VAE (sectl encode needs a VAE run folder or checkpoint; "
                         f"enhance with `sectl enhance -m {source}`)")  # fmt: skip
    path = resolve_model_path(source)
    model = model_from_checkpoint(load_checkpoint(path))
    if type(model) not in CODECS.values():
        raise ModelError(f"{path}: holds a {model.name} enhancer, not a speech VAE (train one with a vae_* preset)")
    return model.to(resolve_device(str(device)))


def encoder_feature_extractor(source: str | Path | None, input_rate: int, device: str | torch.device = "cpu"):
    """Deepest encoder features of an enhancer for ``sectl align --features model``: ``(fn, hop_s)``.

    ``fn`` maps a mono waveform ``(T,)`` at ``input_rate`` to frames ``(N, C)``, resampling to the
    model's own rate; the hop is measured (frames added per second of input), so it holds for any model.
    """
    from sectl.audio import resample

    model = load_torch_enhancer(source, device, need="encoder features")
    on = module_device(model)

    def features(wave: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            deepest = model.features(resample(wave, input_rate, model.sample_rate)[None].to(on))[-1][0]  # (C, T[, F])
            return deepest.transpose(0, 1).flatten(1).cpu()

    return features, 1.0 / frames_per_second(lambda n: features(torch.zeros(n)).shape[0], input_rate)
