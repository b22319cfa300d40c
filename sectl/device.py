"""Choosing the device a command computes on (``--device``, ``train.device``)."""

from __future__ import annotations

import torch

from sectl.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``: ``auto`` is CUDA when a GPU is present, else the CPU; any other name must exist on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device: unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {name} requested but no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device: {name} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def module_device(module: object) -> torch.device:
    """Where ``module``'s weights live (the CPU for a weight-free or non-module callable)."""
    params = getattr(module, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    return first.device if first is not None else torch.device("cpu")
