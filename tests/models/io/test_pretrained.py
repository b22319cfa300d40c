"""Parity with the published models: sectl's PyTorch ports against onnxruntime running the official
graphs and against the upstream reference traces in ../shared/models/*/reference/."""

from __future__ import annotations

import tarfile

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from sectl.errors import SectlError
from sectl.metrics.intrusive import si_sdr
from sectl.models.enhancers.erb import erb_band_widths
from sectl.models.io.pretrained import load_pretrained
from sectl.models.enhancers.spectral import unstack_complex


def snr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((estimate - reference) ** 2)))


@pytest.fixture(scope="module")
def nsnet2(models_dir):
    return load_pretrained("nsnet2")


@pytest.fixture(scope="module")
def dfn3(models_dir):
    return load_pretrained("deepfilternet3")


@pytest.fixture(scope="module")
def dfn3_trace(models_dir):
    return dict(np.load(models_dir / "deepfilternet3" / "reference" / "dfn3_trace_p287_001.npz"))


@pytest.fixture(scope="module")
def dfn3_sessions(models_dir):
    with tarfile.open(models_dir / "deepfilternet3" / "DeepFilterNet3_onnx.tar.gz") as tar:
        graphs = {m.name.rsplit("/", 1)[-1]: tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(".onnx")}
    return {name: ort.InferenceSession(data, providers=["CPUExecutionProvider"]) for name, data in graphs.items()}


# ---------------------------------------------------------------------------------------------- NSNet2
def nsnet2_reference(samples: np.ndarray, session: ort.InferenceSession) -> np.ndarray:
    """The published pipeline, independently: numpy framing and FFTs around the official graph."""
    window = np.sqrt(np.hanning(320))
    frames = int(np.ceil((len(samples) + 160) / 160))
    padded = np.concatenate([samples, np.zeros(frames * 160 - len(samples))])
    spec = np.stack([np.fft.rfft(window * padded[i * 160 : i * 160 + 320]) for i in range(frames - 1)])
    features = np.log10(np.maximum(np.abs(spec) ** 2, 1e-12)).astype(np.float32)[None]
    gain = np.clip(session.run(None, {"input": features})[0][0], 1e-4, 1.0)
    out = np.zeros(160 * (len(spec) - 1) + 320)
    for i, frame in enumerate(np.fft.irfft(spec * gain, 320)):
        out[i * 160 : i * 160 + 320] += window * frame
    return out[: len(samples)]


def test_nsnet2_matches_the_official_graph_on_every_vctk_file(nsnet2, models_dir, vctk):
    session = ort.InferenceSession(str(models_dir / "nsnet2" / "nsnet2-20ms-baseline.onnx"))
    for path in sorted((vctk / "noisy").glob("*.wav")):
        samples, _ = sf.read(path)
        with torch.no_grad():
            ours = nsnet2(torch.tensor(samples, dtype=torch.float32)[None])[0].double().numpy()
        reference = nsnet2_reference(samples, session)
        assert si_sdr(ref=reference, est=ours) >= 30.0, path.name


def test_nsnet2_matches_its_reference_trace(nsnet2, models_dir):
    trace = np.load(models_dir / "nsnet2" / "reference" / "nsnet2_trace_p287_001.npz")
    x = torch.tensor(trace["input_16k"], dtype=torch.float32)[None]
    with torch.no_grad():
        spec_level, _, states = nsnet2.features(x)
        spec = unstack_complex(spec_level)[0].T.numpy()
        gain = nsnet2.gain(states)[0].T.numpy()
        out = nsnet2(x)[0].numpy()
    assert np.abs(spec - trace["stft_spec"]).max() < 1e-4 * np.abs(trace["stft_spec"]).max()
    assert np.abs(gain - np.clip(trace["onnx_gain"], 1e-4, 1)).max() < 1e-3
    assert snr_db(out, trace["output_16k"][: len(out)]) >= 30.0


# ---------------------------------------------------------------------------------------------- DeepFilterNet3
def test_dfn3_stft_and_features_match_the_trace(dfn3, dfn3_trace):
    t = dfn3_trace
    assert erb_band_widths(48000, 960, 32, 2) == t["erb_widths"].tolist()
    assert dfn3.alpha == pytest.approx(float(t["norm_alpha"]))
    for key, signal in (("stft_of_impulse_at_2400", torch.zeros(1, 4800).index_fill_(1, torch.tensor([2400]), 1.0)),
                        ("stft_of_ones_4800", torch.ones(1, 4800))):  # fmt: skip
        ours = dfn3.stft(signal)[0].T.numpy()[: t[key].shape[1]]
        assert np.abs(ours - t[key][0]).max() < 1e-6, key
    with torch.no_grad():
        spec = dfn3.stft(torch.tensor(t["input_48k"]))
        feat_erb, feat_spec = dfn3.input_features(spec)
    reference = t["stft_spec"][0, 0, ..., 0] + 1j * t["stft_spec"][0, 0, ..., 1]
    assert np.abs(spec[0].T.numpy() - reference).max() < 1e-6
    assert np.abs(feat_erb.numpy() - t["feat_erb"]).max() < 1e-4
    assert np.abs(feat_spec[0].permute(1, 2, 0).numpy() - t["feat_spec"][0, 0]).max() < 1e-4
    assert np.abs(dfn3._look_ahead(feat_erb).numpy() - t["enc_in_feat_erb"]).max() < 1e-4
    assert np.abs(dfn3._look_ahead(feat_spec).numpy() - t["enc_in_feat_spec"]).max() < 1e-4


