"""ONNX export: the stream graph equals the PyTorch model through onnxruntime (over a whole input and in
any chunks), states are explicit, the sidecar describes them, and exported graphs enhance like any model."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from sectl.audio import read_audio, resample
from sectl.enhance import enhance_tensor
from sectl.errors import SectlError
from sectl.models import build_enhancer
from sectl.export import export_model
from sectl.engines import load_enhancer
from sectl.onnx import OnnxFrames, export_onnx, load_onnx, sidecar_path
from sectl.streaming import Streamer, frame_step
from tests.streaming.test_streamer import random_chunks, stream


def torch_offline(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name", ["deepfilternet3", "nsnet2", "gtcrn"])
def test_stream_graph_enhances_any_length_in_one_pass(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    model = build_enhancer(name, "tiny").eval()
    export_onnx(model, tmp_path / "m.onnx")
    enhancer = load_onnx(tmp_path / "m.onnx")
    for length in (1, 3001, model.sample_rate + 17):  # the export traced 3 hops
        x = 0.1 * torch.randn(2, length)
        y = enhancer(x)
        assert y.shape == x.shape
        assert (y - torch_offline(model, x)).abs().max() < 1e-4


@pytest.mark.parametrize("name", ["deepfilternet3", "nsnet2", "gtcrn"])
def test_stream_graph_matches_the_frame_step_state_by_state(name: str, tmp_path) -> None:
    torch.manual_seed(1)
    model = build_enhancer(name, "tiny").eval()
    record = export_onnx(model, tmp_path / "s.onnx")
    step, frames = frame_step(model), OnnxFrames(tmp_path / "s.onnx")
    torch_state, onnx_state = step.initial_state(1), frames.initial_state(1)
    for a, b in zip(torch_state, onnx_state):  # the sidecar's initial values rebuild the initial state
        assert np.array_equal(a.numpy(), b)
    for _ in range(12):
        samples = 0.1 * torch.randn(1, step.layout.hop)
        with torch.no_grad():
            expected, *torch_state = step(samples, torch.full((1,), -1), *torch_state)
        got, onnx_state = frames(samples, -1, onnx_state)
        assert (got - expected).abs().max() < 1e-5
        for a, b in zip(torch_state, onnx_state):
            assert np.abs(a.numpy() - b).max() < 1e-4
    names = [i.name for i in onnx.load(str(tmp_path / "s.onnx")).graph.input]
    assert names[:2] == ["samples", "length"] and set(names[2:]) <= {s["name"] for s in record["states"]}
    sidecar = json.loads(sidecar_path(tmp_path / "s.onnx").read_text())
    assert sidecar == record and sidecar["latency_samples"] == step.layout.latency


@pytest.mark.parametrize("name", ["deepfilternet3", "nsnet2", "gtcrn"])
def test_onnx_streamer_equals_offline_pytorch(name: str, tmp_path) -> None:
    torch.manual_seed(2)
    model = build_enhancer(name, "tiny").eval()
    export_onnx(model, tmp_path / "s.onnx")
    x = 0.1 * torch.randn(1, int(0.3 * model.sample_rate))
    y = stream(Streamer(OnnxFrames(tmp_path / "s.onnx")), x, random_chunks(x.shape[-1], 3, 900))
    assert (y - torch_offline(model, x)).abs().max() < 1e-4


def test_exported_graph_is_a_first_class_model(tmp_path) -> None:
    """``--model NAME.onnx`` loads through the same loader and enhances at any rate exactly as the PyTorch
    model (both run the stream)."""
    torch.manual_seed(3)
    model = build_enhancer("nsnet2", "tiny").eval()
    export_onnx(model, tmp_path / "s.onnx")
    x = 0.1 * torch.randn(1, 44100)
    exact = enhance_tensor(model, x, 44100)
    assert (enhance_tensor(load_enhancer(tmp_path / "s.onnx"), x, 44100) - exact).abs().max() < 1e-4
    assert load_enhancer(tmp_path / "s.onnx", device="auto").sample_rate == 16000  # auto: the CPU, even beside a GPU
    with pytest.raises(SectlError, match="ONNX models run on the CPU"):
        load_enhancer(tmp_path / "s.onnx", device="meta")


def test_a_whole_signal_graph_of_an_older_version_is_refused_in_one_line(tmp_path) -> None:
    export_onnx(build_enhancer("nsnet2", "tiny").eval(), tmp_path / "old.onnx")
    graph = onnx.load(str(tmp_path / "old.onnx"))
    record = json.loads(graph.metadata_props[0].value)
    onnx.helper.set_model_props(graph, {"sectl": json.dumps({**record, "kind": "offline"})})
    onnx.save(graph, str(tmp_path / "old.onnx"))
    with pytest.raises(SectlError, match=r"old.onnx: a whole-signal graph from an older sectl; export the model again"):
        load_enhancer(tmp_path / "old.onnx")


def test_refusals_name_the_problem(tmp_path) -> None:
    with pytest.raises(SectlError, match="demucs cannot stream"):
        export_onnx(build_enhancer("demucs", "tiny"), tmp_path / "d.onnx")
    (tmp_path / "taken.onnx").write_bytes(b"keep")
    with pytest.raises(SectlError, match="output exists"):
        export_model("nsnet2", tmp_path / "taken.onnx")
    assert (tmp_path / "taken.onnx").read_bytes() == b"keep"
    with pytest.raises(SectlError, match="no such ONNX model file"):
        load_onnx(tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a graph")
    with pytest.raises(SectlError, match="bad.onnx: not a loadable ONNX model"):
        load_onnx(tmp_path / "bad.onnx")


def real_speech(vctk, rate: int) -> torch.Tensor:
    audio = read_audio(vctk / "noisy" / "p287_001.wav")
    return resample(audio.samples, audio.sample_rate, rate)


def assert_onnx_parity(source, vctk, tmp_path) -> None:
    """The stream graph, over the whole input and in random chunks, against the PyTorch model on real noisy
    speech."""
    model = load_enhancer(source)
    x = real_speech(vctk, model.sample_rate)
    expected = torch_offline(model, x)
    export_model(str(source), tmp_path / "stream.onnx")
    assert (load_onnx(tmp_path / "stream.onnx")(x) - expected).abs().max() < 1e-4
    y = stream(Streamer(OnnxFrames(tmp_path / "stream.onnx")), x, random_chunks(x.shape[-1], 4, 3000))
    assert (y - expected).abs().max() < 1e-4


@pytest.mark.parametrize("name", ["deepfilternet3", "nsnet2"])
def test_pretrained_models_export_with_parity_on_real_speech(name: str, models_dir, vctk, tmp_path) -> None:
    assert_onnx_parity(name, vctk, tmp_path)


def test_pretrained_gtcrn_exports_with_parity_on_real_speech(vctk, tmp_path) -> None:
    from tests.conftest import MODELS

    if not (MODELS / "gtcrn" / "checkpoints").is_dir():
        pytest.skip(f"GTCRN's official files not found at {MODELS / 'gtcrn'} (set SECTL_TEST_MODELS)")
    assert_onnx_parity("gtcrn", vctk, tmp_path)


def test_gtcrn_stream_graph_names_its_states(tmp_path) -> None:
    record = export_onnx(build_enhancer("gtcrn", "tiny").eval(), tmp_path / "g.onnx")
    assert [s["name"] for s in record["states"]] == ["frame", "analysis", "synthesis", "conv", "attention", "time_gru"]
    assert record["layout"]["lead_in"] == 255 and record["latency_ms"] == 32.0 and record["multi_hop"]


def test_model_fine_tuned_with_mal_exports_with_parity(models_dir, data_dir, vctk, tmp_path) -> None:
    from sectl.train import resolve_config, train

    config = resolve_config("mal", [
        "init_from=deepfilternet3", "train.batch_size=1", "train.steps=1", "train.warmup_steps=1",
        "data.segment_s=0.5", f"data.clean={data_dir / 'speech'}", f"data.noise={data_dir / 'noise'}",
        "train.threads=1",
    ])  # fmt: skip
    train(config, tmp_path / "run")
    tuned, published = load_enhancer(tmp_path / "run"), load_enhancer("deepfilternet3")
    assert any(not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), published.state_dict().values()))
    assert_onnx_parity(tmp_path / "run", vctk, tmp_path)


def test_post_filter_is_baked_into_the_graph(tmp_path) -> None:
    torch.manual_seed(4)
    model = build_enhancer("deepfilternet3", "tiny").eval().with_post_filter(0.02)
    record = export_onnx(model, tmp_path / "pf.onnx")
    assert record["constructor_args"]["post_filter_beta"] == 0.02
    x = 0.1 * torch.randn(1, 6000)
    assert (load_onnx(tmp_path / "pf.onnx")(x) - torch_offline(model, x)).abs().max() < 1e-4


def test_post_filter_is_refused_for_other_models() -> None:
    from sectl.engines import with_post_filter

    with pytest.raises(SectlError, match="--post-filter: nsnet2 has none"):
        with_post_filter(build_enhancer("nsnet2", "tiny"))


@pytest.mark.parametrize("name,states", [
    ("masknet", ["frame", "analysis", "synthesis", "envelope", "lstm_h", "lstm_c"]),
    ("demucs", ["frame", "encoder1", "skip1", "decoder1", "encoder2", "skip2", "decoder2", "encoder3", "decoder3",
                "lstm_h", "lstm_c"]),
])  # fmt: skip
def test_causal_models_trained_here_export_their_stream_step(name: str, states: list[str], tmp_path) -> None:
    torch.manual_seed(5)
    model = build_enhancer(name, "tiny", causal=True, normalize=False).eval()
    record = export_onnx(model, tmp_path / "m.onnx")
    assert [s["name"] for s in record["states"]] == states
    x = 0.1 * torch.randn(1, 3000)
    y = stream(Streamer(OnnxFrames(tmp_path / "m.onnx")), x, random_chunks(x.shape[-1], 5, 500))
    assert (y - torch_offline(model, x)).abs().max() < 1e-4
    assert record["multi_hop"] is (name == "masknet")


@pytest.mark.parametrize("name", ["deepfilternet3", "nsnet2", "gtcrn"])
def test_a_call_mixing_warm_up_and_later_hops_comes_out_nan(name: str, tmp_path) -> None:
    """The warm-up is gated per call, so such a call would be silently wrong: both engines make it NaN."""
    from sectl.streaming import TorchFrames

    model = build_enhancer(name, "tiny").eval()
    export_onnx(model, tmp_path / "s.onnx")
    layout = frame_step(model).layout
    assert layout.warmup > 0
    x = 0.1 * torch.randn(1, (layout.warmup + 2) * layout.hop)
    split = layout.warmup * layout.hop
    for runner in (OnnxFrames(tmp_path / "s.onnx"), TorchFrames(frame_step(model))):
        mixed, _ = runner(x, -1, runner.initial_state(1))
        assert torch.isnan(mixed).all()
        first, state = runner(x[:, :split], -1, runner.initial_state(1))
        rest, state = runner(x[:, split:], -1, state)
        assert torch.isfinite(torch.cat([first, rest], dim=-1)).all()
        more, _ = runner(x, -1, state)  # after the warm-up, any number of hops
        assert torch.isfinite(more).all()
