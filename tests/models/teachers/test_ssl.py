from __future__ import annotations

import pytest
import torch
import torchaudio

from sectl.errors import SectlError
from sectl.models.teachers.ssl import SSLFeatures, build_ssl_model, tiny_wavlm


def test_tiny_ssl_features_are_frozen_and_framed_at_20ms():
    features = SSLFeatures("tiny", layer=2)
    out = features(torch.randn(2, 16000))
    assert out.shape == (2, 49, 64)  # 16000 samples / hop 320, minus the front end's edge
    assert all(not p.requires_grad for p in features.parameters())
    features.train()
    assert not features.model.training  # dropout of the teacher stays off


def test_tiny_model_is_reproducible():
    a, b = tiny_wavlm(), tiny_wavlm()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_local_checkpoint_loads_into_the_real_architecture(tmp_path):
    model = tiny_wavlm(seed=3)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "ssl.pt")
    loaded = build_ssl_model("tiny", tmp_path / "ssl.pt")
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), loaded.parameters()))
    with pytest.raises(SectlError, match="do not fit wavlm_base"):
        build_ssl_model("wavlm_base", tmp_path / "ssl.pt")


def test_offline_download_failure_says_how_to_fix(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchaudio.pipelines.WAVLM_BASE, "get_model", offline)
    with pytest.raises(SectlError, match="ssl.checkpoint"):
        build_ssl_model("wavlm_base")


def test_bad_layer_and_name():
    with pytest.raises(SectlError, match="layer 5 out of range"):
        SSLFeatures("tiny", layer=5)
    with pytest.raises(SectlError, match="unknown SSL model"):
        build_ssl_model("bert")


def test_wavlm_large_from_the_pipeline_is_unwrapped_and_normalises_each_utterance(monkeypatch):
    from torchaudio.pipelines._wav2vec2 import utils

    import sectl.models.teachers.ssl as ssl

    wrapped = utils._extend_model(tiny_wavlm(), normalize_waveform=True)  # what the pipeline returns
    monkeypatch.setattr(torchaudio.pipelines.WAVLM_LARGE, "get_model", lambda *a, **k: wrapped)
    features = SSLFeatures("wavlm_large", layer=2)  # needs .encoder: the wrapper hid it
    x = torch.randn(2, 8000)
    scaled = x * torch.tensor([[1.0], [7.0]])  # one utterance louder: per-utterance normalisation ignores it
    assert torch.allclose(features(x), features(scaled), atol=1e-4)
    assert features.normalise_input and not ssl.SSLFeatures("tiny", 2).normalise_input


def test_wavlm_large_from_a_local_checkpoint_normalises_too(monkeypatch, tmp_path):
    import sectl.models.teachers.ssl as ssl

    monkeypatch.setitem(ssl._FACTORIES, "wavlm_large", (tiny_wavlm, "WAVLM_LARGE"))  # same code path, small weights
    torch.save(tiny_wavlm(seed=1).state_dict(), tmp_path / "large.pt")
    features = SSLFeatures("wavlm_large", layer=2, checkpoint=tmp_path / "large.pt")
    x = torch.randn(1, 8000)
    assert torch.allclose(features(x), features(5 * x), atol=1e-4)
