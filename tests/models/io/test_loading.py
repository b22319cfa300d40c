"""Model loading for uses that need a PyTorch module: an exported ONNX graph is refused in one line (exit 2)."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.errors import UsageError
from sectl.models import build_enhancer
from sectl.engines import load_enhancer
from sectl.models.io.loading import load_torch_enhancer
from sectl.onnx.export import export_onnx

runner = CliRunner()


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    """A real exported graph (tiny DeepFilterNet3), so the refusal is tested on what users hold."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("onnx") / "x.onnx"
    export_onnx(build_enhancer("deepfilternet3", "tiny").eval(), path)
    return path


INSTEAD = "pass a checkpoint, a run folder or a pretrained name"


def assert_one_line_refusal(result, graph, need: str, instead: str = INSTEAD) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"error: {graph}: an ONNX graph cannot give {need}; {instead}"]


def test_the_graph_still_loads_for_enhancement_and_is_refused_where_a_module_is_needed(graph):
    assert not isinstance(load_enhancer(graph), torch.nn.Module)  # enhance runs it through onnxruntime
    with pytest.raises(UsageError, match="an ONNX graph cannot give gradients"):
        load_torch_enhancer(graph, need="gradients")


def test_align_model_features(graph, vctk):
    clean, noisy = vctk / "clean" / "p287_001.wav", vctk / "noisy" / "p287_001.wav"
    result = runner.invoke(app, ["align", str(clean), str(noisy), "--features", "model", "-m", str(graph)])
    assert_one_line_refusal(result, graph, "encoder features")


@pytest.mark.parametrize("features", ["model", "ssl"])
def test_positional_diagnosis(graph, vctk, features):
    take = vctk / "clean" / "p287_001.wav"
    result = runner.invoke(app, ["align", "--diagnose-position", str(take), "--features", features, "-m", str(graph)])
    if features == "model":
        assert_one_line_refusal(result, graph, "encoder features")
    else:
        assert_one_line_refusal(result, graph, "SSL features", "pass an SSL state dict (.pt) or an SSL model name")


def test_train_init_from(graph, data_dir, tmp_path):
    result = runner.invoke(app, [
        "train", "--preset", "finetune", "--out", str(tmp_path / "run"), "--set", f"init_from={graph}",
        "--set", f"data.clean={data_dir / 'speech'}", "--set", f"data.noise={data_dir / 'noise'}",
        "--set", "train.steps=1", "--set", "train.batch_size=1", "--set", "train.threads=1",
    ])  # fmt: skip
    assert_one_line_refusal(result, graph, "weights to train (init_from)")
    assert not (tmp_path / "run").exists()
