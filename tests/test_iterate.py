from __future__ import annotations

import json

from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.iterate import iterate
from sectl.models.loading import load_enhancer


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
