"""Running an enhancer on tensors, files, folders and pipes (the library behind ``sectl enhance``).

Layers: the core that runs the model with bounded memory -> :func:`enhance_tensor` (any rate, any
channel count) -> :func:`enhance_file` (streams a file to an atomic output) -> :func:`enhance_paths`
(batches that keep going past bad files; with ``batch > 1``, the default on a GPU, short files of one
rate run together as rows of one stream, :func:`sectl.streaming.enhance_together`).

The core is the model's stream wherever it streams (:func:`stream_runner_of`): its frame step runs
over blocks of many hops with every state carried, so a file of any length comes out exactly as one
pass of the model over the whole signal, and as ``sectl enhance --stream`` gives it. A model that
cannot stream (it reads the future, or scales by the whole signal's level) runs on overlapping chunks
cross-faded into each other (:class:`OverlapAdd`): an approximation beyond one chunk, the only one.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from sectl.audio import STDIO, read_audio, resample, write_audio
from sectl.audio.files import plan_batch, unreadable_audio, without_existing
from sectl.audio.io import default_subtype
from sectl.audio.stream import read_blocks, write_blocks
from sectl.device import module_device
from sectl.engines import inference_model, load_enhancer
from sectl.errors import ModelError, SectlError, SectlWarning, UsageError
from sectl.options import check_chunk_s
from sectl.fileutil import make_folder
from sectl.models import Enhancer
from sectl.progress import SecondsProgress
from sectl.sharding import select_shard
from sectl.signal import FULLY_WET, DryWet
from sectl.streaming import Streamer, enhance_together, frame_runner
from sectl.streaming.streamer import FrameRunner

CHUNK_S = 10.0
OVERLAP_S = 1.0
READ_BLOCK_FRAMES = 2**18
"""Frames of a file read at a time (5.5 s at 48 kHz): at least the 512 hops a stream runs per call, so
memory stays bounded and calls stay large (10,000-frame blocks ran 21 hops per call, 1.6x slower)."""

BATCH_MAX_S = 60.0
"""Files up to this long are enhanced together (``batch > 1``), each read whole; longer ones stream alone."""
GPU_BATCH = 32
"""Rows (channels of files) enhanced together on a GPU by default: one file's stream leaves it mostly idle."""

TensorFn = Callable[[torch.Tensor], torch.Tensor]


