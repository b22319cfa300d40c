"""Self-consistency test: apply the enhancer to its own output and score every step.

``x_0`` is the input and ``x_{k+1} = f(x_k)``. A good enhancer barely changes already-enhanced speech;
one that keeps eroding it shows falling quality and a low step-to-step SI-SDR. :func:`iterate` runs
one model on one file; :func:`iterate_corpus` runs several models over a folder and averages each
step over the files (the MAL paper's iteration experiment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sectl.audio import read_audio, resample, write_audio
from sectl.enhance import enhance_tensor
from sectl.errors import SectlError
from sectl.metrics.evaluation import finite_or_none, score_waveforms
from sectl.metrics.intrusive import METRIC_RATE, si_sdr
from sectl.models import Enhancer

REFERENCE_METRICS = ["pesq_wb", "estoi", "si_sdr", "lsd", "mcd"]
NON_INTRUSIVE_METRICS = ["dnsmos_ovrl", "dnsmos_p808"]


@dataclass
class IterationReport:
    steps: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"steps": [{k: finite_or_none(v) if isinstance(v, float) else v for k, v in s.items()} for s in self.steps]}


def level_dbfs(x: np.ndarray) -> float:
    """RMS level in dB relative to full scale."""
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-12))


def step_paths(source: str | Path, out_dir: str | Path, n: int) -> list[Path]:
    """Where ``iterate`` keeps each step's audio (step 0 is the input): known before any work, so that none
    of them can be an input."""
    stem = Path(str(source)).stem if str(source) != "-" else "stdin"
    return [Path(out_dir) / f"{stem}_step{step:02d}.wav" for step in range(n + 1)]


def iterate(
    model: Enhancer,
    source: str | Path,
    n: int,
    ref: str | Path | None = None,
    out_dir: str | Path | None = None,
    non_intrusive: bool = True,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    dnsmos_dir: str | Path | None = None,
) -> IterationReport:
    """Run ``n`` self-applications of ``model`` on ``source`` and score steps 0..n.

    Every step reports its level (dBFS) and, from step 1, ``delta_si_sdr`` (SI-SDR of step k against
    step k-1). With ``ref``: PESQ-WB, ESTOI, SI-SDR, LSD and MCD against the reference. With
    ``non_intrusive`` (default): DNSMOS OVRL and P.808, so recordings without a reference can be
    tested; if the DNSMOS models cannot be had, the run goes on without them and says why in
    ``warnings``. ``out_dir`` keeps each step's audio. ``dnsmos_dir``: the DNSMOS models' folder,
    searched first.
    """
    if dnsmos_dir is not None:
        from sectl.metrics.dnsmos import set_model_dir

        set_model_dir(dnsmos_dir)
    audio = read_audio(source, mono=False)
    rate = audio.sample_rate
    reference = None
    report = IterationReport()
    if ref is not None:
        reference = read_audio(ref, sample_rate=METRIC_RATE).samples[0]
    if non_intrusive:
        non_intrusive = _dnsmos_available(report)
    names = (REFERENCE_METRICS if reference is not None else []) + (NON_INTRUSIVE_METRICS if non_intrusive else [])
    current = audio.samples
    previous: np.ndarray | None = None
    steps = step_paths(source, out_dir, n) if out_dir is not None else []
    for step in range(n + 1):
        if step > 0:
            current = enhance_tensor(model, current, rate)
        mono16 = read_mono16(current, rate)
        row: dict = {"step": step, "level_dbfs": level_dbfs(mono16)}
        if previous is not None:
            length = min(len(previous), len(mono16))
            row["delta_si_sdr"] = si_sdr(mono16[:length], ref=previous[:length])
        if names:
            scores, failures, warning = score_waveforms(torch.from_numpy(mono16), names, ref=reference)
            if warning and step == 0:
                report.warnings.append(f"{source}: {warning}")
            row.update(scores)
            report.warnings += [f"step {step}: {m} missing ({r})" for m, r in failures.items()]
        if out_dir is not None:
            write_audio(steps[step], current, rate, overwrite=overwrite,
                        inputs=[p for p in (source, ref) if p is not None])
        report.steps.append(row)
        previous = mono16
        if on_progress:
            on_progress(step + 1, n + 1)
    return report


@dataclass
class CorpusIteration:
    """Per model: each step's metrics averaged over the files that gave a value (``files`` per step)."""

    models: dict[str, list[dict]] = field(default_factory=dict)
    files: int = 0
    failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        clean = lambda v: finite_or_none(v) if isinstance(v, float) else v  # noqa: E731
        return {
            "files": self.files,
            "models": [{"model": name, "steps": [{k: clean(v) for k, v in s.items()} for s in steps]}
                       for name, steps in self.models.items()],
            "failed": self.failed, "warnings": self.warnings,
        }  # fmt: skip


