"""The positional-exploitation diagnostic: orderings on real speech, the CLI's JSON and plot."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.position import diagnose_file

runner = CliRunner()


@pytest.fixture(scope="module")
def recording(data_dir):
    return sorted((data_dir / "speech").glob("*.wav"))[0]


def by_case(diagnosis):
    return {row.case.split(" (")[0]: row for row in diagnosis.rows}


def test_frame_mse_is_fooled_by_position_and_soft_dtw_is_not(recording):
    """Tiny random teacher: moving the same content by one frame costs frame-wise MSE most of what a
    different recording costs, while the soft-DTW divergence of shifted and padded copies stays far
    below the different recording's."""
    rows = by_case(diagnose_file(recording, features="ssl", model="tiny"))
    different = rows["different recording, same positions"]
    assert rows["identical"].mse == 0 and rows["identical"].divergence == pytest.approx(0, abs=1e-9)
    moved = [rows[c] for c in ("shift 1 frame", "shift 2 frames", "shift 4 frames", "shift 8 frames", "zero-pad 2%", "zero-pad 5%")]
    assert all(r.mse > 0.5 * different.mse for r in moved)
    assert all(r.divergence < 0.1 * different.divergence for r in moved)
    shifts = [rows[c].mse for c in ("shift 1 frame", "shift 2 frames", "shift 4 frames", "shift 8 frames")]
    assert shifts == sorted(shifts)  # the further apart the positions, the larger the frame-wise error


def test_with_a_trained_encoder_every_same_content_copy_beats_the_different_recording(recording, models_dir):
    rows = diagnose_file(recording, features="model", model="deepfilternet3").rows
    different = rows[-1]
    assert not different.same_content
    assert all(r.divergence < different.divergence for r in rows[:-1])  # speed-perturbed copies included
    assert max(r.mse for r in rows[:-1]) > different.mse  # MSE ranks some same-content copy worse


def test_cli_json_plot_and_errors(recording, data_dir, tmp_path):
    other = sorted((data_dir / "speech").glob("*.wav"))[1]
    result = runner.invoke(app, ["align", "--diagnose-position", str(recording), str(other), "--features", "ssl",
                                 "--model", "tiny", "--json", "--plot", str(tmp_path / "p.png")])  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["other"] == str(other) and payload["hop_s"] == 0.02 and len(payload["rows"]) == 10
    assert (tmp_path / "p.png").stat().st_size > 10_000
    again = runner.invoke(app, ["align", "--diagnose-position", str(recording), "-f", "ssl", "--model", "tiny", "--plot", str(tmp_path / "p.png")])
    assert again.exit_code == 1 and "exists" in again.stderr
    one = runner.invoke(app, ["align", str(recording)])
    assert one.exit_code == 2 and "--diagnose-position" in one.stderr
