"""Writing a listening test's folder: the stimuli under blind names, the page, and the key beside it."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

from sectl.fileutil import atomic_write_text
from sectl.metrics.compare import SystemSummary
from sectl.report.data import Version
from sectl.report.listening import TEST_FORMAT, definition, digest, plan_trials
from sectl.report.media import write_anchor, write_version_audio

KEY_FILE = "test.json"
"""The key beside the page: ``sectl eval --ratings --test`` reads it; raters need only the rest of the folder."""


def write_test(out: Path, method: str, test_id: str, title: str, utterances: list[str], versions: list[Version],
               summaries: list[SystemSummary], audio_format: str, practice: int, seed: int, inputs: list[Path],
               on_progress: Callable[[int, int], None] | None = None) -> dict:  # fmt: skip
    """Write the audio, ``index.html`` (mode ``test``) and :data:`KEY_FILE`; returns the key."""
    from sectl.report.page import PAGE_FORMAT, render

    systems = [v.name for v in versions[:-1]]  # the last version is the reference (--test needs --ref)
    trials = plan_trials(method, utterances, systems, practice, seed)
    rng = random.Random(seed)
    paths: dict[tuple[str, str], str] = {}
    references, durations = {}, {}
    for i, utterance in enumerate(utterances):
        sources = sorted({s.source for t in trials if t.utterance == utterance for s in t.stimuli})
        slots = rng.sample(range(len(sources)), len(sources))  # file names say nothing of the condition
        for source, slot in zip(sources, slots):
            paths[utterance, source] = f"audio/t{i:05d}-{slot}.{audio_format}"
            durations[utterance] = max(durations.get(utterance, 0.0), _write(out, paths[utterance, source], source, utterance, versions, inputs))
        if method == "mushra":
            references[utterance] = f"audio/t{i:05d}-reference.{audio_format}"
            _write(out, references[utterance], f"version:{len(versions) - 1}", utterance, versions, inputs)
        if on_progress:
            on_progress(i + 1, len(utterances))
    files = {t.id: [paths[t.utterance, s.source] for s in t.stimuli] for t in trials}
    test = definition(test_id, title, method, trials, files, references, {u: round(d, 3) for u, d in durations.items()})
    key = {"format": TEST_FORMAT, "sha256": digest(test), "definition": test,
           "key": {t.id: t.key() for t in trials}, "eval": {"systems": [s.to_json() for s in summaries]}}  # fmt: skip
    atomic_write_text(out / "index.html", render({"format": PAGE_FORMAT, "mode": "test", "title": title,
                                                   "test": test, "sha256": key["sha256"]}))  # fmt: skip
    atomic_write_text(out / KEY_FILE, _json(key))
    return key


def _write(out: Path, target: str, source: str, utterance: str, versions: list[Version], inputs: list[Path]) -> float:
    kind, value = source.split(":")
    if kind == "anchor":
        write_anchor(versions[-1].path(utterance), out / target, float(value), inputs)
        return 0.0
    return write_version_audio(versions[int(value)].path(utterance), out / target, inputs)[1]


def _json(value: dict) -> str:
    import json

    return json.dumps(value, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
