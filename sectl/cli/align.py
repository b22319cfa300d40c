"""`sectl align`: soft-DTW alignment of two recordings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from sectl.cli.common import DEVICE_HELP, EXIT_USAGE, fail, handle_errors, out, print_json, warn
from sectl.errors import UsageError
from sectl.fileutil import check_outputs, inputs, write_new
from sectl.options import FEATURE_KINDS, check_device_name

HELP = """Align two recordings with soft-DTW in a feature space and report cost, divergence and path.

Features: mfcc (default, 10 ms frames), ssl (an SSL model's layer), model (the encoder of a trained
enhancer, --model RUN_DIR). Recordings at different sample rates are resampled to 16 kHz.

Examples:

  sectl align clean.wav noisy.wav

  sectl align a.wav b.wav --gamma 0.1 --band 50 --json > alignment.json

  sectl align a.wav b.wav --plot alignment.png

Positional-exploitation diagnostic (arXiv 2601.21084): with --diagnose-position, A is scored against
copies of itself shifted by 1-8 frames, zero-padded by 2 and 5 %, and speed-perturbed (0.9, 1.1), and
against a different recording at the same positions (B, or A rotated by half its length), each with
frame-wise MSE (SSL-MSE) and the soft-DTW divergence (SSL-softDTW). Features default to ssl there.

  sectl align --diagnose-position take.wav --features ssl --model hubert_base.pt --plot position.png

  sectl align --diagnose-position take.wav other.wav --features model --model deepfilternet3 --json
"""


def align_command(
    a: Path = typer.Argument(..., help="First recording."),
    b: Optional[Path] = typer.Argument(None, help="Second recording (with --diagnose-position: the different recording)."),
    features: Optional[str] = typer.Option(None, "--features", "-f", help="mfcc, ssl or model (default mfcc; ssl with --diagnose-position)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="features=model: a model name (e.g. deepfilternet3), run folder or checkpoint; ssl: an SSL checkpoint."),
    gamma: float = typer.Option(0.1, "--gamma", min=1e-6, help="Soft-DTW smoothing."),
    band: Optional[int] = typer.Option(None, "--band", min=1, help="Sakoe-Chiba half-width in frames (default: none, or chosen and reported for pairs past 8192 x 8192 frames)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the JSON result to this file."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the cost matrix and path as PNG."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --output or --plot file."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    diagnose_position: bool = typer.Option(False, "--diagnose-position", help="Frame-wise MSE vs soft-DTW divergence of A against moved copies of itself and another recording."),
) -> None:
    """Align two recordings with soft-DTW."""
    kind = features or ("ssl" if diagnose_position else "mfcc")
    if kind not in FEATURE_KINDS:
        fail(f"--features: unknown feature kind {kind!r}; use {', '.join(FEATURE_KINDS)}", EXIT_USAGE)
    if model is not None and kind == "mfcc":
        fail("--model: MFCC features use no model; add --features model or --features ssl", EXIT_USAGE)
    if diagnose_position:
        _diagnose(a, b, kind, model, as_json, plot, overwrite, device, output)
    else:
        _run(a, b, kind, model, gamma, band, as_json, plot, overwrite, device, output)


@handle_errors
def _diagnose(a, b, features, model, as_json, plot, overwrite, device, output=None) -> None:
    check_device_name(device)  # before heavy imports
    _check_outputs(a, b, model, plot, output, overwrite)

    from sectl.position import diagnose_file, plot_diagnosis

    diagnosis = diagnose_file(a, b, features=features, model=model, device=device)
    if plot is not None:
        plot_diagnosis(diagnosis, plot, overwrite=overwrite)
    if output is not None:
        write_new(output, json.dumps(diagnosis.to_json(), indent=2).encode(), overwrite)
    if as_json:
        print_json(diagnosis.to_json())
        return
    table = Table(title=f"{a.name} in {diagnosis.features} features ({diagnosis.hop_s * 1000:g} ms frames)")
    for column in ("copy of A", "same content", "frame-wise MSE", "soft-DTW divergence / frame"):
        table.add_column(column, justify="left" if column == "copy of A" else "right")
    for row in diagnosis.rows:
        table.add_row(row.case, "yes" if row.same_content else "no", f"{row.mse:.4g}", f"{row.divergence:.4g}")
    out.print(table)
    out.print(f"different recording: {diagnosis.other}")


@handle_errors
def _run(a, b, features, model, gamma, band, as_json, plot, overwrite, device, output=None) -> None:
    check_device_name(device)  # argument errors before heavy imports
    if b is None:
        raise UsageError("sectl align needs two recordings (A B), or --diagnose-position A")

    _check_outputs(a, b, model, plot, output, overwrite)

    from sectl.align import align_files, plot_alignment
    alignment = align_files(a, b, features=features, model=model, gamma=gamma, band=band, device=device)
    if plot is not None:
        plot_alignment(alignment, plot, labels=(a.name, b.name), overwrite=overwrite)
    if output is not None:
        write_new(output, json.dumps(alignment.to_json(), indent=2).encode(), overwrite)
    if as_json:
        if alignment.band_chosen:
            warn(f"long pair: aligned within --band {alignment.band} ({alignment.band * alignment.hop_s:.1f} s); --band sets it")
        print_json(alignment.to_json())
        return
    n, m = alignment.frames
    out.print(f"cost         {alignment.cost:.4f}")
    out.print(f"divergence   {alignment.divergence:.4f}")
    out.print(f"frames       {n} x {m}  ({alignment.hop_s:.4f} s per frame)")
    out.print(f"mean warp    {alignment.mean_warp_s:.3f} s  (|t_A - t_B| along the path)")
    out.print(f"slope        {alignment.slope:.3f}  (B frames per A frame)")
    if alignment.band is None:
        out.print("band         none  (full matrix)")
    else:
        chosen = ", chosen for a long pair; --band sets it" if alignment.band_chosen else ""
        out.print(f"band         {alignment.band} frames  ({alignment.band * alignment.hop_s:.1f} s either side of the diagonal{chosen})")


def _check_outputs(a, b, model, plot, output, overwrite) -> None:
    from sectl.modelfiles import model_stores

    reads = [*inputs("A", a), *inputs("B", b), *inputs("--model", model), *model_stores()]
    check_outputs({"--plot file": plot, "--output file": output}, reads, overwrite)
