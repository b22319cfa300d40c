"""The graph cache cannot serve a stale graph: its key moves with everything a graph depends on; it is
bounded, listed and cleared (`sectl cache`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.models import build_enhancer
from sectl.onnx import cache


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def nsnet2():
    torch.manual_seed(0)
    return build_enhancer("nsnet2", "tiny").eval()


def test_the_key_moves_with_buffers_persistent_or_not_arguments_and_versions(monkeypatch):
    model = nsnet2()
    key = cache.graph_key(model)
    assert cache.graph_key(nsnet2()) == key  # deterministic
    model.register_buffer("start_value", torch.zeros(3), persistent=False)  # not in the state dict
    assert "start_value" not in model.state_dict() and cache.graph_key(model) != key
    torch.manual_seed(0)
    other_args = build_enhancer("nsnet2", "tiny", min_gain_db=-60.0)  # same weights, another argument
    assert cache.graph_key(other_args) != key
    monkeypatch.setattr(cache, "versions", lambda: {"torch": "0.0", "onnxruntime": "0.0"})
    assert cache.graph_key(nsnet2()) != key


def test_the_key_moves_with_the_source_of_any_module_the_graph_depends_on(tmp_path, monkeypatch):
    copy = tmp_path / "frames.py"
    copy.write_text("x = 1\n")
    monkeypatch.setattr(cache, "_sources", lambda module: (copy,))
    key = cache.graph_key(nsnet2())
    copy.write_text("x = 2\n")
    assert cache.graph_key(nsnet2()) != key


def test_the_sources_are_every_sectl_module_that_exporting_imports():
    """Not a list kept by hand: everything a fresh process imports from sectl to build and export a graph is
    in the key's source closure."""
    probe = (
        "import sys, json, torch\n"
        "from sectl.models import build_enhancer\n"
        "from sectl.onnx.cache import _sources\n"
        "from sectl.onnx.engine import cached_graph\n"
        "for name in ('nsnet2', 'deepfilternet3'):\n"
        "    cached_graph(build_enhancer(name, 'tiny').eval())\n"
        "files = {m.__file__ for n, m in list(sys.modules.items()) if n.startswith('sectl') and getattr(m, '__file__', None)}\n"
        "known = {str(p) for n in ('sectl.models.enhancers.nsnet2', 'sectl.models.enhancers.deepfilternet3') for p in _sources(n)}\n"
        "print(json.dumps(sorted(files - known)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_the_cache_keeps_its_size_bound_dropping_the_least_recently_used(monkeypatch):
    from sectl.onnx.engine import cached_graph

    first = cached_graph(nsnet2())
    monkeypatch.setenv("SECTL_CACHE_GB", str(1.5 * first.stat().st_size / 2**30))
    second = cached_graph(build_enhancer("nsnet2", "tiny", hidden=40).eval())
    assert second.is_file() and not first.exists()  # one graph fits: the older went


def test_a_failing_graph_falls_back_to_pytorch_with_a_warning_under_auto(monkeypatch):
    from sectl.engines import inference_model
    from sectl.errors import ModelError, SectlWarning

    def broken(model, threads=None):
        raise RuntimeError("onnxruntime exploded")

    monkeypatch.setattr("sectl.engines.onnx_engine", broken)
    model = nsnet2()
    with pytest.warns(SectlWarning, match="onnxruntime exploded.*running PyTorch"):
        assert inference_model(model, "auto") is model
    with pytest.raises(ModelError, match="onnxruntime graph failed"):
        inference_model(model, "onnxruntime")


def test_sectl_cache_lists_and_clears():
    from sectl.onnx.engine import cached_graph

    path = cached_graph(nsnet2())
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["cache", "--json"]).stdout)
    assert [g["file"] for g in listed["graphs"]] == [str(path)] and listed["total_bytes"] > path.stat().st_size
    assert path.name in runner.invoke(app, ["cache"]).stdout
    cleared = runner.invoke(app, ["cache", "--clear"])
    assert cleared.exit_code == 0 and "removed 1 graph(s)" in cleared.stdout and not path.exists()
