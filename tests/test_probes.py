"""Linear probes: exact on linear data, and each probe able to fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sectl.codec import encode_tensor
from sectl.models import build_codec
from sectl.probes import ridge_fit, ridge_predict, speaker_accuracy, teacher_r2
from tests.conftest import tone, write_wav


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return build_codec("speech_vae", "tiny").eval()


def test_ridge_recovers_a_linear_map():
    x = torch.randn(200, 5, dtype=torch.float64)
    w = torch.randn(5, 3, dtype=torch.float64)
    weights = ridge_fit(x, x @ w + 2.0, ridge=1e-9)
    assert torch.allclose(ridge_predict(weights, x), x @ w + 2.0, atol=1e-6)


def test_teacher_r2_is_one_for_a_linear_teacher_and_low_for_noise(vae, data_dir):
    files = sorted((data_dir / "vctk" / "clean").glob("*.wav"))
    mix = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))
    linear = lambda wave: (encode_tensor(vae, wave[0]).T @ mix)[None]  # noqa: E731
    assert teacher_r2(vae, linear, files, holdout=3, ridge=1e-12) == pytest.approx(1.0, abs=1e-6)
    noise = lambda wave: torch.randn(1, 50, 16)  # noqa: E731 - unrelated to the audio
    assert teacher_r2(vae, noise, files, holdout=3) < 0.2


def test_speaker_accuracy_separates_distinct_classes_and_is_chance_for_identical_ones(vae, tmp_path):
    rng = np.random.default_rng(0)
    for i in range(8):
        write_wav(tmp_path / "low" / f"{i}.wav", tone(0.5, freq=200 + 10 * i))
        write_wav(tmp_path / "noise" / f"{i}.wav", 0.3 * rng.standard_normal(8000).astype(np.float32))
        write_wav(tmp_path / "same_a" / f"{i}.wav", tone(0.5, freq=300))
        write_wav(tmp_path / "same_b" / f"{i}.wav", tone(0.5, freq=300))
    assert speaker_accuracy(vae, [tmp_path / "low", tmp_path / "noise"]) == 1.0
    assert speaker_accuracy(vae, [tmp_path / "same_a", tmp_path / "same_b"]) <= 0.5
