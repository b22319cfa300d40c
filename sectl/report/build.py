"""Building a report folder: score, choose the utterances, write the audio and spectrograms, render the page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sectl.fileutil import atomic_write_text, make_folder
from sectl.metrics.compare import SystemSummary
from sectl.metrics.registry import METRICS, parse_metric_names
from sectl.options import check_audio_format, parse_select_by
from sectl.report.data import Version, common_utterances, default_metrics, score_systems, select, versions_of
from sectl.report.listening import check_test
from sectl.report.page import PAGE_FORMAT
from sectl.report.media import power_db, write_spectrograms, write_version_audio

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
    **evaluate_options,
) -> Report:
    """Write ``out/index.html`` with the audio (``out/audio/``) and spectrograms (``out/spectrograms/``) beside it.

    ``systems`` are ``(name, file or folder)`` pairs (:func:`sectl.options.parse_systems`), scored against
    ``ref`` as ``sectl eval`` scores them (``metrics``: eval's defaults, DNSMOS without ``ref``) (``evaluate_options``: ``jobs``, ``dnsmos_dir``, ...); the summary
    covers every pair, the page lists ``select_count`` utterances (all when ``None``) chosen by ``select_by``
    (``random`` with ``seed``, or ``worst|best|spread:METRIC`` of the last system). ``on_progress`` follows
    the writing of the utterances' files.

    ``test`` (``acr``, ``p835`` or ``mushra``) makes the page a blind listening test instead
    (:mod:`sectl.report.listening`; it needs ``ref``), with ``practice`` practice trials, identified by
    ``test_id`` (default: the folder's name); its key is written beside the page as ``test.json``.

    Example:
        >>> build_report([("noisy", "noisy/"), ("DF3", "out_df3/")], "report/", ref="clean/")  # doctest: +SKIP
    """
    names = parse_metric_names(metrics) if metrics is not None else default_metrics(ref)
    check_audio_format(audio_format)
    check_test(test, ref, practice)
    order, by_metric = parse_select_by(select_by)
    summaries = score_systems(systems, ref, names, **evaluate_options)
    versions = versions_of(summaries, systems, ref)
    everything = common_utterances(summaries)
    chosen = select(everything, select_count, order, by_metric, summaries[-1], seed)
    out = make_folder(out)
    inputs = [Path(v.root) for v in versions]
    if test is not None:
        from sectl.report.testpage import write_test

        write_test(out, test, test_id or out.resolve().name, title, chosen, versions, summaries, audio_format,
                   practice, seed, inputs, on_progress)  # fmt: skip
        return Report(out / "index.html", summaries, chosen)
    records = []
    for i, name in enumerate(chosen):
        records.append(write_utterance(out, i, name, versions, audio_format, inputs))
        if on_progress:
            on_progress(i + 1, len(chosen))
    data = page_data(title, names, versions, summaries, records)
    if select_count is not None and len(chosen) < len(everything):
        data["selection"] = {"of": len(everything), "by": select_by if order != "random" else f"random, seed {seed}"}
    from sectl.report.page import render

    page = out / "index.html"
    atomic_write_text(page, render(data))
    return Report(page, summaries, chosen)


def write_utterance(out: Path, index: int, name: str, versions: list[Version], audio_format: str, inputs: list[Path]) -> dict:
    """One utterance's files (named by position, so any file name is a safe URL) and its record for the page."""
    audio, images, powers, duration = [], [], [], 0.0
    for j, version in enumerate(versions):
        audio.append(f"audio/u{index:05d}-{j}.{audio_format}")
        images.append(f"spectrograms/u{index:05d}-{j}.png")
        samples, seconds = write_version_audio(version.path(name), out / audio[-1], inputs)
        powers.append(power_db(samples))
        duration = max(duration, seconds)
    write_spectrograms(powers, [out / image for image in images])
    return {"name": name, "duration": round(duration, 3), "audio": audio, "spectrogram": images,
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
