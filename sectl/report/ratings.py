"""Reading a listening test's ratings files against its key, and screening the raters per the method's standard.

A ratings file (page.js writes it) is ``{"sectl_ratings": 1, "body": {...}, "sha256": ...}``, where ``sha256``
is that of the body's canonical JSON (:func:`sectl.report.listening.canonical`): a file edited by hand no
longer matches and is refused, as is a file of another test (its ``test_id`` or definition hash differ). The
hash catches accidental edits, not forgery (anyone can recompute it); every field is checked by
:mod:`sectl.report.validate`, so a crafted file is refused in one line, never with a traceback.

Screening:

- ACR and P.835 (ITU-T P.808, 6.3): a rater who misses a *gold* clip (the clean reference rated below
  ``5 - 1`` on any scale) or a *trapping* clip (any answer but the one asked) is dropped.
- MUSHRA (ITU-R BS.1534-3, 4.1.2 post-screening): a rater who rates the hidden reference below 90 in more
  than 15 % of the trials is dropped.
- Incomplete files are dropped unless ``allow_partial`` (then their rated trials count).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sectl.errors import SectlError
from sectl.report.listening import GOLD_ANSWER, GOLD_TOLERANCE, HIDDEN_REFERENCE, digest
from sectl.report.validate import check_body, check_key, check_trial
from sectl.report.validate import field as required

MUSHRA_REFERENCE_FLOOR, MUSHRA_REFERENCE_SHARE = 90, 0.15
"""BS.1534-3: excluded who rates the hidden reference below 90 for more than 15 % of the test items."""


@dataclass
class TestKey:
    """``test.json``: the definition the page holds, its SHA-256, the conditions of each trial and eval's scores."""

    path: Path
    sha256: str
    definition: dict
    key: dict[str, dict]
    eval: dict

    @property
    def method(self) -> str:
        return self.definition["method"]

    @property
    def scales(self) -> list[dict]:
        return self.definition["scales"]

    @property
    def test_trials(self) -> list[str]:
        return [t["id"] for t in self.definition["trials"]]


@dataclass
class Rater:
    file: str
    rater: str
    trials: list[dict]  # the test trials rated (practice left out), as the file holds them
    complete: bool
    kept: bool = True
    reason: str | None = None
    order: int = 0  # position among the files given

    def to_json(self) -> dict:
        return {"rater": self.rater, "file": self.file, "complete": self.complete, "trials": len(self.trials),
                "kept": self.kept, "reason": self.reason}  # fmt: skip


def load_test(path: str | Path) -> TestKey:
    """The key of ``sectl report --test`` (``test.json``, or the report folder holding it)."""
    from sectl.report.folder import KEY_FILE

    path = Path(path)
    path = path / KEY_FILE if path.is_dir() else path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise SectlError(f"{path}: not the test.json of a sectl report --test ({exc})") from None
    check_key(path, data)
    test = TestKey(path, required(path, data, "sha256", ""), data["definition"], data["key"], data["eval"])
    if digest(test.definition) != test.sha256:
        raise SectlError(f"{path}: the test definition was edited (its SHA-256 no longer matches)")
    return test


def load_ratings(paths: list[str | Path], test: TestKey) -> tuple[list[Rater], list[str]]:
    """Every readable ratings file of ``test``, and one line per refused file naming it and why."""
    raters, refused = [], []
    for i, path in enumerate(paths):
        try:
            rater = read_ratings(Path(path), test)
        except SectlError as exc:
            refused.append(str(exc))
            continue
        twin = next((r for r in raters if r.rater == rater.rater), None)
        if twin is not None:
            refused.append(f"{path}: rater {rater.rater!r} again (already in {twin.file}); one file per rater")
            continue
        rater.order = i
        raters.append(rater)
    return raters, refused


def read_ratings(path: Path, test: TestKey) -> Rater:
    """One ratings file, its every field checked (:mod:`sectl.report.validate`), then its hash and its test."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        raise SectlError(f"{path}: not a ratings file of a sectl listening test (not readable JSON)") from None
    if not isinstance(data, dict) or data.get("sectl_ratings") != 1:
        raise SectlError(f"{path}: not a ratings file of a sectl listening test (no \"sectl_ratings\": 1)")
    body, checksum = required(path, data, "body", ""), required(path, data, "sha256", "")
    check_body(path, body)
    if body["test_id"] != test.definition["test_id"] or body["test_sha256"] != test.sha256:
        raise SectlError(f"{path}: ratings of another test ({body['test_id']!r}, definition {body['test_sha256'][:12]!r}), "
                         f"not of {test.definition['test_id']!r} ({test.sha256[:12]}, {test.path})")  # fmt: skip
    entries = [check_trial(path, i, t, test.key, test.scales) for i, t in enumerate(body["trials"])]
    if _digest(body) != checksum:
        raise SectlError(f"{path}: edited after it was downloaded (its SHA-256 does not match its content)")
    trials = [t for t, entry in zip(body["trials"], entries) if entry["kind"] != "practice"]
    ids = [t["id"] for t in body["trials"]]
    if len(set(ids)) != len(ids):
        raise SectlError(f"{path}: a trial is rated twice")
    return Rater(str(path), body["rater"], trials, {t["id"] for t in trials} == set(test.test_trials))


def _digest(body: dict) -> str | None:
    """The body's SHA-256, or None where it holds what canonical JSON cannot (NaN, Infinity: page.js writes neither)."""
    try:
        return digest(body)
    except ValueError:
        return None


def screen(raters: list[Rater], test: TestKey, allow_partial: bool = False) -> None:
    """Mark each rater kept or dropped, with the reason."""
    for rater in raters:
        reason = None
        if not rater.complete and not allow_partial:
            reason = f"incomplete: {len(rater.trials)} of {len(test.test_trials)} trials rated (--allow-partial keeps it)"
        reason = reason or (_mushra_reason(rater, test) if test.method == "mushra" else _check_clip_reason(rater, test))
        rater.kept, rater.reason = reason is None, reason


def _check_clip_reason(rater: Rater, test: TestKey) -> str | None:
    for trial in rater.trials:
        kind, ask = test.key[trial["id"]]["kind"], _ask(test, trial["id"])
        for scale, values in trial["ratings"].items():
            if kind == "gold" and values[0] < GOLD_ANSWER - GOLD_TOLERANCE:
                return f"gold clip {trial['id']}: {scale} rated {values[0]}, expected {GOLD_ANSWER - GOLD_TOLERANCE}-{GOLD_ANSWER}"
            if kind == "trap" and values[0] != ask:
                return f"trapping clip {trial['id']}: {scale} answered {values[0]}, asked {ask}"
    return None


def _ask(test: TestKey, trial_id: str) -> int | None:
    return next((t.get("ask") for t in test.definition["trials"] if t["id"] == trial_id), None)


def _mushra_reason(rater: Rater, test: TestKey) -> str | None:
    low = 0
    for trial in rater.trials:
        index = test.key[trial["id"]]["conditions"].index(HIDDEN_REFERENCE)
        low += trial["ratings"]["MUSHRA"][index] < MUSHRA_REFERENCE_FLOOR
    if rater.trials and low > MUSHRA_REFERENCE_SHARE * len(rater.trials):
        return (f"hidden reference rated below {MUSHRA_REFERENCE_FLOOR} in {low} of {len(rater.trials)} trials "
                f"(more than {MUSHRA_REFERENCE_SHARE:.0%})")  # fmt: skip
    return None
