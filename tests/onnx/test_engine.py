"""onnxruntime under enhance: same output as PyTorch, graphs cached by what decides them."""

from __future__ import annotations

import pytest
import torch

from sectl.audio import read_audio
from sectl.engines import inference_model
from sectl.enhance import enhance_tensor
from sectl.errors import SectlError, SectlWarning, UsageError
from sectl.metrics.intrusive import si_sdr
from sectl.models import build_enhancer
from sectl.engines import load_enhancer
from sectl.onnx import OnnxEnhancer
from sectl.onnx import engine as engine_module


def test_default_model_through_onnxruntime_keeps_its_output(vctk):
    audio = read_audio(vctk / "noisy" / "p287_001.wav")
    model = load_enhancer("default")
    reference = enhance_tensor(model, audio.samples, audio.sample_rate)
    fast = inference_model(model, "auto")
    assert isinstance(fast, OnnxEnhancer)
    output = enhance_tensor(fast, audio.samples, audio.sample_rate)
    assert si_sdr(output[0].numpy(), ref=reference[0].numpy()) > 60.0


def test_graphs_are_cached_and_keyed_by_the_weights(monkeypatch):
    torch.manual_seed(0)
    model = build_enhancer("nsnet2", "tiny").eval()
    first = engine_module.cached_graph(model)
    monkeypatch.setattr("sectl.onnx.export.export_onnx", lambda *a, **k: pytest.fail("exported again"))
    assert engine_module.cached_graph(model) == first  # reused, not re-exported
    with torch.no_grad():
        model.fc_in[0].bias.add_(1.0)
    assert engine_module.graph_key(model) not in first.name  # other weights, another graph


def test_auto_falls_back_to_pytorch_when_the_cache_cannot_be_written(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    nsnet2 = build_enhancer("nsnet2", "tiny")
    with pytest.warns(SectlWarning, match="running PyTorch"):
        assert inference_model(nsnet2, "auto") is nsnet2
    with pytest.raises(SectlError, match="cannot write"):
        inference_model(nsnet2, "onnxruntime")


def test_engine_choice():
    demucs = build_enhancer("demucs", "tiny")
    assert inference_model(demucs, "auto") is demucs  # no graph for it: PyTorch
    with pytest.raises(SectlError, match=r"^no onnxruntime graph, as demucs cannot stream: .*\(use --engine torch\)$"):
        inference_model(demucs, "onnxruntime")
    with pytest.raises(UsageError, match="--engine: expected one of auto, torch, onnxruntime"):
        inference_model(demucs, "tensorrt")
    nsnet2 = build_enhancer("nsnet2", "tiny")
    assert inference_model(nsnet2, "torch") is nsnet2
    assert inference_model(nsnet2.to("meta"), "auto").__class__ is type(nsnet2)  # not on the CPU: PyTorch


def test_a_damaged_cached_graph_is_exported_again(tmp_path, monkeypatch):
    """A cache entry cut short (a full disk, a killed copy) is sectl's own file: rebuilt, not an error."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    torch.manual_seed(0)
    model = build_enhancer("nsnet2", "tiny").eval()
    path = engine_module.cached_graph(model)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])
    with pytest.warns(SectlWarning, match="does not load.*exporting it again"):
        assert isinstance(engine_module.onnx_engine(model), OnnxEnhancer)
    assert path.read_bytes() == good


def test_a_graph_that_stays_unloadable_is_a_model_error_exit_2(tmp_path, monkeypatch, vctk):
    from typer.testing import CliRunner

    from sectl.cli.app import app
    from sectl.errors import ModelError
    from sectl.models.io.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "nsnet2.pt", build_enhancer("nsnet2", "tiny"))

    def damaged_export(model, path, *args, **kwargs):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"garbage")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("sectl.onnx.export.export_onnx", damaged_export)
    with pytest.raises(ModelError, match="not a loadable ONNX model"), pytest.warns(SectlWarning, match="exporting it again"):
        engine_module.onnx_engine(build_enhancer("nsnet2", "tiny"))
    result = CliRunner().invoke(app, ["enhance", str(vctk / "noisy" / "p287_001.wav"), "-o", str(tmp_path / "o.wav"),
                                      "-m", str(tmp_path / "nsnet2.pt"), "--engine", "onnxruntime"])  # fmt: skip
    assert result.exit_code == 2 and "not a loadable ONNX model" in result.stderr and not (tmp_path / "o.wav").exists()
