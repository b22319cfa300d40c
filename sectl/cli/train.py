"""`sectl train`: train a model from a YAML preset."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column, Table

from sectl.cli.common import EXIT_OK, err, handle_errors, out

HELP = """Train a model from a preset (a name in presets/ or a YAML file) plus --set overrides.

The run folder gets config.yaml, run.json, checkpoints/last.pt and best.pt, and metrics.jsonl.
Ctrl-C or SIGTERM stops at the next step boundary and saves that step; --resume continues
it (a killed run, from its last checkpoint: train.checkpoint_every).

Examples:

  sectl train --preset baseline --out runs/base --set data.clean=speech/ --set data.noise=noise/

  sectl train --preset mal --out runs/mal --set init_from=runs/base --set train.steps=2000

  sectl train --preset mal_dynamic --out runs/dfn3-mal --set init_from=deepfilternet3 --set data.clean=speech/ --set data.noise=noise/

  sectl train --preset vae_jmas --out runs/jmas --set data.clean=speech/ --set ssl.checkpoint=wavlm_large.pt

  sectl train --out runs/base --resume

  torchrun --nproc_per_node 4 -m sectl train --preset mal --out runs/mal --set init_from=deepfilternet3

  sectl train --preset baseline --out runs/bf16 --device cuda --set train.precision=bf16 --set data.workers=8

Under torchrun each process takes its share of every batch (train.batch_size is the global batch);
rank 0 prints progress and writes the run folder.
"""


def train_command(
    out_dir: Path = typer.Option(..., "--output", "-o", "--out", help="Run folder (--out is the older spelling)."),
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Preset name or YAML file (default: baseline)."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", "-s", help="dotted.key=value override (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's checkpoints/last.pt."),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N (sets train.device)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a model from a preset."""
    _run(out_dir, preset, [*(overrides or []), *([f"train.device={device}"] if device else [])], resume, quiet)


@handle_errors
def _run(out_dir: Path, preset: str | None, overrides: list[str], resume: bool, quiet: bool) -> None:
    from sectl.options import check_device_name

    for item in overrides:  # the device's spelling before the seconds of heavy imports
        if item.startswith("train.device="):
            check_device_name(item.partition("=")[2], "train.device")

    from sectl.train import resolve_config, train
    from sectl.train import resume as resume_run
    from sectl.train.distributed import launched_rank
    from sectl.train.stopping import StopRequested

    main_rank = launched_rank() == 0
    reporter = ProgressReporter(enabled=not quiet and main_rank)
    try:
        with reporter:
            if resume and preset is None:
                # The run's own configuration; --set may change execution settings (train.threads, train.device).
                state = resume_run(out_dir, overrides, callback=reporter)
            else:
                state = train(resolve_config(preset or "baseline", overrides), out_dir, resume=resume,
                              preset=preset or "baseline", overrides=overrides, callback=reporter)  # fmt: skip
    except StopRequested as stop:  # SIGINT or SIGTERM: the step reached is saved
        if main_rank:
            err.print(f"stopped by {signal.Signals(stop.signum).name}; step {stop.step} is saved in {stop.path}; "
                      f"continue with: {resume_command(out_dir)}", highlight=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(128 + stop.signum) from None
    except KeyboardInterrupt:
        if main_rank and reporter.saved is not None:
            err.print(f"stopped; step {reporter.saved['step']} is saved in {reporter.saved['path']}; continue with: "
                      f"{resume_command(out_dir)}", highlight=False, soft_wrap=True)  # fmt: skip
        raise
    best = "-" if state.best_score is None else f"{state.best_score:.3f} at step {state.best_step}"
    if main_rank:
        out.print(f"trained {state.step} steps into {out_dir} (best {state.best_metric}: {best})")
    raise typer.Exit(EXIT_OK)


def resume_command(out_dir: Path) -> str:
    """The command that continues the run in ``out_dir``, in the form this one was started with: under
    torchrun, torchrun with the same processes per node (a one-process resume of it is refused)."""
    from sectl.train.distributed import launched_by_torchrun

    command = f"sectl train -o {out_dir} --resume"
    if not launched_by_torchrun():
        return command
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    nodes = int(os.environ["WORLD_SIZE"]) // per_node
    launcher = f"torchrun --nproc_per_node {per_node}" if nodes == 1 else f"torchrun --nnodes {nodes} --nproc_per_node {per_node} ..."
    return f"{launcher} -m {command}"


class ProgressReporter:
    """Rich progress (step, loss terms, it/s, ETA) and validation tables, on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        # Step count, speed and times first; the loss terms take what width is left (cut with an ellipsis), so
        # the count and the time left stay readable at 80 columns.
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(bar_width=12), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[terms]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
            console=err, disable=not enabled, expand=True,
        )
        self.task = None
        self.saved: dict | None = None  # the last checkpoint written: what a stopped run resumes from

    def __enter__(self) -> "ProgressReporter":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: str, data: dict) -> None:
        if event == "saved":
            self.saved = data
        elif event == "start":
            self.task = self.progress.add_task("train", total=data["total"], completed=data["step"], terms="", rate="")
        elif event == "log" and self.task is not None:  # loss terms are read back once per log interval
            terms = " ".join(f"{k} {v:.3f}" for k, v in data.items() if k not in ("step", "grad_norm"))
            self.progress.update(self.task, terms=terms)
        elif event == "step" and self.task is not None:
            speed = self.progress.tasks[0].speed
            self.progress.update(self.task, completed=data["step"], rate=f"{speed:.2f} it/s" if speed else "")
        elif event == "validation" and self.enabled:
            table = Table(title=f"validation at step {data['step']}" + (" (new best)" if data["improved"] else ""))
            for name in data["scores"]:
                table.add_column(name, justify="right")
            table.add_row(*["-" if v is None else f"{v:.3f}" for v in data["scores"].values()])
            self.progress.console.print(table)
