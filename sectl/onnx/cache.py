"""sectl's cache of exported graphs (``$XDG_CACHE_HOME/sectl/onnx``): keyed by everything a graph depends
on, bounded in size, listed and cleared by ``sectl cache``.

A key that misses a dependency serves a stale graph silently, so the key is built from what is found, not
from a list kept by hand: every parameter and buffer (persistent or not: windows, filter banks, start
values), the constructor arguments, the source of every sectl module the model's module and the exporter
import (:func:`sectl.provenance.source_closure`), and the torch, onnx and onnxruntime versions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sectl.modelfiles import cache_root
from sectl.provenance import source_closure, versions

if TYPE_CHECKING:
    import torch

DEFAULT_LIMIT_GB = 2.0
"""The cache's size bound unless ``$SECTL_CACHE_GB`` says otherwise; the least recently used graphs go first."""

EXPORTER_MODULES = ("sectl.onnx.engine", "sectl.onnx.export", "sectl.streaming")


def cache_dir() -> Path:
    return cache_root() / "onnx"


def graph_key(model: torch.nn.Module) -> str:
    import torch

    digest = hashlib.sha256()
    header = [type(model).__module__, type(model).__qualname__, model.constructor_args, versions()]
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for path in _sources(type(model).__module__):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


@functools.cache
def _sources(model_module: str) -> tuple[Path, ...]:
    return tuple(source_closure(model_module, *EXPORTER_MODULES))


def graph_path(model: torch.nn.Module) -> Path:
    """Where ``model``'s stream graph is cached."""
    return cache_dir() / f"{model.name}-stream-{graph_key(model)}.onnx"


def touch(path: Path) -> None:
    """Mark an entry as just used (the size bound removes the least recently used first)."""
    try:
        os.utime(path)
    except OSError:
        pass


@dataclass(frozen=True)
class Entry:
    path: Path
    size: int
    last_used: float

    def to_json(self) -> dict:
        return {"file": str(self.path), "bytes": self.size,
                "last_used": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.last_used))}  # fmt: skip


def entries() -> list[Entry]:
    """Every cached graph, most recently used first (sidecars count with their graph)."""
    found = []
    for graph in cache_dir().glob("*.onnx"):
        try:
            stat = graph.stat()
            sidecar = graph.with_suffix(".json")
            size = stat.st_size + (sidecar.stat().st_size if sidecar.exists() else 0)
        except OSError:
            continue  # removed by another process meanwhile
        found.append(Entry(graph, size, stat.st_mtime))
    return sorted(found, key=lambda e: e.last_used, reverse=True)


def remove(entry: Entry) -> None:
    for path in (entry.path, entry.path.with_suffix(".json")):
        path.unlink(missing_ok=True)


def limit_bytes() -> int:
    try:
        gigabytes = float(os.environ.get("SECTL_CACHE_GB", DEFAULT_LIMIT_GB))
    except ValueError:
        gigabytes = DEFAULT_LIMIT_GB
    return int(max(gigabytes, 0.0) * 2**30)


def prune(keep: Path | None = None, limit: int | None = None) -> list[Entry]:
    """Remove the least recently used graphs until the cache fits ``limit`` (never ``keep``); returns them."""
    limit = limit_bytes() if limit is None else limit
    listed = entries()
    total = sum(e.size for e in listed)
    removed = []
    for entry in reversed(listed):
        if total <= limit:
            break
        if keep is not None and entry.path == keep:
            continue
        remove(entry)
        total -= entry.size
        removed.append(entry)
    return removed


def clear() -> list[Entry]:
    """Remove every cached graph; returns what was removed."""
    listed = entries()
    for entry in listed:
        remove(entry)
    return listed
