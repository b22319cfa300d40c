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
from sectl.errors import UsageError, first_line
from sectl.fileutil import atomic_write_bytes
from sectl.models import MODEL_CLASSES, Enhancer

FORMAT = "sectl-checkpoint/1"


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
        raise UsageError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise UsageError(f"{path}: empty file (0 bytes), not a checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        raise UsageError(f"{path}: not a readable sectl checkpoint (truncated, or not a torch file: {first_line(exc, 120)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UsageError(f"{path}: not a sectl checkpoint (expected format {FORMAT})")
    missing = [key for key in ("model", "state_dict") if key not in payload]
    if missing or not isinstance(payload["model"], dict) or not {"name", "args"} <= set(payload["model"]):
        raise UsageError(f"{path}: incomplete sectl checkpoint (no {', '.join(missing) or 'model name/args'})")
    payload["source"] = str(path)
    return payload



def model_from_checkpoint(payload: dict[str, Any]) -> torch.nn.Module:
    """The model a checkpoint describes (an enhancer or a codec), weights loaded, in eval mode."""
    record, source = payload["model"], payload.get("source", "checkpoint")
    if record["name"] not in MODEL_CLASSES:
        raise UsageError(f"{source}: names unknown architecture {record['name']!r}")
    args = dict(record["args"])
    if "sample_rate" in record:  # files written before the rate was a constructor argument
        args.setdefault("sample_rate", record["sample_rate"])
    try:
        model = MODEL_CLASSES[record["name"]](**args)
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:  # noqa: BLE001 - a damaged record fails in the constructor or the weights
        raise UsageError(f"{source}: the weights do not fit a {record['name']} of its recorded arguments ({first_line(exc, 120)})") from None
    return model.eval()


def enhancer_from_checkpoint(payload: dict[str, Any]) -> Enhancer:
    model = model_from_checkpoint(payload)
    if not isinstance(model, Enhancer):
        raise UsageError(f"{payload.get('source', 'the checkpoint')}: holds a {model.name}, not an enhancer (use `sectl encode` for codecs)")
    return model
