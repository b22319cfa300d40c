"""NISQA through torchmetrics, on NISQA v2.0's architecture with random weights (the real ones cannot ship):
sectl's scores equal torchmetrics' public function, the weights are found as documented, and without them
eval stops with one line saying where to put them and where they come from."""

from __future__ import annotations

import json
import shutil

import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.errors import SectlError
from sectl.metrics import nisqa
from tests.metrics.extras import extra


@pytest.fixture(autouse=True)
def no_weights_anywhere(monkeypatch, tmp_path):
    """No $SECTL_NISQA_MODEL, an empty $SECTL_MODELS_DIR and a HOME without torchmetrics' download folder."""
    monkeypatch.delenv("SECTL_NISQA_MODEL", raising=False)
    monkeypatch.setenv("SECTL_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    nisqa.set_model(None)
    yield
    nisqa.set_model(None)


def test_scores_equal_torchmetrics_public_function(random_nisqa, vctk, monkeypatch):
    functional = extra("torchmetrics.functional.audio.nisqa")
    audio, _ = sf.read(vctk / "noisy" / "p287_001.wav")
    monkeypatch.setenv("SECTL_NISQA_MODEL", str(random_nisqa.parent))  # the folder holding nisqa.tar
    ours = nisqa.score_signal(audio)
    monkeypatch.setattr(functional, "NISQA_DIR", str(random_nisqa.parent))
    functional._load_nisqa_model.cache_clear()
    theirs = functional.non_intrusive_speech_quality_assessment(torch.from_numpy(audio).float(), 16000)
    assert list(ours) == ["nisqa", "nisqa_noi", "nisqa_dis", "nisqa_col", "nisqa_loud"]  # the model's output order
    assert list(ours.values()) == pytest.approx(theirs.tolist(), abs=1e-6)


def test_eval_reads_the_weights_named_by_the_flag_and_records_them(random_nisqa, vctk):
    result = CliRunner().invoke(app, ["eval", "--est", str(vctk / "noisy" / "p287_002.wav"), "-m", "nisqa,nisqa_noi,nisqa_loud",
                                      "--nisqa-model", str(random_nisqa), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert all(report["mean"][m] is not None for m in ("nisqa", "nisqa_noi", "nisqa_loud"))
    assert report["provenance"]["metrics"]["nisqa"]["backend"] == "torchmetrics"
    assert report["provenance"]["nisqa"]["weights"] == str(random_nisqa.absolute())
    assert len(report["provenance"]["nisqa"]["sha256"]) == 64


def test_weights_in_the_models_folder_are_found(random_nisqa, tmp_path):
    folder = tmp_path / "models" / "nisqa"  # $SECTL_MODELS_DIR/nisqa
    folder.mkdir(parents=True)
    shutil.copy(random_nisqa, folder / "nisqa.tar")
    assert nisqa.model_path() == folder / "nisqa.tar"


def test_without_weights_eval_is_one_error_saying_where_they_go_and_come_from(vctk, tmp_path):
    extra("torchmetrics.functional.audio.nisqa")
    result = CliRunner().invoke(app, ["eval", "--est", str(vctk / "noisy"), "-m", "nisqa"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert nisqa.URL in result.stderr and "SECTL_NISQA_MODEL" in result.stderr and "--nisqa-model" in result.stderr
    wrong = CliRunner().invoke(app, ["eval", "--est", str(vctk / "noisy"), "-m", "nisqa", "--nisqa-model", str(tmp_path / "none.tar")])
    assert wrong.exit_code == 2 and "NISQA weights not found at" in wrong.stderr and nisqa.URL in wrong.stderr


def test_a_file_that_is_not_nisqas_weights_is_one_error(tmp_path):
    extra("torchmetrics.functional.audio.nisqa")
    (tmp_path / "nisqa.tar").write_bytes(b"not a checkpoint")
    nisqa.set_model(tmp_path / "nisqa.tar")
    with pytest.raises(SectlError, match="not NISQA's weights"):
        nisqa.prepare()
    (tmp_path / "weights.tar").write_bytes(b"x")
    nisqa.set_model(tmp_path / "weights.tar")
    with pytest.raises(SectlError, match="a file named nisqa.tar"):
        nisqa.prepare()
