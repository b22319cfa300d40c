"""DNSMOS against the published procedure, recomputed here with librosa as the original code does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sectl import modelfiles
from sectl.cli.app import app
from sectl.errors import SectlError
from sectl.metrics import dnsmos, evaluate
from tests.conftest import MODELS

DNSMOS_DIR = MODELS / "dnsmos"


@pytest.fixture(autouse=True)
def models(monkeypatch):
    if not (DNSMOS_DIR / "sig_bak_ovr.onnx").is_file():
        pytest.skip(f"DNSMOS models not found at {DNSMOS_DIR} (set SECTL_TEST_MODELS)")
    monkeypatch.setenv("SECTL_DNSMOS_DIR", str(DNSMOS_DIR))
    dnsmos.set_model_dir(None)


def published_p808(audio: np.ndarray) -> float:
    """The P.808 half of Microsoft's dnsmos_local.py, with librosa features."""
    librosa = pytest.importorskip("librosa")
    import onnxruntime as ort

    session = ort.InferenceSession(str(DNSMOS_DIR / "model_v8.onnx"))
    scores = []
    for window in dnsmos.windows(audio):
        mel = librosa.feature.melspectrogram(y=window[:-160], sr=16000, n_fft=321, hop_length=160, n_mels=120)
        features = ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T
        scores.append(session.run(None, {"input_1": features[None].astype(np.float32)})[0][0][0])
    return float(np.mean(scores))


def test_vctk_noisy_means_match_the_published_values(vctk):
    report = evaluate(vctk / "noisy", metrics="dnsmos_sig,dnsmos_bak,dnsmos_ovrl,dnsmos_p808")
    expected = {"dnsmos_sig": 2.824, "dnsmos_bak": 1.998, "dnsmos_ovrl": 1.968, "dnsmos_p808": 2.897}
    for name, value in expected.items():
        assert report.mean[name] == pytest.approx(value, abs=0.005), name


def test_p808_per_file_matches_a_librosa_reference(vctk):
    for path in sorted((vctk / "noisy").glob("*.wav"))[:2]:
        audio, _ = sf.read(path)
        ours = dnsmos.score_signal(audio)["dnsmos_p808"]
        assert ours == pytest.approx(published_p808(audio), abs=0.02), path.name


def test_long_input_is_windowed_and_clean_speech_scores_higher(vctk):
    clean, _ = sf.read(vctk / "clean" / "p287_003.wav")
    noisy, _ = sf.read(vctk / "noisy" / "p287_003.wav")
    assert len(dnsmos.windows(np.tile(clean, 4))) == int(np.floor(len(clean) * 4 / 16000) - 9.01) + 1  # 19
    assert dnsmos.score_signal(clean)["dnsmos_ovrl"] > dnsmos.score_signal(noisy)["dnsmos_ovrl"] + 0.5


def test_eval_without_and_with_reference(vctk, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--est", str(vctk / "noisy"), "-m", "dnsmos_ovrl", "--json", "--dnsmos-dir", str(DNSMOS_DIR)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mean"]["dnsmos_ovrl"] == pytest.approx(1.968, abs=0.005)
    both = runner.invoke(app, [
        "eval", "--ref", str(vctk / "clean" / "p287_001.wav"), "--est", str(vctk / "noisy" / "p287_001.wav"), "-m", "pesq_wb,dnsmos_p808", "--json",
    ])
    assert set(json.loads(both.stdout)["mean"]) == {"pesq_wb", "dnsmos_p808"}


def test_missing_models_offline_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SECTL_DNSMOS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("SECTL_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(modelfiles.urllib.request, "urlopen", offline)
    dnsmos._sessions.cache_clear()
    with pytest.raises(SectlError, match="--dnsmos-dir") as error:
        dnsmos.score_signal(np.zeros(16000))
    dnsmos._sessions.cache_clear()
    assert f"looked in {tmp_path / 'none'}, {tmp_path / 'models' / 'dnsmos'}, " in str(error.value)


def test_the_models_folder_holds_dnsmos_like_every_named_model(monkeypatch):
    """``$SECTL_MODELS_DIR/dnsmos`` is searched after ``--dnsmos-dir`` and ``$SECTL_DNSMOS_DIR``, as every
    command searches every model (it was not searched at all)."""
    monkeypatch.delenv("SECTL_DNSMOS_DIR")
    monkeypatch.setenv("SECTL_MODELS_DIR", str(MODELS))
    monkeypatch.setattr(modelfiles, "download", lambda *a, **k: pytest.fail("downloaded though the models folder has the files"))
    assert dnsmos.model_paths()["sig_bak_ovr.onnx"] == DNSMOS_DIR / "sig_bak_ovr.onnx"


def test_iterate_reports_dnsmos_without_reference(tiny_checkpoint, vctk):
    result = CliRunner().invoke(app, ["iterate", str(vctk / "noisy" / "p287_001.wav"), "--n", "1", "--json", "--model", str(tiny_checkpoint)])
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)["steps"]
    assert all(s["dnsmos_ovrl"] is not None and s["dnsmos_p808"] is not None for s in steps)


def test_training_can_rank_checkpoints_by_dnsmos(data_dir, tmp_path):
    from sectl.train import resolve_config, train

    vctk = data_dir / "vctk"
    config = resolve_config("baseline", [
        "model.size=tiny", "train.steps=2", "train.batch_size=2", "data.segment_s=0.5", "train.threads=1",
        f"data.clean={data_dir / 'speech'}", f"data.noise={data_dir / 'noise'}",
        f"validation.noisy={vctk / 'noisy'}", f"validation.clean={vctk / 'clean'}", "validation.every=2",
        "validation.metric=dnsmos_ovrl", "validation.metrics=[si_sdr]",
    ])
    state = train(config, tmp_path / "run")
    assert state.best_step == 2 and 1.0 < state.best_score < 5.0
