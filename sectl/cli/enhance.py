"""`sectl enhance`: enhance files, folders, or WAV on stdin/stdout."""

from __future__ import annotations

from typing import List, Optional

import typer

from sectl.cli.common import DEVICE_HELP, EXIT_FAILURE, EXIT_USAGE, err, fail, given, handle_errors, interrupted_exit_code, out, print_json, progress_bar, report_skipped, warn

HELP = """Enhance audio files or folders (relative paths preserved), or '-' for WAV on stdin/stdout.

Outputs keep each input's sample rate and channel count. A model that streams (DeepFilterNet3, NSNet2,
GTCRN, causal Demucs/MaskNet) enhances a file of any length exactly as one pass over it, block by block;
others run on overlapping chunks (--chunk). On a GPU, short files run together as rows of one batch
(--batch), each output the same as the file enhanced alone. Memory does not grow with duration. Inputs are never overwritten; existing outputs only
with --overwrite. Bad files are reported at the end and the exit code is 1.

Examples:

  sectl enhance noisy/ -o clean/

  sectl enhance take1.wav take2.flac -o out/ --model runs/base

  sectl enhance meeting.wav -o out.wav --atten-lim 12     # keep some background, never over-suppress

  sectl enhance take.wav -o out.wav --model nsnet2 --mix 0.8

  cat noisy.wav | sectl enhance - -o - > clean.wav

  arecord -f S16_LE -r 48000 -t wav | sectl enhance --stream - -o - | aplay   # live, about 40 ms late

  sectl enhance --stream --raw 16000 - -o - < noisy.pcm > clean.pcm           # headerless 16-bit mono

  for k in 1 2 3 4; do sectl enhance corpus/ -o out/ --shard $k/4 & done; wait   # 4 parallel jobs, no overlap

  sectl enhance corpus/ -o out/ --device cuda --batch 64      # 64 files' channels per GPU batch

Models (--model): 'default' = DeepFilterNet3 as published (bundled, 48 kHz; Schröter et al. 2023),
'deepfilternet3', 'nsnet2', 'gtcrn' (VoiceBank-DEMAND) and 'gtcrn-dns3' (converted from the official
files in $SECTL_MODELS_DIR/<name>/),
'sectl-demucs' (bundled), a run folder, a checkpoint file, or a graph from `sectl export` (NAME.onnx,
run by onnxruntime).

--stream enhances WAV on stdin as it arrives (a recorder's header of unknown length is fine) and
writes each enhanced block to stdout at once, with the model's state carried from block to block;
the output equals offline enhancement. Streaming models: deepfilternet3 (the default), nsnet2, gtcrn,
fine-tuned runs of them, causal Demucs/MaskNet runs, and graphs from `sectl export`.
"""


