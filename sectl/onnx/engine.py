"""onnxruntime under a PyTorch model, for speed: the whole-signal graph, exported once and cached.

Why: on one CPU thread DeepFilterNet3's offline graph runs at RTF 0.0141 in onnxruntime against
0.0238 in PyTorch (``benchmarks/stream.py``), mostly because PyTorch runs a GRU one timestep at a
time. Exporting costs about a second, so the graph is cached under ``$XDG_CACHE_HOME/sectl/onnx``,
keyed by everything that decides it: the weights, the constructor arguments, sectl's version and the
source of the graph code, so an edit of either never reuses a stale graph.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import torch

from sectl.errors import ModelError
from sectl.modelfiles import cache_root


def graph_key(model: torch.nn.Module) -> str:
    from sectl import __version__
    from sectl.onnx import export, graphs
    from sectl.streaming import frames

    digest = hashlib.sha256()
    digest.update(json.dumps([type(model).__name__, model.constructor_args, __version__], sort_keys=True).encode())
    for module in (export, graphs, frames, inspect.getmodule(type(model))):
        digest.update(inspect.getsource(module).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def cached_offline_graph(model: torch.nn.Module) -> Path:
    """The cached whole-signal graph of ``model``, exported on first use."""
    from sectl.onnx.export import export_onnx

    path = cache_root() / "onnx" / f"{model.name}-{graph_key(model)}.onnx"
    if not path.is_file():
        export_onnx(model, path, kind="offline", source="sectl.onnx.engine cache", overwrite=True)
    return path


def has_offline_graph(model: object) -> bool:
    from sectl.onnx.graphs import OFFLINE_GRAPHS

    return type(model) in OFFLINE_GRAPHS


def onnx_engine(model: torch.nn.Module, threads: int | None = None):
    """``model`` as an :class:`sectl.onnx.OnnxEnhancer` on the CPU (its cached whole-signal graph)."""
    from sectl.onnx.runtime import OnnxEnhancer

    if not has_offline_graph(model):
        raise ModelError(f"{model.name}: no onnxruntime graph for this architecture (use --engine torch)")
    threads = threads or torch.get_num_threads()
    path = cached_offline_graph(model.cpu())
    try:
        return OnnxEnhancer(path, threads)
    except ModelError:  # a damaged entry of sectl's own cache (a full disk, a copy cut short): exported again, once
        path.unlink(missing_ok=True)
        return OnnxEnhancer(cached_offline_graph(model.cpu()), threads)
