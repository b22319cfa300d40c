"""Write an enhancer as ONNX: its stream step, every state an explicit input and output, with a dynamic
number of hops per call where the model allows it (one hop for Demucs). One graph serves a live feed
(a hop or a block per call) and a file (a few large calls), and equals one pass over the whole signal.

The graph carries its own description (rate, hop, latency, state names, shapes and initial values,
provenance) as ONNX metadata under ``sectl``, which the runtime reads; the same record is written as
a JSON sidecar beside it for people and other tools.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any, Iterable

import torch

from sectl.errors import ModelError
from sectl.fileutil import Input, InputTargetError, atomic_write_bytes, atomic_write_text, check_outputs, refuse_inputs
from sectl.provenance import git_commit, versions

OPSET = 17
EXAMPLE_HOPS = 3  # hops in the traced example of a multi-hop stream step
METADATA_KEY = "sectl"
FORMAT_VERSION = 1
SIDECAR_FORMAT = "sectl-onnx"


PROTOCOL = (
    "At the model's sample_rate, per channel as a batch row: start every state at its 'initial' (zeros if "
    "absent); feed lead_in zeros, then the signal, in whole hops of 'samples' with 'length' -1: one hop per "
    "call, or, where 'multi_hop' is true, any number of hops per call, except that the first calls carry "
    "exactly layout.warmup hops in all (a call holding both warm-up hops and later ones returns NaN). Each call returns "
    "as many samples of 'enhanced' and every '<state>_next' for the next call. At the end, with the signal's "
    "length T known: feed the last partial hop zero-padded, then hops of zeros, all with 'length' T, until "
    "ceil((T + preroll) / hop) hops in all. Drop the first preroll output samples and keep T."
)
"""How to drive a stream graph from its sidecar alone (also in the README, with examples/stream_onnx.py)."""


def sidecar_path(graph: str | Path) -> Path:
    return Path(graph).with_suffix(".json")


def check_targets(out: str | Path, overwrite: bool = False, reads: Iterable[Input] = ()) -> None:
    """Before any loading or tracing: no input is a target, an existing graph or sidecar only with
    ``overwrite``, and a sidecar only ever replaces a sidecar (``-o RUN/run.onnx`` must not take the
    place of the run's ``run.json``)."""
    sidecar = sidecar_path(out)
    refuse_inputs({"ONNX model": out, "sidecar": sidecar}, reads)
    if sidecar.exists() and not is_sidecar(sidecar):  # before "exists": --overwrite would not help, so never suggest it
        raise InputTargetError(f"{sidecar}: exists and is not a sidecar of sectl export, which -o {Path(out).name} would "
                               f"write there; choose another name")  # fmt: skip
    check_outputs({"ONNX model": out, "sidecar": sidecar}, reads, overwrite)


def is_sidecar(path: Path) -> bool:
    """Whether ``path`` holds a sidecar this module wrote (JSON with its ``format``)."""
    try:
        return json.loads(path.read_text()).get("format") == SIDECAR_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _traced(module: torch.nn.Module, example: tuple, **options: Any) -> bytes:
    """``module`` traced by the TorchScript exporter (which handles GRUs/LSTMs with explicit states)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, buffer, opset_version=OPSET, dynamo=False, **options)
    return buffer.getvalue()


def _state_record(step, initial: tuple[torch.Tensor, ...]) -> list[dict[str, Any]]:
    """Each state's name, shape (``batch`` first, but the shared frame counter) and initial value: the frame
    counter's (``first_frame``, not 0: NSNet2's is -1) and every non-zero row, so the sidecar alone starts a
    stream right; an omitted ``initial`` means zeros."""
    records = []
    for (name, shape), value in zip(step.state_shapes().items(), initial):
        record: dict[str, Any] = {"name": name, "dtype": str(value.dtype).removeprefix("torch.")}
        record["shape"] = [1] if name == "frame" else ["batch", *shape]
        if name == "frame":
            record["initial"] = value.tolist()
        elif value.abs().max() > 0:
            record["initial"] = value[0].tolist()
        records.append(record)
    return records


def _latency_by_rate(step) -> dict[str, float]:
    """The stream's delay in ms when fed at the usual rates (resampled to the model's rate and back)."""
    from sectl.streaming import Streamer, TorchFrames

    return {str(rate): round(Streamer(TorchFrames(step), rate).latency_ms, 3) for rate in (16000, 44100, 48000)}


def _stream_graph(model: torch.nn.Module) -> tuple[bytes, dict[str, Any]]:
    from sectl.streaming import frame_step
    from sectl.streaming.frames import guarded

    step = frame_step(model)
    layout = step.layout
    initial = step.initial_state(1)
    names = step.state_names
    batched = {name: {0: "batch"} for name in names if name != "frame"}
    time_axis = {0: "batch", 1: "samples"} if step.multi_hop else {0: "batch"}
    axes = {"samples": time_axis, "enhanced": time_axis, **batched}
    axes.update({f"{name}_next": axis for name, axis in batched.items()})
    hops = EXAMPLE_HOPS if step.multi_hop else 1  # more than one, so no size of one is folded in as a constant
    example = (torch.zeros(1, hops * layout.hop), torch.full((1,), -1, dtype=torch.int64), *initial)
    payload = _traced(guarded(step), example, input_names=["samples", "length", *names],
                      output_names=["enhanced", *(f"{name}_next" for name in names)], dynamic_axes=axes)
    record = {
        "kind": "stream",
        "layout": {field: getattr(layout, field) for field in ("sample_rate", "hop", "preroll", "end_pad", "first_frame",
                                                               "lead_in", "warmup")},  # fmt: skip
        "multi_hop": step.multi_hop,
        "latency_samples": layout.latency,
        "latency_ms": round(1000 * layout.latency / layout.sample_rate, 3),
        "latency_ms_by_input_rate": _latency_by_rate(step),
        "protocol": PROTOCOL,
        "inputs": {"samples": ["batch", "hops * hop" if step.multi_hop else layout.hop], "length": [1]},
        "states": _state_record(step, initial),
    }
    return payload, record


def export_onnx(model: torch.nn.Module, out: str | Path, source: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Write ``model``'s stream graph (on the CPU) as ONNX at ``out`` and its JSON sidecar; returns the
    sidecar record. A model that cannot stream is refused, naming the setting that would make it stream."""
    import onnx

    out = Path(out)
    check_targets(out, overwrite)
    payload, record = _stream_graph(model.cpu().eval())
    record = {
        "format": SIDECAR_FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.name,
        "constructor_args": model.constructor_args,
        **record,
        "opset": OPSET,
        "provenance": {"source": source, "export_commit": git_commit(), "versions": versions()},
    }
    graph = onnx.load_from_string(payload)
    onnx.helper.set_model_props(graph, {METADATA_KEY: json.dumps(record)})
    atomic_write_bytes(out, graph.SerializeToString())
    atomic_write_text(sidecar_path(out), json.dumps(record, indent=2) + "\n")
    return record
