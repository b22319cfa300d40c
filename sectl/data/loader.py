"""Training batches prepared in worker processes while the model trains on the last one.

Samplers draw each example from ``(seed, step, example index)`` alone (``sampler.draw(step,
index)``), so a ``torch.utils.data`` dataset indexed by ``(step, index)`` yields exactly what the
sampler's own ``batch(step, examples)`` does, whichever worker draws it: a run with workers equals
one without, and a resumed run just starts the index stream at its step.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Iterator, Protocol

import torch
from torch.utils.data import DataLoader, Dataset

from sectl.errors import ConfigError


class ExampleSampler(Protocol):
    def draw(self, step: int, index: int) -> Any: ...


class StepExamples(Dataset):
    """Example ``index`` of global batch ``step``: the item of key ``(step, index)``."""

    def __init__(self, sampler: ExampleSampler) -> None:
        self.sampler = sampler

    def __getitem__(self, key: tuple[int, int]) -> Any:
        step, index = key
        return self.sampler.draw(step, index)


class StepBatchKeys:
    """Keys of this rank's examples of steps ``start .. stop - 1``, one list per step (a batch sampler)."""

    def __init__(self, start: int, stop: int, examples: range) -> None:
        self.start, self.stop, self.examples = start, stop, examples

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.stop):
            yield [(step, i) for i in self.examples]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def default_workers(processes_per_node: int = 1) -> int:
    """Loader processes per training process: the cores this process may use, less one for itself, at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, cores // max(1, processes_per_node) - 1))


def resolve_workers(value: int | str, processes_per_node: int = 1) -> int:
    if value == "auto":
        return default_workers(processes_per_node)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"data.workers: expected auto or an integer >= 0, got {value!r}")
    return value


def batch_loader(
    sampler: ExampleSampler, examples: range, start: int, stop: int, workers: int, device: torch.device,
    cache_bytes: int | None = None,
) -> DataLoader:
    """Batches of steps ``start .. stop - 1`` (this rank's ``examples`` of each), ``workers`` processes
    ahead of the training loop; pinned host memory on CUDA so the copy can run ``non_blocking``.

    ``cache_bytes`` is this process's share of the clip cache: every loader worker holds its own copy
    of the sampler's cache, so each gets ``cache_bytes / workers``.
    """
    cache = getattr(sampler, "cache", None)
    if cache_bytes is not None and cache is not None:
        cache.max_bytes = cache_bytes // max(1, workers)
    return DataLoader(
        StepExamples(sampler),
        batch_sampler=StepBatchKeys(start, stop, examples),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
        persistent_workers=workers > 0,
        # Its own generator: a loader seeds its workers from the global RNG otherwise, which would shift
        # the training RNG (latent samples, SSL-loss draws) and break exact resumption.
        generator=torch.Generator().manual_seed(0),
        worker_init_fn=_leave_stop_signals_to_the_trainer,
    )


def _leave_stop_signals_to_the_trainer(worker_id: int) -> None:
    """Loader workers ignore SIGINT and SIGTERM: Ctrl-C reaches the terminal's whole process group, and a
    worker that died of it would fail the step the trainer finishes before saving. The trainer stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def to_device(batch: Any, device: torch.device) -> Any:
    """A batch (tensor or tuple of tensors) on ``device``; asynchronous from pinned memory."""
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    return batch.to(device, non_blocking=True)
