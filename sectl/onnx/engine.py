"""onnxruntime under a PyTorch model, for speed: the whole-signal graph, exported once and cached.

Why: on one CPU thread DeepFilterNet3's offline graph runs at RTF 0.0141 in onnxruntime against
0.0238 in PyTorch (``benchmarks/stream.py``), mostly because PyTorch runs a GRU one timestep at a
time. Exporting costs about a second, so the graph is cached (:mod:`sectl.onnx.cache`, keyed by
everything that decides it).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from sectl.errors import ModelError, SectlWarning, first_line
from sectl.onnx.cache import graph_key, graph_path, prune, touch

__all__ = ["cached_offline_graph", "graph_key", "has_offline_graph", "onnx_engine"]


def cached_offline_graph(model: torch.nn.Module) -> Path:
    """The cached whole-signal graph of ``model``, exported on first use."""
    from sectl.onnx.export import export_onnx

    path = graph_path(model)
    if path.is_file():
        touch(path)
        return path
    export_onnx(model, path, kind="offline", source="sectl.onnx.engine cache", overwrite=True)
    prune(keep=path)
    return path


def has_offline_graph(model: object) -> bool:
    from sectl.onnx.graphs import OFFLINE_GRAPHS

    return type(model) in OFFLINE_GRAPHS


def onnx_engine(model: torch.nn.Module, threads: int | None = None):
    """``model`` as an :class:`sectl.onnx.OnnxEnhancer` on the CPU (its cached whole-signal graph). A cached
    graph that fails to load (a full disk, a copy cut short) is exported again, once, with a warning."""
    from sectl.onnx.runtime import OnnxEnhancer

    if not has_offline_graph(model):
        raise ModelError(f"{model.name}: no onnxruntime graph for this architecture (use --engine torch)")
    threads = threads or torch.get_num_threads()
    path = cached_offline_graph(model.cpu())
    try:
        return OnnxEnhancer(path, threads)
    except ModelError as exc:
        warnings.warn(f"cached graph {path.name} does not load ({first_line(exc)}); exporting it again", SectlWarning, stacklevel=2)
        path.unlink(missing_ok=True)
        return OnnxEnhancer(cached_offline_graph(model.cpu()), threads)
