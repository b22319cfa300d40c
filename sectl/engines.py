"""What runs an enhancer: a PyTorch model or an exported graph run by onnxruntime.

This choice sits above both ``sectl.models`` (PyTorch models and their files) and ``sectl.onnx`` (export and
the runtime), so that neither reaches into the other: what ``--model`` names is loaded here
(:func:`load_enhancer`), and what ``--engine`` asks for is applied here (:func:`inference_model`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from sectl.device import module_device, resolve_device
from sectl.errors import ModelError, SectlError, SectlWarning, UsageError, first_line
from sectl.models import Enhancer
from sectl.models.io.loading import load_torch_enhancer
from sectl.onnx import load_onnx
from sectl.onnx.engine import onnx_engine, onnx_runs_faster, stream_engine
from sectl.options import check_engine

POST_FILTER_BETA = 0.02  # DeepFilterNet's --pf


def load_enhancer(source: str | Path | None = None, device: str | torch.device = "cpu") -> Enhancer:
    """What ``--model`` names, ready to enhance on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:1``): a bundled
    or pretrained name, a run folder or a checkpoint as a PyTorch model in eval mode, or an exported ONNX
    graph (``.onnx``), which onnxruntime runs on the CPU."""
    if source is not None and Path(source).suffix == ".onnx":
        return load_onnx(source).to("cpu" if str(device) == "auto" else resolve_device(str(device)))
    return load_torch_enhancer(source, device)


def with_post_filter(model: Enhancer, beta: float = POST_FILTER_BETA) -> Enhancer:
    """``model`` with DeepFilterNet's inference post-filter on (refused, by name, for other architectures)."""
    if not hasattr(model, "with_post_filter"):
        raise UsageError(f"--post-filter: {getattr(model, 'name', 'this model')} has none (it is DeepFilterNet's; "
                         "exported graphs keep the setting they were exported with)")  # fmt: skip
    return model.with_post_filter(beta)


def inference_model(model: Enhancer, engine: str = "torch") -> Enhancer:
    """What runs ``model``: ``torch`` (itself), ``onnxruntime`` (its cached stream graph, CPU, many hops per
    call), or ``auto``: onnxruntime for a CPU model that streams many hops per call (faster, same output
    to float rounding), otherwise PyTorch."""
    check_engine(engine)
    if not isinstance(model, torch.nn.Module):  # an exported graph: onnxruntime is what runs it
        if engine == "torch":
            raise UsageError(f"--engine torch: {getattr(model, 'path', 'the model')} is an exported graph, which onnxruntime runs; "
                             "name the checkpoint or run it came from, or leave out --engine")  # fmt: skip
        return model
    if engine == "torch":
        return model
    if engine == "auto" and (module_device(model).type != "cpu" or not onnx_runs_faster(model)):
        return model
    try:
        return onnx_engine(model)
    except Exception as exc:  # noqa: BLE001 - exporting and onnxruntime fail in many ways; PyTorch gives the same output
        if engine == "auto":  # e.g. an unwritable cache folder, a graph that will not load: slower, not wrong
            warnings.warn(f"{model.name}: onnxruntime unavailable ({first_line(exc, 160)}); running PyTorch", SectlWarning)
            return model
        if isinstance(exc, SectlError):
            raise
        raise ModelError(f"{model.name}: its onnxruntime graph failed ({first_line(exc, 160)}); use --engine torch") from None


def stream_runner(model: Enhancer, engine: str = "auto", threads: int = 1):
    """What runs ``model`` hop by hop for :class:`sectl.streaming.Streamer`: ``torch`` (its frame step),
    ``onnxruntime`` (its cached stream graph, CPU), or ``auto``: the graph for a CPU model (hop by hop about
    5x faster than the PyTorch frame step for DeepFilterNet3, same output to < 1e-4), else the frame step. A model that cannot stream is refused
    with the reason, whatever the engine; an exported stream graph runs as it is."""
    from sectl.streaming import frame_runner, frame_step

    check_engine(engine)
    if not isinstance(model, torch.nn.Module):
        if engine == "torch":
            raise UsageError(f"--engine torch: {getattr(model, 'path', 'the model')} is an exported graph, which onnxruntime runs")
        return frame_runner(model)
    frame_step(model)  # refuses, naming the setting that would stream, before any export
    if engine == "torch" or (engine == "auto" and module_device(model).type != "cpu"):
        return frame_runner(model)
    try:
        return stream_engine(model, threads)
    except Exception as exc:  # noqa: BLE001 - as for inference_model: slower, not wrong
        if engine == "auto":
            warnings.warn(f"{model.name}: onnxruntime unavailable for streaming ({first_line(exc, 160)}); running PyTorch",
                          SectlWarning)  # fmt: skip
            return frame_runner(model)
        if isinstance(exc, SectlError):
            raise
        raise ModelError(f"{model.name}: its stream graph failed ({first_line(exc, 160)}); use --engine torch") from None
