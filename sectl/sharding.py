"""Deterministic shards of a batch, so N scheduler jobs (a Slurm array, ``xargs -P``) split a corpus
without overlap and without talking to each other: shard ``K/N`` (1-based) takes every N-th item of the
inputs sorted by path, starting with the K-th. ``auto`` reads K and N from the scheduler."""

from __future__ import annotations

import os
from typing import Mapping, Sequence, TypeVar

from sectl.errors import UsageError

T = TypeVar("T")


def parse_shard(spec: str | None, environ: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)``; ``"auto"`` -> the scheduler's (:func:`scheduler_shard`); ``None`` -> ``None``;
    anything else is a usage error."""
    if spec is None:
        return None
    if spec == "auto":
        return scheduler_shard(os.environ if environ is None else environ)
    try:
        k, n = (int(part) for part in spec.split("/"))
    except ValueError:
        raise UsageError(f"--shard {spec!r}: expected K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise UsageError(f"--shard {spec!r}: need 1 <= K <= N")
    return k, n


def scheduler_shard(environ: Mapping[str, str]) -> tuple[int, int]:
    """The shard of this process: a Slurm job array's task (``--array=1-64``: task 5 is 5/64; steps and
    any first index work), a torchrun rank (``RANK``/``WORLD_SIZE``: rank 0 of 8 is 1/8), or both (each
    rank of each array task: N = tasks x ranks)."""
    array = _slurm_array(environ)
    ranks = None
    if "RANK" in environ and "WORLD_SIZE" in environ:
        ranks = _whole(environ, "RANK") + 1, _whole(environ, "WORLD_SIZE")
    if array is None and ranks is None:
        raise UsageError("--shard auto: no scheduler found (neither a Slurm job array, SLURM_ARRAY_TASK_ID, nor "
                         "torchrun, RANK and WORLD_SIZE); give K/N")  # fmt: skip
    (task, tasks), (rank, world) = array or (1, 1), ranks or (1, 1)
    k, n = (task - 1) * world + rank, tasks * world
    if not 1 <= k <= n:
        raise UsageError(f"--shard auto: the scheduler says shard {k} of {n}")
    return k, n


def _slurm_array(environ: Mapping[str, str]) -> tuple[int, int] | None:
    if "SLURM_ARRAY_TASK_ID" not in environ:
        return None
    task_id = _whole(environ, "SLURM_ARRAY_TASK_ID")
    first = _whole(environ, "SLURM_ARRAY_TASK_MIN", task_id)
    last = _whole(environ, "SLURM_ARRAY_TASK_MAX", task_id)
    step = _whole(environ, "SLURM_ARRAY_TASK_STEP", 1) or 1
    count = _whole(environ, "SLURM_ARRAY_TASK_COUNT", (last - first) // step + 1)
    if (last - first) // step + 1 != count or (task_id - first) % step:
        raise UsageError(f"--shard auto: Slurm array {first}-{last}:{step} has {count} tasks, not an even range; "
                         "give K/N, or use a range such as --array=1-64")  # fmt: skip
    return (task_id - first) // step + 1, count


def _whole(environ: Mapping[str, str], name: str, default: int | None = None) -> int:
    if name not in environ and default is not None:
        return default
    try:
        return int(environ[name])
    except ValueError:
        raise UsageError(f"--shard auto: {name}={environ[name]!r} is not a whole number") from None


def select_shard(items: Sequence[T], shard: tuple[int, int] | None, key=str) -> list[T]:
    """The items of shard ``(K, N)`` (all items when ``None``), in sorted order of ``key``."""
    ordered = sorted(items, key=key)
    if shard is None:
        return ordered
    k, n = shard
    return ordered[k - 1 :: n]
