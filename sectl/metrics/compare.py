"""Comparing systems on the same pairs: means with 95 % confidence intervals and per-file wins and losses.

``compare(reports)`` takes one :class:`~sectl.metrics.evaluation.EvalReport` per system (scored against
the same references); the first system is the baseline. Confidence intervals use Student's t
(``mean ± t_{0.975, n-1} · s / sqrt(n)``, sample standard deviation), which matters for the handful
of files papers often evaluate on. A file counts as a win for a system when its score beats the
baseline's on that file (in the metric's better direction), a loss when it is worse, a tie otherwise;
only files that both systems scored are counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from sectl.metrics.evaluation import EvalReport
from sectl.metrics.registry import METRICS


@dataclass
class SystemSummary:
    name: str
    report: EvalReport
    ci95: dict[str, tuple[float, float] | None]  # metric -> (low, high)
    versus_first: dict[str, dict[str, int]]  # metric -> {"wins", "losses", "ties"}

    def to_json(self) -> dict:
        return {
            "name": self.name,
            **self.report.to_json(),
            "ci95": {m: (list(v) if v else None) for m, v in self.ci95.items()},
            "versus_first": self.versus_first,
        }


def confidence_interval(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the mean; ``None`` with fewer than two values."""
    if len(values) < 2:
        return None
    mean, sem = float(np.mean(values)), float(np.std(values, ddof=1)) / math.sqrt(len(values))
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1)) * sem
    return mean - half, mean + half


def wins_and_losses(system: EvalReport, *, baseline: EvalReport, metric: str) -> dict[str, int]:
    """Per-file comparison of ``system`` against ``baseline`` on the files both scored."""
    mine = {r.file: r.scores.get(metric) for r in system.files}
    theirs = {r.file: r.scores.get(metric) for r in baseline.files}
    sign = 1 if METRICS[metric].higher_is_better else -1
    counts = {"wins": 0, "losses": 0, "ties": 0}
    for name in mine.keys() & theirs.keys():
        a, b = mine[name], theirs[name]
        if a is None or b is None:
            continue
        difference = sign * (a - b)
        counts["wins" if difference > 1e-9 else "losses" if difference < -1e-9 else "ties"] += 1
    return counts


def compare(reports: dict[str, EvalReport]) -> list[SystemSummary]:
    """One summary per system, in the given order; the first is the baseline of the win/loss counts."""
    names = list(reports)
    baseline = reports[names[0]]
    return [
        SystemSummary(
            name,
            report,
            {m: confidence_interval(report.column(m)) for m in report.metrics},
            {m: wins_and_losses(report, baseline=baseline, metric=m) for m in report.metrics},
        )
        for name, report in reports.items()
    ]


def plot_comparison(summaries: list[SystemSummary], path: str, overwrite: bool = False) -> None:
    """One box plot per metric, the systems side by side, written atomically as a PNG."""
    from sectl.plotting import pyplot, save_png

    metrics = summaries[0].report.metrics
    fig, axes = pyplot().subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        ax.boxplot([s.report.column(metric) for s in summaries], tick_labels=[s.name for s in summaries])
        ax.set_title(metric + (f" ({METRICS[metric].unit})" if METRICS[metric].unit else ""))
        ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    save_png(fig, path, overwrite)
