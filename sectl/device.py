"""Choosing the device a command computes on (``--device``, ``train.device``)."""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator, Sequence

import torch

from sectl.errors import ConfigError
from sectl.options import check_device_name


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``: ``auto`` is CUDA when a GPU is present, else the CPU; any other name
    must exist on this machine. ``auto`` or ``cuda`` in a process torchrun started (``LOCAL_RANK``) is that
    rank's GPU, so ``torchrun --nproc-per-node 8 -m sectl enhance ... --shard auto`` uses all eight."""
    check_device_name(name, "device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        if not os.environ["LOCAL_RANK"].isdigit():
            raise ConfigError(f"device: LOCAL_RANK={os.environ['LOCAL_RANK']!r} is not a GPU index (set by torchrun)")
        name = f"cuda:{os.environ['LOCAL_RANK']}"
    device = torch.device(name)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device: {name} requested but this machine has no MPS device")
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


_host_side_depth = 0


def inside_host_side() -> bool:
    """Whether the caller runs inside :func:`host_side` (read by step guards: the tests' and the device check's)."""
    return _host_side_depth > 0


@contextlib.contextmanager
def host_side() -> Iterator[None]:
    """Marks host work inside a training step that is there by design, not by accident: random draws that
    decide shapes (speed factors, pad lengths), Python data staged for the device, and CPU-only kernels.

    A training step must not make the host wait on the GPU; the step guards of the test matrix refuse
    every tensor read, Python-data tensor and device-less factory call inside a step except in here.
    """
    global _host_side_depth
    _host_side_depth += 1
    try:
        yield
    finally:
        _host_side_depth -= 1


def host_values(values: Sequence[float] | Sequence[int], device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Python numbers as a tensor on ``device`` without a host synchronisation: staged in pinned memory
    and copied asynchronously (a copy from pageable memory would wait for the GPU's queue to drain)."""
    with host_side():
        staged = torch.tensor(values, dtype=dtype, device="cpu", pin_memory=device.type == "cuda")
        return staged.to(device, non_blocking=True)


def host_draw(draw: Callable[[], torch.Tensor]) -> list:
    """The values of a host-side random draw (``draw`` makes a CPU tensor from torch's checkpointed RNG)
    as a Python list: host randomness that decides shapes, read without touching the device."""
    with host_side():
        return draw().tolist()
