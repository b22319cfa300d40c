"""`sectl export`: a model as its ONNX stream graph (explicit state), or a run as a small checkpoint."""

from __future__ import annotations

from typing import Optional

import typer

from sectl.cli.common import handle_errors, out, print_json

HELP = """Export a model as ONNX (run by onnxruntime, or by `sectl enhance --model NAME.onnx`).

One graph serves files and live audio: it takes whole hops (any number per call, or one for
Demucs), every model state an explicit input and output (`<name>` in, `<name>_next` out), and over
a whole file it equals the PyTorch model in one pass. A JSON sidecar (NAME.json) beside it gives
the rate, hop, latency, state shapes and initial values, how to drive it, and where it came from;
the graph carries the same record as ONNX metadata (examples/stream_onnx.py drives it with numpy
and onnxruntime alone). -o NAME.pt instead writes a run's inference-only checkpoint (float16
weights, no optimizer state).

Examples:

  sectl export default -o dfn3.onnx

  sectl export runs/mal -o mal.onnx --json

  sectl enhance --model dfn3.onnx noisy/ -o clean/

  sectl enhance --stream --model dfn3.onnx - -o - < noisy.wav > clean.wav
"""


def export_command(
    model: Optional[str] = typer.Argument(None, help="Model name (default, deepfilternet3, nsnet2, gtcrn, gtcrn-dns3), run folder or checkpoint."),
    output: str = typer.Option(..., "--output", "-o", help="NAME.onnx (an ONNX graph) or NAME.pt (inference checkpoint)."),
    stream: bool = typer.Option(False, "--stream", hidden=True, help="No effect: every ONNX export is the stream graph."),
    post_filter: bool = typer.Option(False, "--post-filter", help="Bake DeepFilterNet's post-filter into the graph."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    as_json: bool = typer.Option(False, "--json", help="Print the sidecar record on stdout."),
) -> None:
    """Export a model."""
    _run(model, output, stream, overwrite, as_json, post_filter)


@handle_errors
def _run(model, output, stream, overwrite, as_json, post_filter=False) -> None:
    from sectl.options import check_export_target

    check_export_target(output, stream)  # before heavy imports

    from sectl.export import export_model

    record = export_model(model, output, overwrite=overwrite, post_filter=post_filter)
    if as_json:
        print_json(record)
        return
    if "latency_ms" in record:
        hops = "any number of hops" if record["multi_hop"] else "one hop"
        out.print(f"wrote {output}: {record['architecture']} stream graph, {hops} of {record['layout']['hop']} samples "
                  f"per call at {record['layout']['sample_rate']} Hz, latency {record['latency_ms']:.1f} ms", highlight=False)  # fmt: skip
    else:
        out.print(f"wrote {output}", highlight=False)
