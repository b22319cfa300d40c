"""The bundled default model: DeepFilterNet3 converted, loads offline, is what `sectl enhance` uses."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.metrics import evaluate
from sectl.models.io.checkpoint import load_checkpoint
from sectl.engines import load_enhancer
from sectl.models.io.loading import BUNDLED, DEFAULT_MODEL

DFN3_SHA256 = "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616"


def test_default_weights_are_bundled_with_provenance_and_licence(monkeypatch, tmp_path):
    monkeypatch.delenv("SECTL_MODELS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no official files anywhere: none are needed
    payload = load_checkpoint(DEFAULT_MODEL)
    assert payload["model"]["name"] == "deepfilternet3"
    assert payload["provenance"]["source_files"] == {"DeepFilterNet3_onnx.tar.gz": DFN3_SHA256}
    assert "optimizer" not in payload
    assert (DEFAULT_MODEL.parent / "LICENSE-DeepFilterNet3-MIT").is_file()
    assert load_enhancer(None).sample_rate == 48000


def test_the_old_demucs_default_stays_available_by_name():
    assert load_enhancer("sectl-demucs").name == "demucs"
    assert BUNDLED["sectl-demucs"].is_file()


def test_enhance_without_model_improves_vctk_as_dfn3_does(vctk, tmp_path):
    result = CliRunner().invoke(app, ["enhance", str(vctk / "noisy"), "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["written"]) == 6
    enhanced = evaluate(tmp_path / "out", ref=vctk / "clean", metrics="pesq_wb,si_sdr").mean
    assert enhanced["pesq_wb"] == pytest.approx(1.857, abs=0.03)  # DeepFilterNet3's published-model score here
    assert enhanced["si_sdr"] > 9.89  # noisy: 8.20 dB


def test_model_default_says_so(vctk, tmp_path):
    result = CliRunner().invoke(app, ["enhance", str(vctk / "noisy" / "p287_001.wav"), "-o", str(tmp_path / "x.wav"), "--model", "default"])
    assert result.exit_code == 0
    assert "bundled model 'default'" in result.stderr
