"""Speech-VAE latents for files, folders and pipes (the library behind ``sectl encode``).

Layers, as in :mod:`sectl.enhance`: chunked tensor functions with bounded activation memory
(:func:`encode_tensor`, :func:`decode_tensor`) -> latent files (:func:`save_latents`,
:func:`load_latents`) -> one file (:func:`encode_file`, :func:`decode_file`) -> batches that keep
going past bad inputs (:func:`encode_paths`, :func:`decode_paths`, :func:`roundtrip_paths`).

Chunking does not change the result: each chunk carries ``CONTEXT_FRAMES`` latent frames of real
context on both sides, more than the networks' receptive fields, and only its centre is kept, so
chunked latents and audio equal whole-file ones up to float rounding (tested). The audio of a file is
held in memory (about 230 MB per hour at 16 kHz); the networks' activations are bounded by the chunk.

Latent file format ``sectl-latents/1``: a NumPy ``.npz`` (``np.load(path)``, no pickles) with
``latents`` float32 ``(channels, frames)`` (the posterior means), ``length`` (input samples, so decoding
restores it exactly), ``sample_rate``, ``hop``, ``format`` and ``model`` (the model file's name and
SHA-256, so latents are never decoded by the wrong model unknowingly).
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sectl.audio import STDIO, read_audio, resample, write_audio
from sectl.audio.files import plan_batch, unreadable_audio, without_existing
from sectl.device import module_device
from sectl.errors import SectlError
from sectl.fileutil import atomic_write_bytes, write_stdout
from sectl.models.codec.vae import SpeechVAE
from sectl.progress import SecondsProgress

FORMAT = "sectl-latents/1"
CHUNK_FRAMES = 400  # 10 s at 40 Hz
CONTEXT_FRAMES = 32  # > the encoder's (about 12 frames) and the decoder's receptive field on each side
LATENT_SUFFIX = ".npz"


# ---------------------------------------------------------------------------------------------- tensors
@torch.no_grad()
def receptive_field_frames(vae: SpeechVAE, frames: int = 96) -> tuple[int, int]:
    """How many latent frames, on either side, one frame of encoding and of decoding depends on: measured
    by changing the input in one place and seeing how far the output moves (so it holds for any
    architecture). ``CONTEXT_FRAMES`` must cover both for chunked coding to equal whole-file coding."""
    device = module_device(vae)
    hop, centre = vae.hop, frames // 2
    g = torch.Generator().manual_seed(0)
    wave = 0.1 * torch.randn(1, frames * hop, generator=g)
    bumped = wave.clone()
    bumped[0, centre * hop : (centre + 1) * hop] += 0.5
    moved = (vae.encode(bumped.to(device))[0] != vae.encode(wave.to(device))[0]).any(dim=1)[0]  # any change at all
    changed = moved.nonzero().flatten().tolist()
    encoder = max(centre - min(changed), max(changed) - centre)
    latents = torch.randn(1, vae.config.latent_dim, frames, generator=g).to(device)
    other = latents.clone()
    other[0, :, centre] += 1.0
    samples = (vae.decode(other) != vae.decode(latents))[0]  # (T,): any change at all
    changed = (samples.nonzero().flatten() // hop).tolist()
    decoder = max(centre - min(changed), max(changed) - centre)
    return encoder, decoder


def _chunks(total: int, chunk: int) -> list[tuple[int, int]]:
    return [(start, min(total, start + chunk)) for start in range(0, total, chunk)]


@torch.inference_mode()
def encode_tensor(vae: SpeechVAE, wave: torch.Tensor, chunk_frames: int = CHUNK_FRAMES,
                  on_seconds: Callable[[float], None] | None = None) -> torch.Tensor:  # fmt: skip
    """Posterior means ``(channels, ceil(T / hop))`` of a mono waveform ``(T,)`` at ``vae.sample_rate``,
    computed on the VAE's device and returned on the CPU; ``on_seconds`` hears each chunk's input seconds."""
    device = module_device(vae)
    hop, frames = vae.hop, vae.frames(wave.shape[-1])
    padded = torch.nn.functional.pad(wave, (0, frames * hop - wave.shape[-1]))
    parts = []
    for start, stop in _chunks(frames, chunk_frames):
        lo, hi = max(0, start - CONTEXT_FRAMES), min(frames, stop + CONTEXT_FRAMES)
        mean, _ = vae.encode(padded[lo * hop : hi * hop][None].to(device))
        parts.append(mean[0, :, start - lo : stop - lo].cpu())
        if on_seconds is not None:
            on_seconds((stop - start) * hop / vae.sample_rate)
    return torch.cat(parts, dim=-1)


@torch.inference_mode()
def decode_tensor(vae: SpeechVAE, latents: torch.Tensor, length: int, chunk_frames: int = CHUNK_FRAMES) -> torch.Tensor:
    """Waveform ``(length,)`` from latents ``(channels, frames)``, decoded on the VAE's device (CPU result)."""
    device = module_device(vae)
    hop, frames = vae.hop, latents.shape[-1]
    parts = []
    for start, stop in _chunks(frames, chunk_frames):
        lo, hi = max(0, start - CONTEXT_FRAMES), min(frames, stop + CONTEXT_FRAMES)
        wave = vae.decode(latents[None, :, lo:hi].to(device))[0]
        parts.append(wave[(start - lo) * hop : (stop - lo) * hop].cpu())
    wave = torch.cat(parts)
    return torch.nn.functional.pad(wave, (0, max(0, length - wave.shape[-1])))[:length]


