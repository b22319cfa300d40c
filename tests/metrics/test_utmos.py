"""UTMOS through utmos-pytorch, on the real architecture with random weights (the real ones are a download):
sectl's score equals the package's own scorer on the same file, eval finds the weights by flag or variable,
and without them stops with one line saying where to put them and where they come from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.errors import SectlError
from sectl.metrics import utmos
from tests.conftest import write_wav
from tests.metrics.extras import extra


@pytest.fixture(scope="module")
def random_utmos(tmp_path_factory):
    """``utmos_state_dict.pt`` of the package's ``UTMOSModel`` (wav2vec 2.0 base and its heads, 103 M parameters)."""
    package = extra("utmos_pytorch")
    torch.manual_seed(0)
    with pytest.warns(FutureWarning):  # the port's wav2vec 2.0 uses torch's older weight_norm
        model = package.utmos_torch.UTMOSModel()
    path = tmp_path_factory.mktemp("utmos") / utmos.FILE
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(autouse=True)
def no_weights_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv("SECTL_UTMOS_MODEL", raising=False)
    monkeypatch.setenv("SECTL_MODELS_DIR", str(tmp_path / "models"))
    utmos.set_model(None)
    yield
    utmos.set_model(None)


@pytest.fixture
def short_clips(vctk, tmp_path):
    """One second of a real utterance (UTMOS's wav2vec 2.0 is the slow part of these tests)."""
    folder = tmp_path / "clips"
    for name in ("p287_001.wav",):
        audio, _ = sf.read(vctk / "noisy" / name)
        write_wav(folder / name, audio[:16000])
    return folder


def test_eval_equals_the_packages_scorer_on_the_same_file_and_records_the_weights(random_utmos, short_clips, monkeypatch):
    package = extra("utmos_pytorch")
    monkeypatch.setenv("SECTL_UTMOS_MODEL", str(random_utmos.parent))  # the variable, naming the folder
    result = CliRunner().invoke(app, ["eval", "--est", str(short_clips), "-m", "utmos", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    ours = {row["file"]: row["utmos"] for row in report["files"]}
    scorer = utmos.model()  # what eval loaded (a second load of 400 MB would double the test's time)
    assert type(scorer) is package.UTMOSScoreTorch
    for name, value in ours.items():
        audio, _ = sf.read(short_clips / name, dtype="float32")
        assert value == pytest.approx(float(scorer.score(torch.from_numpy(audio))[0]), abs=1e-5), name
    assert report["provenance"]["metrics"]["utmos"]["backend"] == "utmos-pytorch"
    assert report["provenance"]["utmos"]["weights"] == str(random_utmos)


def test_without_weights_eval_is_one_error_saying_where_they_go_and_come_from(short_clips, tmp_path):
    extra("utmos_pytorch")
    result = CliRunner().invoke(app, ["eval", "--est", str(short_clips), "-m", "utmos"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert utmos.URL in result.stderr and "SECTL_UTMOS_MODEL" in result.stderr and "--utmos-model" in result.stderr
    wrong = CliRunner().invoke(app, ["eval", "--est", str(short_clips), "-m", "utmos", "--utmos-model", str(tmp_path / "nowhere")])
    assert wrong.exit_code == 2 and "UTMOS weights not found at" in wrong.stderr


def test_a_file_missing_the_models_weights_is_refused_not_scored_at_random(tmp_path):
    extra("utmos_pytorch")
    torch.save({"feature_extractors.1.embedding.weight": torch.zeros(3, 128)}, tmp_path / "partial.pt")
    utmos.set_model(tmp_path / "partial.pt")
    with pytest.raises(SectlError, match=r"not UTMOS weights \(223 of the model's 224 tensors missing"):
        utmos.prepare()
    (tmp_path / "junk.pt").write_bytes(b"junk")
    utmos.set_model(tmp_path / "junk.pt")
    with pytest.raises(SectlError, match="not a readable UTMOS weights file"):
        utmos.prepare()