def iterate_corpus(
    models: dict[str, Enhancer],
    source: str | Path,
    n: int,
    ref: str | Path | None = None,
    non_intrusive: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    dnsmos_dir: str | Path | None = None,
) -> CorpusIteration:
    """:func:`iterate` for every model in ``models`` (name -> model) on every file of ``source`` (a file
    or folder), paired with ``ref`` (a file or folder, by relative path) when given. A file that fails
    is reported in ``failed`` and left out of every model's averages."""
    from sectl.audio import find_audio_files, pair_files

    if ref is not None:
        pairing = pair_files(source, ref=ref)
        jobs = [(name, est, reference) for name, reference, est in pairing.pairs]
        missing = [f"{name}: no reference in {ref}" for name in pairing.only_est]
    else:
        root = Path(source)
        jobs = [(f.relative_to(root).as_posix() if root.is_dir() else f.name, f, None) for f in find_audio_files(root)]
        missing = []
    if not jobs:
        raise SectlError(f"{source}: no audio files to iterate")
    result = CorpusIteration(failed=missing)
    runs: dict[str, dict[str, list[dict]]] = {name: {} for name in models}
    bad: set[str] = set()
    total, done = len(models) * len(jobs) * (n + 1), 0
    for model_name, model in models.items():
        for file_name, path, reference in jobs:
            if file_name not in bad:
                try:
                    report = iterate(model, path, n, ref=reference, non_intrusive=non_intrusive, dnsmos_dir=dnsmos_dir)
                except SectlError as exc:
                    bad.add(file_name)
                    result.failed.append(str(exc))
                else:
                    runs[model_name][file_name] = report.steps
                    result.warnings += [w for w in report.warnings if w not in result.warnings]
            done += n + 1
            if on_progress:
                on_progress(done, total)
    result.files = len(jobs) - len(bad)
    for model_name, by_file in runs.items():
        # Files that failed for any model are left out of every model's means, so all rows average the same files.
        reports = [steps for file_name, steps in by_file.items() if file_name not in bad]
        result.models[model_name] = [_mean_step([r[step] for r in reports]) for step in range(n + 1)] if reports else []
    return result


def _mean_step(rows: list[dict]) -> dict:
    keys = [k for k in dict.fromkeys(k for row in rows for k in row) if k != "step"]
    mean: dict = {"step": rows[0]["step"]}
    for key in keys:
        values = [row[key] for row in rows if isinstance(row.get(key), float) and math.isfinite(row[key])]
        mean[key] = float(np.mean(values)) if values else None
    return mean


def plot_corpus_iterations(result: CorpusIteration, path: str | Path, overwrite: bool = False) -> None:
    """One panel per metric, one line per model, against the step number."""
    from sectl.plotting import pyplot, save_png

    plt = pyplot()
    keys = [k for k in dict.fromkeys(k for steps in result.models.values() for s in steps for k in s) if k != "step"]
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for name, steps in result.models.items():
            points = [(s["step"], s[key]) for s in steps if s.get(key) is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=name)
        ax.set_title(f"{key} (mean of {result.files} files)")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize="small")
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    save_png(fig, path, overwrite)


def _dnsmos_available(report: IterationReport) -> bool:
    from sectl.metrics.dnsmos import model_paths

    try:
        model_paths()
        return True
    except SectlError as exc:
        report.warnings.append(f"DNSMOS skipped: {exc}")
        return False


def read_mono16(wave: torch.Tensor, rate: int) -> np.ndarray:
    return resample(wave.mean(dim=0), rate, METRIC_RATE).double().numpy()


def plot_iterations(report: IterationReport, path: str | Path, overwrite: bool = False) -> None:
    """One panel per reported quantity against the step number, saved as PNG."""
    from sectl.plotting import pyplot, save_png

    plt = pyplot()
    keys = [k for k in dict.fromkeys(k for step in report.steps for k in step) if k != "step"]
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        points = [(s["step"], s[key]) for s in report.steps if s.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o")
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    save_png(fig, path, overwrite)
