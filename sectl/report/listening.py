"""A blind listening test in the report page (``sectl report --test acr|p835|mushra``).

The page holds the *definition*: the method, its scales and the trials with their audio files, and nothing
that names a system (the audio files are named by utterance and a shuffled slot). The *key* (``test.json``,
beside the ``site/`` folder raters get, never in it: :mod:`sectl.report.folder`) maps every trial's stimuli to their conditions and holds the
objective scores of the same files; ``sectl eval --ratings`` reads it. The definition's SHA-256 (of its
canonical JSON, :func:`canonical`) ties ratings to the test: the page writes it into every ratings file.

Trials per method:

- ACR (ITU-T P.800/P.808) and P.835: one clip per trial, every (utterance, condition) pair once; the
  conditions are the systems and the clean reference. Screening as P.808: *gold* clips (the clean
  reference, whose answer is known: 5, accepted within one point) and *trapping* clips (the page asks for a
  given answer), one of each per :data:`CHECK_EVERY` trials, at least one.
- MUSHRA (ITU-R BS.1534-3): one trial per utterance, the open reference and, in an order shuffled per rater,
  every system, the hidden reference and the 3.5 kHz and 7 kHz low-pass anchors (:mod:`sectl.report.anchors`);
  0-100 sliders. Screening: BS.1534-3's post-screening on the hidden reference (:mod:`sectl.report.ratings`).

Practice trials (rated first and never analysed) play utterances that are not in the test, so no test clip is
heard twice. Trials are numbered after a seeded shuffle, so an id names no condition; the order of trials and
of the stimuli in a trial is drawn again in the page from the rater id typed there.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

from sectl.errors import UsageError

TEST_FORMAT = 1
"""Version of the definition and key structure; raised when it changes."""

HIDDEN_REFERENCE = "hidden reference"
ANCHOR_NAMES = {3500.0: "anchor 3.5 kHz", 7000.0: "anchor 7 kHz"}

ACR_LABELS = ["Bad", "Poor", "Fair", "Good", "Excellent"]  # 1..5, P.800 Annex B
SCALES = {
    "acr": [{"name": "ACR", "min": 1, "max": 5, "labels": ACR_LABELS,
             "question": "Overall quality of the speech"}],
    "p835": [  # P.835 section 7: signal, background, overall, rated in this order
        {"name": "SIG", "min": 1, "max": 5, "question": "The speech signal alone",
         "labels": ["Very distorted", "Fairly distorted", "Somewhat distorted", "Slightly distorted", "Not distorted"]},
        {"name": "BAK", "min": 1, "max": 5, "question": "The background alone",
         "labels": ["Very conspicuous, very intrusive", "Fairly conspicuous, somewhat intrusive",
                    "Noticeable but not intrusive", "Slightly noticeable", "Not noticeable"]},
        {"name": "OVRL", "min": 1, "max": 5, "question": "Overall quality", "labels": ACR_LABELS},
    ],
    "mushra": [{"name": "MUSHRA", "min": 0, "max": 100, "labels": ACR_LABELS,  # the five 20-point bands
                "question": "Quality of each sample compared with the reference"}],
}  # fmt: skip
METHODS = tuple(SCALES)

CHECK_EVERY = 20
"""ACR/P.835: one gold and one trapping clip per this many test trials (P.808 uses about one per session of 10-20)."""
GOLD_ANSWER, GOLD_TOLERANCE = 5, 1
"""A gold clip is the clean reference: its answer is 5 and P.808 accepts one point from it."""
TRAP_ANSWERS = (2, 4)
"""The answers trapping clips ask for (alternating; never the gold answer, so the two checks differ)."""


def check_method(method: str) -> None:
    if method not in METHODS:
        raise UsageError(f"--test: expected one of {', '.join(METHODS)}, got {method!r}")


def check_test(test: str | None, ref: str | None, practice: int) -> None:
    """``--test`` needs the reference: the hidden reference, MUSHRA's open reference and anchors, gold clips."""
    if test is None:
        return
    check_method(test)
    if ref is None:
        raise UsageError("--test needs --ref: the hidden reference, the anchors and the gold clips are made from it")
    if practice < 0:
        raise UsageError(f"--practice: expected a count of trials (0 or more), got {practice}")


