"""Building a report folder: score, choose the utterances, write the audio and spectrograms, render the page."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sectl.errors import UsageError
from sectl.fileutil import atomic_write_text, make_folder
from sectl.metrics.compare import SystemSummary
from sectl.metrics.registry import METRICS, parse_metric_names
from sectl.options import check_audio_format, parse_select_by
from sectl.report.data import Version, common_utterances, default_metrics, score_systems, select, versions_of
from sectl.report.folder import PAGE, SITE, check_folder, replace_previous, report_inputs
from sectl.report.listening import check_test
from sectl.report.media import power_db, read_clip, shared_gain, spectrogram_samples, write_clip, write_spectrograms
from sectl.report.page import PAGE_FORMAT

@dataclass
class Report:
    """What :func:`build_report` wrote, and the scores it wrote them from (errors and warnings included)."""

    page: Path
    summaries: list[SystemSummary]
    utterances: list[str]


def build_report(
    systems: list[tuple[str, str]],
    out: str | Path,
    ref: str | None = None,
    metrics: str | list[str] | None = None,
    audio_format: str = "wav",
    select_count: int | None = None,
    select_by: str = "random",
    seed: int = 0,
    title: str = "Listening report",
    on_progress: Callable[[int, int], None] | None = None,
    test: str | None = None,
    practice: int = 2,
    test_id: str | None = None,
    overwrite: bool = False,
    **evaluate_options,
) -> Report:
    """Write ``out/index.html`` with the audio (``out/audio/``) and spectrograms (``out/spectrograms/``) beside it.

    ``systems`` are ``(name, file or folder)`` pairs (:func:`sectl.options.parse_systems`), scored against
    ``ref`` as ``sectl eval`` scores them (``metrics``: eval's defaults, DNSMOS without ``ref``) (``evaluate_options``: ``jobs``, ``dnsmos_dir``, ...); the summary
    covers every pair, the page lists ``select_count`` utterances (all when ``None``) chosen by ``select_by``
    (``random`` with ``seed``, or ``worst|best|spread:METRIC`` of the last system). ``on_progress`` follows
    the writing of the utterances' files.

    ``test`` (``acr``, ``p835`` or ``mushra``) makes the page a blind listening test instead
    (:mod:`sectl.report.listening`; it needs ``ref``), with ``practice`` practice trials on utterances outside
    the test, identified by ``test_id`` (default: the folder's name); the page and its audio go to ``out/site/``
    (what raters get) and the key to ``out/test.json`` beside it (:mod:`sectl.report.folder`).

    The folder is checked against every input before any work; an existing report in it is replaced only with
    ``overwrite``, and then every file its build wrote is removed first.

    Example:
        >>> build_report([("noisy", "noisy/"), ("DF3", "out_df3/")], "report/", ref="clean/")  # doctest: +SKIP
    """
    names = parse_metric_names(metrics) if metrics is not None else default_metrics(ref)
    check_audio_format(audio_format)
    check_test(test, ref, practice)
    order, by_metric = parse_select_by(select_by)
    check_select_metric(order, by_metric, names)
    out = Path(out)
    locations = {k: evaluate_options.get(k) for k in ("dnsmos_dir", "asr_model", "nisqa_model", "utmos_model")}
    check_folder(out, report_inputs(systems, ref, **locations), overwrite)
    summaries = score_systems(systems, ref, names, **evaluate_options)
    versions = versions_of(summaries, systems, ref)
    everything = common_utterances(summaries)
    chosen = select(everything, select_count, order, by_metric, summaries[-1], seed)
    if test is not None:
        from sectl.report.testpage import write_test

        practising, chosen = practice_utterances(everything, chosen, practice, seed)
        write_test(make_folder(out), test, test_id or out.resolve().name, title, chosen, practising, versions,
                   summaries, audio_format, seed, on_progress)  # fmt: skip
        return Report(out / SITE / PAGE, summaries, chosen)
    out = make_folder(out)
    replace_previous(out, [PAGE, *(name for i in range(len(chosen)) for name in utterance_files(i, len(versions), audio_format))])
    records = []
    for i, name in enumerate(chosen):
        records.append(write_utterance(out, i, name, versions, audio_format))
        if on_progress:
            on_progress(i + 1, len(chosen))
    data = page_data(title, names, versions, summaries, records)
    if select_count is not None and len(chosen) < len(everything):
        data["selection"] = {"of": len(everything), "by": select_by if order != "random" else f"random, seed {seed}"}
    from sectl.report.page import render

    page = out / PAGE
    atomic_write_text(page, render(data))
    return Report(page, summaries, chosen)


def check_select_metric(order: str, metric: str | None, names: list[str]) -> None:
    """``--select-by worst|best|spread:M`` ranks by a metric the report scores: refused before the scoring, not after."""
    if order != "random" and metric not in names:
        raise UsageError(f"--select-by {order}:{metric}: {metric} is not among the metrics scored ({', '.join(names)}; -m)")


def practice_utterances(everything: list[str], chosen: list[str], count: int, seed: int) -> tuple[list[str], list[str]]:
    """``count`` utterances for the practice trials and the test's utterances: practice never plays a clip of
    the test, so it comes from the utterances ``--select`` left out, or is held out of the chosen ones (seeded)."""
    rng = random.Random(seed)
    spare = [u for u in everything if u not in set(chosen)]
    if len(spare) >= count:
        return sorted(rng.sample(spare, count)), chosen
    held = set(rng.sample(chosen, min(len(chosen), count - len(spare))))
    kept = [u for u in chosen if u not in held]
    if not kept:
        raise UsageError(f"--practice {count}: practice plays utterances outside the test, and the {len(everything)} "
                         "utterance(s) common to every --est leave none for the test; use fewer practice trials")  # fmt: skip
    return sorted(spare + sorted(held)), kept


def utterance_files(index: int, versions: int, audio_format: str) -> list[str]:
    """An utterance's files, named by position (so any file name is a safe URL): audio, then spectrograms."""
    return [f"audio/u{index:05d}-{j}.{audio_format}" for j in range(versions)] + \
        [f"spectrograms/u{index:05d}-{j}.png" for j in range(versions)]  # fmt: skip


def write_utterance(out: Path, index: int, name: str, versions: list[Version], audio_format: str) -> dict:
    """One utterance's files, every version at one gain, and its record for the page."""
    names = utterance_files(index, len(versions), audio_format)
    audio, images = names[: len(versions)], names[len(versions) :]
    sources = [version.path(name) for version in versions]
    clips = [read_clip(source, audio_format) for source in sources]
    gain = shared_gain(clips)
    for clip, target in zip(clips, audio):
        write_clip(clip, out / target, gain, sources)
    write_spectrograms([power_db(spectrogram_samples(c)) for c in clips], [out / image for image in images])
    return {"name": name, "duration": round(max(c.duration for c in clips), 3), "audio": audio, "spectrogram": images,
            "scores": [version.scores(name) for version in versions]}  # fmt: skip


def page_data(title: str, metrics: list[str], versions: list[Version], summaries: list[SystemSummary], utterances: list[dict]) -> dict:
    """Everything page.js reads. ``eval`` is exactly what ``sectl eval --json`` prints for these systems
    (means, 95 % CIs, wins-losses, per-file scores, provenance); ``mode`` names the page's view."""
    return {
        "format": PAGE_FORMAT,
        "mode": "listen",
        "title": title,
        "metrics": [{"name": m, "unit": METRICS[m].unit, "higher_is_better": METRICS[m].higher_is_better} for m in metrics],
        "versions": [v.name for v in versions],
        "reference": next((j for j, v in enumerate(versions) if v.summary is None), None),
        "judged": len(summaries) - 1,
        "utterances": utterances,
        "eval": {"systems": [s.to_json() for s in summaries]},
    }