def enhance_command(
    ctx: typer.Context,
    inputs: List[str] = typer.Argument(..., help="Files, folders, or '-' for stdin."),
    output: str = typer.Option(..., "--output", "-o", help="Output folder, file, or '-' for stdout."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name (default, deepfilternet3, nsnet2, gtcrn, gtcrn-dns3, sectl-demucs), run folder or checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Files enhanced in parallel processes."),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, metavar="ROWS", help="Channels of short files (up to 60 s) enhanced together as one batch by a streaming model; outputs as if alone (default: 32 on a GPU, 1 otherwise)."),
    chunk_s: float = typer.Option(10.0, "--chunk", min=1.0, help="Chunk length in seconds (1 s overlap) for models that cannot stream; streaming models need none."),
    atten_lim: Optional[float] = typer.Option(
        None, "--atten-lim", min=0.0, metavar="DB", help="Attenuate noise by at most about DB dB (0 returns the input)."
    ),
    mix: float = typer.Option(1.0, "--mix", min=0.0, max=1.0, help="Dry/wet mix: 1 = enhanced, 0 = the input."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="K/N|auto", help="Process only the K-th of N deterministic parts of the inputs (auto: from a Slurm array or torchrun)."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave inputs whose output exists (finish an interrupted batch)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    engine: str = typer.Option("auto", "--engine", help="What runs the model: auto (onnxruntime on the CPU where the model streams many hops per call, else PyTorch), torch, onnxruntime."),
    post_filter: bool = typer.Option(False, "--post-filter", help="DeepFilterNet's post-filter (its --pf): over-attenuates very noisy bins."),
    stream: bool = typer.Option(False, "--stream", help="Real time: enhance stdin ('-') to stdout ('-') block by block as it arrives."),
    raw: Optional[int] = typer.Option(None, "--raw", metavar="RATE", help="With --stream: headerless 16-bit mono PCM at RATE Hz in and out."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for the model (default: all for files, 1 for --stream, which keeps up best on one)."),
) -> None:
    """Enhance audio files or folders."""
    if skip_existing and overwrite:
        fail("--skip-existing and --overwrite exclude each other", EXIT_USAGE)
    if raw is not None and not stream:
        fail("--raw applies to --stream", EXIT_USAGE)
    if stream:
        if inputs != ["-"] or output != "-":
            fail("--stream reads '-' and writes '-' (files enhance offline, with the same result)", EXIT_USAGE)
        for flag in given(ctx, "jobs", "batch", "chunk_s", "shard", "skip_existing", "overwrite", "as_json"):
            fail(f"{flag}: does not apply to --stream (one live stream, written as it is enhanced)", EXIT_USAGE)
        _stream(model, atten_lim, mix, device, raw, post_filter, engine, threads or 1)
        return
    if batch is not None and jobs > 1:
        fail("--batch and --jobs exclude each other (--batch fills one process's batch, --jobs runs one file per process)", EXIT_USAGE)
    _run(inputs, output, model, overwrite, jobs, chunk_s, atten_lim, mix, shard, as_json, device, skip_existing, engine,
         post_filter, threads, batch)  # fmt: skip


@handle_errors
def _stream(model, atten_lim, mix, device, raw, post_filter=False, engine="auto", threads=1) -> None:
    import sys

    from sectl.options import check_device_name, check_engine, check_raw_rate

    check_device_name(device)  # before heavy imports
    check_engine(engine)
    check_raw_rate(raw)

    import torch

    from sectl.engines import load_enhancer, stream_runner, with_post_filter
    from sectl.fileutil import stdout_errors
    from sectl.models.io.loading import describe
    from sectl.signal import DryWet
    from sectl.streaming.pipe import stream_enhance

    dry_wet = DryWet(atten_lim, mix)
    loaded = load_enhancer(model, device)
    if post_filter:
        loaded = with_post_filter(loaded)
    torch.set_num_threads(threads)  # pinned: more threads than cores fall behind as soon as anything else runs
    runner = stream_runner(loaded, engine, threads)
    engine_used = "PyTorch" if type(runner).__name__ == "TorchFrames" else "onnxruntime"
    err.print(f"streaming with {describe(model)} ({engine_used}, {threads} thread(s))", highlight=False, soft_wrap=True)
    with stdout_errors():
        stream_enhance(runner, sys.stdin.buffer, sys.stdout.buffer, raw, dry_wet, on_warning=warn)


@handle_errors
def _run(inputs, output, model, overwrite, jobs, chunk_s, atten_lim, mix, shard, as_json, device, skip_existing=False,
         engine="auto", post_filter=False, threads=None, batch=None) -> None:  # fmt: skip
    from sectl.options import check_chunk_s, check_device_name, check_engine
    from sectl.sharding import parse_shard

    shard_spec = parse_shard(shard)  # argument errors before heavy imports: they answer at once
    check_chunk_s(chunk_s)
    check_engine(engine)
    check_device_name(device)

    from sectl.audio.files import plan_batch
    from sectl.enhance import enhance_paths
    from sectl.engines import load_enhancer, with_post_filter
    from sectl.models.io.loading import describe
    from sectl.signal import DryWet

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    dry_wet = DryWet(atten_lim, mix)
    plan = plan_batch(inputs, output)  # an output that is an input, or two inputs to one output: refused before loading
    loaded = load_enhancer(model, device) if jobs <= 1 or post_filter else None
    if model is not None:  # once it loaded: a model that fails is one error line, with nothing before it
        err.print(f"using {describe(model)}", highlight=False, soft_wrap=True)
    if post_filter:
        loaded = with_post_filter(loaded)  # in the config: jobs > 1 hand it to the workers in a checkpoint
    piped = inputs == ["-"]
    with progress_bar("enhancing", total=0, enabled=not piped, unit="s") as on_progress:
        report = enhance_paths(
            inputs, output, model=loaded, model_source=model, overwrite=overwrite,
            jobs=jobs, chunk_s=chunk_s, on_progress=on_progress, dry_wet=dry_wet, shard=shard_spec,
            device=device, skip_existing=skip_existing, engine=engine, plan=plan, batch=batch,
        )
    report_skipped(report.unreadable, report.skipped)
    for line in report.limited:
        warn(line)
    for line in report.failed:
        err.print(f"[bold red]failed:[/] {line}", highlight=False, soft_wrap=True)
    if as_json:
        print_json({"written": report.written, "failed": report.failed, "limited": report.limited, "skipped": report.skipped})
    elif not piped:
        summary = f"enhanced {len(report.written)} file(s) into {output}"
        out.print(summary + (f", {len(report.failed)} failed" if report.failed else ""))
    if report.interrupted:
        err.print(f"interrupted: {len(report.written)} file(s) finished and kept, no partial output", highlight=False)
        raise typer.Exit(interrupted_exit_code())
    if report.failed:
        raise typer.Exit(EXIT_FAILURE)
