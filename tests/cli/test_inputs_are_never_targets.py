"""No output of a command may take the place of one of its inputs, whatever the flags (README: "never
inputs"): refused before any work, exit 2, the message says it is an input, and the file is unchanged."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.models import build_codec
from sectl.models.io.checkpoint import save_checkpoint

runner = CliRunner()


@pytest.fixture
def files(tmp_path, vctk, tiny_checkpoint):
    for name in ("a", "b"):
        shutil.copy(vctk / "clean" / f"p287_00{1 if name == 'a' else 2}.wav", tmp_path / f"{name}.wav")
    os.link(tmp_path / "a.wav", tmp_path / "alias.wav")
    (tmp_path / "ests").mkdir()
    sf.write(tmp_path / "ests" / "x.wav", np.zeros(1600, np.float32), 16000)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_checkpoint, run / "checkpoints" / "last.pt")
    (run / "run.json").write_text('{"preset": "baseline"}\n')
    (run / "config.yaml").write_text("task: enhance\n")
    shutil.copy(tiny_checkpoint, run / "checkpoints" / "best.pt")
    save_checkpoint(tmp_path / "vae.pt", build_codec("speech_vae", "tiny"))
    return tmp_path


CASES = {
    "align -o A": lambda t: ["align", t / "a.wav", t / "b.wav", "-o", t / "a.wav"],
    "align --plot B": lambda t: ["align", t / "a.wav", t / "b.wav", "--plot", t / "b.wav"],
    "align --diagnose-position -o A": lambda t: ["align", "--diagnose-position", t / "a.wav", "-o", t / "a.wav"],
    "align -o the model": lambda t: ["align", t / "a.wav", t / "b.wav", "-f", "model", "-m", t / "run", "-o", t / "run" / "run.json"],
    "iterate --plot the input": lambda t: ["iterate", t / "a.wav", "--plot", t / "a.wav", "--no-dnsmos"],
    "iterate --plot the reference": lambda t: ["iterate", t / "a.wav", "--ref", t / "b.wav", "--plot", t / "b.wav"],
    "iterate -o the input": lambda t: ["iterate", t / "a.wav", "-o", t / "a.wav"],
    "eval --csv the estimate": lambda t: ["eval", "--est", t / "a.wav", "--ref", t / "b.wav", "--csv", t / "a.wav"],
    "eval --csv the reference": lambda t: ["eval", "--est", t / "a.wav", "--ref", t / "b.wav", "--csv", t / "b.wav"],
    "eval --csv a hard link of the estimate": lambda t: ["eval", "--est", t / "a.wav", "--ref", t / "b.wav", "--csv", t / "alias.wav"],
    "eval --plot a file of an estimate folder": lambda t: ["eval", "--est", t / "ests", "--est", t / "ests", "--plot", t / "ests" / "x.wav"],
    "eval --merge --csv a report": lambda t: ["eval", "--merge", t / "run" / "run.json", "--csv", t / "run" / "run.json"],
    "encode -o the input": lambda t: ["encode", t / "a.wav", "-o", t / "a.wav", "-m", t / "vae.pt"],
    "encode --roundtrip -o the input": lambda t: ["encode", "--roundtrip", t / "a.wav", "-o", t / "a.wav", "-m", t / "vae.pt"],
    "enhance a folder into itself": lambda t: ["enhance", t / "ests", "-o", t / "ests", "-m", t / "run"],
    "export the run's run.json as sidecar": lambda t: ["export", t / "run", "-o", t / "run" / "run.onnx"],
    "export over a run's other checkpoint": lambda t: ["export", t / "run" / "checkpoints" / "best.pt", "-o", t / "run" / "checkpoints" / "last.pt"],
    "export over the checkpoint": lambda t: ["export", t / "run", "-o", t / "run" / "checkpoints" / "last.pt"],
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_an_input_is_never_a_target_even_with_overwrite(files, case):
    args = [str(a) for a in CASES[case](files)] + ["--overwrite"]
    before = {p: p.read_bytes() for p in files.rglob("*") if p.is_file()}
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert ("is an input of this command" in result.stderr or "never replaces it" in result.stderr)
    assert "--overwrite to replace" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in files.rglob("*") if p.is_file()} == before


def test_without_overwrite_the_refusal_still_says_input(files):
    result = runner.invoke(app, ["align", str(files / "a.wav"), str(files / "b.wav"), "-o", str(files / "a.wav")])
    assert result.exit_code == 2 and "is an input of this command" in result.stderr and "use --overwrite" not in result.stderr


def test_a_report_beside_the_inputs_is_not_an_input(files):
    """Only files the command reads are protected: a CSV in the estimate folder is replaced with --overwrite."""
    (files / "ests" / "scores.csv").write_text("old\n")
    args = ["eval", "--est", str(files / "ests"), "-m", "si_sdr", "--ref", str(files / "ests"), "--csv", str(files / "ests" / "scores.csv")]
    assert "use --overwrite" in runner.invoke(app, args).stderr  # exists: --overwrite needed, as for any output
    result = runner.invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (files / "ests" / "scores.csv").read_text().startswith("file")


def test_an_export_sidecar_only_replaces_a_sidecar(files, tmp_path):
    """`-o x.onnx` writes x.json beside it: an x.json that sectl export did not write is never replaced."""
    (files / "notes.json").write_text('{"mine": true}\n')
    result = runner.invoke(app, ["export", str(files / "run"), "-o", str(files / "notes.onnx"), "--overwrite"])
    assert result.exit_code == 2 and "is not a sidecar of sectl export" in result.stderr
    assert (files / "notes.json").read_text() == '{"mine": true}\n' and not (files / "notes.onnx").exists()


def test_a_foreign_json_beside_an_export_is_refused_without_suggesting_overwrite(files):
    (files / "notes.json").write_text("{}\n")
    result = runner.invoke(app, ["export", str(files / "run"), "-o", str(files / "notes.onnx")])
    assert result.exit_code == 2 and "is not a sidecar of sectl export" in result.stderr and "--overwrite" not in result.stderr


def test_no_output_lands_on_model_files_found_through_the_environment(files, monkeypatch):
    """`$SECTL_DNSMOS_DIR`, `$SECTL_MODELS_DIR` and sectl's model cache are inputs of every command."""
    store = files / "dnsmos"
    store.mkdir()
    (store / "model_v8.onnx").write_bytes(b"weights")
    monkeypatch.setenv("SECTL_DNSMOS_DIR", str(store))
    for args in (["iterate", files / "a.wav", "--plot", store / "model_v8.onnx"],
                 ["eval", "--est", files / "a.wav", "--ref", files / "b.wav", "--csv", store / "model_v8.onnx"],
                 ["align", files / "a.wav", files / "b.wav", "--plot", store / "model_v8.onnx"]):  # fmt: skip
        result = runner.invoke(app, [*map(str, args), "--overwrite"])
        assert result.exit_code == 2 and "is an input of this command (in model files" in result.stderr, result.output
    assert (store / "model_v8.onnx").read_bytes() == b"weights"


def test_iterate_step_files_are_checked_before_any_work(files):
    """A step file that is an input (here the reference) is refused before step 0 is written."""
    (files / "steps").mkdir()
    shutil.copy(files / "b.wav", files / "steps" / "a_step01.wav")
    result = runner.invoke(app, ["iterate", str(files / "a.wav"), "--n", "2", "--no-dnsmos", "-o", str(files / "steps"),
                                 "--ref", str(files / "steps" / "a_step01.wav"), "-m", str(files / "run"), "--overwrite"])  # fmt: skip
    assert result.exit_code == 2 and "a_step01.wav: is an input" in result.stderr
    assert sorted(p.name for p in (files / "steps").iterdir()) == ["a_step01.wav"]
