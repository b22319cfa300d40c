"""The structure of ratings files and of a test's key, checked field by field before anything reads them: a crafted
or damaged file is refused in one line naming the file and the field, never with a traceback.

The SHA-256 a ratings file carries catches accidental edits only: anyone can recompute it, so it proves nothing
about who wrote the file. These checks are what keeps a forged file from breaking the analysis; whether its
ratings are honest is what the screening (gold, trapping and hidden-reference clips) can judge.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sectl.errors import SectlError

RATER_MAX = 64
"""The longest rater id the page accepts (its input's maxlength)."""


class FieldError(SectlError):
    """A field of a ratings file or key that is missing or has the wrong type or value."""


def fail(path: Path, where: str, expected: str, value: Any) -> None:
    shown = repr(value)
    raise FieldError(f"{path}: {where}: expected {expected}, got {shown[:40] + '...' if len(shown) > 40 else shown}")


def field(path: Path, record: Any, name: str, where: str) -> Any:
    """``record[name]``, refusing a record that is not an object or lacks the field."""
    if not isinstance(record, dict):
        fail(path, where or "the file", "a JSON object", record)
    if name not in record:
        raise FieldError(f"{path}: {where + '.' if where else ''}{name}: missing")
    return record[name]


def integer(value: Any) -> bool:
    return type(value) is int


def number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def text(path: Path, value: Any, where: str, longest: int | None = None) -> str:
    """A non-empty printable string (no control characters: the terminal prints it)."""
    if not (isinstance(value, str) and value and value.isprintable() and (longest is None or len(value) <= longest)):
        fail(path, where, f"a non-empty printable string{f' of at most {longest} characters' if longest else ''}", value)
    return value


def check_body(path: Path, body: Any) -> None:
    """The fields of a ratings file's body that page.js writes, by type (the trials' contents are checked against
    the test's key by :func:`check_trial`)."""
    for name, ok, expected in (("format", lambda v: v == 1, "1"), ("test_id", lambda v: isinstance(v, str), "a string"),
                               ("test_sha256", lambda v: isinstance(v, str), "a string"),
                               ("method", lambda v: isinstance(v, str), "a string"),
                               ("complete", lambda v: type(v) is bool, "true or false"),
                               ("started_ms", number, "a number"), ("trials", lambda v: isinstance(v, list), "a list")):  # fmt: skip
        value = field(path, body, name, "body")
        if not ok(value):
            fail(path, f"body.{name}", expected, value)
    text(path, body.get("rater"), "body.rater", RATER_MAX)


def check_trial(path: Path, index: int, trial: Any, key: dict, scales: list[dict]) -> dict:
    """One rated trial: its id is in the test, every scale has one integer in range per stimulus, the sample order
    is a permutation of them, and the times and play count are numbers. Returns the key's entry."""
    where = f"body.trials[{index}]"
    trial_id = field(path, trial, "id", where)
    if not isinstance(trial_id, str) or trial_id not in key:
        fail(path, f"{where}.id", "the id of a trial of this test", trial_id)
    entry, where = key[trial_id], f"{where} ({trial_id})"
    size = len(entry["conditions"])
    practice = field(path, trial, "practice", where)
    if practice is not (entry["kind"] == "practice"):
        fail(path, f"{where}.practice", str(entry["kind"] == "practice").lower(), practice)
    ratings = field(path, trial, "ratings", where)
    if not isinstance(ratings, dict) or set(ratings) != {s["name"] for s in scales}:
        fail(path, f"{where}.ratings", f"an object of the scales {', '.join(s['name'] for s in scales)}", ratings)
    for scale in scales:
        values = ratings[scale["name"]]
        if not (isinstance(values, list) and len(values) == size and all(integer(v) and scale["min"] <= v <= scale["max"] for v in values)):
            fail(path, f"{where}.ratings.{scale['name']}", f"{size} integer(s) from {scale['min']} to {scale['max']}", values)
    order = field(path, trial, "order", where)
    if not (isinstance(order, list) and all(integer(v) for v in order) and sorted(order) == list(range(size))):
        fail(path, f"{where}.order", f"the numbers 0 to {size - 1} in some order", order)
    for name in ("ms", "at_ms", "plays"):
        value = field(path, trial, name, where)
        if not (number(value) and value >= 0 and (name != "plays" or integer(value))):
            fail(path, f"{where}.{name}", "a whole number of plays, 0 or more" if name == "plays" else "a time in ms, 0 or more", value)
    return entry


def check_key(path: Path, data: Any) -> None:
    """``test.json`` as sectl report wrote it: the definition's trials, each with its entry in the key (kind,
    utterance, one condition per audio file), and eval's systems; only the definition is hashed."""
    from sectl.report.listening import METHODS

    definition, key, systems = field(path, data, "definition", ""), field(path, data, "key", ""), field(path, data.get("eval"), "systems", "eval")
    if field(path, definition, "method", "definition") not in METHODS:
        fail(path, "definition.method", f"one of {', '.join(METHODS)}", definition["method"])
    scales = field(path, definition, "scales", "definition")
    if not (isinstance(scales, list) and scales and all(isinstance(s, dict) and isinstance(s.get("name"), str)
                                                        and integer(s.get("min")) and integer(s.get("max")) for s in scales)):  # fmt: skip
        fail(path, "definition.scales", "a list of scales with a name, min and max", scales)
    if not isinstance(key, dict) or not isinstance(systems, list):
        fail(path, "key" if not isinstance(key, dict) else "eval.systems", "an object" if not isinstance(key, dict) else "a list", key)
    for part in ("practice", "trials"):
        trials = field(path, definition, part, "definition")
        if not isinstance(trials, list):
            fail(path, f"definition.{part}", "a list", trials)
        for i, trial in enumerate(trials):
            trial_id = field(path, trial, "id", f"definition.{part}[{i}]")
            entry = key.get(trial_id) if isinstance(trial_id, str) else None
            if not (isinstance(entry, dict) and isinstance(entry.get("utterance"), str)
                    and entry.get("kind") in ("test", "gold", "trap", "practice")
                    and isinstance(entry.get("conditions"), list) and all(isinstance(c, str) for c in entry["conditions"])
                    and isinstance(trial.get("audio"), list) and len(trial["audio"]) == len(entry["conditions"])):  # fmt: skip
                fail(path, f"key.{trial_id}", "the trial's utterance, kind and one condition per audio file", entry)
    for i, system in enumerate(systems):
        files = system.get("files") if isinstance(system, dict) else None
        if not (isinstance(system, dict) and isinstance(system.get("name"), str) and isinstance(system.get("mean"), dict)
                and isinstance(files, list) and all(isinstance(f, dict) and isinstance(f.get("file"), str) for f in files)):  # fmt: skip
            fail(path, f"eval.systems[{i}]", "a system's name, files and means", system)
