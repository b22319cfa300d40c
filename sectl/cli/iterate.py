"""`sectl iterate`: the self-consistency test."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from sectl.cli.common import handle_errors, out, print_json, progress_bar, warn

HELP = """Feed the enhancer its own output n times and score every step (step 0 is the input).

Every step reports its level and the SI-SDR against the previous step; with --ref, PESQ-WB, ESTOI,
SI-SDR and LSD against the reference; and DNSMOS OVRL and P.808, which need no reference, so real
recordings can be tested too (--no-dnsmos skips them).

Examples:

  sectl iterate noisy.wav --n 10 --ref clean.wav

  sectl iterate recording.wav --n 5 --plot steps.png -o steps/

  sectl iterate noisy.wav --n 10 --ref clean.wav --model runs/mal --json
"""


def iterate_command(
    source: Path = typer.Argument(..., help="Input recording."),
    n: int = typer.Option(10, "--n", min=1, help="Number of self-applications."),
    ref: Optional[Path] = typer.Option(None, "--ref", help="Clean reference for intrusive metrics."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name (default, deepfilternet3, nsnet2, sectl-demucs), run folder or checkpoint."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder to keep each step's audio."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG of the metrics against the step."),
    dnsmos: bool = typer.Option(True, "--dnsmos/--no-dnsmos", help="Report DNSMOS OVRL and P.808 at every step."),
    dnsmos_dir: Optional[Path] = typer.Option(None, "--dnsmos-dir", help="Folder with the DNSMOS ONNX models."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing step files in --output and an existing --plot."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Self-consistency test: apply the enhancer to its own output n times."""
    _run(source, n, ref, model, output, plot, dnsmos, dnsmos_dir, overwrite, as_json)


@handle_errors
def _run(source, n, ref, model, output, plot, dnsmos, dnsmos_dir, overwrite, as_json) -> None:
    from sectl.iterate import iterate, plot_iterations
    from sectl.models.loading import load_enhancer

    enhancer = load_enhancer(model)
    with progress_bar("iterating", total=n + 1) as on_progress:
        report = iterate(enhancer, source, n, ref=ref, out_dir=output, non_intrusive=dnsmos, overwrite=overwrite, on_progress=on_progress,
                         dnsmos_dir=dnsmos_dir)
    for line in report.warnings:
        warn(line)
    if plot is not None:
        plot_iterations(report, plot, overwrite)
    if as_json:
        print_json(report.to_json())
        return
    keys = list(dict.fromkeys(k for step in report.steps for k in step))
    table = Table(title=f"{source.name}: {n} self-applications")
    for key in keys:
        table.add_column(key, justify="right")
    for step in report.steps:
        table.add_row(*[_fmt(step.get(k)) for k in keys])
    out.print(table)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.3f}"
