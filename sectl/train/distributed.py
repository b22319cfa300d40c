"""Data-parallel training over the processes ``torchrun`` starts (NCCL on GPUs, gloo on CPU).

Every process builds the same model from the same seed (and rank 0's weights are broadcast once, so
an ``init_from`` read differently nowhere can drift). Batches are a pure function of ``(seed, step,
example index)``: rank ``r`` of ``N`` draws examples ``r*B/N .. (r+1)*B/N - 1`` of the global batch
``B``, so the ranks together see exactly the single-process batch, without overlap. Gradients are
averaged across ranks while the backward pass runs (:class:`GradientReducer`), then every rank clips
and steps identically: parameters stay equal on all ranks.

Every tensor handed to a collective lives on :attr:`Workers.device`, the device the process group's
backend carries (NCCL carries CUDA tensors only). Collectives wait at most ``train.dist_timeout_s``.

Why not ``torch.nn.parallel.DistributedDataParallel``: its reducer hooks the wrapped module's
``forward``, while sectl's tasks also backpropagate through ``encode``/``decode`` (MAL's live encoder,
the VAE) and take ``autograd.grad`` for adaptive weights. :class:`GradientReducer` gets DDP's overlap
(buckets all-reduced as soon as their gradients are accumulated) from per-parameter
post-accumulate-gradient hooks instead, whichever method produced the gradient.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterable, Sequence, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from sectl.device import host_values, resolve_device
from sectl.errors import ConfigError
from sectl.train.stopping import StopVote

T = TypeVar("T")
BUCKET_BYTES = 25 * 2**20
"""Gradient bytes per all-reduce (DDP's default): large enough to use the link well, small enough that
the first buckets are sent while backward still runs."""


def launched_rank() -> int:
    """This process's rank as ``torchrun`` set it (0 outside torchrun): only rank 0 prints progress."""
    return int(os.environ.get("RANK", "0"))


@dataclass(frozen=True)
class Workers:
    """This process's place among the data-parallel workers; ``Workers()`` is a single process.

    ``device`` is where this rank computes, and so where every tensor it hands to a collective lives.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    grouped: bool = False  # in a process group, even of one process (torchrun --nproc_per_node 1)
    vote: StopVote | None = field(default=None, compare=False)  # a stop request, carried by all_true

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether collectives run: under torchrun (one process too, so a one-GPU machine exercises NCCL)."""
        return self.grouped or self.world_size > 1

    def examples(self, batch_size: int) -> range:
        """This rank's example indices within the global batch of ``batch_size``."""
        if batch_size % self.world_size:
            raise ConfigError(
                f"train.batch_size: {batch_size} does not split evenly over {self.world_size} processes; "
                f"use a multiple of {self.world_size}"
            )
        share = batch_size // self.world_size
        return range(self.rank * share, (self.rank + 1) * share)

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items`` (every ``world_size``-th from ``rank``): validation files."""
        return list(items[self.rank :: self.world_size])

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-key mean over ranks of scalar tensors, without a host synchronisation."""
        if not self.distributed or not values:
            return values
        stacked = torch.stack([v.detach().to(self.device, torch.float32).reshape(()) for v in values.values()])
        dist.all_reduce(stacked)
        return dict(zip(values, (stacked / self.world_size).unbind()))

    def all_true(self, flag: torch.Tensor) -> torch.Tensor:
        """Whether ``flag`` (a boolean tensor on ``device``) holds on every rank, on the device: decisions
        such as skipping a non-finite update must be the same everywhere, or the replicas diverge.

        The same all-reduce carries the ranks' stop votes (:class:`sectl.train.stopping.StopVote`): every
        step makes this call, so agreeing on where to stop costs no collective of its own."""
        if not self.distributed:
            return flag
        if self.vote is None:
            agreed = flag.to(torch.int32)
            dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
            return agreed.bool()
        both = torch.stack([flag.to(torch.int32).reshape(()), self.vote.mine])
        dist.all_reduce(both, op=dist.ReduceOp.MIN)
        self.vote.agreed = both[1]
        return both[0].bool()

    def broadcast(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (the module must be on ``device``).

        A non-contiguous tensor (a transposed buffer) travels as a contiguous copy: NCCL refuses views."""
        if not self.distributed:
            return
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.data.is_contiguous():
                dist.broadcast(tensor.data, src=0)
            else:
                staged = tensor.data.contiguous()
                dist.broadcast(staged, src=0)
                tensor.data.copy_(staged)

    def gather(self, value: Any) -> list[Any]:
        """Every rank's picklable ``value``, in rank order (on every rank)."""
        if not self.distributed:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group together: a rank that exits while another still talks to it makes gloo
        abort that one (SIGABRT) at exit."""
        if self.distributed and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


class GradientReducer:
    """Averages the gradients of ``params`` over ranks, overlapping the communication with backward.

    Parameters are grouped into buckets of about :data:`BUCKET_BYTES`, in reverse order of definition
    (the order backward produces them). A hook on each parameter counts accumulated gradients; when a
    bucket is complete it is flattened and all-reduced asynchronously, buckets strictly in order so
    every rank issues the same collectives. :meth:`finish` sends what is left, waits, and writes the
    averages back. Single process: no-op.

    A parameter without a gradient on this rank (an unused head, such as DeepFilterNet3's ``lsnr_fc``)
    keeps ``None``, as in one process, so AdamW neither decays nor moves it; it sends zeros to keep the
    bucket's layout. Each bucket also carries one presence flag per parameter: :attr:`consistent` is
    false (on the device) when ranks disagree on which parameters received a gradient, and the step
    is then skipped everywhere instead of letting the replicas diverge.
    """

    def __init__(self, params: Iterable[nn.Parameter], workers: Workers, bucket_bytes: int = BUCKET_BYTES) -> None:
        self.workers = workers
        self.buckets: list[list[nn.Parameter]] = []
        self._reset()
        if not workers.distributed:
            return
        size = bucket_bytes
        for p in reversed([p for p in params if p.requires_grad]):
            if size + p.numel() * p.element_size() > bucket_bytes:
                self.buckets.append([])
                size = 0
            self.buckets[-1].append(p)
            size += p.numel() * p.element_size()
        self.bucket_of = {id(p): i for i, bucket in enumerate(self.buckets) for p in bucket}
        self._reset()  # one counter per bucket
        for bucket in self.buckets:
            for p in bucket:
                p.register_post_accumulate_grad_hook(self._ready)

    def _reset(self) -> None:
        self.ready = [0] * len(self.buckets)
        self.next_bucket = 0
        self.pending: list[tuple[Any, torch.Tensor, list[nn.Parameter], list[bool]]] = []
        self.consistent: torch.Tensor | None = None  # set by finish(); None in one process

    def _ready(self, param: nn.Parameter) -> None:
        self.ready[self.bucket_of[id(param)]] += 1
        while self.next_bucket < len(self.buckets) and self.ready[self.next_bucket] == len(self.buckets[self.next_bucket]):
            self._launch(self.next_bucket)

    def _launch(self, index: int) -> None:
        bucket = self.buckets[index]
        present = [p.grad is not None for p in bucket]
        grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in bucket]
        flags = torch.ones(len(bucket), dtype=grads[0].dtype, device=grads[0].device)
        if not all(present):  # only a bucket holding an unused parameter stages its mask from the host
            flags = host_values(present, flags.device, flags.dtype)
        flat = torch.cat([*grads, flags * self.workers.world_size])
        flat.div_(self.workers.world_size)
        self.pending.append((dist.all_reduce(flat, async_op=True), flat, bucket, present))
        self.next_bucket = index + 1

    def finish(self) -> None:
        """Complete the averaging of this backward's gradients (call before clipping and stepping)."""
        if not self.workers.distributed:
            return
        while self.next_bucket < len(self.buckets):
            self._launch(self.next_bucket)
        agreements = []
        for work, flat, bucket, present in self.pending:
            work.wait()
            offset = 0
            for p, has_grad in zip(bucket, present):
                if has_grad:
                    p.grad.copy_(flat[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
            ranks_with_grad = flat[offset:]  # each parameter's count of ranks that had a gradient
            agreements.append(((ranks_with_grad == 0) | (ranks_with_grad == self.workers.world_size)).all())
        self._reset()
        self.consistent = torch.stack(agreements).all() if agreements else None


def start_workers(device_name: str, timeout_s: float = 1800.0) -> tuple[Workers, torch.device]:
    """Join the process group ``torchrun`` describes (if any) and pick this process's device.

    ``train.device`` ``auto`` or ``cuda`` gives each process the GPU of its local rank and NCCL;
    ``cpu`` (or no GPU) gives gloo. Collectives time out after ``timeout_s`` (``train.dist_timeout_s``).
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if not launched_by_torchrun():
        return Workers(device=device), device
    if device.type not in ("cuda", "cpu"):
        raise ConfigError(f"train.device: {device_name!r} is not supported for multi-process training; use auto, cuda or cpu")
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=timeout_s))
    return Workers(dist.get_rank(), dist.get_world_size(), local_rank, device, grouped=True, vote=StopVote(device)), device


def launched_by_torchrun() -> bool:
    """torchrun (and any env:// launcher) sets where the group meets and how many join it."""
    return "MASTER_ADDR" in os.environ and "WORLD_SIZE" in os.environ