def test_dfn3_sub_graphs_match_onnxruntime(dfn3, dfn3_trace, dfn3_sessions):
    t = dfn3_trace
    tensors = lambda *keys: [torch.tensor(t[k]) for k in keys]  # noqa: E731
    enc = dfn3_sessions["enc.onnx"].run(None, {"feat_erb": t["enc_in_feat_erb"], "feat_spec": t["enc_in_feat_spec"]})
    names = [o.name for o in dfn3_sessions["enc.onnx"].get_outputs()]
    expected = dict(zip(names, enc))
    with torch.no_grad():
        e0, e1, e2, e3, c0, emb = dfn3.encoder(*tensors("enc_in_feat_erb", "enc_in_feat_spec"))
        ours = {"e0": e0, "e1": e1, "e2": e2, "e3": e3, "c0": c0, "emb": emb}
        for name, value in ours.items():
            assert np.abs(value.numpy() - expected[name]).max() < 1e-4, name
        # The local SNR is a sigmoid scaled to 50 dB: compare it on the sigmoid's [0, 1] scale.
        lsnr_error = np.abs(dfn3.encoder.local_snr(emb).numpy() - expected["lsnr"]).max() / 50.0
        assert lsnr_error < 1e-4
        inputs = {k: expected[k] for k in ("emb", "e3", "e2", "e1", "e0")}
        (mask,) = dfn3_sessions["erb_dec.onnx"].run(None, inputs)
        assert np.abs(dfn3.erb_decoder(*(torch.tensor(v) for v in inputs.values())).numpy() - mask).max() < 1e-4
        coefs = dfn3_sessions["df_dec.onnx"].run(None, {"emb": expected["emb"], "c0": expected["c0"]})[0]
        assert np.abs(dfn3.df_decoder(torch.tensor(expected["emb"]), torch.tensor(expected["c0"])).numpy() - coefs).max() < 1e-4


def test_dfn3_end_to_end_matches_the_trace(dfn3, dfn3_trace):
    with torch.no_grad():
        out = dfn3(torch.tensor(dfn3_trace["input_48k"]))[0].numpy()
    assert out.shape == dfn3_trace["output_48k"][0].shape
    assert si_sdr(ref=dfn3_trace["output_48k"][0], est=out) >= 30.0


# ---------------------------------------------------------------------------------------------- quality, lookup
def test_nsnet2_quality_on_vctk_is_the_published_models(nsnet2, vctk, tmp_path):
    from sectl.enhance import enhance_paths
    from sectl.metrics import evaluate

    enhance_paths([vctk / "noisy"], tmp_path, model=nsnet2)
    assert evaluate(tmp_path, ref=vctk / "clean", metrics="pesq_wb").mean["pesq_wb"] == pytest.approx(1.580, abs=0.03)


def test_missing_official_files_offline_name_the_places_searched(tmp_path, monkeypatch):
    monkeypatch.setenv("SECTL_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(SectlError) as info:
        load_pretrained("nsnet2")
    assert str(tmp_path / "models" / "nsnet2") in str(info.value) and str(tmp_path / "cache") in str(info.value)

    from sectl import modelfiles

    monkeypatch.setattr(modelfiles.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(SectlError, match="could not be downloaded"):
        load_pretrained("deepfilternet3")


def test_a_corrupt_official_file_is_a_clear_error(tmp_path, monkeypatch):
    folder = tmp_path / "nsnet2"
    folder.mkdir()
    (folder / "nsnet2-20ms-baseline.onnx").write_bytes(b"not onnx")
    monkeypatch.setenv("SECTL_MODELS_DIR", str(tmp_path))
    with pytest.raises(SectlError, match="nsnet2-20ms-baseline.onnx: not a readable ONNX model"):
        load_pretrained("nsnet2")


def test_enhance_by_pretrained_name_from_the_command_line(models_dir, vctk, tmp_path):
    from typer.testing import CliRunner

    from sectl.cli.app import app

    result = CliRunner().invoke(app, ["enhance", str(vctk / "noisy" / "p287_001.wav"), "-o", str(tmp_path / "x.wav"), "--model", "nsnet2"])
    assert result.exit_code == 0, result.output
    assert "pretrained nsnet2" in result.stderr and sf.info(tmp_path / "x.wav").samplerate == 16000
    unknown = CliRunner().invoke(app, ["enhance", str(vctk / "noisy" / "p287_001.wav"), "-o", str(tmp_path / "y.wav"), "--model", "nsnet3"])
    assert unknown.exit_code == 2 and "no such model" in unknown.stderr and "deepfilternet3" in unknown.stderr  # a usage error
