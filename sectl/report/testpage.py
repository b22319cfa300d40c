"""Writing a listening test's folder: the page and the stimuli under blind names in ``site/`` (what raters get),
and the key beside that folder, never in it (:mod:`sectl.report.folder`)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

from sectl.fileutil import atomic_write_text
from sectl.metrics.compare import SystemSummary
from sectl.report.data import Version
from sectl.report.folder import KEY_FILE, PAGE, SITE, replace_previous
from sectl.report.listening import TEST_FORMAT, Trial, definition, digest, plan_trials
from sectl.report.media import Clip, read_clip, shared_gain, write_clip

__all__ = ["KEY_FILE", "write_test"]


def write_test(out: Path, method: str, test_id: str, title: str, utterances: list[str], practising: list[str],
               versions: list[Version], summaries: list[SystemSummary], audio_format: str, seed: int,
               on_progress: Callable[[int, int], None] | None = None) -> dict:  # fmt: skip
    """Write ``out/site/`` (``index.html``, mode ``test``, and the audio) and ``out/test.json`` (the key); returns
    the key. ``practising`` are the practice trials' utterances (not in the test)."""
    from sectl.report.page import PAGE_FORMAT, render

    systems = [v.name for v in versions[:-1]]  # the last version is the reference (--test needs --ref)
    trials = plan_trials(method, utterances, systems, seed, practising)
    paths, references = audio_names(trials, [*utterances, *practising], method, audio_format, seed)
    if method == "mushra":
        check_anchors(versions[-1], [*utterances, *practising])
    site = out / SITE
    replace_previous(out, [f"{SITE}/{PAGE}", KEY_FILE, *(f"{SITE}/{p}" for p in [*paths.values(), *references.values()])])
    durations = {}
    for i, utterance in enumerate([*utterances, *practising]):
        durations[utterance] = write_utterance(site, utterance, paths, references.get(utterance), versions, audio_format)
        if on_progress:
            on_progress(i + 1, len(utterances) + len(practising))
    files = {t.id: [paths[t.utterance, s.source] for s in t.stimuli] for t in trials}
    test = definition(test_id, title, method, trials, files, references, durations)
    key = {"format": TEST_FORMAT, "sha256": digest(test), "definition": test,
           "key": {t.id: t.key() for t in trials}, "eval": {"systems": [s.to_json() for s in summaries]}}  # fmt: skip
    atomic_write_text(site / PAGE, render({"format": PAGE_FORMAT, "mode": "test", "title": title,
                                           "test": test, "sha256": key["sha256"]}))  # fmt: skip
    atomic_write_text(out / KEY_FILE, _json(key))
    return key


def check_anchors(reference: Version, utterances: list[str]) -> None:
    """MUSHRA's anchors need every reference above 14.4 kHz: checked before the folder is touched (a failure
    halfway left a folder holding only its manifest, which a second run without ``--overwrite`` then refused)."""
    from sectl.audio import read_audio
    from sectl.report.anchors import ANCHORS_HZ, check_rate

    for utterance in utterances:
        path = reference.path(utterance)
        rate = read_audio(path).sample_rate
        for hz in ANCHORS_HZ:
            check_rate(hz, rate, f"the reference {path}")


def audio_names(trials: list[Trial], utterances: list[str], method: str, audio_format: str,
                seed: int) -> tuple[dict[tuple[str, str], str], dict[str, str]]:  # fmt: skip
    """Each (utterance, source) clip's file, named by the utterance's position and a shuffled slot (a name says
    nothing of the condition), and MUSHRA's open reference of each utterance."""
    rng = random.Random(seed)
    paths, references = {}, {}
    for i, utterance in enumerate(utterances):
        sources = sorted({s.source for t in trials if t.utterance == utterance for s in t.stimuli})
        for source, slot in zip(sources, rng.sample(range(len(sources)), len(sources))):
            paths[utterance, source] = f"audio/t{i:05d}-{slot}.{audio_format}"
        if method == "mushra":
            references[utterance] = f"audio/t{i:05d}-reference.{audio_format}"
    return paths, references


def write_utterance(site: Path, utterance: str, paths: dict[tuple[str, str], str], reference: str | None,
                    versions: list[Version], audio_format: str) -> float:  # fmt: skip
    """Every clip of ``utterance`` at one gain (anchors and the open reference included, so the levels a rater
    compares are the sources'); returns its duration in seconds."""
    sources = [source for u, source in paths if u == utterance]
    reference_source = f"version:{len(versions) - 1}"
    clips = {source: _clip(source, utterance, versions, audio_format) for source in {*sources, reference_source}}
    gain = shared_gain(list(clips.values()))
    inputs = [v.path(utterance) for v in versions]
    for source in sources:
        write_clip(clips[source], site / paths[utterance, source], gain, inputs)
    if reference is not None:
        write_clip(clips[reference_source], site / reference, gain, inputs)
    return round(max(c.duration for c in clips.values()), 3)


def _clip(source: str, utterance: str, versions: list[Version], audio_format: str) -> Clip:
    kind, value = source.split(":")[:2]  # a check clip's copy ("version:J:gold0") plays version J
    if kind == "anchor":
        return read_clip(versions[-1].path(utterance), audio_format, cutoff_hz=float(value))
    return read_clip(versions[int(value)].path(utterance), audio_format)


def _json(value: dict) -> str:
    import json

    return json.dumps(value, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