def canonical(value) -> str:
    """The JSON whose SHA-256 is hashed: sorted keys, no spaces, UTF-8 (page.js writes ratings the same way)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(value) -> str:
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


@dataclass
class Stimulus:
    """One clip a trial plays: its condition (a system, the hidden reference or an anchor) of an utterance."""

    utterance: str
    condition: str
    source: str  # "version:J" (the J-th version's file) or "anchor:HZ"; a check clip's own copy adds ":gold|trapK"


@dataclass
class Trial:
    id: str
    kind: str  # test | gold | trap | practice
    utterance: str
    stimuli: list[Stimulus]
    ask: int | None = None  # a trapping clip's demanded answer

    def key(self) -> dict:
        return {"utterance": self.utterance, "kind": self.kind, "conditions": [s.condition for s in self.stimuli]}


def plan_trials(method: str, utterances: list[str], systems: list[str], seed: int,
                practice_utterances: list[str] = ()) -> list[Trial]:  # fmt: skip
    """Every trial of the test, practice first; ``systems`` are the version names before the reference.

    The test trials, gold and trapping clips among them, are shuffled (``seed``) before they are numbered
    ``t0, t1, ...``: a trial's id and its place in the page say nothing of its condition (the page then orders
    them per rater). Practice trials (``p0, ...``) play ``practice_utterances``, which are not in the test: ACR
    and P.835 spread them over the conditions, from the first system to the reference; MUSHRA rates every
    condition of each.
    """
    check_method(method)
    rng = random.Random(seed)
    reference = Stimulus("", HIDDEN_REFERENCE, f"version:{len(systems)}")
    conditions = [Stimulus("", name, f"version:{j}") for j, name in enumerate(systems)] + [reference]
    if method == "mushra":
        conditions += [Stimulus("", name, f"anchor:{hz:g}") for hz, name in ANCHOR_NAMES.items()]
        tests = [_trial("test", u, rng.sample(conditions, len(conditions))) for u in utterances]  # no order in the source either
        practices = [_trial("practice", u, rng.sample(conditions, len(conditions))) for u in practice_utterances]
    else:
        tests = [_trial("test", u, [c]) for u in utterances for c in conditions]
        tests += _checks(utterances, conditions[0], reference, round(len(tests) / CHECK_EVERY), rng)
        spread = [round(k * (len(conditions) - 1) / max(1, len(practice_utterances) - 1)) for k in range(len(practice_utterances))]
        practices = [_trial("practice", u, [conditions[k]]) for u, k in zip(practice_utterances, spread)]
    numbered = rng.sample(tests, len(tests))
    for i, trial in enumerate(practices):
        trial.id = f"p{i}"
    for i, trial in enumerate(numbered):
        trial.id = f"t{i}"
    return practices + numbered


def _trial(kind: str, utterance: str, stimuli: list[Stimulus], ask: int | None = None) -> Trial:
    return Trial("", kind, utterance, [_of(s, utterance) for s in stimuli], ask)


def _checks(utterances: list[str], trapped: Stimulus, reference: Stimulus, count: int, rng: random.Random) -> list[Trial]:
    """P.808's gold clips (the reference, answer known) and trapping clips (the page asks for an answer).

    Each check plays a file of its own (its source carries a ``:gold|trap K`` suffix, so it gets its own shuffled
    slot): were it the file of the same clip's test trial, the page's source would show a file listed twice,
    once with an answer asked, and name it the first system (the trapped one) or, without, the clean reference:
    the utterance's conditions unblinded, and the gold answer given away."""
    checks = []
    for k in range(max(1, count)):
        checks.append(_trial("gold", rng.choice(utterances), [_checked(reference, f"gold{k}")]))
        checks.append(_trial("trap", rng.choice(utterances), [_checked(trapped, f"trap{k}")], ask=TRAP_ANSWERS[k % 2]))
    return checks


def _checked(stimulus: Stimulus, check: str) -> Stimulus:
    return Stimulus(stimulus.utterance, stimulus.condition, f"{stimulus.source}:{check}")


def _of(stimulus: Stimulus, utterance: str) -> Stimulus:
    return Stimulus(utterance, stimulus.condition, stimulus.source)


def definition(test_id: str, title: str, method: str, trials: list[Trial], files: dict[str, list[str]],
               references: dict[str, str], durations: dict[str, float]) -> dict:  # fmt: skip
    """What the page holds (and what is hashed): no system names. ``files[trial.id]`` are the stimuli's
    audio paths, ``references`` the open reference of each utterance (MUSHRA)."""
    def entry(trial: Trial) -> dict:
        item = {"id": trial.id, "audio": files[trial.id], "duration": durations[trial.utterance]}
        if method == "mushra":
            item["reference"] = references[trial.utterance]
        if trial.ask is not None:
            item["ask"] = trial.ask  # the page shows the demanded answer; gold clips look like any other
        return item

    return {
        "format": TEST_FORMAT,
        "test_id": test_id,
        "title": title,
        "method": method,
        "scales": SCALES[method],
        "practice": [entry(t) for t in trials if t.kind == "practice"],
        "trials": [entry(t) for t in trials if t.kind != "practice"],
    }
