"""`sectl encode` and sectl.codec: latent files, exact lengths, chunking that changes nothing, bad inputs."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from sectl import codec
from sectl.cli.app import app
from sectl.errors import SectlError
from sectl.models import build_codec
from sectl.models.io.checkpoint import save_checkpoint
from sectl.models.io.loading import load_codec
from tests.conftest import write_wav

runner = CliRunner()


@pytest.fixture(scope="module")
def vae_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vae") / "vae.pt"
    save_checkpoint(path, build_codec("speech_vae", "tiny"))
    return path


@pytest.fixture(scope="module")
def vae(vae_checkpoint):
    return load_codec(vae_checkpoint)


@pytest.fixture(scope="module")
def speech(data_dir):
    """About 7.2 s of real speech: four vctk utterances back to back."""
    clips = [sf.read(p)[0] for p in sorted((data_dir / "vctk" / "clean").glob("*.wav"))[:4]]
    return np.concatenate(clips)[: int(7.23 * 16000)].astype(np.float32)


def test_encode_a_7_23_s_file_then_decode_to_exactly_its_length(vae_checkpoint, speech, tmp_path):
    src = write_wav(tmp_path / "in" / "take.wav", speech)
    result = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / "lat"), "--model", str(vae_checkpoint), "--json"])
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert files[0]["shape"] == [64, 290] and files[0]["output"].endswith("take.npz")
    decoded = runner.invoke(app, ["encode", "--decode", str(tmp_path / "lat"), "-o", str(tmp_path / "dec"), "--model", str(vae_checkpoint)])
    assert decoded.exit_code == 0, decoded.output
    audio, rate = sf.read(tmp_path / "dec" / "take.wav")
    assert rate == 16000 and len(audio) == len(speech)


def test_latent_file_format_is_documented_plain_numpy(vae, vae_checkpoint, speech, tmp_path):
    src = write_wav(tmp_path / "a.wav", speech[:16000])
    codec.encode_file(vae, src, tmp_path / "a.npz", codec.model_id(vae_checkpoint))
    data = np.load(tmp_path / "a.npz", allow_pickle=False)
    assert str(data["format"]) == "sectl-latents/1" and data["latents"].shape == (64, 40)
    assert int(data["length"]) == 16000 and int(data["sample_rate"]) == 16000 and int(data["hop"]) == 400
    assert "sha256:" in str(data["model"])


def test_chunking_does_not_change_latents_or_audio(vae, speech):
    wave = torch.from_numpy(speech)
    whole = codec.encode_tensor(vae, wave, chunk_frames=10_000)
    chunked = codec.encode_tensor(vae, wave, chunk_frames=37)
    assert chunked.shape == whole.shape and torch.allclose(chunked, whole, atol=1e-5)
    audio_whole = codec.decode_tensor(vae, whole, len(speech), chunk_frames=10_000)
    audio_chunked = codec.decode_tensor(vae, whole, len(speech), chunk_frames=37)
    assert torch.allclose(audio_chunked, audio_whole, atol=1e-5)


def test_roundtrip_scores_with_sectl_metrics(vae_checkpoint, speech, tmp_path):
    write_wav(tmp_path / "in" / "a.wav", speech[:32000])
    result = runner.invoke(app, ["encode", "--roundtrip", str(tmp_path / "in"), "-o", str(tmp_path / "rt"), "--model",
                                 str(vae_checkpoint), "--json", "--metrics", "mel_distance,estoi"])  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["scores"]
    assert set(scores) == {"mel_distance", "estoi"} and scores["mel_distance"] > 0  # a random model reconstructs badly
    assert (tmp_path / "rt" / "a.wav").is_file()


def test_bad_inputs_are_reported_by_name_and_the_batch_goes_on(vae_checkpoint, speech, tmp_path):
    folder = tmp_path / "lat"
    folder.mkdir()
    (folder / "junk.npz").write_bytes(b"not a zip")
    write_wav(tmp_path / "a.wav", speech[:8000])
    runner.invoke(app, ["encode", str(tmp_path / "a.wav"), "-o", str(folder / "good.npz"), "--model", str(vae_checkpoint)])
    result = runner.invoke(app, ["encode", "--decode", str(folder), "-o", str(tmp_path / "dec"), "--model", str(vae_checkpoint)])
    assert result.exit_code == 1
    assert "junk.npz: not a sectl latent file" in result.stderr
    assert (tmp_path / "dec" / "good.wav").is_file()


def test_latents_of_another_model_configuration_are_refused(vae, tmp_path):
    codec.save_latents(tmp_path / "x.npz", codec.Latents(np.zeros((32, 5), np.float32), 2000, 16000, 400, "other"))
    with pytest.raises(SectlError, match="32-channel"):
        codec.decode_file(vae, tmp_path / "x.npz", tmp_path / "x.wav", "me")


def test_an_enhancer_is_not_a_codec_and_a_codec_is_not_an_enhancer(vae_checkpoint, tiny_checkpoint, tmp_path):
    from sectl.engines import load_enhancer

    with pytest.raises(SectlError, match="not a speech VAE"):
        load_codec(tiny_checkpoint)
    with pytest.raises(SectlError, match="not an enhancer"):
        load_enhancer(vae_checkpoint)


def test_stdin_to_stdout_both_ways(vae, speech, monkeypatch):
    import io
    import sys

    class Stream:
        def __init__(self, data=b""):
            self.buffer = io.BytesIO(data)

    wav = io.BytesIO()
    sf.write(wav, speech[:12345], 16000, format="WAV", subtype="PCM_16")
    monkeypatch.setattr(sys, "stdin", Stream(wav.getvalue()))
    monkeypatch.setattr(sys, "stdout", latents_out := Stream())
    codec.encode_file(vae, "-", "-", "m")
    monkeypatch.setattr(sys, "stdin", Stream(latents_out.buffer.getvalue()))
    monkeypatch.setattr(sys, "stdout", audio_out := Stream())
    codec.decode_file(vae, "-", "-", "m")
    audio, rate = sf.read(io.BytesIO(audio_out.buffer.getvalue()))
    assert rate == 16000 and len(audio) == 12345


def test_two_inputs_with_one_latent_name_are_refused_before_any_work(vae_checkpoint, speech, tmp_path):
    write_wav(tmp_path / "x.wav", speech[:16000])
    sf.write(tmp_path / "x.flac", speech[:16000], 16000)
    result = runner.invoke(app, ["encode", str(tmp_path / "x.wav"), str(tmp_path / "x.flac"), "-o", str(tmp_path / "lat"),
                                 "-m", str(vae_checkpoint)])  # fmt: skip
    assert result.exit_code == 2 and "x.wav" in result.stderr and "x.flac" in result.stderr
    assert not (tmp_path / "lat").exists()


def test_roundtrip_from_stdin_to_stdout_writes_audio_and_scores(vae_checkpoint, speech):
    import io
    import subprocess
    import sys

    buffer = io.BytesIO()
    sf.write(buffer, speech[:16000], 16000, format="WAV")
    result = subprocess.run([sys.executable, "-m", "sectl", "encode", "--roundtrip", "-", "-o", "-", "-m", str(vae_checkpoint)],
                            input=buffer.getvalue(), capture_output=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert sf.info(io.BytesIO(result.stdout)).frames == 16000


def write_latents(path, **fields):
    """A latent file with the given fields over valid defaults (4 frames of the tiny VAE: 64 channels, 16 kHz, hop 400)."""
    base = dict(format=np.array(codec.FORMAT), latents=np.zeros((64, 4), np.float32), length=np.array(1500),
                sample_rate=np.array(16000), hop=np.array(400), model=np.array("m"))  # fmt: skip
    np.savez(path, **{**base, **fields})
    return path


@pytest.mark.parametrize("fields,problem", [
    ({"latents": np.full((64, 4), np.nan, np.float32)}, "NaN or Inf"),
    ({"length": np.array(-5)}, "length -5 does not fit 4 frames"),
    ({"length": np.array(10**12)}, "does not fit 4 frames"),
    ({"latents": np.zeros((64, 0), np.float32), "length": np.array(0)}, "no latent frames"),
    ({"latents": np.zeros((64,), np.float32)}, "(channels, frames)"),
    ({"length": np.array(1.5)}, "expected an integer"),
    ({"sample_rate": np.array(0)}, "must be positive"),
    ({"format": np.array("other/9")}, "latent format"),
])  # fmt: skip
def test_a_bad_latent_file_is_refused_by_name_while_the_batch_goes_on(vae_checkpoint, tmp_path, fields, problem):
    folder = tmp_path / "lat"
    folder.mkdir()
    good = tmp_path / "good.wav"
    write_wav(good, np.zeros(1500, np.float32))
    runner.invoke(app, ["encode", str(good), "-o", str(folder / "good.npz"), "-m", str(vae_checkpoint)])
    write_latents(folder / "bad.npz", **fields)
    result = runner.invoke(app, ["encode", "--decode", str(folder), "-o", str(tmp_path / "dec"), "-m", str(vae_checkpoint)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bad.npz" in result.stderr and problem in result.stderr
    assert (tmp_path / "dec" / "good.wav").is_file() and not (tmp_path / "dec" / "bad.wav").exists()


def test_junk_and_another_models_latents(vae_checkpoint, tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"\x80\x04 not an archive at all")
    with pytest.raises(SectlError, match="not an .npz archive"):
        codec.load_latents(tmp_path / "junk.npz")
    write_latents(tmp_path / "x.npz", model=np.array("another.pt sha256:0"))
    result = runner.invoke(app, ["encode", "--decode", str(tmp_path / "x.npz"), "-o", str(tmp_path / "x.wav"), "-m", str(vae_checkpoint)])
    assert result.exit_code == 0 and "encoded by another.pt sha256:0" in result.stderr


def test_encode_takes_shards_jobs_and_skip_existing_like_enhance(vae_checkpoint, speech, tmp_path):
    src = tmp_path / "in"
    for i in range(4):
        write_wav(src / f"{i}.wav", speech[i * 8000 : (i + 1) * 8000])
    parts = []
    for k in (1, 2):
        result = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / "lat"), "-m", str(vae_checkpoint), "--shard",
                                     f"{k}/2", "-j", "2", "--json"])  # fmt: skip
        assert result.exit_code == 0, result.output
        parts += [f["output"] for f in json.loads(result.stdout)["files"]]
    assert sorted(os.path.basename(p) for p in parts) == ["0.npz", "1.npz", "2.npz", "3.npz"]
    again = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / "lat"), "-m", str(vae_checkpoint), "--skip-existing", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["files"] == [] and "skipped 4 input(s)" in again.stderr


def test_encoding_progress_moves_chunk_by_chunk_and_names_unreadable_formats(vae, vae_checkpoint, speech, tmp_path):
    src = tmp_path / "in"
    write_wav(src / "long.wav", np.resize(speech, 16000 * 20))
    (src / "x.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    calls = []
    report = codec.encode_paths(vae, [src], tmp_path / "lat", "m", on_progress=lambda done, total: calls.append((done, total)),
                                options=codec.BatchOptions(), )  # fmt: skip
    assert report.unreadable == [str(src / "x.m4a")]
    # 800 latent frames in chunks of codec.CHUNK_FRAMES (400): a report per chunk within the one file, then the whole 20 s.
    assert len(calls) > 2 and calls[-1] == (pytest.approx(20.0), pytest.approx(20.0)) and calls[0][0] < 20


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_chunk_context_covers_the_encoders_and_decoders_receptive_fields(size):
    """Chunked coding equals whole-file coding only while CONTEXT_FRAMES covers both receptive fields; an
    architecture change that widens them (or adds a global operation) fails here, not silently."""
    from sectl.models import build_codec

    torch.manual_seed(0)
    vae = build_codec("speech_vae", size).eval()
    encoder, decoder = codec.receptive_field_frames(vae)
    assert 1 <= encoder <= codec.CONTEXT_FRAMES and 1 <= decoder <= codec.CONTEXT_FRAMES, (encoder, decoder)


def test_probes_give_the_teacher_16_khz_audio_whatever_the_vaes_rate(tmp_path, speech):
    from sectl.models import build_codec
    from sectl.probes import teacher_r2

    vae = build_codec("speech_vae", "tiny", sample_rate=24000).eval()
    seen = []

    class Teacher(torch.nn.Module):
        def forward(self, wave):
            seen.append(wave.shape[-1])
            return wave.unfold(-1, 320, 320).mean(-1, keepdim=True).transpose(1, 2).transpose(1, 2)

    files = [write_wav(tmp_path / f"{i}.wav", speech[i * 16000 : (i + 1) * 16000]) for i in range(3)]
    teacher_r2(vae, Teacher(), files, holdout=3)
    assert seen == [16000, 16000, 16000]  # 1 s each, at 16 kHz (the VAE itself works at 24 kHz)


def test_a_vae_run_exports_as_an_inference_checkpoint(vae_checkpoint, tmp_path):
    """README: `sectl export RUN -o NAME.pt` writes any run's inference-only checkpoint, a speech VAE's too."""
    result = runner.invoke(app, ["export", str(vae_checkpoint), "-o", str(tmp_path / "small.pt"), "--json"])
    assert result.exit_code == 0, result.output
    exported, original = load_codec(tmp_path / "small.pt"), load_codec(vae_checkpoint)
    assert type(exported) is type(original)
    assert all(torch.equal(a, b.half().float()) for a, b in zip(exported.state_dict().values(), original.state_dict().values()))


def test_encode_json_lists_skipped_outputs_and_warnings(vae_checkpoint, speech, tmp_path):
    """As `enhance --json` does: what --skip-existing left, and the warnings (latents decoded by another model)."""
    src = write_wav(tmp_path / "in" / "take.wav", speech[:16000])
    args = ["encode", str(src), "-o", str(tmp_path / "lat"), "--model", str(vae_checkpoint), "--json"]
    assert runner.invoke(app, args).exit_code == 0
    again = json.loads(runner.invoke(app, [*args, "--skip-existing"]).stdout)
    assert again["skipped"] == [str(tmp_path / "lat" / "take.npz")] and again["files"] == [] and again["warnings"] == []
    other = tmp_path / "other.pt"
    other.write_bytes(vae_checkpoint.read_bytes())
    decoded = runner.invoke(app, ["encode", "--decode", str(tmp_path / "lat"), "-o", str(tmp_path / "dec"), "-m", str(other), "--json"])
    assert decoded.exit_code == 0 and "decoded by" in json.loads(decoded.stdout)["warnings"][0]


def test_roundtrip_scores_visqol_and_a_missing_metric_package_stops_before_encoding(vae_checkpoint, speech, tmp_path, monkeypatch):
    from sectl.metrics import visqol
    from tests.metrics.extras import extra

    extra("visqol")
    write_wav(tmp_path / "in" / "a.wav", speech[:32000])
    result = runner.invoke(app, ["encode", "--roundtrip", str(tmp_path / "in"), "-o", str(tmp_path / "rt"), "--model",
                                 str(vae_checkpoint), "--json", "--metrics", "visqol"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert 1.0 <= json.loads(result.stdout)["scores"]["visqol"] <= 5.0
    monkeypatch.setitem(sys.modules, "visqol", None)
    visqol._api.cache_clear()
    missing = runner.invoke(app, ["encode", "--roundtrip", str(tmp_path / "in"), "-o", str(tmp_path / "rt2"), "--model",
                                  str(vae_checkpoint), "--metrics", "visqol"])  # fmt: skip
    visqol._api.cache_clear()
    assert missing.exit_code == 2 and "pip install 'sectl[metrics]'" in missing.stderr
    assert not (tmp_path / "rt2").exists()
