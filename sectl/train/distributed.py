"""Data-parallel training over the processes ``torchrun`` starts (NCCL on GPUs, gloo on CPU).

Every process builds the same model from the same seed (and rank 0's weights are broadcast once, so
an ``init_from`` read differently nowhere can drift). Batches are a pure function of ``(seed, step,
example index)``: rank ``r`` of ``N`` draws examples ``r*B/N .. (r+1)*B/N - 1`` of the global batch
``B``, so the ranks together see exactly the single-process batch, without overlap. After each
backward the gradients are averaged across ranks (one flat all-reduce), then every rank clips and
steps identically: parameters stay equal on all ranks.

The gradients are averaged here rather than by wrapping the model in
``torch.nn.parallel.DistributedDataParallel``: DDP's reducer hooks the wrapped module's
``forward``, while sectl's tasks also backpropagate through ``encode``/``decode`` (MAL's live encoder,
the VAE) and take ``autograd.grad`` for adaptive weights, which DDP does not support. The cost is
that communication does not overlap the backward pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.distributed as dist
from torch import nn

from sectl.errors import ConfigError, SectlError


def launched_rank() -> int:
    """This process's rank as ``torchrun`` set it (0 outside torchrun): only rank 0 prints progress."""
    return int(os.environ.get("RANK", "0"))


@dataclass(frozen=True)
class Workers:
    """This process's place among the data-parallel workers; ``Workers()`` is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints and logs and runs validation."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def examples(self, batch_size: int) -> range:
        """This rank's example indices within the global batch of ``batch_size``."""
        if batch_size % self.world_size:
            raise ConfigError(
                f"train.batch_size: {batch_size} does not split evenly over {self.world_size} processes; "
                f"use a multiple of {self.world_size}"
            )
        share = batch_size // self.world_size
        return range(self.rank * share, (self.rank + 1) * share)

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Replace each gradient by its mean over ranks (the gradient of the global batch's mean loss)."""
        if not self.distributed:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Per-key mean over ranks (logged loss terms describe the whole global batch)."""
        if not self.distributed or not values:
            return values
        stacked = torch.tensor(list(values.values()), dtype=torch.float64)
        dist.all_reduce(stacked)
        return dict(zip(values, (stacked / self.world_size).tolist()))

    def broadcast(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        if self.distributed:
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order (on every rank)."""
        if not self.distributed:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def start_workers(device_name: str) -> tuple[Workers, torch.device]:
    """Join the process group ``torchrun`` describes (if any) and pick this process's device.

    ``train.device`` ``auto`` or ``cuda`` gives each process the GPU of its local rank and NCCL;
    ``cpu`` (or no GPU) gives gloo.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name == "cuda" and not torch.cuda.is_available():
        raise SectlError("train.device: cuda requested but no CUDA device is available")
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if world_size == 1:
        single = "cuda" if use_cuda else "cpu" if device_name == "auto" else device_name  # e.g. mps as named
        return Workers(), torch.device(single)
    if not use_cuda and device_name not in ("auto", "cpu"):
        raise SectlError(f"train.device: {device_name!r} is not supported for multi-process training; use auto, cuda or cpu")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    workers = Workers(dist.get_rank(), dist.get_world_size(), local_rank)
    return workers, torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
