"""Deterministic shards of a batch, so N scheduler jobs (a Slurm array, ``xargs -P``) split a corpus
without overlap and without talking to each other: shard ``K/N`` (1-based) takes every N-th item of the
inputs sorted by path, starting with the K-th."""

from __future__ import annotations

from typing import Sequence, TypeVar

from sectl.errors import UsageError

T = TypeVar("T")


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)``; ``None`` -> ``None``; anything else is a usage error."""
    if spec is None:
        return None
    try:
        k, n = (int(part) for part in spec.split("/"))
    except ValueError:
        raise UsageError(f"--shard {spec!r}: expected K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise UsageError(f"--shard {spec!r}: need 1 <= K <= N")
    return k, n


def select_shard(items: Sequence[T], shard: tuple[int, int] | None, key=str) -> list[T]:
    """The items of shard ``(K, N)`` (all items when ``None``), in sorted order of ``key``."""
    ordered = sorted(items, key=key)
    if shard is None:
        return ordered
    k, n = shard
    return ordered[k - 1 :: n]
