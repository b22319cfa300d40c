"""Ratings into numbers (``sectl eval --ratings``): MOS or MUSHRA scores per condition with 95 % confidence
intervals that account for raters and utterances, pairwise significance, and the correlation of the ratings
with the objective metrics of the same files.

The interval is a two-way (rater x utterance) bootstrap: each of :data:`REPLICATES` replicates draws the raters
with replacement and, independently, the utterances with replacement, and recomputes every condition's mean
rating over the drawn raters' ratings of the drawn utterances (a rater or utterance drawn twice counts twice).
Resampling only the ratings would treat 20 ratings of one rater as 20 independent opinions and give intervals
far too narrow; resampling both factors keeps the two sources of variance (rater leniency, utterance
difficulty) that a new test would vary (Efron and Tibshirani 1993; the "two-way" or "pigeonhole" bootstrap of
Owen 2007). The 95 % interval is the 2.5 and 97.5 percentiles of the replicates, seeded (``seed``).

Two conditions differ significantly when the 95 % interval of their difference, computed on the same
replicates (paired), excludes zero; ``p`` is the two-sided bootstrap p-value ``2 min(P(d <= 0), P(d >= 0))``
(at least ``1 / REPLICATES``), not corrected for the number of pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sectl.errors import SectlError
from sectl.report.listening import ANCHOR_NAMES, HIDDEN_REFERENCE
from sectl.report.ratings import Rater, TestKey

REPLICATES = 2000
LEVEL = 0.95
CORRELATIONS = ("pearson", "spearman", "kendall")


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


def analyse(raters: list[Rater], test: TestKey, seed: int = 0, replicates: int = REPLICATES) -> dict:
    """The whole analysis as JSON-ready data (what ``--json`` prints)."""
    kept = [r for r in raters if r.kept]
    if not kept:
        raise SectlError("no rater is left after screening: nothing to score (see the reasons above)")
    found = observations(raters, test)
    conditions = conditions_of(test)
    utterances = sorted({o.utterance for o in found})
    rng = np.random.default_rng(seed)
    rater_weights = rng.multinomial(len(kept), np.full(len(kept), 1 / len(kept)), size=replicates).astype(float)
    utterance_weights = rng.multinomial(len(utterances), np.full(len(utterances), 1 / len(utterances)), size=replicates).astype(float)
    scales = {}
    for scale in test.scales:
        name = scale["name"]
        sums, counts = _tables([o for o in found if o.scale == name], conditions, utterances, len(kept))
        scales[name] = _scale(sums, counts, conditions, utterances, rater_weights, utterance_weights, test)
    return {
        "test_id": test.definition["test_id"], "method": test.method, "sha256": test.sha256,
        "bootstrap": {"replicates": replicates, "seed": seed, "level": LEVEL, "resampled": ["raters", "utterances"]},
        "raters": [r.to_json() for r in raters], "utterances": len(utterances), "scales": scales,
    }  # fmt: skip


def _tables(found: list[Observation], conditions: list[str], utterances: list[str], raters: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of the ratings, ``(condition, rater, utterance)``."""
    sums = np.zeros((len(conditions), raters, len(utterances)))
    counts = np.zeros_like(sums)
    c_index, u_index = {c: i for i, c in enumerate(conditions)}, {u: i for i, u in enumerate(utterances)}
    for o in found:
        sums[c_index[o.condition], o.rater, u_index[o.utterance]] += o.value
        counts[c_index[o.condition], o.rater, u_index[o.utterance]] += 1
    return sums, counts


def _scale(sums, counts, conditions, utterances, rater_weights, utterance_weights, test: TestKey) -> dict:
    total = np.einsum("br,cru,bu->bc", rater_weights, sums, utterance_weights)
    number = np.einsum("br,cru,bu->bc", rater_weights, counts, utterance_weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = total / number  # (replicate, condition); NaN where a replicate drew no rating of it
    tail = 100 * (1 - LEVEL) / 2
    rows = []
    for c, name in enumerate(conditions):
        n = int(counts[c].sum())
        mean = float(sums[c].sum() / n) if n else None
        ci = _interval(boot[:, c], tail)
        rows.append({"name": name, "mean": mean, "ci95": ci, "ratings": n})
    pairs = []
    for a in range(len(conditions)):
        for b in range(a + 1, len(conditions)):
            d = boot[:, a] - boot[:, b]
            d = d[np.isfinite(d)]
            if not (rows[a]["mean"] is not None and rows[b]["mean"] is not None and d.size):
                continue
            p = max(1 / d.size, min(1.0, 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0)))))
            ci = _interval(d, tail)
            pairs.append({"a": conditions[a], "b": conditions[b], "difference": rows[a]["mean"] - rows[b]["mean"],
                          "ci95": ci, "p": p, "significant": bool(ci[0] > 0 or ci[1] < 0)})  # fmt: skip
    return {"conditions": rows, "pairwise": pairs, "correlation": correlations(sums, counts, conditions, utterances, test)}


def _interval(values: np.ndarray, tail: float) -> list[float] | None:
    values = values[np.isfinite(values)]
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))] if values.size else None


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
    """One row per rating (every rater, kept or not; practice and check clips included, marked by kind)."""
    lines = ["rater,kept,trial,kind,utterance,condition,scale,value"]
    for rater in raters:
        for trial in rater.trials:
            entry = test.key[trial["id"]]
            for scale, values in trial["ratings"].items():
                for condition, value in zip(entry["conditions"], values):
                    cells = [rater.rater, str(rater.kept).lower(), trial["id"], entry["kind"], entry["utterance"], condition, scale, str(value)]
                    lines.append(",".join(_csv_cell(c) for c in cells))
    return "\n".join(lines) + "\n"


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
