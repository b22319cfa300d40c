"""onnxruntime under a PyTorch model, for speed: its graphs, exported once and cached.

Why: one graph per model, the stream step with a dynamic number of hops per call, serves both files
and live streams. On one CPU thread it runs DeepFilterNet3 over a file at RTF 0.020 (PyTorch: about
0.037), and hop by hop about 5x faster than the PyTorch frame step (``benchmarks/stream.py``). Exporting costs about a second, so the graph is
cached (:mod:`sectl.onnx.cache`, keyed by everything that decides it).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, TypeVar

import torch

from sectl.errors import ModelError, SectlWarning, first_line
from sectl.onnx.cache import graph_key, graph_path, prune, touch

__all__ = ["cached_graph", "graph_key", "onnx_runs_faster", "onnx_engine", "stream_engine"]

T = TypeVar("T")


def cached_graph(model: torch.nn.Module) -> Path:
    """The cached stream graph of ``model`` (explicit states, many hops per call), exported on first use."""
    from sectl.onnx.export import export_onnx

    path = graph_path(model)
    if path.is_file():
        touch(path)
        return path
    export_onnx(model, path, source="sectl.onnx.engine cache", overwrite=True)
    prune(keep=path)
    return path


def onnx_runs_faster(model: object) -> bool:
    """Whether onnxruntime runs ``model`` faster than PyTorch: it streams many hops per call, so its stream
    graph enhances a file in a few large calls (about 1.9x faster than PyTorch for DeepFilterNet3, equal to
    one pass at any length). Demucs streams one hop per call, which onnxruntime does not make faster."""
    from sectl.streaming import frame_step

    try:
        return frame_step(model).multi_hop
    except ModelError:
        return False


def _opened(model: torch.nn.Module, open_graph: Callable[[Path], T]) -> T:
    """``open_graph`` on the cached graph; one that fails to load (a full disk, a copy cut short) is exported
    again, once, with a warning."""
    path = cached_graph(model.cpu())
    try:
        return open_graph(path)
    except ModelError as exc:
        warnings.warn(f"cached graph {path.name} does not load ({first_line(exc)}); exporting it again", SectlWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        return open_graph(cached_graph(model.cpu()))


def onnx_engine(model: torch.nn.Module, threads: int | None = None):
    """``model`` as an :class:`sectl.onnx.OnnxEnhancer` on the CPU: its cached stream graph, which enhances a
    file of any length exactly as one pass over it (a model that cannot stream is refused, with the reason)."""
    from sectl.onnx.runtime import OnnxEnhancer
    from sectl.streaming import frame_step

    try:
        frame_step(model)
    except ModelError as exc:
        raise ModelError(f"no onnxruntime graph, as {exc} (use --engine torch)") from None
    threads = threads or torch.get_num_threads()
    return _opened(model, lambda path: OnnxEnhancer(path, threads))


def stream_engine(model: torch.nn.Module, threads: int = 1):
    """``model``'s cached stream graph as an :class:`sectl.onnx.OnnxFrames` runner (a model that cannot
    stream is refused by the exporter, with the reason)."""
    from sectl.onnx.runtime import OnnxFrames

    return _opened(model, lambda path: OnnxFrames(path, threads))
