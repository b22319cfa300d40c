"""Assembled networks: enhancers (encode/decode stages), SSL teachers, checkpoints."""

from __future__ import annotations

from sectl.errors import ConfigError
from sectl.models.base import Enhancer
from sectl.models.demucs import SIZES, Demucs

ARCHITECTURES = {"demucs": Demucs}


def build_enhancer(name: str = "demucs", size: str | None = "small", **overrides) -> Enhancer:
    """Build an enhancer from an architecture name, a size preset and constructor overrides."""
    if name not in ARCHITECTURES:
        raise ConfigError(f"model.name: unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    args = {}
    if size is not None:
        if size not in SIZES:
            raise ConfigError(f"model.size: unknown size {size!r}; known: {', '.join(SIZES)}")
        args.update(SIZES[size])
    args.update({k: v for k, v in overrides.items() if v is not None})
    return ARCHITECTURES[name](**args)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["ARCHITECTURES", "Demucs", "Enhancer", "build_enhancer", "count_parameters"]
