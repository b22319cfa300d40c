"""`sectl iterate`: the self-consistency test."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from sectl.cli.common import DEVICE_HELP, EXIT_FAILURE, handle_errors, out, print_json, progress_bar, warn
from sectl.errors import UsageError
from sectl.fileutil import check_outputs, inputs
from sectl.options import check_device_name

HELP = """Feed the enhancer its own output n times and score every step (step 0 is the input).

Every step reports its level and the SI-SDR against the previous step; with --ref, PESQ-WB, ESTOI,
SI-SDR, LSD and MCD against the reference; and DNSMOS OVRL and P.808, which need no reference, so real
recordings can be tested too (--no-dnsmos skips them).

A folder (with --ref a folder, paired by name) and several --model options compare models over a
corpus: every step is averaged over the files, one table row per model and step, one plot line per
model. A file that fails is named at the end and left out of every model's averages (exit code 1).

Examples:

  sectl iterate noisy.wav --n 10 --ref clean.wav

  sectl iterate recording.wav --n 5 --plot steps.png -o steps/

  sectl iterate noisy.wav --n 10 --ref clean.wav --model runs/mal --json

  sectl iterate noisy/ --ref clean/ --n 5 --model runs/base --model runs/mal --plot curves.png
"""


def iterate_command(
    source: Path = typer.Argument(..., help="Input recording, or a folder of them."),
    n: int = typer.Option(10, "--n", min=1, help="Number of self-applications."),
    ref: Optional[Path] = typer.Option(None, "--ref", help="Clean reference (a file, or a folder for a folder) for intrusive metrics."),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="Model name (default, deepfilternet3, nsnet2, gtcrn, gtcrn-dns3, sectl-demucs), run folder or checkpoint; repeat to compare models."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder to keep each step's audio."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG of the metrics against the step."),
    dnsmos: bool = typer.Option(True, "--dnsmos/--no-dnsmos", help="Report DNSMOS OVRL and P.808 at every step."),
    dnsmos_dir: Optional[Path] = typer.Option(None, "--dnsmos-dir", help="Folder with the DNSMOS ONNX models."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing step files in --output and an existing --plot."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
) -> None:
    """Self-consistency test: apply the enhancer to its own output n times."""
    models = list(model or [])
    if source.is_dir() or len(models) > 1:
        _run_corpus(source, n, ref, models or ["default"], output, plot, dnsmos, dnsmos_dir, overwrite, as_json, device)
    else:
        _run(source, n, ref, models[0] if models else None, output, plot, dnsmos, dnsmos_dir, overwrite, as_json, device)


@handle_errors
def _run_corpus(source, n, ref, models, output, plot, dnsmos, dnsmos_dir, overwrite, as_json, device) -> None:
    check_device_name(device)  # argument errors before heavy imports
    if output is not None:
        raise UsageError("--output keeps the step audio of one file and one model; drop it to compare models over a corpus")
    if len(set(models)) != len(models):
        raise UsageError(f"--model: each model once ({', '.join(models)})")

    _check_outputs(source, ref, models, None, plot, overwrite, dnsmos_dir)

    from sectl.engines import load_enhancer
    from sectl.iterate import iterate_corpus, plot_corpus_iterations
    labels = [_label(m) for m in models]
    labels = labels if len(set(labels)) == len(labels) else models  # short names where they stay unique
    enhancers = {label: load_enhancer(None if m == "default" else m, device) for label, m in zip(labels, models)}
    with progress_bar("iterating", total=1) as on_progress:
        result = iterate_corpus(enhancers, source, n, ref=ref, non_intrusive=dnsmos, on_progress=on_progress, dnsmos_dir=dnsmos_dir)
    for line in result.warnings:
        warn(line)
    if plot is not None:
        plot_corpus_iterations(result, plot, overwrite)
    if as_json:
        print_json(result.to_json())
    else:
        rows = [(name, step) for name, steps in result.models.items() for step in steps]
        _print_steps(f"{source}: {n} self-applications, mean of {result.files} file(s)", rows, label="model")
    for line in result.failed:
        warn(f"failed: {line}")
    if result.failed:
        raise typer.Exit(EXIT_FAILURE)


@handle_errors
def _run(source, n, ref, model, output, plot, dnsmos, dnsmos_dir, overwrite, as_json, device) -> None:
    check_device_name(device)  # argument errors and outputs that are inputs: before heavy imports
    _check_outputs(source, ref, [model], output, plot, overwrite, dnsmos_dir)

    from sectl.engines import load_enhancer
    from sectl.iterate import iterate, plot_iterations, step_paths

    if output is not None:  # the step files, named by the library, before any work
        _check_outputs(source, ref, [model], None, None, overwrite, dnsmos_dir, step_paths(source, output, n))

    enhancer = load_enhancer(model, device)
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
    _print_steps(f"{source.name}: {n} self-applications", [(None, step) for step in report.steps])


def _check_outputs(source, ref, models, output, plot, overwrite, dnsmos_dir=None, steps: list | None = None) -> None:
    """Every output (the plot, the step files) against every input, before any work."""
    from sectl.audio.formats import AUDIO_EXTENSIONS
    from sectl.modelfiles import model_stores

    reads = [*inputs("input", source, AUDIO_EXTENSIONS), *inputs("--ref", ref, AUDIO_EXTENSIONS), *inputs("--model", models),
             *inputs("--dnsmos-dir", dnsmos_dir), *model_stores()]  # fmt: skip
    targets = {"--plot file": plot, "--output folder": output, **{f"step file {p.name}": p for p in steps or []}}
    check_outputs(targets, reads, overwrite)


def _label(model: str) -> str:
    """A short name: ``runs/mal/checkpoints/last.pt`` -> ``mal:last``, ``runs/mal`` -> ``mal``."""
    path = Path(model)
    return f"{path.parent.parent.name}:{path.stem}" if path.parent.name == "checkpoints" else path.name


def _print_steps(title: str, rows: list[tuple[str | None, dict]], label: str | None = None) -> None:
    """One table row per step (``rows``: an optional label, the step's values)."""
    keys = list(dict.fromkeys(k for _, step in rows for k in step))
    table = Table(title=title)
    if label:
        table.add_column(label)
    for key in keys:
        table.add_column(key, justify="right")
    for name, step in rows:
        table.add_row(*([name] if label else []), *[_fmt(step.get(k)) for k in keys])
    out.print(table)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.3f}"
