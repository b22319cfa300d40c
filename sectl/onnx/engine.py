"""onnxruntime under a PyTorch model, for speed: its graphs, exported once and cached.

Why: on one CPU thread DeepFilterNet3's offline graph runs at RTF 0.0141 in onnxruntime against
0.0238 in PyTorch (``benchmarks/stream.py``), mostly because PyTorch runs a GRU one timestep at a
time; hop by hop the stream graph is about 3x faster than the PyTorch frame step. Exporting costs about
a second, so each graph is cached (:mod:`sectl.onnx.cache`, keyed by everything that decides it).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, TypeVar

import torch

from sectl.errors import ModelError, SectlWarning, first_line
from sectl.onnx.cache import graph_key, graph_path, prune, touch

__all__ = ["cached_graph", "graph_key", "has_offline_graph", "onnx_engine", "stream_engine"]

T = TypeVar("T")


def cached_graph(model: torch.nn.Module, kind: str = "offline") -> Path:
    """The cached ``offline`` (whole-signal) or ``stream`` (one hop, explicit states) graph of ``model``,
    exported on first use."""
    from sectl.onnx.export import export_onnx

    path = graph_path(model, kind)
    if path.is_file():
        touch(path)
        return path
    export_onnx(model, path, kind=kind, source="sectl.onnx.engine cache", overwrite=True)
    prune(keep=path)
    return path


def has_offline_graph(model: object) -> bool:
    from sectl.onnx.graphs import OFFLINE_GRAPHS

    return type(model) in OFFLINE_GRAPHS


def _opened(model: torch.nn.Module, kind: str, open_graph: Callable[[Path], T]) -> T:
    """``open_graph`` on the cached graph; one that fails to load (a full disk, a copy cut short) is exported
    again, once, with a warning."""
    path = cached_graph(model.cpu(), kind)
    try:
        return open_graph(path)
    except ModelError as exc:
        warnings.warn(f"cached graph {path.name} does not load ({first_line(exc)}); exporting it again", SectlWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        return open_graph(cached_graph(model.cpu(), kind))


def onnx_engine(model: torch.nn.Module, threads: int | None = None):
    """``model`` as an :class:`sectl.onnx.OnnxEnhancer` on the CPU (its cached whole-signal graph)."""
    from sectl.onnx.runtime import OnnxEnhancer

    if not has_offline_graph(model):
        raise ModelError(f"{model.name}: no onnxruntime graph for this architecture (use --engine torch)")
    threads = threads or torch.get_num_threads()
    return _opened(model, "offline", lambda path: OnnxEnhancer(path, threads))


def stream_engine(model: torch.nn.Module, threads: int = 1):
    """``model``'s cached stream graph as an :class:`sectl.onnx.OnnxFrames` runner (a model that cannot
    stream is refused by the exporter, with the reason)."""
    from sectl.onnx.runtime import OnnxFrames

    return _opened(model, "stream", lambda path: OnnxFrames(path, threads))