# ---------------------------------------------------------------------------------------------- latent files
@dataclass
class Latents:
    latents: np.ndarray  # (channels, frames) float32
    length: int
    sample_rate: int
    hop: int
    model: str


def model_id(path: Path) -> str:
    from sectl.modelfiles import sha256

    return f"{path.name} sha256:{sha256(path)}"


def save_latents(dst: str | Path, item: Latents) -> None:
    """Write a ``sectl-latents/1`` file atomically (``-``: standard output)."""
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array(FORMAT), latents=item.latents.astype(np.float32), length=np.array(item.length),
             sample_rate=np.array(item.sample_rate), hop=np.array(item.hop), model=np.array(item.model))  # fmt: skip
    if str(dst) == STDIO:
        write_stdout(buffer.getvalue())
    else:
        atomic_write_bytes(dst, buffer.getvalue())


def load_latents(src: str | Path) -> Latents:
    """Read and validate a latent file (``-``: standard input); errors name the file and the problem."""
    name = "<stdin>" if str(src) == STDIO else str(src)
    try:
        payload = sys.stdin.buffer.read() if str(src) == STDIO else Path(src).read_bytes()
    except FileNotFoundError:
        raise SectlError(f"{name}: no such file") from None
    except OSError as exc:
        raise SectlError(f"{name}: cannot read the file ({exc.strerror or type(exc).__name__})") from None
    if not payload.startswith(b"PK"):  # numpy would otherwise try it as a pickle and blame "pickled data"
        raise SectlError(f"{name}: not a sectl latent file (not an .npz archive)")
    try:
        data = np.load(io.BytesIO(payload), allow_pickle=False)
        missing = [key for key in LATENT_FIELDS if key not in data.files]
        if missing:
            raise SectlError(f"not a sectl latent file (missing {', '.join(missing)})")
        if str(data["format"]) != FORMAT:
            raise SectlError(f"latent format {str(data['format'])!r}, expected {FORMAT}")
        item = Latents(np.asarray(data["latents"]), *(_integer(data[key], key) for key in ("length", "sample_rate", "hop")),
                       str(data["model"]))  # fmt: skip
    except SectlError as exc:
        raise SectlError(f"{name}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - zip/npz decoding raises many types
        raise SectlError(f"{name}: not a sectl latent file ({type(exc).__name__}: {exc})") from None
    problem = latent_problem(item)
    if problem:
        raise SectlError(f"{name}: {problem}")
    item.latents = item.latents.astype(np.float32)
    return item


LATENT_FIELDS = ("format", "latents", "length", "sample_rate", "hop", "model")


def _integer(value: np.ndarray, key: str) -> int:
    if value.shape != () or not np.issubdtype(value.dtype, np.integer):
        raise SectlError(f"{key}: expected an integer, got {value.dtype} {value.shape}")
    return int(value)


def latent_problem(item: Latents) -> str | None:
    """What makes a latent file undecodable (``None`` if nothing): its fields must agree with each other."""
    x = item.latents
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        return f"latents must be floating-point (channels, frames), got {x.dtype} {x.shape}"
    if x.shape[1] == 0 or x.shape[0] == 0:
        return f"no latent frames (shape {x.shape})"
    if not np.isfinite(x).all():
        return "latents contain NaN or Inf"
    if item.sample_rate <= 0 or item.hop <= 0:
        return f"sample_rate {item.sample_rate} and hop {item.hop} must be positive"
    frames = x.shape[1]
    if not (frames - 1) * item.hop < item.length <= frames * item.hop:
        return (f"length {item.length} does not fit {frames} frames of hop {item.hop} "
                f"(expected {(frames - 1) * item.hop + 1}..{frames * item.hop})")  # fmt: skip
    return None


# ---------------------------------------------------------------------------------------------- one file
def encode_file(vae: SpeechVAE, src: str | Path, dst: str | Path, model: str, overwrite: bool = False,
                chunk_frames: int = CHUNK_FRAMES, on_seconds: Callable[[float], None] | None = None) -> tuple[int, int]:  # fmt: skip
    """Encode one audio file (mono, resampled to the model's rate) into a latent file; returns its shape."""
    if str(dst) != STDIO and Path(dst).exists() and not overwrite:
        raise SectlError(f"{dst}: exists (use --overwrite)")
    audio = read_audio(src, sample_rate=vae.sample_rate)
    latents = encode_tensor(vae, audio.samples[0], chunk_frames, on_seconds).numpy()
    save_latents(dst, Latents(latents, audio.samples.shape[-1], vae.sample_rate, vae.hop, model))
    return latents.shape


def decode_file(vae: SpeechVAE, src: str | Path, dst: str | Path, model: str, overwrite: bool = False,
                chunk_frames: int = CHUNK_FRAMES) -> tuple[tuple[int, int], str]:  # fmt: skip
    """Decode one latent file into audio at the model's rate; refuses latents of another configuration.
    Returns the latents' shape and the model that encoded them (a different one decodes, but may not fit)."""
    item = load_latents(src)
    if (item.sample_rate, item.hop, item.latents.shape[0]) != (vae.sample_rate, vae.hop, vae.config.latent_dim):
        raise SectlError(f"{src}: latents of a {item.sample_rate} Hz, hop {item.hop}, {item.latents.shape[0]}-channel "
                         f"model ({item.model}); this model is {vae.sample_rate} Hz, hop {vae.hop}, {vae.config.latent_dim} channels")  # fmt: skip
    wave = decode_tensor(vae, torch.from_numpy(item.latents), item.length, chunk_frames)
    write_audio(dst, wave[None], vae.sample_rate, overwrite=overwrite, inputs=[src])
    return item.latents.shape, item.model


# ---------------------------------------------------------------------------------------------- batches
@dataclass
class CodecReport:
    """Per-file results (``file``, ``output``, ``shape``), failures (one line each), and round-trip scores."""

    files: list[dict] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # --skip-existing: outputs already there
    unreadable: list[str] = field(default_factory=list)  # files in input folders soundfile cannot decode


def nonempty(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if not pairs:
        raise SectlError("no input files found")
    return pairs


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs: replace or keep existing outputs, parallel jobs, and which shard of the inputs."""

    overwrite: bool = False
    skip_existing: bool = False
    jobs: int = 1
    shard: tuple[int, int] | None = None
    pairs: list[tuple[str, str]] | None = None  # the batch's plan, when the caller made it (:func:`plan_paths`)


def _run(pairs: list[tuple[str, str]], job: Callable[..., tuple[int, int]], on_progress,
         report: CodecReport | None = None, options: BatchOptions = BatchOptions(), inputs: list | None = None) -> CodecReport:  # fmt: skip
    """Run ``job(src, dst, on_seconds)`` over the pairs (in ``options.jobs`` threads: the model's tensor work
    releases the GIL), a failing file reported by name while the rest go on. Progress is in seconds of
    input audio, chunk by chunk."""
    from concurrent.futures import ThreadPoolExecutor

    from sectl.sharding import select_shard

    report = report or CodecReport()
    report.unreadable = [str(p) for p in unreadable_audio(inputs or [])]
    pairs = select_shard(pairs, options.shard, key=lambda pair: pair[0])
    if options.skip_existing:
        pairs, report.skipped = without_existing(pairs)
    progress = SecondsProgress([src for src, _ in pairs], on_progress)

    def one(pair: tuple[str, str]) -> dict | str:
        try:
            return {"file": pair[0], "output": pair[1], "shape": list(job(*pair, lambda s: progress.chunk(pair[0], s)))}
        except SectlError as exc:
            return str(exc)
        finally:
            progress.file_done(pair[0])

    with ThreadPoolExecutor(max(1, options.jobs)) as pool:
        for result in pool.map(one, pairs):
            (report.failed if isinstance(result, str) else report.files).append(result)
    return report


PLANS = {
    "encode": {"output_suffix": LATENT_SUFFIX},
    "decode": {"suffixes": (LATENT_SUFFIX,), "output_suffix": ".wav"},
    "roundtrip": {"output_suffix": ".wav"},
}
"""What each batch reads and writes: audio in, latents out; latents in, WAV out; audio in, WAV out."""


def plan_paths(mode: str, inputs: list[str | Path], output: str | Path) -> list[tuple[str, str]]:
    """``(source, destination)`` pairs of an ``encode``/``decode``/``roundtrip`` batch, refused before any
    work (and before the model loads) when empty, clashing, or writing over an input."""
    return nonempty(plan_batch(inputs, output, **PLANS[mode]))


def encode_paths(vae: SpeechVAE, inputs: list[str | Path], output: str | Path, model: str, overwrite: bool = False,
                 on_progress: Callable[[int, int], None] | None = None, options: BatchOptions | None = None) -> CodecReport:  # fmt: skip
    """Encode audio files/folders into latent files under ``output``."""
    options = options or BatchOptions(overwrite=overwrite)
    pairs = options.pairs or plan_paths("encode", inputs, output)
    return _run(pairs, lambda s, d, tell: encode_file(vae, s, d, model, options.overwrite, on_seconds=tell), on_progress,
                options=options, inputs=inputs)  # fmt: skip


def decode_paths(vae: SpeechVAE, inputs: list[str | Path], output: str | Path, model: str, overwrite: bool = False,
                 on_progress: Callable[[int, int], None] | None = None, options: BatchOptions | None = None) -> CodecReport:  # fmt: skip
    """Decode latent files/folders into WAV files under ``output``."""
    options = options or BatchOptions(overwrite=overwrite)
    pairs = options.pairs or plan_paths("decode", inputs, output)
    report = CodecReport()

    def job(src: str, dst: str, tell: Callable[[float], None]) -> tuple[int, int]:
        shape, encoded_by = decode_file(vae, src, dst, model, options.overwrite)
        if encoded_by != model:
            report.warnings.append(f"{src}: encoded by {encoded_by}, decoded by {model}")
        return shape

    return _run(pairs, job, on_progress, report, options)  # latent files: progress file by file


def roundtrip_paths(vae: SpeechVAE, inputs: list[str | Path], output: str | Path, metrics: list[str],
                    overwrite: bool = False, on_progress: Callable[[int, int], None] | None = None,
                    options: BatchOptions | None = None) -> CodecReport:  # fmt: skip
    """Encode and decode each input (writing the decoded audio under ``output``, or ``-``) and score the
    decoded signal against the input, in memory (so ``-`` works, and scores see no output quantisation)."""
    from sectl.metrics.evaluation import score_waveforms
    from sectl.metrics.intrusive import METRIC_RATE

    options = options or BatchOptions(overwrite=overwrite)
    scored: list[dict] = []

    def job(src: str, dst: str, tell: Callable[[float], None]) -> tuple[int, int]:
        audio = read_audio(src, sample_rate=vae.sample_rate)
        latents = encode_tensor(vae, audio.samples[0], on_seconds=tell)
        decoded = decode_tensor(vae, latents, audio.samples.shape[-1])
        write_audio(dst, decoded[None], vae.sample_rate, overwrite=options.overwrite, inputs=[src])
        at = (resample(x, vae.sample_rate, METRIC_RATE) for x in (decoded, audio.samples[0]))
        scored.append(score_waveforms(next(at), metrics, ref=next(at))[0])
        return tuple(latents.shape)

    report = _run(options.pairs or plan_paths("roundtrip", inputs, output), job, on_progress, options=options, inputs=inputs)
    for m in metrics:
        values = [s[m] for s in scored if s.get(m) is not None]
        if values:
            report.scores[m] = float(np.mean(values))
    return report
