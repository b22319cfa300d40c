"""`sectl encode`: speech-VAE latents from audio, audio from latents, and scored round trips."""

from __future__ import annotations

from typing import List, Optional

import typer

from sectl.cli.common import DEVICE_HELP, EXIT_FAILURE, EXIT_USAGE, err, fail, handle_errors, out, print_json, progress_bar, report_skipped, warn

HELP = """Encode audio to speech-VAE latents (one .npz per input), decode latents back, or do both and score.

--model is a VAE run folder (its best checkpoint: the EMA weights) or checkpoint, trained with a vae_*
preset. Audio is mixed to mono and resampled to the model's rate (16 kHz). Latent files
(format sectl-latents/1, documented in sectl/codec.py) hold the (64, frames) posterior means at 40
frames per second, the input length, the rate, the hop and the model's name and SHA-256. Long files
are processed in overlapping chunks; chunking does not change the result.

Examples:

  sectl encode speech/ -o latents/ --model runs/jmas

  sectl encode --decode latents/ -o decoded/ --model runs/jmas

  sectl encode --roundtrip speech/ -o decoded/ --model runs/jmas --json

  cat take.wav | sectl encode - -o - --model runs/jmas > take.npz
"""


def encode_command(
    inputs: List[str] = typer.Argument(..., help="Audio files/folders (latent files with --decode), or '-'."),
    output: str = typer.Option(..., "--output", "-o", help="Output folder, file, or '-' for stdout."),
    model: str = typer.Option(..., "--model", "-m", help="VAE run folder or checkpoint."),
    decode: bool = typer.Option(False, "--decode", help="Inputs are latent files: write audio."),
    roundtrip: bool = typer.Option(False, "--roundtrip", help="Encode, decode, write the audio and score it against the input."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="With --roundtrip: metrics, comma-separated (default pesq_wb,estoi,mel_distance)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave inputs whose output exists (finish an interrupted batch)."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Files processed in parallel (threads sharing the model)."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="K/N|auto", help="Process only the K-th of N deterministic parts of the inputs (auto: from a Slurm array or torchrun)."),
    as_json: bool = typer.Option(False, "--json", help='Print {"files": [{"file", "output", "shape"}], "failed", "skipped", "warnings"} on stdout.'),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
) -> None:
    """Encode audio to speech-VAE latents and decode them back."""
    if metrics is not None and not roundtrip:
        fail("--metrics: applies to --roundtrip only", EXIT_USAGE)
    if skip_existing and overwrite:
        fail("--skip-existing and --overwrite exclude each other", EXIT_USAGE)
    batch = {"overwrite": overwrite, "skip_existing": skip_existing, "jobs": jobs, "shard": shard}
    _run(inputs, output, model, decode, roundtrip, metrics or "pesq_wb,estoi,mel_distance", batch, as_json, device)


@handle_errors
def _run(inputs, output, model, decode, roundtrip, metrics, batch, as_json, device) -> None:
    from sectl.errors import UsageError
    from sectl.metrics.registry import parse_metric_names
    from sectl.options import check_device_name
    from sectl.sharding import parse_shard

    if decode and roundtrip:  # argument errors before heavy imports: they answer at once
        raise UsageError("--decode and --roundtrip exclude each other")
    names = parse_metric_names(metrics) if roundtrip else []
    shard = parse_shard(batch["shard"])
    check_device_name(device)

    from sectl import codec
    from sectl.models.io.loading import load_codec, resolve_model_path

    pairs = codec.plan_paths("decode" if decode else "roundtrip" if roundtrip else "encode", inputs, output)  # before loading
    options = codec.BatchOptions(batch["overwrite"], batch["skip_existing"], batch["jobs"], shard, pairs)
    vae = load_codec(model, device)
    if names:  # the metrics' packages and models (ViSQOL's, DNSMOS's): one error before any encoding
        from sectl.metrics.registry import prepare_metrics

        prepare_metrics(names)
    model_id = codec.model_id(resolve_model_path(model))
    piped = inputs == ["-"]
    with progress_bar("decoding" if decode else "encoding", total=0, enabled=not piped, unit="" if decode else "s") as on_progress:
        if roundtrip:
            report = codec.roundtrip_paths(vae, inputs, output, names, on_progress=on_progress, options=options)
        elif decode:
            report = codec.decode_paths(vae, inputs, output, model_id, on_progress=on_progress, options=options)
        else:
            report = codec.encode_paths(vae, inputs, output, model_id, on_progress=on_progress, options=options)
    report_skipped(report.unreadable, report.skipped)
    for line in report.warnings:
        warn(line)
    for line in report.failed:
        err.print(f"[bold red]failed:[/] {line}", highlight=False, soft_wrap=True)
    if as_json:
        print_json({"files": report.files, "failed": report.failed, "skipped": report.skipped, "warnings": report.warnings,
                    **({"scores": report.scores} if roundtrip else {})})  # fmt: skip
    elif not piped:
        verb = "decoded" if decode else "round-tripped" if roundtrip else "encoded"
        out.print(f"{verb} {len(report.files)} file(s) into {output}" + (f", {len(report.failed)} failed" if report.failed else ""))
        for name, value in report.scores.items():
            out.print(f"  {name}: {value:.3f}")
    if report.failed:
        raise typer.Exit(EXIT_FAILURE)
