"""Ratings into numbers (``sectl eval --ratings``): MOS or MUSHRA scores per condition with 95 % confidence
intervals that account for raters and utterances, pairwise significance, and the correlation of the ratings
with the objective metrics of the same files.

The interval is a two-way t-interval. A condition's ratings form a table of raters by utterances; its mean
varies, from one test to the next, with the raters drawn (their leniency) and with the utterances drawn (their
difficulty), so its variance is estimated from both margins of the table::

    V = s2_raters / R + s2_utterances / U

where ``s2_raters`` is the variance of the R raters' mean ratings and ``s2_utterances`` that of the U
utterances' mean ratings, and the interval is ``mean +- t(0.975, nu) sqrt(V)`` with the Welch-Satterthwaite
degrees of freedom ``nu = V**2 / ((s2_raters / R)**2 / (R - 1) + (s2_utterances / U)**2 / (U - 1))``. On a
complete table ``V = (MS_raters + MS_utterances) / (R U)`` of the two-way analysis of variance, whose expectation
``sr2 / R + su2 / U + 2 se2 / (R U)`` exceeds the variance of the mean by the residual term ``se2 / (R U)`` only
(random-effects model ``rating = mu + rater + utterance + error``): the interval errs on the wide side, and
the t quantile keeps it honest with few raters or few utterances: in simulated tests of 2 to 20 raters and 4 to
20 utterances it held the true mean 0.949 to 0.975 of the time, where the two-way percentile bootstrap it
replaced held it 0.892 to 0.937 of the time with 6 utterances or fewer (``benchmarks/ratings_coverage.py``;
``benchmarks/results/ratings_coverage.md``). With one rater, ``V`` holds the
utterances' term only and says nothing of other raters (a warning says so); with one utterance, likewise.

Intervals are clipped to what the mean can be: the scale's range (a difference: plus or minus its width), so a
mean near the top of MUSHRA's scale is not given an upper bound above 100; the clipping changes no interval's
coverage.

Two conditions are compared on the table of paired differences (a rater's rating of one minus their rating of
the other on the same utterance) by the same interval; they differ significantly when it excludes zero, and
``p`` is the two-sided t-test's, not corrected for the number of pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sectl.errors import SectlError
from sectl.report.listening import ANCHOR_NAMES, HIDDEN_REFERENCE
from sectl.report.ratings import Rater, TestKey

LEVEL = 0.95
CORRELATIONS = ("pearson", "spearman", "kendall")
INTERVAL = "two-way t-interval (raters and utterances, Welch-Satterthwaite)"


@dataclass
class Observation:
    rater: int
    utterance: str
    condition: str
    scale: str
    value: int


def observations(raters: list[Rater], test: TestKey) -> list[Observation]:
    """Every rating of a kept rater on a test trial (practice, gold and trapping clips left out)."""
    found = []
    for r, rater in enumerate(x for x in raters if x.kept):
        for trial in rater.trials:
            entry = test.key[trial["id"]]
            if entry["kind"] != "test":
                continue
            for scale, values in trial["ratings"].items():
                found += [Observation(r, entry["utterance"], c, scale, v) for c, v in zip(entry["conditions"], values)]
    return found


def conditions_of(test: TestKey) -> list[str]:
    """The systems (in sectl report's order), the hidden reference, then the anchors."""
    seen: dict[str, None] = {}
    for entry in test.key.values():
        seen.update(dict.fromkeys(entry["conditions"]))
    fixed = [s["name"] for s in test.eval["systems"]] + [HIDDEN_REFERENCE, *ANCHOR_NAMES.values()]
    return [c for c in fixed if c in seen] + sorted(c for c in seen if c not in fixed)


def analyse(raters: list[Rater], test: TestKey) -> dict:
    """The whole analysis as JSON-ready data (what ``--json`` prints)."""
    kept = [r for r in raters if r.kept]
    if not kept:
        raise SectlError("no rater is left after screening: nothing to score (see the reasons above)")
    found = observations(raters, test)
    conditions = conditions_of(test)
    utterances = sorted({o.utterance for o in found})
    scales = {}
    for scale in test.scales:
        name = scale["name"]
        sums, counts = _tables([o for o in found if o.scale == name], conditions, utterances, len(kept))
        scales[name] = _scale(sums, counts, conditions, utterances, test, (scale["min"], scale["max"]))
    return {
        "test_id": test.definition["test_id"], "method": test.method, "sha256": test.sha256,
        "interval": {"method": INTERVAL, "level": LEVEL}, "warnings": _warnings(len(kept), len(utterances)),
        "raters": [r.to_json() for r in raters], "utterances": len(utterances), "scales": scales,
    }  # fmt: skip


def _warnings(raters: int, utterances: int) -> list[str]:
    found = []
    if raters == 1:
        found.append("one rater kept: the intervals hold the utterances' spread only and say nothing of other "
                     "raters; a listening test needs several raters")  # fmt: skip
    if utterances == 1:
        found.append("one utterance rated: the intervals hold the raters' spread only and say nothing of other "
                     "utterances")  # fmt: skip
    return found


def _tables(found: list[Observation], conditions: list[str], utterances: list[str], raters: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of the ratings, ``(condition, rater, utterance)``."""
    sums = np.zeros((len(conditions), raters, len(utterances)))
    counts = np.zeros_like(sums)
    c_index, u_index = {c: i for i, c in enumerate(conditions)}, {u: i for i, u in enumerate(utterances)}
    for o in found:
        sums[c_index[o.condition], o.rater, u_index[o.utterance]] += o.value
        counts[c_index[o.condition], o.rater, u_index[o.utterance]] += 1
    return sums, counts


def _scale(sums: np.ndarray, counts: np.ndarray, conditions: list[str], utterances: list[str], test: TestKey,
           bounds: tuple[int, int]) -> dict:  # fmt: skip
    """One scale's conditions and pairs; every interval clipped to what its mean can be (``bounds``, the scale's
    range, and for a difference plus or minus its width): a MUSHRA mean of [87, 102] is one of [87, 100], and the
    clipping changes no interval's coverage, only what it claims beyond the possible."""
    low, high = bounds
    with np.errstate(invalid="ignore", divide="ignore"):
        cells = sums / counts  # (condition, rater, utterance); NaN where a rater did not rate it
    rows = []
    for c, name in enumerate(conditions):
        n = int(counts[c].sum())
        mean = float(sums[c].sum() / n) if n else None
        found = two_way_interval(cells[c], mean)
        rows.append({"name": name, "mean": mean, "ci95": found and _clip(found["ci95"], low, high), "ratings": n})
    pairs = []
    for a in range(len(conditions)):
        for b in range(a + 1, len(conditions)):
            found = two_way_interval(cells[a] - cells[b])
            if found is None:
                continue
            found["ci95"] = _clip(found["ci95"], low - high, high - low)
            pairs.append({"a": conditions[a], "b": conditions[b], "difference": found["mean"], "ci95": found["ci95"],
                          "p": found["p"], "significant": bool(found["ci95"][0] > 0 or found["ci95"][1] < 0)})  # fmt: skip
    return {"conditions": rows, "pairwise": pairs, "correlation": correlations(sums, counts, conditions, utterances, test)}


def _clip(interval: list[float], low: float, high: float) -> list[float]:
    return [min(max(interval[0], low), high), min(max(interval[1], low), high)]


def two_way_interval(cells: np.ndarray, mean: float | None = None) -> dict | None:
    """The 95 % two-way t-interval (module docstring) of the mean of ``cells``, a raters x utterances table with
    NaN where a rater did not rate an utterance, centred on ``mean`` (default: the cells' mean); with the
    standard error, degrees of freedom and the two-sided ``p`` of a mean of zero. None without two ratings that
    differ in rater or utterance."""
    seen = ~np.isnan(cells)
    if not seen.any():
        return None
    centre = float(cells[seen].mean()) if mean is None else mean
    with np.errstate(invalid="ignore"):
        margins = [np.nanmean(cells[seen.any(axis=1)], axis=1), np.nanmean(cells[:, seen.any(axis=0)], axis=0)]
    terms = [(float(np.var(m, ddof=1)) / m.size, m.size - 1) for m in margins if m.size > 1]
    if not terms:
        return None
    variance = sum(t for t, _ in terms)
    if variance == 0:
        return {"mean": centre, "ci95": [centre, centre], "se": 0.0, "df": math.inf, "p": 0.0 if centre else 1.0}
    from scipy import stats

    df = variance**2 / sum(t**2 / d for t, d in terms if t > 0)
    se = math.sqrt(variance)
    half = float(stats.t.ppf(0.5 + LEVEL / 2, df)) * se
    return {"mean": centre, "ci95": [centre - half, centre + half], "se": se, "df": df,
            "p": float(2 * stats.t.sf(abs(centre) / se, df))}  # fmt: skip


def correlations(sums, counts, conditions, utterances, test: TestKey) -> dict:
    """Pearson, Spearman and Kendall correlation of the ratings with each objective metric of the same files:
    per utterance (each system's mean rating of an utterance against that file's score) and per system (its
    mean rating against its mean score over the rated utterances). Conditions without scores (the hidden
    reference, anchors) are left out; fewer than three points or a constant side give ``None``."""
    systems = {s["name"]: {f["file"]: f for f in s["files"]} for s in test.eval["systems"]}
    metrics = list(test.eval["systems"][0]["mean"]) if test.eval["systems"] else []
    found = {"per_utterance": {}, "per_system": {}}
    for metric in metrics:
        pairs, system_pairs = [], []
        for c, name in enumerate(conditions):
            if name not in systems:
                continue
            points = [(systems[name][u].get(metric), sums[c, :, j].sum() / counts[c, :, j].sum())
                      for j, u in enumerate(utterances) if counts[c, :, j].sum() and u in systems[name]]  # fmt: skip
            points = [(x, y) for x, y in points if x is not None]
            pairs += points
            if points:
                system_pairs.append((float(np.mean([x for x, _ in points])), sums[c].sum() / counts[c].sum()))
        found["per_utterance"][metric] = _correlate(pairs)
        found["per_system"][metric] = _correlate(system_pairs)
    return found


def _correlate(points: list[tuple[float, float]]) -> dict:
    from scipy import stats

    x, y = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    result: dict = {"n": len(points)}
    for name, fn in zip(CORRELATIONS, (stats.pearsonr, stats.spearmanr, stats.kendalltau)):
        if len(points) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
            result[name] = None
            continue
        r = fn(x, y)
        result[name] = {"r": float(r.statistic), "p": float(r.pvalue)}
    return result


def to_csv(raters: list[Rater], test: TestKey) -> str:
    """One row per rating (every rater, kept or not; practice and check clips included, marked by kind). A rater id
    that starts like a spreadsheet formula is written with a leading ``'``."""
    lines = ["rater,kept,trial,kind,utterance,condition,scale,value"]
    for rater in raters:
        for trial in rater.trials:
            entry = test.key[trial["id"]]
            for scale, values in trial["ratings"].items():
                for condition, value in zip(entry["conditions"], values):
                    cells = [_inert(rater.rater), str(rater.kept).lower(), trial["id"], entry["kind"], entry["utterance"], condition, scale, str(value)]
                    lines.append(",".join(_csv_cell(c) for c in cells))
    return "\n".join(lines) + "\n"


def _inert(text: str) -> str:
    """A rater id, typed by whoever rated, as a spreadsheet shows it and never runs it: one starting like a formula
    (``=HYPERLINK(...)``, ``+``, ``-``, ``@``) gets a leading ``'`` (OWASP's CSV injection advice)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def _csv_cell(text: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(ch in text for ch in ',"\n') else text


def plot(result: dict, path: str, overwrite: bool = False) -> None:
    """One panel per scale: each condition's mean rating with its 95 % interval."""
    from sectl.plotting import pyplot, save_png

    plt = pyplot()
    scales = list(result["scales"].items())
    fig, axes = plt.subplots(1, len(scales), figsize=(4 + 1.2 * len(scales[0][1]["conditions"]) * len(scales) / 2, 4), squeeze=False)
    for ax, (name, scale) in zip(axes[0], scales):
        rows = [r for r in scale["conditions"] if r["mean"] is not None]
        x = np.arange(len(rows))
        means = np.array([r["mean"] for r in rows])
        low = np.array([r["ci95"][0] if r["ci95"] else r["mean"] for r in rows])
        high = np.array([r["ci95"][1] if r["ci95"] else r["mean"] for r in rows])
        ax.errorbar(x, means, yerr=[means - low, high - means], fmt="o", capsize=4)
        ax.set_xticks(x, [r["name"] for r in rows], rotation=30, ha="right")
        ax.set_title(f"{name} (95 % CI, raters x utterances)")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_png(fig, path, overwrite)
