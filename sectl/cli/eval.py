"""`sectl eval`: metric tables for enhanced audio, with or without a reference."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
from rich.table import Table

from sectl.cli.common import EXIT_FAILURE, EXIT_USAGE, err, fail, handle_errors, interrupted_exit_code, out, print_json, progress_bar, warn
from sectl.errors import SectlError, UsageError
from sectl.fileutil import check_outputs, inputs, write_new
from sectl.metrics import DEFAULT_METRICS
from sectl.options import parse_systems, system_path

if TYPE_CHECKING:
    from sectl.metrics import EvalReport

HELP = """Score enhanced audio against clean references (PESQ, STOI/ESTOI, SI-SDR, LSD, MCD, ViSQOL) or
without one (DNSMOS, DistillMOS, NISQA, UTMOS).

Folders are paired by relative path; unpaired files are listed, not fatal. Audio is resampled to
16 kHz (8 kHz for PESQ-NB) and trimmed to the shorter of each pair.

Examples:

  sectl eval --ref clean/ --est enhanced/

  sectl eval --ref clean.wav --est enhanced.wav --metrics pesq_wb,si_sdr --json

  sectl eval --ref clean/ --est enhanced/ --csv scores.csv --jobs 2

  sectl eval --ref clean/ --est noisy/ --est runA/ --est runB/ --plot systems.png   # compare systems

  sectl eval --ref clean/ --est noisy/ --est DF3=out_df3/   # a system named DF3

  sectl eval --ref clean/ --est out/ --shard 2/4 --json > part2.json; sectl eval --merge part*.json

  sectl eval --ref clean/ --est enhanced/ -m wer,pesq_wb --asr-model wav2vec2.pt   # clean/x.txt holds x's transcript

  sectl eval --ref clean/ --est decoded/ -m visqol,distillmos   # pip install 'sectl[metrics]'

  sectl eval --est enhanced/ -m nisqa,utmos --nisqa-model nisqa.tar --utmos-model utmos_state_dict.pt

  sectl eval --ratings ratings/*.json --test test/test.json   # a `sectl report --test` listening test: MOS, CIs

Exit codes: 0 all files scored; 1 some files could not be read; 2 bad arguments.
"""


def eval_command(
    reports: Optional[List[Path]] = typer.Argument(None, help="With --merge: the --json reports of shard runs; with --ratings: the ratings files."),
    est: Optional[List[Path]] = typer.Option(
        None, "--est", metavar="[NAME=]PATH", help="Enhanced file or folder; repeat to compare systems (the first is the baseline); NAME= names the system."
    ),
    ref: Optional[Path] = typer.Option(None, "--ref", help="Clean reference file or folder."),
    metrics: Optional[str] = typer.Option(None, "--metrics", "-m", help=f"Comma-separated metric names (default {','.join(DEFAULT_METRICS)})."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout, nothing else."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Also write per-file scores to this CSV."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Files scored in parallel processes."),
    dnsmos_dir: Optional[Path] = typer.Option(
        None, "--dnsmos-dir", help="Folder with the DNSMOS ONNX models (else $SECTL_DNSMOS_DIR, then the cache)."
    ),
    plot: Optional[Path] = typer.Option(None, "--plot", help="With several --est: box plots per metric, systems side by side (PNG)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing --csv and --plot files."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="K/N|auto", help="Score only the K-th of N deterministic parts of the pairs (auto: from a Slurm array or torchrun)."),
    merge: bool = typer.Option(False, "--merge", help="Combine the --json reports given as arguments (shards 1..N of one --shard K/N set) into one."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="With --merge: merge missing, repeated or interrupted shards anyway (marked interrupted); with --ratings: keep incomplete raters."),
    ratings: bool = typer.Option(False, "--ratings", help="Analyse the ratings files of a `sectl report --test` listening test, given as arguments (needs --test)."),
    test: Optional[Path] = typer.Option(None, "--test", help="With --ratings: the test's key (test.json, beside the test's site/ folder, or the folder holding it)."),
    asr_model: Optional[str] = typer.Option(
        None, "--asr-model", help="Recogniser for -m wer: a torchaudio pipeline name or a file from `python -m sectl.metrics.asr export`."
    ),
    nisqa_model: Optional[Path] = typer.Option(
        None, "--nisqa-model", help="NISQA's nisqa.tar (or its folder) for -m nisqa* (else $SECTL_NISQA_MODEL, then $SECTL_MODELS_DIR/nisqa)."
    ),
    utmos_model: Optional[Path] = typer.Option(
        None, "--utmos-model", help="UTMOS's utmos_state_dict.pt (or its folder) for -m utmos (else $SECTL_UTMOS_MODEL, then $SECTL_MODELS_DIR/utmos)."
    ),
) -> None:
    """Score enhanced audio against references (intrusive) or alone (DNSMOS)."""
    locations = {"dnsmos_dir": dnsmos_dir, "asr_model": asr_model, "nisqa_model": nisqa_model, "utmos_model": utmos_model}
    if ratings:
        return _ratings(reports or [], test, est, ref, merge, metrics, shard, as_json, csv_path, plot, overwrite, allow_partial)
    if test is not None:
        fail("--test applies to --ratings only", EXIT_USAGE)
    if allow_partial and not merge:
        fail("--allow-partial applies to --merge or --ratings only", EXIT_USAGE)
    if merge and metrics is not None:
        fail("--metrics: --merge keeps the metrics of the reports it merges", EXIT_USAGE)
    metrics = metrics if metrics is not None else ",".join(DEFAULT_METRICS)
    _run(est, ref, metrics, as_json, csv_path, jobs, locations, plot, overwrite, shard, reports if merge else None, reports,
         allow_partial)  # fmt: skip


@handle_errors
def _run(est, ref, metrics, as_json, csv_path, jobs, locations, plot, overwrite, shard, merge, positional, allow_partial=False) -> None:
    if positional and not merge:
        raise UsageError("report files as arguments need --merge; audio goes after --est")
    if bool(est) == bool(merge):
        raise UsageError("give --est (files or folders to score) or --merge REPORT.json... (shard reports), not both or neither")
    given_est = est
    if not merge:  # argument errors before heavy imports: they answer at once
        from sectl.metrics.registry import parse_metric_names
        from sectl.sharding import parse_shard

        parse_metric_names(metrics)
        parse_shard(shard)
        est = [Path(system_path(spec)) for spec in est]
    _check_outputs(est, ref, merge, locations, csv_path, plot, overwrite)  # fail before scoring, not after
    systems = None if merge else parse_systems(given_est)
    if merge:
        report = _merged(merge, allow_partial)
    elif len(est) > 1 or plot is not None:
        return _compare(systems, ref, metrics, as_json, csv_path, jobs, plot, locations, overwrite)
    else:
        from sectl.metrics import evaluate
        from sectl.sharding import parse_shard

        with progress_bar("scoring", total=0) as on_progress:
            report = evaluate(est[0], ref=ref, metrics=metrics, jobs=jobs, on_progress=on_progress, **locations,
                              shard=parse_shard(shard))  # fmt: skip
    report_problems(report)
    if csv_path is not None:
        write_new(csv_path, report.to_csv().encode(), overwrite)
    if as_json:
        print_json(report.to_json())
    else:
        out.print(to_table(report))
    if report.interrupted and not merge:
        err.print(f"interrupted: the {len(report.files)} file(s) scored before it are reported", highlight=False)
        raise typer.Exit(interrupted_exit_code())
    if report.errors:
        raise typer.Exit(EXIT_FAILURE)


@handle_errors
def _ratings(files, test, est, ref, merge, metrics, shard, as_json, csv_path, plot, overwrite, allow_partial) -> None:
    clashing = [flag for flag, value in (("--est", est), ("--ref", ref), ("--merge", merge), ("--metrics", metrics),
                                         ("--shard", shard)) if value]  # fmt: skip
    if clashing:
        raise UsageError(f"{', '.join(clashing)}: --ratings scores ratings files, not audio (the test's key holds eval's scores)")
    from sectl.cli.ratings import run

    run(files, test, as_json, csv_path, plot, overwrite, allow_partial)


def _check_outputs(est, ref, merge, locations, csv_path, plot, overwrite) -> None:
    from sectl.audio.formats import AUDIO_EXTENSIONS
    from sectl.modelfiles import model_stores

    reads = [*inputs("--est", est, AUDIO_EXTENSIONS), *inputs("--ref", ref, AUDIO_EXTENSIONS), *inputs("report", merge),
             *inputs("--dnsmos-dir", locations["dnsmos_dir"]), *inputs("--asr-model", locations["asr_model"]),
             *inputs("--nisqa-model", locations["nisqa_model"]), *inputs("--utmos-model", locations["utmos_model"]),
             *model_stores()]  # fmt: skip
    check_outputs({"--csv file": csv_path, "--plot file": plot}, reads, overwrite)


def report_problems(report: EvalReport) -> None:
    for line in report.unpaired:
        warn(f"unpaired file ({line})")
    for result in report.files:
        for message in result.warnings:
            warn(message)
        for metric, reason in result.failures.items():
            warn(f"{result.file}: {metric} missing ({reason})")
    for message in report.errors:
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def to_table(report: EvalReport) -> Table:
    table = Table(title=f"{len(report.files)} file(s)")
    table.add_column("file")
    for name in report.metrics:
        table.add_column(name, justify="right")
    for result in report.files:
        table.add_row(result.file, *[_fmt(result.scores[m]) for m in report.metrics])
    table.add_section()
    table.add_row("[bold]mean", *[_fmt(report.mean[m]) for m in report.metrics])
    table.add_row("[bold]std", *[_fmt(report.std[m]) for m in report.metrics])
    return table


def _merged(paths: list[Path], allow_partial: bool = False) -> "EvalReport":
    import json

    from sectl.metrics import merge_reports

    parts = []
    for path in paths:
        try:
            parts.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise SectlError(f"{path}: not a readable sectl eval --json report ({exc})") from None
    return merge_reports(parts, [str(p) for p in paths], allow_partial=allow_partial)


def _compare(systems, ref, metrics, as_json, csv_path, jobs, plot, locations, overwrite) -> None:
    from sectl.metrics import evaluate
    from sectl.metrics.compare import compare, plot_comparison

    reports = {}
    with progress_bar("scoring", total=0) as on_progress:
        for name, path in systems:
            reports[name] = evaluate(path, ref=ref, metrics=metrics, jobs=jobs, on_progress=on_progress, **locations)
    for report in reports.values():
        report_problems(report)
    summaries = compare(reports)
    if csv_path is not None:
        write_new(csv_path, "".join(
            s.report.to_csv(system=s.name, header=i == 0)
            for i, s in enumerate(summaries)
        ).encode(), overwrite)  # fmt: skip
    if plot is not None:
        plot_comparison(summaries, str(plot), overwrite)
    if as_json:
        print_json({"systems": [s.to_json() for s in summaries]})
    else:
        out.print(comparison_table(summaries))
    if any(r.errors for r in reports.values()):
        raise typer.Exit(EXIT_FAILURE)


def comparison_table(summaries) -> Table:
    """One row per system: each metric's mean, its 95 % interval, and wins-losses against the first system."""
    metrics = summaries[0].report.metrics
    table = Table(title=f"{len(summaries)} systems; mean [95 % CI]  wins-losses vs {summaries[0].name} (per file)")
    table.add_column("system")
    table.add_column("files", justify="right")
    for name in metrics:
        table.add_column(name, justify="right")
    for i, s in enumerate(summaries):
        cells = []
        for m in metrics:
            mean, ci, wl = s.report.mean[m], s.ci95[m], s.versus_first[m]
            cell = _fmt(mean) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
            cells.append(cell + (f"  {wl['wins']}-{wl['losses']}" if i else ""))
        table.add_row(s.name, str(len(s.report.files)), *cells)
    return table
