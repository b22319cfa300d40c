"""Sharded enhance and eval: deterministic, disjoint, complete; merged reports equal one run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.errors import UsageError
from sectl.sharding import parse_shard, select_shard

runner = CliRunner()


def test_shards_are_disjoint_and_complete():
    items = [f"f{i:02d}.wav" for i in range(11)]
    parts = [select_shard(items[::-1], (k, 3)) for k in (1, 2, 3)]
    assert sorted(sum(parts, [])) == items and all(set(a).isdisjoint(b) for a in parts for b in parts if a is not b)
    assert parts == [select_shard(items, (k, 3)) for k in (1, 2, 3)]  # independent of the input order
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) is None
    for bad in ("0/4", "5/4", "two", "1/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)


def test_enhance_shards_split_a_folder_without_overlap(vctk, tmp_path, tiny_checkpoint):
    written = []
    for k in (1, 2, 3):
        result = runner.invoke(app, ["enhance", str(vctk / "noisy"), "-o", str(tmp_path / "out"), "--shard", f"{k}/3",
                                     "--model", str(tiny_checkpoint), "--json"])  # fmt: skip
        assert result.exit_code == 0, result.output
        written += json.loads(result.stdout)["written"]
    assert len(written) == len(set(written)) == 6


def test_merged_shard_reports_equal_one_run(vctk, tmp_path):
    args = ["eval", "--ref", str(vctk / "clean"), "--est", str(vctk / "noisy"), "-m", "si_sdr,lsd", "--json"]
    whole = json.loads(runner.invoke(app, args).stdout)
    for k in (1, 2):
        (tmp_path / f"part{k}.json").write_text(runner.invoke(app, [*args, "--shard", f"{k}/2"]).stdout)
    merged = runner.invoke(app, ["eval", "--merge", str(tmp_path / "part1.json"), str(tmp_path / "part2.json"), "--json"])
    assert merged.exit_code == 0, merged.output
    merged = json.loads(merged.stdout)
    assert [f["file"] for f in merged["files"]] == [f["file"] for f in whole["files"]]
    for key in ("mean", "std"):
        assert merged[key] == pytest.approx(whole[key], abs=1e-12)
    both = runner.invoke(app, ["eval", "--merge", str(tmp_path / "part1.json"), "--est", str(vctk / "noisy")])
    assert both.exit_code == 2


@pytest.fixture(scope="module")
def shard_reports(vctk, tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    args = ["eval", "--ref", str(vctk / "clean"), "--est", str(vctk / "noisy"), "-m", "si_sdr", "--json"]
    for k in (1, 2, 3):
        (folder / f"part{k}.json").write_text(runner.invoke(app, [*args, "--shard", f"{k}/3"]).stdout)
    assert json.loads((folder / "part2.json").read_text())["shard"] == {"index": 2, "count": 3, "complete": True}
    return folder


def merge(*paths, partial=False):
    return runner.invoke(app, ["eval", "--merge", *map(str, paths), "--json", *(["--allow-partial"] if partial else [])])


def test_merging_missing_repeated_or_interrupted_shards_is_refused(shard_reports, tmp_path):
    p1, p2, p3 = (shard_reports / f"part{k}.json" for k in (1, 2, 3))
    assert merge(p1, p2, p3).exit_code == 0
    missing = merge(p1, p2)
    assert missing.exit_code == 1 and "shard(s) 3 of 3 missing" in missing.stderr
    repeated = merge(p1, p2, p2)
    assert repeated.exit_code == 1 and "shard 2/3 given twice" in repeated.stderr
    interrupted = json.loads(p3.read_text())
    interrupted["interrupted"], interrupted["shard"]["complete"] = True, False
    (tmp_path / "cut.json").write_text(json.dumps(interrupted))
    cut = merge(p1, p2, tmp_path / "cut.json")
    assert cut.exit_code == 1 and "cut.json: shard 3/3 was interrupted" in cut.stderr
    anyway = merge(p1, p2, partial=True)  # merged on request, and never passes for a whole run
    assert anyway.exit_code == 1 and json.loads(anyway.stdout)["interrupted"] is True
    assert "incomplete merge: shard(s) 3 of 3 missing" in anyway.stderr


@pytest.mark.parametrize("payload,message", [
    ([], "a JSON list"),
    ({}, "no 'files' list"),
    ({"systems": []}, "multi-system"),
    ({"files": [{"file": "a.wav", "si_sdr": "high"}], "mean": {"si_sdr": 1.0}}, "score 'si_sdr' is 'high'"),
    ({"files": [{"si_sdr": 1.0}], "mean": {"si_sdr": 1.0}}, "without a file name"),
])  # fmt: skip
def test_a_malformed_report_is_a_one_line_error(tmp_path, payload, message):
    (tmp_path / "bad.json").write_text(json.dumps(payload))
    result = merge(tmp_path / "bad.json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bad.json" in result.stderr and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_shards_of_different_runs_are_never_merged(vctk, shard_reports, tmp_path):
    """The same file names in another estimate folder: shard 1/3 of the noisy folder and shards 2-3 of the
    clean one used to merge into one 'complete' run with a blended mean."""
    args = ["eval", "--ref", str(vctk / "clean"), "--est", str(vctk / "clean"), "-m", "si_sdr", "--json", "--shard", "1/3"]
    (tmp_path / "other1.json").write_text(runner.invoke(app, args).stdout)
    p2, p3 = shard_reports / "part2.json", shard_reports / "part3.json"
    mixed = merge(tmp_path / "other1.json", p2, p3)
    assert mixed.exit_code == 1 and "part2.json: scored from another path than" in mixed.stderr and "est" in mixed.stderr
    anyway = merge(tmp_path / "other1.json", p2, p3, partial=True)  # a node-local copy looks the same: on request only
    assert anyway.exit_code == 1 and json.loads(anyway.stdout)["interrupted"] is True
    other_metrics = json.loads(p3.read_text())
    other_metrics["run"]["pairs_sha256"] = "0" * 64
    (tmp_path / "other3.json").write_text(json.dumps(other_metrics))
    different = merge(shard_reports / "part1.json", p2, tmp_path / "other3.json", partial=True)  # never, whatever the flags
    assert different.exit_code == 1 and "other3.json: a shard of another run" in different.stderr and not different.stdout
    record = json.loads(p2.read_text())["run"]
    assert record["pairs"] == 6 and record["metrics"] == ["si_sdr"] and record["est"].endswith("noisy")


def test_a_shard_report_without_a_run_record_is_merged_only_on_request(shard_reports, tmp_path):
    old = json.loads((shard_reports / "part3.json").read_text())
    del old["run"]
    (tmp_path / "old3.json").write_text(json.dumps(old))
    p1, p2 = shard_reports / "part1.json", shard_reports / "part2.json"
    refused = merge(p1, p2, tmp_path / "old3.json")
    assert refused.exit_code == 1 and "old3.json: no run record" in refused.stderr
    anyway = merge(p1, p2, tmp_path / "old3.json", partial=True)
    assert json.loads(anyway.stdout)["interrupted"] is True and len(json.loads(anyway.stdout)["files"]) == 6


SLURM = {"SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "6", "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "4"}


def test_shard_auto_reads_slurm_arrays_and_torchrun_and_covers_everything_once():
    from sectl.sharding import parse_shard

    assert parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "64",
                                "SLURM_ARRAY_TASK_COUNT": "64"}) == (5, 64)  # fmt: skip
    assert parse_shard("auto", {"RANK": "0", "WORLD_SIZE": "8"}) == (1, 8)
    shards = [parse_shard("auto", {**SLURM, "SLURM_ARRAY_TASK_ID": str(task), "RANK": str(rank), "WORLD_SIZE": "3"})
              for task in (0, 2, 4, 6) for rank in range(3)]  # fmt: skip
    assert sorted(shards) == [(k, 12) for k in range(1, 13)]  # each rank of each array task: one part each


@pytest.mark.parametrize("environ,message", [
    ({}, "no scheduler found"),
    ({**SLURM, "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_ID": "2"}, "not an even range"),
    ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x' is not a whole number"),
])  # fmt: skip
def test_shard_auto_without_a_usable_scheduler_is_a_usage_error(environ, message):
    from sectl.errors import UsageError
    from sectl.sharding import parse_shard

    with pytest.raises(UsageError, match=message):
        parse_shard("auto", environ)


def test_enhance_shard_auto_under_a_slurm_array(vctk, tmp_path, tiny_checkpoint, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MAX", "3")
    result = runner.invoke(app, ["enhance", str(vctk / "noisy"), "-o", str(tmp_path), "-m", str(tiny_checkpoint), "--shard", "auto"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == sorted(p.name for p in vctk.glob("noisy/*.wav"))[1::3]
