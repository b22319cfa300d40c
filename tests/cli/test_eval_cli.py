from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sectl.cli.app import app
from tests.conftest import write_wav

runner = CliRunner()


def test_json_output_is_one_object_and_nothing_else(vctk):
    result = runner.invoke(
        app, ["eval", "--ref", str(vctk / "clean"), "--est", str(vctk / "noisy"), "-m", "pesq_wb,si_sdr", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["files"]) == 6
    assert payload["mean"]["pesq_wb"] == pytest.approx(1.413, abs=5e-4)


def test_table_and_csv(vctk, tmp_path):
    csv_path = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["eval", "--ref", str(vctk / "clean"), "--est", str(vctk / "noisy"), "-m", "si_sdr", "--csv", str(csv_path)]
    )
    assert result.exit_code == 0
    assert "mean" in result.stdout and "p287_003.wav" in result.stdout
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "file,si_sdr" and len(lines) == 7


def test_bad_file_gives_nonzero_exit_but_scores_the_rest(tmp_path, clean_speech):
    write_wav(tmp_path / "r" / "a.wav", clean_speech)
    write_wav(tmp_path / "r" / "b.wav", clean_speech)
    write_wav(tmp_path / "e" / "a.wav", clean_speech)
    (tmp_path / "e" / "b.wav").write_bytes(b"")
    result = runner.invoke(app, ["eval", "--ref", str(tmp_path / "r"), "--est", str(tmp_path / "e"), "-m", "si_sdr", "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert [f["file"] for f in payload["files"]] == ["a.wav"]
    assert "b.wav: file is empty" in result.stderr


def test_single_missing_file_is_one_line_error(tmp_path):
    result = runner.invoke(app, ["eval", "--ref", str(tmp_path / "nope.wav"), "--est", str(tmp_path / "nope2.wav")])
    assert result.exit_code == 1
    assert "error" in result.stderr and "Traceback" not in result.output


def test_help_lists_all_six_commands():
    result = runner.invoke(app, ["--help"])
    for command in ["train", "enhance", "iterate", "encode", "eval", "align"]:
        assert command in result.stdout


def test_start_up_imports_no_heavy_module():
    """`sectl --help` and argument errors stay fast: no torch, pesq or pystoi at import time (timing is in benchmarks)."""
    import subprocess
    import sys

    code = "import sys, sectl.cli.app; print(sorted(m for m in ('torch', 'pesq', 'pystoi', 'torchaudio') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_reports_and_plots_never_replace_existing_files_without_overwrite(vctk, tmp_path):
    csv_file, plot = tmp_path / "scores.csv", tmp_path / "path.png"
    csv_file.write_text("keep me")
    plot.write_text("keep me")
    args = ["eval", "--ref", str(vctk / "clean" / "p287_001.wav"), "--est", str(vctk / "noisy" / "p287_001.wav"), "-m", "si_sdr"]
    refused = runner.invoke(app, [*args, "--csv", str(csv_file)])
    assert refused.exit_code == 1 and "use --overwrite" in refused.stderr and csv_file.read_text() == "keep me"
    assert runner.invoke(app, [*args, "--csv", str(csv_file), "--overwrite"]).exit_code == 0
    assert csv_file.read_text().startswith("file,si_sdr")
    align = ["align", str(vctk / "clean" / "p287_001.wav"), str(vctk / "noisy" / "p287_001.wav"), "--plot", str(plot)]
    assert runner.invoke(app, align).exit_code == 1 and plot.read_text() == "keep me"
    assert runner.invoke(app, [*align, "--overwrite"]).exit_code == 0 and plot.read_bytes()[:4] == b"\x89PNG"


def test_train_takes_output_like_every_command_and_keeps_out_as_an_alias():
    result = runner.invoke(app, ["train", "--help"])
    assert "--output" in result.stdout and "--out" in result.stdout


def test_a_system_is_named_by_name_equals_folder(tmp_path, clean_speech):
    write_wav(tmp_path / "clean" / "a.wav", clean_speech)
    write_wav(tmp_path / "out" / "a.wav", clean_speech * 0.5)
    write_wav(tmp_path / "x" / "out" / "a.wav", clean_speech * 0.25)
    result = runner.invoke(app, ["eval", "--ref", str(tmp_path / "clean"), "--est", str(tmp_path / "out"),
                                 "--est", f"DF3={tmp_path / 'x' / 'out'}", "-m", "si_sdr", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [s["name"] for s in json.loads(result.stdout)["systems"]] == ["out", "DF3"]
