"""Scoring files and folders: pairing, resampling, trimming, parallel jobs, summary statistics."""

from __future__ import annotations

import csv
import hashlib
import io

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sectl.audio import find_audio_files, pair_files, read_audio
from sectl.errors import AudioError, SectlError
from sectl.metrics import DEFAULT_METRICS
from sectl.metrics.dnsmos import set_model_dir
from sectl.metrics.intrusive import METRIC_RATE
from sectl.metrics.provenance import provenance
from sectl.sharding import select_shard
from sectl.metrics.registry import METRICS, parse_metric_names, prepare_metrics, score_signals

DEFAULT_METRICS_SPEC = ",".join(DEFAULT_METRICS)

LENGTH_TOLERANCE_S = 0.010
"""Length differences above this are reported: they usually mean a misaligned or wrong file."""


@dataclass
class FileResult:
    """Scores of one file; ``None`` marks a metric that could not be computed (see ``failures``)."""

    file: str
    scores: dict[str, float | None]
    failures: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class EvalReport:
    """Everything ``sectl eval`` reports; ``to_json`` is the documented ``--json`` schema."""

    metrics: list[str]
    files: list[FileResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # files that could not be read
    unpaired: list[str] = field(default_factory=list)  # "ref only: x" / "est only: y"
    interrupted: bool = False  # Ctrl-C: the files scored before it are reported
    shard: tuple[int, int] | None = None  # (K, N) of a --shard K/N run; merge_reports checks the set
    run: dict | None = None  # what identifies the whole run a shard belongs to (see run_record)

    def column(self, name: str) -> list[float]:
        return [r.scores[name] for r in self.files if r.scores.get(name) is not None]  # type: ignore[misc]

    @property
    def mean(self) -> dict[str, float | None]:
        return {m: (float(np.mean(v)) if (v := self.column(m)) else None) for m in self.metrics}

    @property
    def std(self) -> dict[str, float | None]:
        return {m: (float(np.std(v)) if (v := self.column(m)) else None) for m in self.metrics}

    def to_csv(self, system: str | None = None, header: bool = True) -> str:
        """Per-file scores as CSV; with ``system``, a first column naming it, so several systems' rows
        (the later ones with ``header=False``) make one file."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        lead = [] if system is None else [system]
        if header:
            writer.writerow([*(["system"] if system is not None else []), "file", *self.metrics])
        for r in self.files:
            writer.writerow([*lead, r.file, *["" if r.scores[m] is None else r.scores[m] for m in self.metrics]])
        return buffer.getvalue()

    def to_json(self) -> dict:
        return {
            "files": [{"file": r.file, **_clean(r.scores)} for r in self.files],
            "mean": _clean(self.mean),
            "std": _clean(self.std),
            "unpaired": self.unpaired,
            "errors": self.errors,
            "interrupted": self.interrupted,
            **({"shard": {"index": self.shard[0], "count": self.shard[1], "complete": not self.interrupted}}
               if self.shard else {}),
            **({"run": self.run} if self.run else {}),
            "provenance": provenance(self.metrics),
        }


def _clean(scores: dict[str, float | None]) -> dict[str, float | None]:
    return {k: finite_or_none(v) for k, v in scores.items()}


def align_lengths(est: torch.Tensor, *, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, str | None]:
    """``(est, ref, warning)``: both trimmed to the shorter length; a warning when they differ by more than 10 ms."""
    n = min(ref.shape[-1], est.shape[-1])
    diff = abs(ref.shape[-1] - est.shape[-1]) / METRIC_RATE
    warning = None
    if diff > LENGTH_TOLERANCE_S:
        warning = f"lengths differ by {diff * 1000:.0f} ms; trimmed to the shorter"
    return est[..., :n], ref[..., :n], warning


def score_waveforms(
    est: torch.Tensor, metrics: list[str], *, ref: torch.Tensor | None = None, transcript: str | None = None
) -> tuple[dict[str, float | None], dict[str, str], str | None]:
    """Score 16 kHz mono waveforms ``(T,)``: trim to the shorter, then every metric.

    Returns the scores, the per-metric failure reasons, and a length warning (or ``None``). Shared by
    ``evaluate``, ``sectl iterate`` and training validation, so all three score alike.
    """
    warning = None
    if ref is not None:
        est, ref, warning = align_lengths(est, ref=ref)
    scores, failures = score_signals(est.double().numpy(), metrics, ref=None if ref is None else ref.double().numpy(),
                                     transcript=transcript)  # fmt: skip
    return scores, failures, warning


def read_transcript(ref_path: Path) -> str | None:
    """The reference's transcript: ``clean/x.wav`` -> ``clean/x.txt`` (``None`` when there is none)."""
    path = ref_path.with_suffix(".txt")
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def score_files(name: str, ref_path: Path | None, est_path: Path, metrics: list[str]) -> FileResult:
    """Read, resample to 16 kHz mono, trim, and score one (reference, estimate) pair."""
    est = read_audio(est_path, sample_rate=METRIC_RATE).samples[0]
    ref = None if ref_path is None else read_audio(ref_path, sample_rate=METRIC_RATE).samples[0]
    transcript = read_transcript(ref_path) if ref_path is not None and any(METRICS[m].transcript for m in metrics) else None
    scores, failures, warning = score_waveforms(est, metrics, ref=ref, transcript=transcript)
    warnings = [f"{name}: {warning}"] if warning else []
    return FileResult(file=name, scores=scores, failures=failures, warnings=warnings)


def _score_job(args: tuple) -> FileResult | str:
    """Process-pool entry point: errors come back as text so one bad file never stops the batch."""
    try:
        return score_files(*args)
    except AudioError as exc:
        return str(exc)


def evaluate(
    est: str | Path,
    ref: str | Path | None = None,
    metrics: str | list[str] = DEFAULT_METRICS_SPEC,
    jobs: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
    dnsmos_dir: str | Path | None = None,
    shard: tuple[int, int] | None = None,
    asr_model: str | Path | None = None,
    nisqa_model: str | Path | None = None,
    utmos_model: str | Path | None = None,
) -> EvalReport:
    """Score enhanced audio ``est`` against ``ref`` (files or folders paired by relative path).

    Without ``ref`` only non-intrusive metrics may be asked for. ``jobs > 1`` scores files in
    parallel processes. ``on_progress(done, total)`` is called after each file. ``dnsmos_dir`` is
    the folder of the DNSMOS models, searched first (in the worker processes too). ``shard=(K, N)``
    scores only that deterministic 1/N of the files; :func:`merge_reports` joins the parts.
    ``asr_model`` is the recogniser of the ``wer`` metric (:mod:`sectl.metrics.asr`), which reads each
    reference's transcript from a ``.txt`` beside it. ``nisqa_model`` and ``utmos_model`` are the weights (a file
    or its folder) of ``nisqa*`` and ``utmos`` (:mod:`sectl.metrics.nisqa`, :mod:`sectl.metrics.utmos`).

    Example:
        >>> report = evaluate("enhanced/", ref="clean/", metrics="pesq_wb,si_sdr")  # doctest: +SKIP
        >>> report.mean["pesq_wb"]  # doctest: +SKIP
    """
    names = parse_metric_names(metrics)
    needs_ref = [n for n in names if METRICS[n].intrusive or METRICS[n].transcript]
    if ref is None and needs_ref:
        raise SectlError(f"metric(s) {', '.join(needs_ref)} need a reference: pass --ref")
    report = EvalReport(metrics=names, shard=shard)
    if ref is None:
        root = Path(est)
        files = find_audio_files(root)
        tasks = [(p.name if root.is_file() else p.relative_to(root).as_posix(), None, p, names) for p in files]
    else:
        pairing = pair_files(est, ref=ref)
        report.unpaired = [f"ref only: {n}" for n in pairing.only_ref] + [
            f"est only: {n}" for n in pairing.only_est
        ]
        tasks = [(name, r, e, names) for name, r, e in pairing.pairs]
    report.run = run_record(est, ref, [task[0] for task in tasks], names)
    tasks = select_shard(tasks, shard, key=lambda task: task[0])
    if not tasks and shard is None:
        raise SectlError(f"{est}: no audio files to evaluate")
    locations = (dnsmos_dir, asr_model, nisqa_model, utmos_model)
    _configure(*locations)
    prepare_metrics(names)
    results = _run(tasks, jobs, on_progress, locations)
    report.interrupted = len(results) < len(tasks)
    for result in results:
        if isinstance(result, str):
            report.errors.append(result)
        else:
            report.files.append(result)
    return report


def _run(tasks: list[tuple], jobs: int, on_progress: Callable[[int, int], None] | None, settings: tuple = ()) -> list:
    results = []
    if jobs <= 1:
        try:
            for i, task in enumerate(tasks):
                results.append(_score_job(task))
                if on_progress:
                    on_progress(i + 1, len(tasks))
        except KeyboardInterrupt:
            pass  # the caller sees fewer results than tasks: an interrupted run
        return results
    # spawn: forked children can deadlock in torch's thread pools once the parent has used them.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=settings)
    interrupted = False
    try:
        for i, result in enumerate(pool.map(_score_job, tasks)):
            results.append(result)
            if on_progress:
                on_progress(i + 1, len(tasks))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
    return results


def _configure(dnsmos_dir: str | Path | None = None, asr_model: str | Path | None = None,
               nisqa_model: str | Path | None = None, utmos_model: str | Path | None = None) -> None:  # fmt: skip
    """Model locations of the metrics that need models (DNSMOS, the ``wer`` recogniser, NISQA, UTMOS)."""
    if dnsmos_dir is not None:
        set_model_dir(dnsmos_dir)
    if asr_model is not None:
        from sectl.metrics.asr import set_recognizer

        set_recognizer(asr_model)
    if nisqa_model is not None:
        from sectl.metrics import nisqa

        nisqa.set_model(nisqa_model)
    if utmos_model is not None:
        from sectl.metrics import utmos

        utmos.set_model(utmos_model)


def _init_worker(*locations: str | Path | None) -> None:
    """One thread per worker (N workers on N cores beat N workers fighting over threads); the parent's model locations."""
    torch.set_num_threads(1)
    _configure(*locations)


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN/Inf: map them to null."""
    return None if value is None or not math.isfinite(value) else value


def run_record(est: str | Path, ref: str | Path | None, names: list[str], metrics: list[str]) -> dict:
    """What identifies a whole run, recorded in each of its shard reports so that shards of different runs
    (another estimate folder with the same file names, another corpus or metric set, another version) are
    never merged as one: the estimates and references, the pair list's size and hash, the metrics, sectl's
    version."""
    from sectl import __version__

    digest = hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()
    return {"est": str(Path(est).resolve()), "ref": None if ref is None else str(Path(ref).resolve()),
            "pairs": len(names), "pairs_sha256": digest, "metrics": list(metrics), "version": __version__}  # fmt: skip


PATH_KEYS = {"est", "ref"}


def check_one_run(parts: list[dict], names: list[str]) -> list[str]:
    """Refuse parts of different runs (other pairs, metrics or version), naming the first report that differs
    and how. Returns what only ``--allow-partial`` merges: reports without a run record (older sectl), which
    cannot be checked, and shards scored from other paths (node-local copies of one corpus look like that,
    and so do an enhanced and a noisy folder with the same names)."""
    records = [part.get("run") for part in parts]
    first = next(((name, record) for name, record in zip(names, records) if isinstance(record, dict)), None)
    unchecked = [f"{name}: no run record (scored by an older sectl), so it cannot be checked to belong with the others"
                 for name, record in zip(names, records) if not isinstance(record, dict)]  # fmt: skip
    if first is None:
        return unchecked
    moved = []
    for name, record in zip(names, records):
        if not isinstance(record, dict) or record == first[1]:
            continue
        differ = [k for k in sorted({*record, *first[1]}) if record.get(k) != first[1].get(k)]
        where = f"{differ[0]} {record.get(differ[0])!r}, not {first[1].get(differ[0])!r}"
        if set(differ) <= PATH_KEYS:  # the same pairs and metrics read from another path: a copy, or another corpus
            moved.append(f"{name}: scored from another path than {first[0]} ({where}); the same corpus only if a copy")
            continue
        raise SectlError(f"{name}: a shard of another run than {first[0]} ({where}); merge the shards of one run")
    return unchecked + moved


def merge_reports(parts: list[dict], names: list[str] | None = None, allow_partial: bool = False) -> EvalReport:
    """One report from the ``to_json()`` payloads of ``--shard K/N`` runs: the same files, means and stds
    as one run.

    The parts must be shards 1..N of one N, each once and each complete; otherwise the merge is refused
    (``allow_partial``: merged anyway, and the result is marked interrupted, so it never passes for a
    whole run). ``names`` (the report files) name the culprit in every error.
    """
    if not parts:
        raise SectlError("nothing to merge")
    names = names or [f"report {i + 1}" for i in range(len(parts))]
    for name, part in zip(names, parts):
        check_report(part, name)
    metrics = list(parts[0]["mean"])
    report = EvalReport(metrics=metrics, run=parts[0].get("run"))
    problems = check_one_run(parts, names) + shard_problems(parts, names)
    if problems and not allow_partial:
        raise SectlError(f"{problems[0]}; merging it would misreport the whole run (--allow-partial merges anyway)")
    report.interrupted = bool(problems)  # an incomplete set: its JSON never passes for a whole run
    report.errors += [f"incomplete merge: {problem}" for problem in problems]
    seen: set[str] = set()
    for name, part in zip(names, parts):
        if list(part["mean"]) != metrics:
            raise SectlError(f"{name}: metrics {', '.join(part['mean'])} differ from {', '.join(metrics)}; cannot merge")
        for row in part["files"]:
            if row["file"] not in seen:
                seen.add(row["file"])
                report.files.append(FileResult(file=row["file"], scores={m: row.get(m) for m in metrics}))
        report.errors += [e for e in part.get("errors", []) if e not in report.errors]
        report.unpaired += [u for u in part.get("unpaired", []) if u not in report.unpaired]
    report.files.sort(key=lambda r: r.file)
    return report


def check_report(part: object, name: str) -> None:
    """Raise a one-line error unless ``part`` is a single-system ``sectl eval --json`` report."""
    if not isinstance(part, dict):
        raise SectlError(f"{name}: not a sectl eval --json report (a JSON {type(part).__name__}, expected an object)")
    if "systems" in part:
        raise SectlError(f"{name}: a multi-system comparison; merge the --json reports of single --shard runs")
    if not isinstance(part.get("files"), list) or not isinstance(part.get("mean"), dict):
        raise SectlError(f"{name}: not a sectl eval --json report (no 'files' list and 'mean' object)")
    for row in part["files"]:
        if not isinstance(row, dict) or not isinstance(row.get("file"), str):
            raise SectlError(f"{name}: a 'files' entry without a file name: {str(row)[:80]}")
        bad = [k for k, v in row.items() if k != "file" and not (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)))]
        if bad:
            raise SectlError(f"{name}: {row['file']}: score {bad[0]!r} is {row[bad[0]]!r}, not a number or null")


def shard_problems(parts: list[dict], names: list[str]) -> list[str]:
    """What keeps ``parts`` from being one complete run: unsharded, interrupted, repeated or missing shards."""
    problems = []
    shards = []
    for name, part in zip(names, parts):
        shard = part.get("shard")
        if not isinstance(shard, dict):
            problems.append(f"{name}: not a --shard run (no shard record)")
            continue
        shards.append((shard.get("index"), shard.get("count"), name))
        if part.get("interrupted") or not shard.get("complete", False):
            problems.append(f"{name}: shard {shard.get('index')}/{shard.get('count')} was interrupted before it scored all its files")
    counts = {count for _, count, _ in shards}
    if len(counts) > 1:
        problems.append(f"the reports split the files differently ({', '.join(f'{i}/{n} in {m}' for i, n, m in shards)})")
    elif counts:
        count = counts.pop()
        given: dict[int, str] = {}
        for index, _, name in shards:
            if index in given:
                problems.append(f"shard {index}/{count} given twice ({given[index]}, {name})")
            given.setdefault(index, name)
        missing = [str(k) for k in range(1, int(count) + 1) if k not in given]
        if missing:
            problems.append(f"shard(s) {', '.join(missing)} of {count} missing")
    return problems
