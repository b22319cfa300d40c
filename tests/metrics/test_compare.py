"""Comparing systems: confidence intervals, per-file wins and losses, the CLI's table, JSON and plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.metrics.compare import compare, confidence_interval, wins_and_losses
from sectl.metrics.evaluation import EvalReport, FileResult
from tests.metrics.extras import extra


def report(metric: str, values: dict[str, float]) -> EvalReport:
    return EvalReport(metrics=[metric], files=[FileResult(file=f, scores={metric: v}) for f, v in values.items()])


def test_confidence_interval_is_student_t_by_hand():
    values = [1.0, 2.0, 3.0, 4.0]
    low, high = confidence_interval(values)
    half = 3.182446305284263 * np.std(values, ddof=1) / 2  # t(0.975, 3) * s / sqrt(4)
    assert (low, high) == pytest.approx((2.5 - half, 2.5 + half))
    assert confidence_interval([1.0]) is None


def test_wins_follow_each_metrics_better_direction():
    base = {"a": 1.0, "b": 2.0, "c": 3.0}
    other = {"a": 2.0, "b": 1.0, "c": 3.0}
    assert wins_and_losses(report("pesq_wb", other), baseline=report("pesq_wb", base), metric="pesq_wb") == {"wins": 1, "losses": 1, "ties": 1}
    more = {"a": 2.0, "b": 3.0, "c": 4.0}
    assert wins_and_losses(report("lsd", more), baseline=report("lsd", base), metric="lsd") == {"wins": 0, "losses": 3, "ties": 0}  # lower is better


def test_compare_keeps_order_and_the_first_system_ties_with_itself():
    summaries = compare({"noisy": report("si_sdr", {"a": 1.0, "b": 2.0}), "model": report("si_sdr", {"a": 3.0, "b": 1.0})})
    assert [s.name for s in summaries] == ["noisy", "model"]
    assert summaries[0].versus_first["si_sdr"] == {"wins": 0, "losses": 0, "ties": 2}
    assert summaries[1].versus_first["si_sdr"] == {"wins": 1, "losses": 1, "ties": 0}


def test_eval_compares_several_systems_on_the_same_pairs(vctk, tmp_path):
    runner = CliRunner()
    args = ["eval", "--ref", str(vctk / "clean"), "--est", str(vctk / "noisy"), "--est", str(vctk / "clean"), "-m", "si_sdr,lsd"]
    result = runner.invoke(app, [*args, "--json", "--plot", str(tmp_path / "systems.png"), "--csv", str(tmp_path / "s.csv")])
    assert result.exit_code == 0, result.output
    systems = json.loads(result.stdout)["systems"]
    assert [s["name"] for s in systems] == ["noisy", "clean"] and len(systems[1]["files"]) == 6
    assert systems[1]["versus_first"]["si_sdr"]["wins"] == 6 and systems[1]["versus_first"]["lsd"]["wins"] == 6
    low, high = systems[0]["ci95"]["si_sdr"]
    assert low < systems[0]["mean"]["si_sdr"] < high
    assert (tmp_path / "systems.png").read_bytes()[:4] == b"\x89PNG"
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "system,file,si_sdr,lsd" and len(lines) == 13
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "wins-losses vs noisy" in table.stdout


def test_the_field_metrics_go_through_the_comparison_with_cis(vctk, tmp_path, random_nisqa):
    """ViSQOL and NISQA (random weights) as systems' rows: CIs, wins-losses in the better direction (DistillMOS and
    UTMOS are scored by the same code: their tests check them against their packages)."""
    extra("visqol")
    for system in ("clean", "noisy"):
        (tmp_path / system).mkdir()
        for name in ("p287_001.wav", "p287_002.wav"):
            (tmp_path / system / name).symlink_to(vctk / system / name)
    result = CliRunner().invoke(app, ["eval", "--ref", str(tmp_path / "clean"), "--est", str(tmp_path / "noisy"),
                                      "--est", str(tmp_path / "clean"), "-m", "visqol,nisqa,nisqa_col",
                                      "--nisqa-model", str(random_nisqa), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    noisy, clean = json.loads(result.stdout)["systems"]
    for metric in ("visqol", "nisqa", "nisqa_col"):
        low, high = noisy["ci95"][metric]
        assert low <= noisy["mean"][metric] <= high, metric
        assert sum(clean["versus_first"][metric].values()) == 2, metric
    assert clean["versus_first"]["visqol"]["wins"] == 2  # a reference against itself: about 4.5
