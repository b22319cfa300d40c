"""DistillMOS: sectl's number equals the package's own command-line path on a real file, through eval, with its
provenance and nothing on stdout but the report (comparisons: test_compare.py)."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from sectl.cli.app import app
from tests.metrics.extras import extra


@pytest.fixture(scope="module")
def sqa():
    return extra("distillmos.sqa")


def test_sectl_equals_the_packages_command_line_path_on_a_real_file(sqa, vctk, monkeypatch):
    path = vctk / "noisy" / "p287_001.wav"
    result = CliRunner().invoke(app, ["eval", "--est", str(path), "-m", "distillmos", "--json"])
    assert result.exit_code == 0, result.output
    ours = json.loads(result.stdout)["mean"]["distillmos"]  # stdout is the report only: the package's print is caught

    def load(file):  # torchaudio 2.9's load needs torchcodec; soundfile gives the same float32 samples of a PCM WAV
        audio, rate = sf.read(file, dtype="float32", always_2d=True)
        return torch.from_numpy(audio.T.copy()), rate

    monkeypatch.setattr(sqa.torchaudio, "load", load)
    [(_, theirs)] = list(sqa._infer_file_list([str(path)]))  # what `distillmos FILE` prints
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert 1.0 <= ours <= 5.0
    record = json.loads(result.stdout)["provenance"]["metrics"]["distillmos"]
    assert record["backend"] == "distillmos" and record["version"] != "unknown"
