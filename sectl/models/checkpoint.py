"""Checkpoints as plain data: architecture name, constructor arguments, weights, versions.

No pickled classes: files load with ``torch.load(weights_only=True)`` and survive refactors. Writes
are atomic (temporary file + rename), so a run killed mid-save keeps its previous checkpoint.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from sectl import __version__
from sectl.errors import SectlError
from sectl.fileutil import atomic_write_bytes
from sectl.models import ARCHITECTURES, Enhancer

FORMAT = "sectl-checkpoint/1"
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "weights" / "default.pt"


def model_record(model: Enhancer) -> dict[str, Any]:
    return {"name": model.name, "args": dict(model.constructor_args), "sample_rate": model.sample_rate}


def save_checkpoint(path: str | Path, model: Enhancer, **extra: Any) -> None:
    """Write ``{"format", "model", "state_dict", "sectl_version", "torch_version", **extra}`` atomically."""
    payload = {
        "format": FORMAT,
        "model": model_record(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "sectl_version": __version__,
        "torch_version": str(torch.__version__),
        **extra,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SectlError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        raise SectlError(f"{path}: not a readable sectl checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SectlError(f"{path}: not a sectl checkpoint (expected format {FORMAT})")
    return payload


def enhancer_from_checkpoint(payload: dict[str, Any]) -> Enhancer:
    record = payload["model"]
    if record["name"] not in ARCHITECTURES:
        raise SectlError(f"checkpoint names unknown architecture {record['name']!r}")
    model = ARCHITECTURES[record["name"]](**record["args"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def resolve_model_path(source: str | Path | None) -> Path:
    """``None``/``"default"`` -> bundled weights; a run folder -> its best (else last) checkpoint."""
    if source is None or str(source) == "default":
        if not DEFAULT_MODEL.is_file():
            raise SectlError("no default model is bundled in this installation yet: pass --model RUN_DIR|CHECKPOINT")
        return DEFAULT_MODEL
    path = Path(source)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            candidate = path / "checkpoints" / name
            if candidate.is_file():
                return candidate
        raise SectlError(f"{path}: run folder has no checkpoints/best.pt or checkpoints/last.pt")
    return path


def load_enhancer(source: str | Path | None = None) -> Enhancer:
    """Load an enhancer from the bundled default, a run folder or a checkpoint file."""
    return enhancer_from_checkpoint(load_checkpoint(resolve_model_path(source)))


def encoder_feature_extractor(source: str | Path):
    """Bottleneck features of a trained enhancer, for ``sectl align --features model``."""
    model = load_enhancer(source)
    x = torch.zeros(1, 1, 16000)
    with torch.no_grad():
        frames = model.features(x)[-1].shape[-1]
    hop_s = (model.valid_length(16000) / frames) / model.sample_rate

    def features(wave: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.features(wave[None])[-1][0].T

    return features, hop_s