class OverlapAdd:
    """Apply ``fn`` to ``chunk``-sample windows overlapping by ``overlap``, cross-fading linearly.

    Memory is bounded by the chunk size whatever the input's duration. ``fn`` maps ``(C, n)`` to
    ``(C, n)``.
    """

    def __init__(self, fn: TensorFn, chunk: int, overlap: int) -> None:
        if not 0 <= overlap < chunk:
            raise ValueError("need 0 <= overlap < chunk")
        self.fn, self.chunk, self.overlap = fn, chunk, overlap
        self.hop = chunk - overlap

    def _fade(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.linspace(0, 1, self.overlap + 2, dtype=like.dtype, device=like.device)[1:-1][:n]

    def _merge(self, tail: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor:
        if tail is None or tail.shape[-1] == 0:
            return y
        n = min(tail.shape[-1], y.shape[-1])
        fade_in = self._fade(n, y)
        head = tail[..., :n] * (1 - fade_in) + y[..., :n] * fade_in
        return torch.cat([head, y[..., n:]], dim=-1)

    def stream(self, blocks: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Enhanced blocks for input blocks of any sizes; output length equals input length."""
        buffer: torch.Tensor | None = None
        tail: torch.Tensor | None = None
        for block in blocks:
            buffer = block if buffer is None else torch.cat([buffer, block], dim=-1)
            while buffer.shape[-1] >= self.chunk:
                y = self._merge(tail, self.fn(buffer[..., : self.chunk]))
                yield y[..., : self.hop]
                tail = y[..., self.hop :]
                buffer = buffer[..., self.hop :]
        if buffer is not None and buffer.shape[-1] > (0 if tail is None else self.overlap):
            yield self._merge(tail, self.fn(buffer))
        elif tail is not None:
            yield tail[..., : 0 if buffer is None else buffer.shape[-1]]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(list(self.stream([x])), dim=-1)


def stream_runner_of(model: Enhancer) -> FrameRunner | None:
    """What runs ``model`` hop by hop (its frame step, or its exported graph's), or ``None`` if it cannot stream."""
    if not isinstance(model, torch.nn.Module) and not hasattr(model, "frame_runner"):
        return None
    try:
        return frame_runner(model)
    except ModelError:  # a configuration that cannot stream (non-causal, level-normalised)
        return None


def streamed(streamer: Streamer, blocks: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
    """The enhanced blocks of a signal arriving in ``blocks``, then the rest: as long as the input."""
    for block in blocks:
        yield streamer.feed(block)
    yield streamer.flush()


def signal_core(model: Enhancer, sample_rate: int, channels: int, dry_wet: DryWet = FULLY_WET,
                chunk_s: float = CHUNK_S, overlap_s: float = OVERLAP_S) -> Callable[[Iterable[torch.Tensor]], Iterator[torch.Tensor]]:  # fmt: skip
    """``blocks -> enhanced blocks`` of one signal: the model's stream, or chunks cross-faded (see the module)."""
    runner = stream_runner_of(model)
    if runner is not None:
        return lambda blocks: streamed(Streamer(runner, sample_rate, channels, dry_wet), blocks)
    return OverlapAdd(model_fn(model, sample_rate, dry_wet), *chunking(chunk_s, overlap_s, sample_rate)).stream


def model_fn(model: Enhancer, sample_rate: int, dry_wet: DryWet = FULLY_WET) -> TensorFn:
    """``(C, n)`` at ``sample_rate`` -> enhanced ``(C, n)``: channels as a batch, resampled around the model."""
    device = module_device(model)

    def fn(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        with torch.inference_mode():
            y = model(resample(x, sample_rate, model.sample_rate).to(device)).cpu()
        y = resample(y, model.sample_rate, sample_rate)
        return dry_wet.apply(torch.nn.functional.pad(y, (0, max(0, n - y.shape[-1])))[..., :n], x)

    return fn


def chunking(chunk_s: float, overlap_s: float, rate: int) -> tuple[int, int]:
    """Chunk and overlap in samples; the overlap is capped at half the chunk (``--chunk 1`` with the
    default 1 s overlap would otherwise leave no hop)."""
    check_chunk_s(chunk_s)
    chunk = max(2, int(chunk_s * rate))
    return chunk, min(int(overlap_s * rate), chunk // 2)


def enhance_tensor(
    model: Enhancer,
    wave: torch.Tensor,
    sample_rate: int,
    chunk_s: float = CHUNK_S,
    overlap_s: float = OVERLAP_S,
    dry_wet: DryWet = FULLY_WET,
) -> torch.Tensor:
    """Enhance ``(C, T)`` (or ``(T,)``) at any rate; returns the same shape and rate. ``chunk_s`` and
    ``overlap_s`` apply to models that cannot stream (the others need no chunks)."""
    x = wave if wave.dim() == 2 else wave.unsqueeze(0)
    y = torch.cat(list(signal_core(model, sample_rate, x.shape[0], dry_wet, chunk_s, overlap_s)([x])), dim=-1)
    return y if wave.dim() == 2 else y[0]


def enhance_file(
    model: Enhancer,
    src: str | Path,
    dst: str | Path,
    overwrite: bool = False,
    chunk_s: float = CHUNK_S,
    overlap_s: float = OVERLAP_S,
    dry_wet: DryWet = FULLY_WET,
    on_seconds: Callable[[float], None] | None = None,
) -> float:
    """Enhance one file (or ``-`` for stdin/stdout) keeping its rate and channels; returns the limiting gain.
    ``on_seconds(s)`` is told each chunk's seconds of input as it is read (progress within a long file)."""
    if str(src) == STDIO or str(dst) == STDIO:
        audio = read_audio(src, mono=False)
        y = enhance_tensor(model, audio.samples, audio.sample_rate, chunk_s, overlap_s, dry_wet)
        subtype = default_subtype(Path("stdout.wav"), audio.subtype)  # the input's sample format, as for files
        return write_audio(dst, y, audio.sample_rate, overwrite=overwrite, inputs=[src], subtype=subtype)
    info, blocks = read_blocks(src, block_frames=READ_BLOCK_FRAMES)
    rate = info.samplerate
    if on_seconds is not None:
        blocks = _reporting(blocks, lambda block: on_seconds(block.shape[-1] / rate))
    core = signal_core(model, rate, info.channels, dry_wet, chunk_s, overlap_s)
    return write_blocks(
        dst,
        core(blocks),
        rate,
        info.channels,
        subtype=default_subtype(Path(dst), info.subtype),
        overwrite=overwrite,
        inputs=[src],
    )


def _reporting(blocks: Iterator[torch.Tensor], report: Callable[[torch.Tensor], None]) -> Iterator[torch.Tensor]:
    for block in blocks:
        report(block)
        yield block


@dataclass
class BatchReport:
    """What a batch did: written files, failures (one line each), peak-limited outputs."""

    written: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    limited: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # --skip-existing: outputs already there, left as they are
    unreadable: list[str] = field(default_factory=list)  # files in input folders in formats soundfile cannot decode
    interrupted: bool = False  # Ctrl-C: the files finished before it are written, no partial output remains


_worker_model: Enhancer | None = None


def _init_worker(model_source: str | None, device: str = "cpu", engine: str = "torch") -> None:
    global _worker_model
    torch.set_num_threads(1)
    for stop in (signal.SIGINT, signal.SIGTERM):  # the main process stops the batch; a job finishes its file
        signal.signal(stop, signal.SIG_IGN)
    _worker_model = inference_model(load_enhancer(model_source, device), engine)


def _enhance_one(model: Enhancer, task: tuple, on_seconds: Callable[[float], None] | None = None) -> tuple[str, str | None, float]:
    """``(dst, error or None, limiting gain)``: a bad file becomes a message, never an exception."""
    src, dst, overwrite, chunk_s, dry_wet = task
    try:
        return dst, None, enhance_file(model, src, dst, overwrite, chunk_s, dry_wet=dry_wet, on_seconds=on_seconds)
    except UsageError:
        raise  # not this file's problem (e.g. stdout cannot be written): the whole command stops
    except SectlError as exc:
        return dst, str(exc), 1.0


def default_batch(model: Enhancer) -> int:
    """Rows enhanced together when the caller does not say: :data:`GPU_BATCH` on a GPU, else 1 (a CPU
    gains more from ``--jobs``)."""
    return GPU_BATCH if module_device(model).type == "cuda" else 1


Job = tuple[str, str, Callable[[], tuple[str, str | None, float]]]
"""A file's ``(source, destination, work)``: ``work()`` writes the output and returns ``(dst, error, gain)``."""


def _one_at_a_time(model: Enhancer, tasks: list[tuple], progress: SecondsProgress) -> Iterator[Job]:
    for task in tasks:
        yield task[0], task[1], lambda task=task: _enhance_one(model, task, lambda s, src=task[0]: progress.chunk(src, s))


def _together(model: Enhancer, runner: FrameRunner, tasks: list[tuple], rows: int, progress: SecondsProgress) -> Iterator[Job]:
    """Short files in groups of up to ``rows`` channels at one rate, similar lengths together (sorted by the
    headers' durations), each group one stream; the rest (long files, by the header or once read, pipes,
    unreadable headers: these fail with their message there) one at a time, after the groups."""
    short, alone = [], []
    for task in tasks:
        shape = _shape(task[0]) if STDIO not in (str(task[0]), str(task[1])) else None
        (short if shape and shape[2] <= BATCH_MAX_S * shape[0] else alone).append((task, shape))
    short.sort(key=lambda item: (item[1][0], item[1][2]))
    group: list[tuple] = []
    for task, shape in short:
        if group and (shape[0] != group[0][1][0] or sum(s[1] for _, s in group) + shape[1] > rows):
            yield from _group_jobs(runner, group, progress, alone)
            group = []
        group.append((task, shape))
    if group:
        yield from _group_jobs(runner, group, progress, alone)
    yield from _one_at_a_time(model, [task for task, _ in alone], progress)


def _shape(path: str) -> tuple[int, int, int] | None:
    """``(rate, channels, frames)`` from the header, or ``None`` (the file is then read alone, which names the problem)."""
    import soundfile

    try:
        info = soundfile.info(path)
    except Exception:  # noqa: BLE001 - any unreadable header: the one-file path reports it in one line
        return None
    return (info.samplerate, info.channels, info.frames) if info.frames > 0 else None


def _group_jobs(runner: FrameRunner, group: list[tuple], progress: SecondsProgress, alone: list[tuple]) -> Iterator[Job]:
    """Read a group whole (a bad file becomes its failure, one longer than its header said joins ``alone``),
    enhance it as one stream, then each file's write."""
    read, failed = [], []
    for task, shape in group:
        try:
            info, x = _read_short(task[0])
        except UsageError:
            raise
        except SectlError as exc:
            failed.append((task, str(exc)))
            continue
        if x is None:
            alone.append((task, shape))
        else:
            read.append((task, info, x))
    for task, error in failed:
        yield task[0], task[1], lambda dst=task[1], error=error: (dst, error, 1.0)
    if not read:
        return
    dry_wet = read[0][0][4]
    outputs = enhance_together(runner, [x for _, _, x in read], read[0][1].samplerate, dry_wet)
    for (task, info, x), y in zip(read, outputs):
        progress.chunk(task[0], x.shape[-1] / info.samplerate)
        yield task[0], task[1], lambda task=task, info=info, y=y: _write_enhanced(task, info, y)


def _read_short(path: str):
    """``(info, the whole signal)``, or ``(info, None)`` once it decodes past :data:`BATCH_MAX_S`: a header's
    frame count can be an estimate (a VBR MP3 without a Xing header), and a group must not read an hour."""
    info, blocks = read_blocks(path, READ_BLOCK_FRAMES)
    kept, frames = [], 0
    for block in blocks:
        frames += block.shape[-1]
        if frames > BATCH_MAX_S * info.samplerate:
            blocks.close()
            return info, None
        kept.append(block)
    return info, torch.cat(kept, dim=-1)


def _write_enhanced(task: tuple, info, y: torch.Tensor) -> tuple[str, str | None, float]:
    src, dst, overwrite = task[:3]
    try:
        gain = write_blocks(dst, [y], info.samplerate, info.channels, subtype=default_subtype(Path(dst), info.subtype),
                            overwrite=overwrite, inputs=[src])  # fmt: skip
    except UsageError:
        raise
    except SectlError as exc:
        return dst, str(exc), 1.0
    return dst, None, gain


def _record(report: BatchReport, result: tuple[str, str | None, float]) -> None:
    dst, error, gain = result
    if error:
        report.failed.append(error)
    else:
        report.written.append(dst)
        if gain < 1.0:
            report.limited.append(f"{dst}: peak-limited by {20 * math.log10(gain):.1f} dB")


def _worker_job(task: tuple) -> tuple[str, str | None, float]:
    assert _worker_model is not None, "worker started without _init_worker"
    return _enhance_one(_worker_model, task)


def enhance_paths(
    inputs: list[str | Path],
    output: str | Path,
    model: Enhancer | None = None,
    model_source: str | None = None,
    overwrite: bool = False,
    jobs: int = 1,
    chunk_s: float = CHUNK_S,
    on_progress: Callable[[float, float], None] | None = None,
    dry_wet: DryWet = FULLY_WET,
    shard: tuple[int, int] | None = None,
    device: str = "cpu",
    skip_existing: bool = False,
    engine: str = "torch",
    plan: list[tuple[str, str]] | None = None,
    batch: int | None = None,
) -> BatchReport:
    """Enhance files/folders into ``output``; bad inputs are reported, the rest still processed.

    Pass a loaded ``model`` (it computes on its own device), or ``model_source`` (a name, run folder,
    checkpoint, ``None`` for the default), which is loaded on ``device`` (``jobs > 1`` workers load it
    once each). ``dry_wet`` keeps some of each input.
    ``engine`` says what runs the model (:func:`inference_model`).
    ``shard=(K, N)`` processes only that deterministic 1/N of the inputs (:mod:`sectl.sharding`).
    ``on_progress(done, total)`` counts seconds of input audio, chunk by chunk within a long file.
    ``skip_existing`` leaves inputs whose output exists (an interrupted batch finishes without
    ``overwrite``). ``plan``: the batch's ``(source, destination)`` pairs when the caller has made them
    already (:func:`sectl.audio.files.plan_batch`, to refuse a bad batch before loading the model).
    ``batch``: how many channels of short files run together as rows of one stream (a model that streams;
    ``None``: :func:`default_batch`, 32 on a GPU); each output equals the file enhanced alone.
    Interrupted (Ctrl-C, SIGTERM), the files in progress in worker processes are finished and counted,
    the rest not started: ``written`` lists exactly what is on disk.
    """
    if jobs > 1 and model is not None:
        # Worker processes load their model from a file: hand them this one, not the named source.
        from sectl.models.io.checkpoint import save_checkpoint

        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint(Path(tmp) / "model.pt", model)
            return enhance_paths(inputs, output, model_source=str(Path(tmp) / "model.pt"), overwrite=overwrite, jobs=jobs,
                                 chunk_s=chunk_s, on_progress=on_progress, dry_wet=dry_wet, shard=shard,
                                 device=str(module_device(model)), skip_existing=skip_existing, engine=engine,
                                 plan=plan, batch=batch)  # fmt: skip
    plan = select_shard(plan_batch(inputs, output) if plan is None else plan, shard, key=lambda pair: pair[0])
    if not plan and shard is None:  # an empty shard of a small corpus is not an error
        raise SectlError("no audio files found in the inputs")
    if plan and str(output) != STDIO:  # an unwritable output folder fails once, before any work
        single_target = len(plan) == 1 and plan[0][1] == str(output)
        make_folder(Path(output).parent if single_target else output)
    report = BatchReport(unreadable=[str(p) for p in unreadable_audio(inputs)])
    if skip_existing:
        plan, report.skipped = without_existing(plan)
    tasks = [(src, dst, overwrite, chunk_s, dry_wet) for src, dst in plan]
    progress = SecondsProgress([src for src, _ in plan], on_progress)
    if jobs <= 1:
        model = inference_model(model if model is not None else load_enhancer(model_source, device), engine)
        rows = default_batch(model) if batch is None else batch
        runner = stream_runner_of(model) if rows > 1 else None
        if batch is not None and batch > 1 and runner is None:  # asked for, not silently dropped
            warnings.warn(f"--batch {batch}: {getattr(model, 'name', 'the model')} cannot stream, so files run one at a time",
                          SectlWarning)  # fmt: skip
        work = _together(model, runner, tasks, rows, progress) if runner else _one_at_a_time(model, tasks, progress)
        current: tuple[str, tuple | None] | None = None  # the output in progress, and what was there before
        results: dict[str, tuple[str, str | None, float]] = {}  # by destination: groups finish out of plan order
        try:
            for src, dst, job in work:
                current = (dst, _identity(dst))
                results[dst] = job()
                current = None
                progress.file_done(src)
        except KeyboardInterrupt:
            report.interrupted = True  # outputs are written atomically: a file cut short left nothing behind
            # Stopped after the file in progress was renamed into place but before it was recorded: it is
            # on disk, so it is counted (a new file where there was none, or a new inode).
            if current is not None and current[0] not in results and _identity(current[0]) not in (None, current[1]):
                results[current[0]] = (current[0], None, 1.0)
        for task in tasks:  # the report in plan order, whatever order the files ran in
            if task[1] in results:
                _record(report, results.pop(task[1]))
        return report
    pool = ProcessPoolExecutor(jobs, multiprocessing.get_context("spawn"), _init_worker, (model_source, device, engine))
    futures = {pool.submit(_worker_job, task): task for task in tasks}
    try:
        for future in as_completed(futures):
            progress.file_done(futures[future][0])
    except KeyboardInterrupt:
        report.interrupted = True
        for future in futures:
            future.cancel()  # not started: never will be
    finally:
        # Files a worker had started are finished (workers leave the stop to this process) and kept.
        pool.shutdown(wait=True, cancel_futures=True)
    # The report is read off the finished jobs, in plan order, once: it lists exactly what is on disk.
    for future in futures:
        if future.cancelled():
            continue
        try:
            _record(report, future.result())
        except Exception:  # noqa: BLE001 - after a stop, a worker that died wrote nothing (atomic writes)
            if not report.interrupted:
                raise
    return report


def _identity(path: str) -> tuple | None:
    """Which file ``path`` is now (inode and modification time; ``None``: none), to tell a new one."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns
