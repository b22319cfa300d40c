"""``sectl export``: what ``--model`` names as an ONNX graph (:mod:`sectl.onnx`) or as a run's small
inference-only checkpoint (:mod:`sectl.models.io.export`).

This orchestration (check the targets, load, apply the post-filter, export) sits above the pieces it
calls, so neither model loading nor the exporter reaches up into the other.
"""

from __future__ import annotations

from pathlib import Path

from sectl.engines import load_enhancer, with_post_filter
from sectl.errors import UsageError
from sectl.fileutil import InputTargetError, check_outputs, inputs
from sectl.modelfiles import model_stores
from sectl.models.io.export import export
from sectl.models.io.loading import describe
from sectl.onnx.export import check_targets, export_onnx
from sectl.options import check_export_target


def export_model(source: str | None, out: str | Path, overwrite: bool = False, post_filter: bool = False) -> dict:
    """Export what ``--model`` names: ``.onnx`` -> its stream graph (explicit states, many hops per call
    where the model allows), ``.pt`` -> the inference-only checkpoint of a run or checkpoint."""
    suffix = check_export_target(str(out))
    reads = [*inputs("model", source), *model_stores()]
    if suffix == ".pt":
        refuse_training_checkpoint(Path(out))
        check_outputs({"checkpoint": out}, reads, overwrite)
        return export(source, out)
    check_targets(out, overwrite, reads)  # before loading and tracing
    if source is not None and Path(source).suffix == ".onnx":
        raise UsageError(f"{source}: already an ONNX graph; export the checkpoint or run it came from")
    model = load_enhancer(source)
    if post_filter:
        model = with_post_filter(model)
    return export_onnx(model, out, describe(source), overwrite)


def refuse_training_checkpoint(out: Path) -> None:
    """An inference export never takes the place of a run's checkpoint: it has no optimizer state, so the
    run could no longer resume (``-o RUN/checkpoints/last.pt --overwrite``)."""
    run = out.parent.parent
    if out.exists() and out.parent.name == "checkpoints" and (run / "config.yaml").is_file():
        raise InputTargetError(f"{out}: a checkpoint of the run {run} (what it resumes from); an inference export "
                               "never replaces it, even with --overwrite; choose another name")  # fmt: skip
