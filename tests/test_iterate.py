from __future__ import annotations

import json

import pytest

from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.iterate import iterate
from sectl.engines import load_enhancer

runner = CliRunner()

def test_every_step_is_scored(tiny_checkpoint, vctk, tmp_path):
    model = load_enhancer(tiny_checkpoint)
    report = iterate(model, vctk / "noisy" / "p287_001.wav", 2, ref=vctk / "clean" / "p287_001.wav", out_dir=tmp_path, non_intrusive=False)
    assert [s["step"] for s in report.steps] == [0, 1, 2]
    assert "delta_si_sdr" not in report.steps[0] and "delta_si_sdr" in report.steps[1]
    assert abs(report.steps[0]["pesq_wb"] - 1.762) < 1e-3  # step 0 is the untouched input
    assert {"pesq_wb", "estoi", "si_sdr", "lsd", "level_dbfs"} <= set(report.steps[2])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"p287_001_step0{k}.wav" for k in range(3)]


def test_cli_json_schema_and_plot(tiny_checkpoint, vctk, tmp_path):
    plot = tmp_path / "steps.png"
    result = CliRunner().invoke(app, [
        "iterate", str(vctk / "noisy" / "p287_002.wav"), "--n", "2", "--model", str(tiny_checkpoint), "--json", "--plot", str(plot), "--no-dnsmos",
    ])
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)["steps"]
    assert [s["step"] for s in steps] == [0, 1, 2]
    assert set(steps[1]) == {"step", "level_dbfs", "delta_si_sdr"}  # no reference: no intrusive metrics
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_missing_dnsmos_models_are_a_warning_not_a_failure(tiny_checkpoint, vctk, tmp_path, monkeypatch):
    from sectl import modelfiles

    monkeypatch.setenv("SECTL_DNSMOS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("SECTL_MODELS_DIR", str(tmp_path / "models"))  # searched for dnsmos/ too
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(modelfiles, "download", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    report = iterate(load_enhancer(tiny_checkpoint), vctk / "noisy" / "p287_001.wav", 1)
    assert "DNSMOS skipped" in report.warnings[0]
    assert "dnsmos_ovrl" not in report.steps[1]


def test_iterate_a_named_pretrained_model(models_dir, vctk):
    noisy = vctk / "noisy" / "p287_001.wav"
    report = iterate(load_enhancer("nsnet2"), noisy, 1, ref=vctk / "clean" / "p287_001.wav", non_intrusive=False)
    assert len(report.steps) == 2 and report.steps[1]["level_dbfs"] < report.steps[0]["level_dbfs"]  # noise removed
    assert 0 < report.steps[1]["delta_si_sdr"] < 30  # the output differs from its input


def two_models(tmp_path):
    import torch

    from sectl.models import build_enhancer
    from sectl.models.io.checkpoint import save_checkpoint

    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        save_checkpoint(tmp_path / f"model{seed}.pt", build_enhancer(size="tiny"))
        paths.append(tmp_path / f"model{seed}.pt")
    return paths


def test_corpus_steps_are_the_means_of_the_per_file_runs(vctk, tmp_path):
    from sectl.iterate import iterate_corpus

    paths = two_models(tmp_path)
    models = {p.name: load_enhancer(p) for p in paths}
    result = iterate_corpus(models, vctk / "noisy", 1, ref=vctk / "clean", non_intrusive=False)
    assert result.files == 6 and not result.failed
    first, second = (result.models[p.name] for p in paths)
    assert first[0] == pytest.approx(second[0], rel=1e-12)  # step 0 is the input, whatever the model
    assert first[1]["pesq_wb"] != second[1]["pesq_wb"] and "mcd" in first[1]
    per_file = [iterate(models[paths[0].name], f, 1, ref=vctk / "clean" / f.name, non_intrusive=False).steps[1]
                for f in sorted((vctk / "noisy").glob("*.wav"))]  # fmt: skip
    for key in ("pesq_wb", "mcd", "delta_si_sdr", "level_dbfs"):
        assert first[1][key] == pytest.approx(sum(r[key] for r in per_file) / 6, rel=1e-9)


def test_cli_compares_models_over_a_folder_and_names_a_bad_file(vctk, tmp_path):
    import shutil

    paths = two_models(tmp_path)
    corpus = tmp_path / "noisy"
    shutil.copytree(vctk / "noisy", corpus)
    (corpus / "broken.wav").write_text("not audio")
    args = ["iterate", str(corpus), "--n", "1", "--no-dnsmos", "--model", str(paths[0]), "--model", str(paths[1])]
    result = runner.invoke(app, [*args, "--json", "--plot", str(tmp_path / "curves.png")])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["files"] == 6 and [m["model"] for m in payload["models"]] == ["model1.pt", "model2.pt"]
    assert all(len(m["steps"]) == 2 and "delta_si_sdr" in m["steps"][1] for m in payload["models"])
    assert len(payload["failed"]) == 1 and "broken.wav: not a readable audio file" in payload["failed"][0]
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert "broken.wav" in result.stderr
    keep = runner.invoke(app, [*args, "-o", str(tmp_path / "steps")])
    assert keep.exit_code == 2 and "--output" in keep.stderr
