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


# ---------------------------------------------------------------------------------------------- GTCRN
GTCRN_CHECKPOINTS = {"gtcrn": "vctk", "gtcrn-dns3": "dns3", "gtcrn-dns3-stream": "dns3_stream"}
"""Each pretrained name and the suffix of its traces in ../shared/models/gtcrn/traces/official_code."""


@pytest.fixture(scope="module")
def gtcrn_dir():
    from tests.conftest import MODELS

    if not (MODELS / "gtcrn" / "checkpoints").is_dir():
        pytest.skip(f"GTCRN's official files not found at {MODELS / 'gtcrn'} (set SECTL_TEST_MODELS)")
    return MODELS / "gtcrn"


@pytest.mark.parametrize("name", list(GTCRN_CHECKPOINTS))
def test_gtcrn_matches_the_official_code_for_every_checkpoint_on_both_inputs(name, gtcrn_dir, vctk):
    """The official gtcrn.py's outputs (float32 WAVs, made as its infer.py: torch.stft/istft, which stops at the
    last whole hop) on the repository's noisy example and on a vctk pair; measured: at most 4e-7."""
    model = load_pretrained(name)
    for key, source in (("mix", gtcrn_dir / "traces" / "offline" / "mix.wav"), ("p287_002", vctk / "noisy" / "p287_002.wav")):
        samples, _ = sf.read(source, dtype="float32")
        reference, _ = sf.read(gtcrn_dir / "traces" / "official_code" / f"{key}_{GTCRN_CHECKPOINTS[name]}.wav", dtype="float32")
        with torch.no_grad():
            ours = model(torch.from_numpy(samples)[None])[0].numpy()
        assert ours.shape == samples.shape and len(reference) == len(samples) // 256 * 256
        assert np.abs(ours[: len(reference)] - reference).max() < 1e-4, key


def test_gtcrn_checkpoints_are_three_different_models(gtcrn_dir):
    weights = {name: load_pretrained(name).state_dict() for name in GTCRN_CHECKPOINTS}
    for a, b in (("gtcrn", "gtcrn-dns3"), ("gtcrn-dns3", "gtcrn-dns3-stream")):
        assert any(not torch.equal(weights[a][k], weights[b][k]) for k in weights[a]), (a, b)


class FakeResponse:
    """What ``urllib.request.urlopen`` returns, serving ``payload``."""

    def __init__(self, payload: bytes) -> None:
        self.payload, self.headers = payload, {"Content-Length": str(len(payload))}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def read(self, size: int = -1) -> bytes:
        chunk, self.payload = (self.payload, b"") if size < 0 else (self.payload[:size], self.payload[size:])
        return chunk


def test_gtcrn_downloads_from_the_upstream_commit_checks_and_caches(gtcrn_dir, tmp_path, monkeypatch):
    """Nothing local: the stream checkpoint comes from its upstream path (stream/onnx_models/), is checked and
    kept in the cache under the local name, and the next load reads the cache without the network."""
    from sectl import modelfiles

    monkeypatch.setenv("SECTL_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    asked = []

    def serve(url, timeout=None):
        asked.append(url)
        return FakeResponse((gtcrn_dir / "checkpoints" / "model_trained_on_dns3_stream.tar").read_bytes())

    monkeypatch.setattr(modelfiles.urllib.request, "urlopen", serve)
    model = load_pretrained("gtcrn-dns3-stream")
    assert asked == ["https://github.com/Xiaobin-Rong/gtcrn/raw/3862c44/stream/onnx_models/model_trained_on_dns3.tar"]
    assert (tmp_path / "cache" / "sectl" / "models" / "gtcrn" / "checkpoints" / "model_trained_on_dns3_stream.tar").is_file()
    monkeypatch.setattr(modelfiles.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    again = load_pretrained("gtcrn-dns3-stream")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))

    asked.clear()
    monkeypatch.setattr(modelfiles.urllib.request, "urlopen", lambda url, timeout=None: asked.append(url) or FakeResponse(b"tampered"))
    with pytest.raises(SectlError, match="model_trained_on_vctk.tar: downloaded file failed its checksum; not kept"):
        load_pretrained("gtcrn")
    assert asked == ["https://github.com/Xiaobin-Rong/gtcrn/raw/3862c44/checkpoints/model_trained_on_vctk.tar"]
    assert not (tmp_path / "cache" / "sectl" / "models" / "gtcrn" / "checkpoints" / "model_trained_on_vctk.tar").exists()


def test_a_gtcrn_checkpoint_with_other_erb_bands_or_damaged_is_refused(gtcrn_dir, tmp_path, monkeypatch):
    from sectl.modelfiles import sha256
    from sectl.models.io import pretrained

    checkpoint = torch.load(gtcrn_dir / "checkpoints" / "model_trained_on_vctk.tar", map_location="cpu", weights_only=True)
    checkpoint["model"]["erb.erb_fc.weight"] = checkpoint["model"]["erb.erb_fc.weight"].roll(1, 0)
    folder = tmp_path / "gtcrn" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(checkpoint, folder / "model_trained_on_vctk.tar")
    (folder / "model_trained_on_dns3.tar").write_bytes(b"not a checkpoint")
    monkeypatch.setenv("SECTL_MODELS_DIR", str(tmp_path))
    for name, file in (("gtcrn", "model_trained_on_vctk.tar"), ("gtcrn-dns3", "model_trained_on_dns3.tar")):
        entry = pretrained.PRETRAINED[name]
        digests = {f"checkpoints/{file}": sha256(folder / file)}  # the files as they are here
        monkeypatch.setitem(pretrained.PRETRAINED, name, pretrained.Pretrained(
            pretrained.ModelFiles("gtcrn", digests, entry.files.url), entry.convert, entry.credit))  # fmt: skip
    with pytest.raises(SectlError, match="its ERB matrix erb.erb_fc.weight differs from GTCRN's"):
        load_pretrained("gtcrn")
    with pytest.raises(SectlError, match="model_trained_on_dns3.tar: not a readable PyTorch checkpoint"):
        load_pretrained("gtcrn-dns3")


def test_enhance_with_gtcrn_by_name_from_the_command_line(gtcrn_dir, vctk, tmp_path):
    from typer.testing import CliRunner

    from sectl.cli.app import app

    for name in GTCRN_CHECKPOINTS:
        out = tmp_path / f"{name}.wav"
        result = CliRunner().invoke(app, ["enhance", str(vctk / "noisy" / "p287_001.wav"), "-o", str(out), "--model", name])
        assert result.exit_code == 0, result.output
        assert f"pretrained {name}" in result.stderr and sf.info(out).frames == sf.info(vctk / "noisy" / "p287_001.wav").frames
