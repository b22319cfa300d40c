"""`sectl align`: soft-DTW alignment of two recordings."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sectl.cli.common import handle_errors, out, print_json

HELP = """Align two recordings with soft-DTW in a feature space and report cost, divergence and path.

Features: mfcc (default, 10 ms frames), ssl (an SSL model's layer), model (the encoder of a trained
enhancer, --model RUN_DIR). Recordings at different sample rates are resampled to 16 kHz.

Examples:

  sectl align clean.wav noisy.wav

  sectl align a.wav b.wav --gamma 0.1 --band 50 --json > alignment.json

  sectl align a.wav b.wav --plot alignment.png
"""


def align_command(
    a: Path = typer.Argument(..., help="First recording."),
    b: Path = typer.Argument(..., help="Second recording."),
    features: str = typer.Option("mfcc", "--features", "-f", help="mfcc, ssl or model."),
    model: Optional[Path] = typer.Option(None, "--model", help="features=model: a model name (e.g. deepfilternet3), run folder or checkpoint; ssl: an SSL checkpoint."),
    gamma: float = typer.Option(0.1, "--gamma", min=1e-6, help="Soft-DTW smoothing."),
    band: Optional[int] = typer.Option(None, "--band", min=1, help="Sakoe-Chiba half-width in frames."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the cost matrix and path as PNG."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --plot file."),
) -> None:
    """Align two recordings with soft-DTW."""
    _run(a, b, features, model, gamma, band, as_json, plot, overwrite)


@handle_errors
def _run(a, b, features, model, gamma, band, as_json, plot, overwrite) -> None:
    from sectl.align import align_files, plot_alignment

    alignment = align_files(a, b, features=features, model=model, gamma=gamma, band=band)
    if plot is not None:
        plot_alignment(alignment, plot, labels=(a.name, b.name), overwrite=overwrite)
    if as_json:
        print_json(alignment.to_json())
        return
    n, m = alignment.frames
    out.print(f"cost         {alignment.cost:.4f}")
    out.print(f"divergence   {alignment.divergence:.4f}")
    out.print(f"frames       {n} x {m}  ({alignment.hop_s:.4f} s per frame)")
    out.print(f"mean warp    {alignment.mean_warp_s:.3f} s  (|t_A - t_B| along the path)")
    out.print(f"slope        {alignment.slope:.3f}  (B frames per A frame)")
