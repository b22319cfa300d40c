"""Coverage of the 95 % intervals of `sectl eval --ratings`, by simulation: how often the interval of a condition's
mean holds the true mean, for listening tests of few raters and few utterances.

Each simulated test has R raters rating U utterances of one condition on MUSHRA's 0-100 scale:
``rating = round(clip(50 + rater + utterance + error, 0, 100))`` with normal rater, utterance and error effects
(standard deviations SR, SU, SE); the model is symmetric about 50, so the true mean is 50. Measured: the
two-way t-interval sectl computes (:func:`sectl.report.analysis.analyse`, through Rater records as the
ratings files give them) and, for comparison, the two-way percentile bootstrap (raters and utterances resampled
independently, 2000 replicates) that sectl used before.

Run: python benchmarks/ratings_coverage.py [--tests 2000] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from sectl.report.analysis import analyse
from sectl.report.ratings import Rater, TestKey

CASES = [  # raters, utterances, SR, SU, SE
    (1, 6, 5, 8, 10),
    (2, 6, 5, 8, 10),
    (3, 4, 5, 8, 10),
    (4, 6, 5, 8, 10),
    (4, 6, 2, 15, 8),
    (8, 6, 5, 8, 10),
    (20, 6, 3, 10, 10),
    (10, 20, 5, 8, 10),
]  # fmt: skip
TRUE_MEAN = 50.0


def synthetic_test(utterances: int) -> TestKey:
    """A MUSHRA key of one condition ("A") and one trial per utterance."""
    trials = [{"id": f"t{u}"} for u in range(utterances)]
    definition = {"test_id": "sim", "method": "mushra", "trials": trials,
                  "scales": [{"name": "MUSHRA", "min": 0, "max": 100}]}  # fmt: skip
    key = {f"t{u}": {"utterance": f"u{u}", "kind": "test", "conditions": ["A"]} for u in range(utterances)}
    return TestKey(None, "0" * 64, definition, key, {"systems": [{"name": "A", "files": [], "mean": {}}]})


def simulate(rng: np.random.Generator, raters: int, utterances: int, sr: float, su: float, se: float) -> np.ndarray:
    """One test's ratings, ``(raters, utterances)``."""
    values = TRUE_MEAN + rng.normal(0, sr, (raters, 1)) + rng.normal(0, su, (1, utterances)) + rng.normal(0, se, (raters, utterances))
    return np.rint(np.clip(values, 0, 100)).astype(int)


def sectl_interval(table: np.ndarray, test: TestKey) -> list[float]:
    raters = [Rater(f"r{r}.json", f"r{r}", [{"id": f"t{u}", "ratings": {"MUSHRA": [int(v)]}} for u, v in enumerate(row)], True)
              for r, row in enumerate(table)]  # fmt: skip
    return analyse(raters, test)["scales"]["MUSHRA"]["conditions"][0]["ci95"]


def bootstrap_interval(table: np.ndarray, rng: np.random.Generator, replicates: int = 2000) -> list[float]:
    """The two-way percentile bootstrap sectl used before (raters and utterances drawn with replacement)."""
    raters, utterances = table.shape
    rater_w = rng.multinomial(raters, np.full(raters, 1 / raters), size=replicates).astype(float)
    utterance_w = rng.multinomial(utterances, np.full(utterances, 1 / utterances), size=replicates).astype(float)
    means = np.einsum("br,ru,bu->b", rater_w, table, utterance_w) / np.einsum("br,bu->b", rater_w, utterance_w)
    return list(np.percentile(means, [2.5, 97.5]))


def coverage(case: tuple, tests: int, seed: int) -> dict:
    raters, utterances, sr, su, se = case
    rng = np.random.default_rng([seed, *case])
    key = synthetic_test(utterances)
    held = {"t": 0, "bootstrap": 0}
    width = {"t": 0.0, "bootstrap": 0.0}
    for _ in range(tests):
        table = simulate(rng, raters, utterances, sr, su, se)
        for name, (low, high) in (("t", sectl_interval(table, key)), ("bootstrap", bootstrap_interval(table, rng))):
            held[name] += low <= TRUE_MEAN <= high
            width[name] += (high - low) / tests
    return {"raters": raters, "utterances": utterances, "sd_rater": sr, "sd_utterance": su, "sd_error": se,
            "coverage_t": held["t"] / tests, "coverage_bootstrap": held["bootstrap"] / tests,
            "width_t": round(width["t"], 2), "width_bootstrap": round(width["bootstrap"], 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=2000, help="simulated tests per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [coverage(case, args.tests, args.seed) for case in CASES]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"coverage of nominal 95 % intervals, {args.tests} simulated tests per row (MUSHRA 0-100, true mean 50)")
    print("raters utterances  sd r/u/e   t-interval (width)   bootstrap (width)")
    for r in rows:
        print(f"{r['raters']:6d} {r['utterances']:10d}  {r['sd_rater']:2g}/{r['sd_utterance']:2g}/{r['sd_error']:2g}"
              f"   {r['coverage_t']:.3f} ({r['width_t']:5.1f})       {r['coverage_bootstrap']:.3f} ({r['width_bootstrap']:5.1f})")


if __name__ == "__main__":
    main()
