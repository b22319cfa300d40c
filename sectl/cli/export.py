"""`sectl export`: a model as one ONNX graph (whole signal, or one streaming hop with explicit state)."""

from __future__ import annotations

from typing import Optional

import typer

from sectl.cli.common import handle_errors, out, print_json

HELP = """Export a model as ONNX (run by onnxruntime, or by `sectl enhance --model NAME.onnx`).

Without --stream: one graph of the whole enhancer, noisy (batch, samples) -> enhanced, any length.
With --stream: one graph that processes one hop, every model state an explicit input and output
(`<name>` in, `<name>_next` out), for frame-by-frame use in real time. Either way a JSON sidecar
(NAME.json) beside it gives the rate, hop, latency, state shapes and initial values, and where it
came from; the graph carries the same record as ONNX metadata. -o NAME.pt instead writes a run's
inference-only checkpoint (float16 weights, no optimizer state).

Examples:

  sectl export default -o dfn3.onnx

  sectl export nsnet2 -o nsnet2_stream.onnx --stream

  sectl export runs/mal -o mal.onnx --stream --json

  sectl enhance --stream --model dfn3_stream.onnx - -o - < noisy.wav > clean.wav
"""


def export_command(
    model: Optional[str] = typer.Argument(None, help="Model name (default, deepfilternet3, nsnet2, gtcrn, gtcrn-dns3), run folder or checkpoint."),
    output: str = typer.Option(..., "--output", "-o", help="NAME.onnx (an ONNX graph) or NAME.pt (inference checkpoint)."),
    stream: bool = typer.Option(False, "--stream", help="Export the one-hop streaming graph with explicit states."),
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

    record = export_model(model, output, stream, overwrite, post_filter)
    if as_json:
        print_json(record)
        return
    if "latency_ms" in record:
        out.print(f"wrote {output}: {record['architecture']} stream step, hop {record['layout']['hop']} samples at "
                  f"{record['layout']['sample_rate']} Hz, latency {record['latency_ms']:.1f} ms", highlight=False)  # fmt: skip
    else:
        out.print(f"wrote {output}", highlight=False)
