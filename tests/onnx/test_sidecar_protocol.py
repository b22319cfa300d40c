"""Integrators need only the sidecar: examples/stream_onnx.py (numpy, onnxruntime and the sidecar, no sectl)
enhances real speech exactly as `sectl` does offline, for every architecture that streams."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sectl.audio import read_audio, resample
from sectl.enhance import enhance_tensor
from sectl.models import build_enhancer
from sectl.onnx import export_onnx

REPO = Path(__file__).resolve().parents[2]
STREAMABLE = {
    "deepfilternet3": {},
    "nsnet2": {},
    "gtcrn": {},
    "masknet": {"causal": True, "normalize": False},
    "demucs": {"causal": True, "normalize": False},
}


def driver():
    spec = importlib.util.spec_from_file_location("stream_onnx", REPO / "examples" / "stream_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", STREAMABLE)
def test_the_example_driver_equals_offline_enhancement(name, vctk, tmp_path):
    torch.manual_seed(3)
    model = build_enhancer(name, "tiny", **STREAMABLE[name]).eval()
    record = export_onnx(model, tmp_path / "s.onnx")
    frame = next(s for s in record["states"] if s["name"] == "frame")
    assert frame["initial"] == [record["layout"]["first_frame"]]  # not 0: the sidecar alone starts it right
    assert set(record["latency_ms_by_input_rate"]) == {"16000", "44100", "48000"} and "preroll" in record["protocol"]
    audio = read_audio(vctk / "noisy" / "p287_002.wav")
    x = resample(audio.samples, audio.sample_rate, model.sample_rate)[:, : 2 * model.sample_rate]
    stereo = torch.cat([x, 0.5 * x.flip(-1)])  # channels as a batch
    assert record["multi_hop"] == (name != "demucs") and "warmup" in record["layout"]
    example = driver()
    example.BLOCK_HOPS = 37  # several calls of many hops, a short one at the end of the live part
    got = example.enhance(tmp_path / "s.onnx", stereo.numpy())
    expected = enhance_tensor(model, stereo, model.sample_rate).numpy()
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


def test_the_driver_runs_from_the_command_line(vctk, tmp_path):
    import soundfile as sf

    model = build_enhancer("nsnet2", "tiny").eval()
    export_onnx(model, tmp_path / "s.onnx")
    driver().main(str(tmp_path / "s.onnx"), str(vctk / "noisy" / "p287_001.wav"), str(tmp_path / "out.wav"))
    out, rate = sf.read(tmp_path / "out.wav")
    assert rate == 16000 and len(out) == sf.info(vctk / "noisy" / "p287_001.wav").frames
    assert json.loads((tmp_path / "s.json").read_text())["kind"] == "stream"
