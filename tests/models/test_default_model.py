"""The bundled default model: loads offline, is what `sectl enhance` uses without --model, and enhances."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.models.checkpoint import DEFAULT_MODEL, load_checkpoint, load_enhancer
from sectl.metrics import evaluate


def test_default_weights_are_bundled_with_provenance():
    payload = load_checkpoint(DEFAULT_MODEL)
    assert DEFAULT_MODEL.stat().st_size < 10 * 2**20
    assert payload["provenance"]["preset"] == "default"
    assert "optimizer" not in payload  # inference-only export
    assert load_enhancer(None).sample_rate == 16000


def test_enhance_without_model_uses_the_default_and_improves_vctk(vctk, tmp_path):
    result = CliRunner().invoke(app, ["enhance", str(vctk / "noisy"), "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["written"]) == 6
    enhanced = evaluate(tmp_path / "out", ref=vctk / "clean", metrics="pesq_wb,si_sdr").mean
    noisy = evaluate(vctk / "noisy", ref=vctk / "clean", metrics="pesq_wb,si_sdr").mean
    assert enhanced["pesq_wb"] > noisy["pesq_wb"]


def test_model_default_says_so(vctk, tmp_path):
    result = CliRunner().invoke(app, ["enhance", str(vctk / "noisy" / "p287_001.wav"), "-o", str(tmp_path / "x.wav"), "--model", "default"])
    assert result.exit_code == 0
    assert "bundled default model" in result.stderr
