from __future__ import annotations

import json

import pytest
import torch
import torchaudio.functional as AF
from typer.testing import CliRunner

from sectl.align import align_files
from sectl.cli.app import app
from sectl.data.augment import speed_perturb
from tests.conftest import write_wav


def test_clean_vs_noisy_aligns_near_the_diagonal(vctk):
    result = align_files(vctk / "clean" / "p287_003.wav", vctk / "noisy" / "p287_003.wav")
    assert result.frames[0] == result.frames[1]
    assert result.mean_warp_s < 0.03
    assert result.slope == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_speed_perturbed_copy_follows_the_stretch(vctk, tmp_path, clean_speech, factor):
    fast = speed_perturb(torch.from_numpy(clean_speech).float(), factor)
    write_wav(tmp_path / "a.wav", clean_speech)
    write_wav(tmp_path / "b.wav", fast.numpy())
    result = align_files(tmp_path / "a.wav", tmp_path / "b.wav")
    assert result.slope == pytest.approx(1 / factor, rel=0.05)
    assert result.path[0] == (0, 0) and result.path[-1] == (result.frames[0] - 1, result.frames[1] - 1)


def test_mismatched_sample_rates_are_resampled(tmp_path, clean_speech):
    other = AF.resample(torch.from_numpy(clean_speech).float(), 16000, 22050)
    write_wav(tmp_path / "a.wav", clean_speech)
    write_wav(tmp_path / "b.wav", other.numpy(), rate=22050, subtype="FLOAT")
    result = align_files(tmp_path / "a.wav", tmp_path / "b.wav")
    assert abs(result.frames[0] - result.frames[1]) <= 1
    assert result.mean_warp_s < 0.02


def test_cli_json_schema_and_plot(tmp_path, clean_speech):
    write_wav(tmp_path / "a.wav", clean_speech)
    write_wav(tmp_path / "b.wav", clean_speech[:20000])
    plot = tmp_path / "al.png"
    result = CliRunner().invoke(app, ["align", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), "--json", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {"cost", "divergence", "frames", "hop_s", "path"} <= set(payload)
    assert payload["path"][0] == [0, 0]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_cli_missing_file_is_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["align", str(tmp_path / "x.wav"), str(tmp_path / "y.wav")])
    assert result.exit_code == 1 and "x.wav: file not found" in result.stderr


def test_ssl_features_with_the_tiny_model(vctk):
    result = align_files(vctk / "clean" / "p287_001.wav", vctk / "noisy" / "p287_001.wav", features="ssl", model="tiny")
    assert result.hop_s == 0.02
    assert result.frames[0] == result.frames[1] == 97
    assert result.path[0] == (0, 0) and result.path[-1] == (96, 96)


def test_model_encoder_features(vctk, tiny_checkpoint):
    result = align_files(vctk / "clean" / "p287_001.wav", vctk / "noisy" / "p287_001.wav", features="model", model=tiny_checkpoint)
    assert result.hop_s == pytest.approx(64 / 16000, rel=0.02)  # tiny: 3 levels of stride 4
    assert result.slope == pytest.approx(1.0, abs=0.05)


def test_unknown_feature_kind_and_missing_model():
    from sectl.align import feature_extractor
    from sectl.errors import SectlError

    with pytest.raises(SectlError, match="unknown feature kind"):
        feature_extractor("chroma")
    with pytest.raises(SectlError, match="--model"):
        feature_extractor("model")


def test_model_features_of_a_named_pretrained_model(models_dir, vctk):
    clean, noisy = vctk / "clean" / "p287_001.wav", vctk / "noisy" / "p287_001.wav"
    result = CliRunner().invoke(app, ["align", str(clean), str(noisy), "--features", "model", "--model", "nsnet2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["hop_s"] == pytest.approx(0.01)  # NSNet2's 10 ms hop, measured from the model
    assert report["mean_warp_s"] < 0.03


def test_align_writes_its_json_with_o(vctk, tmp_path):
    import json

    from typer.testing import CliRunner

    from sectl.cli.app import app

    a, b = vctk / "clean" / "p287_001.wav", vctk / "noisy" / "p287_001.wav"
    result = CliRunner().invoke(app, ["align", str(a), str(b), "-o", str(tmp_path / "al.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "al.json").read_text())["frames"][0] > 0
    again = CliRunner().invoke(app, ["align", str(a), str(b), "-o", str(tmp_path / "al.json")])
    assert again.exit_code == 1 and "output exists" in again.stderr
