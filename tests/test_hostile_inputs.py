"""A corpus of hostile inputs, generated here, through enhance, eval and iterate: every bad file is
reported by name with its reason, nothing is lost or overwritten, every good file is processed."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sectl.cli.app import app

runner = CliRunner()
RNG = np.random.default_rng(0)
X = (0.1 * RNG.standard_normal(16000)).astype(np.float32)

GOOD = {
    "zeros.wav": dict(data=np.zeros(16000, np.float32)),
    "dc.wav": dict(data=np.full(16000, 0.3, np.float32)),
    "clipped.wav": dict(data=np.clip(10 * X, -1, 1)),
    **{f"fmt_{s}.wav": dict(data=X, subtype=s) for s in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")},
    **{f"rate_{r}.wav": dict(data=np.resize(X, r), rate=r) for r in (8000, 22050, 44100, 48000, 96000)},
    "stereo.wav": dict(data=np.stack([X, X], 1)),
    "six_channels.wav": dict(data=np.stack([X] * 6, 1)),
    "one_sample.wav": dict(data=X[:1]),
    "ten_ms.wav": dict(data=X[:160]),
    "space in name.wav": dict(data=X),
    "ünïcödé.wav": dict(data=X),
    "flac.flac": dict(data=X),
}
BAD = {  # name -> the reason the message must give
    "empty.wav": "file is empty",
    "truncated_header.wav": "not a readable audio file",
    "truncated_data.wav": "truncated",
    "text.wav": "not a readable audio file",
    "nan.wav": "NaN or Inf",
    "inf.wav": "NaN or Inf",
    "loop_a.wav": "broken or looping symbolic link",
    "loop_b.wav": "broken or looping symbolic link",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, vctk):
    root = tmp_path_factory.mktemp("hostile") / "in"
    root.mkdir()
    for name, spec in GOOD.items():
        sf.write(root / name, spec["data"], spec.get("rate", 16000), subtype=spec.get("subtype"))
    whole = (vctk / "noisy" / "p287_001.wav").read_bytes()
    (root / "empty.wav").write_bytes(b"")
    (root / "truncated_header.wav").write_bytes(whole[:20])
    (root / "truncated_data.wav").write_bytes(whole[:1000])
    (root / "text.wav").write_text("not audio at all")
    for name, value in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        sf.write(root / name, np.where(np.arange(16000) == 5, value, X).astype(np.float32), 16000, subtype="FLOAT")
    os.symlink("loop_b.wav", root / "loop_a.wav")
    os.symlink("loop_a.wav", root / "loop_b.wav")
    (root / "folder.wav").mkdir()  # a folder with an audio name: walked, not read
    return root


def test_enhance_processes_every_good_file_and_names_every_bad_one(corpus, tmp_path, tiny_checkpoint):
    before = {p.name: p.read_bytes() for p in corpus.iterdir() if p.is_file()}
    result = runner.invoke(app, ["enhance", str(corpus), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert sorted(os.path.basename(p) for p in report["written"]) == sorted(GOOD)
    for name, reason in BAD.items():
        assert any(name in line and reason in line for line in report["failed"]), (name, report["failed"])
    assert len(report["failed"]) == len(BAD)
    for name, spec in GOOD.items():  # same length, rate and channels as the input
        info, source = sf.info(tmp_path / "out" / name), sf.info(corpus / name)
        assert (info.frames, info.samplerate, info.channels) == (source.frames, source.samplerate, source.channels), name
    assert {p.name: p.read_bytes() for p in corpus.iterdir() if p.is_file()} == before  # inputs untouched


def test_eval_scores_the_readable_pairs_and_names_the_rest(corpus):
    result = runner.invoke(app, ["eval", "--ref", str(corpus), "--est", str(corpus), "-m", "si_sdr,pesq_wb", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert len(report["files"]) == len(GOOD)
    for name, reason in BAD.items():
        assert any(name in line and reason in line for line in report["errors"]), name
    assert "Traceback" not in result.output and "RuntimeWarning" not in result.output


@pytest.mark.parametrize("name", ["one_sample.wav", "six_channels.wav", "rate_96000.wav", "fmt_PCM_U8.wav"])
def test_iterate_runs_on_odd_but_valid_files(corpus, name, tiny_checkpoint):
    result = runner.invoke(app, ["iterate", str(corpus / name), "--n", "1", "--no-dnsmos", "--json", "--model", str(tiny_checkpoint)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["steps"]) == 2


@pytest.mark.parametrize("name,reason", [("text.wav", "not a readable audio file"), ("loop_a.wav", "looping")])
def test_iterate_names_a_bad_file(corpus, name, reason, tiny_checkpoint):
    result = runner.invoke(app, ["iterate", str(corpus / name), "--n", "1", "--no-dnsmos", "--model", str(tiny_checkpoint)])
    assert result.exit_code == 1 and name in result.stderr and reason in result.stderr


def test_outputs_never_replace_inputs_and_output_inside_input_is_safe(corpus, tmp_path, tiny_checkpoint):
    src = tmp_path / "a.wav"
    sf.write(src, X, 16000)
    original = src.read_bytes()
    same = runner.invoke(app, ["enhance", str(src), "-o", str(src), "--model", str(tiny_checkpoint), "--overwrite"])
    assert same.exit_code == 1 and "refusing to write over an input file" in same.stderr and src.read_bytes() == original
    inside = runner.invoke(app, ["enhance", str(tmp_path), "-o", str(tmp_path / "enhanced"), "--model", str(tiny_checkpoint)])
    assert inside.exit_code == 0 and (tmp_path / "enhanced" / "a.wav").is_file() and src.read_bytes() == original
