"""What a report shows: every system scored as `sectl eval` scores it, and the utterances the page lists."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from sectl.errors import SectlError, UsageError
from sectl.metrics.compare import SystemSummary, compare
from sectl.metrics import DEFAULT_METRICS
from sectl.metrics.evaluation import evaluate, finite_or_none
from sectl.metrics.registry import METRICS

REFERENCE = "clean"
"""The version name of the reference (``--ref``), listed after the systems."""


@dataclass(frozen=True)
class Version:
    """One way an utterance sounds: a system's output, or the reference (which has no scores)."""

    name: str
    root: Path  # the --est or --ref file or folder
    summary: SystemSummary | None = None

    def path(self, utterance: str) -> Path:
        return self.root / utterance if self.root.is_dir() else self.root

    def scores(self, utterance: str) -> dict[str, float | None]:
        """The utterance's scores (none for the reference); a lookup, so a page of n rows costs O(n)."""
        found = self._by_file.get(utterance, {})
        return {metric: finite_or_none(value) for metric, value in found.items()}

    @cached_property
    def _by_file(self) -> dict[str, dict[str, float]]:
        return {} if self.summary is None else {r.file: r.scores for r in self.summary.report.files}


NO_REFERENCE_METRICS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
"""What a report without ``--ref`` scores by default (``sectl eval``'s defaults all need a reference)."""


def default_metrics(ref: str | None) -> list[str]:
    return list(DEFAULT_METRICS if ref is not None else NO_REFERENCE_METRICS)


def score_systems(systems: list[tuple[str, str]], ref: str | None, metrics: list[str], **evaluate_options) -> list[SystemSummary]:
    """Each system's :class:`SystemSummary` against ``ref``, exactly as ``sectl eval`` with several ``--est``
    computes them (the first system is the baseline of wins and losses)."""
    reports = {name: evaluate(path, ref=ref, metrics=metrics, **evaluate_options) for name, path in systems}
    return compare(reports)


def versions_of(summaries: list[SystemSummary], systems: list[tuple[str, str]], ref: str | None) -> list[Version]:
    """The systems in order, then the reference."""
    found = [Version(s.name, Path(path), s) for s, (_, path) in zip(summaries, systems)]
    return found + ([Version(REFERENCE, Path(ref))] if ref is not None else [])


def common_utterances(summaries: list[SystemSummary]) -> list[str]:
    """The files every system scored (a file one system lacks has nothing to switch to)."""
    names = [{r.file for r in s.report.files} for s in summaries]
    common = sorted(set.intersection(*names))
    if not common:
        raise SectlError("no file is common to every --est (each is paired by relative path)")
    return common


def select(utterances: list[str], count: int | None, order: str = "random", metric: str | None = None,
           judged: SystemSummary | None = None, seed: int = 0) -> list[str]:  # fmt: skip
    """``count`` of ``utterances``: at random (``seed``), or the worst, best or a spread (evenly spaced ranks,
    worst to best) by ``metric`` of the ``judged`` system; ``None`` keeps them all. Files the metric could
    not score are never picked by rank."""
    if count is None or count >= len(utterances):
        return utterances
    if order == "random":
        return sorted(random.Random(seed).sample(utterances, count))
    if judged is None or metric not in judged.report.metrics:
        raise UsageError(f"--select-by {order}:{metric}: {metric} is not among the metrics scored (-m)")
    scores = {r.file: r.scores.get(metric) for r in judged.report.files}
    sign = 1 if METRICS[metric].higher_is_better else -1
    ranked = sorted((n for n in utterances if scores.get(n) is not None), key=lambda n: (sign * scores[n], n))
    if order == "worst":
        return ranked[:count]
    if order == "best":
        return ranked[::-1][:count]
    if count == 1:
        return ranked[len(ranked) // 2 : len(ranked) // 2 + 1]
    return list(dict.fromkeys(ranked[round(i * (len(ranked) - 1) / (count - 1))] for i in range(count)))
