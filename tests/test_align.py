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


def test_a_long_pair_without_a_band_gets_one_chosen_and_reported(vctk, monkeypatch):
    """Scaled down: a 20 kB path budget makes the 2 s pair (about 200 x 200 frames) "long"."""
    from sectl import align
    from sectl.losses.softdtw_kernels import band_storage

    monkeypatch.setattr(align, "AUTO_BAND_BYTES", 20_000)
    clean, noisy = vctk / "clean" / "p287_001.wav", vctk / "noisy" / "p287_001.wav"
    result = align_files(clean, noisy)
    assert result.band_chosen and band_storage(*result.frames, result.band) <= 20_000 < band_storage(*result.frames, result.band + 1)
    assert result.path[-1] == (result.frames[0] - 1, result.frames[1] - 1) and result.slope == pytest.approx(1.0, abs=0.02)
    text = CliRunner().invoke(app, ["align", str(clean), str(noisy)])
    assert text.exit_code == 0 and f"band         {result.band} frames" in text.stdout and "chosen for a long pair" in text.stdout
    as_json = CliRunner().invoke(app, ["align", str(clean), str(noisy), "--json"])
    assert json.loads(as_json.stdout)["band_chosen"] is True and "--band sets it" in as_json.stderr
    short = align_files(clean, noisy, band=3)
    assert (short.band, short.band_chosen) == (3, False)


def test_a_band_beyond_the_memory_available_is_refused_in_one_line_before_aligning(vctk, monkeypatch):
    from sectl import align

    monkeypatch.setattr(align, "available_memory", lambda: 4096)
    monkeypatch.setattr(align, "align_pair", lambda *a, **k: pytest.fail("aligned anyway"))
    clean, noisy = vctk / "clean" / "p287_001.wav", vctk / "noisy" / "p287_001.wav"
    result = CliRunner().invoke(app, ["align", str(clean), str(noisy), "--band", "50"])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert f"{clean} and {noisy}: --band 50 on" in line and "GiB is available; pass a smaller --band" in line


def test_long_pairs_keep_a_sampled_cost_image_for_the_plot(vctk, monkeypatch, tmp_path):
    from sectl import align

    monkeypatch.setattr(align, "PLOT_FRAMES", 40)
    result = align_files(vctk / "clean" / "p287_001.wav", vctk / "noisy" / "p287_001.wav")
    assert max(result.cost_matrix.shape) <= 40 and min(result.cost_matrix.shape) >= 35
    align.plot_alignment(result, tmp_path / "al.png")
    assert (tmp_path / "al.png").read_bytes()[:4] == b"\x89PNG"


def test_chunked_mfcc_equals_torchaudios_on_the_whole_signal(clean_speech, monkeypatch):
    import torchaudio

    from sectl import align

    monkeypatch.setattr(align, "MFCC_CHUNK", 37)  # several chunks and a ragged last one
    wave = torch.from_numpy(clean_speech).float()
    whole = torchaudio.transforms.MFCC(sample_rate=16000, n_mfcc=20, melkwargs={
        "n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 40})(wave).T  # fmt: skip
    expected = (whole - whole.mean(0)) / (whole.std(0) + 1e-5)
    assert torch.allclose(align.mfcc_features(wave), expected, atol=1e-4)
