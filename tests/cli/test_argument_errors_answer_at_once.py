"""Every argument error answers before the heavy imports (torch alone takes seconds to import): one line,
exit 2, and torch never imported. What is measured is what decides the time (whether torch was imported),
not a wall-clock time; ``benchmarks/startup.py`` prints the times."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from sectl.cli.app import main
sys.argv = ["sectl", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as done:
    print(json.dumps({"code": done.code, "torch": "torch" in sys.modules}), file=sys.__stdout__)
"""

CASES = {
    "enhance --engine foo": (["enhance", "x.wav", "-o", "y.wav", "--engine", "foo"], "--engine"),
    "enhance --device tpu": (["enhance", "x.wav", "-o", "y.wav", "--device", "tpu"], "unknown device 'tpu'"),
    "enhance --shard 0/4": (["enhance", "x.wav", "-o", "y.wav", "--shard", "0/4"], "--shard"),
    "enhance --chunk inf": (["enhance", "x.wav", "-o", "y.wav", "--chunk", "inf"], "--chunk"),
    "enhance --stream --raw 500": (["enhance", "--stream", "--raw", "500", "-", "-o", "-"], "streams take 1000 to 768000 Hz"),
    "enhance --stream --device tpu": (["enhance", "--stream", "-", "-o", "-", "--device", "tpu"], "unknown device"),
    "eval --metrics foo": (["eval", "--est", "x.wav", "--metrics", "foo"], "unknown metric(s) foo"),
    "eval --shard 0/4": (["eval", "--est", "x.wav", "--shard", "0/4"], "--shard"),
    "align --features foo": (["align", "a.wav", "b.wav", "--features", "foo"], "unknown feature kind"),
    "align -o an input": (["align", "a.wav", "b.wav", "-o", "a.wav"], "is an input of this command"),
    "eval --csv an input": (["eval", "--est", "a.wav", "--ref", "b.wav", "--csv", "b.wav"], "is an input of this command"),
    "iterate --plot an input": (["iterate", "a.wav", "--plot", "a.wav"], "is an input of this command"),
    "align one recording": (["align", "a.wav"], "needs two recordings"),
    "align --device tpu": (["align", "a.wav", "b.wav", "--device", "tpu"], "unknown device"),
    "iterate --device tpu": (["iterate", "a.wav", "--device", "tpu"], "unknown device"),
    "iterate a model twice": (["iterate", "a.wav", "-m", "x", "-m", "x"], "each model once"),
    "encode --device tpu": (["encode", "a.wav", "-o", "o", "-m", "v.pt", "--device", "tpu"], "unknown device"),
    "encode --shard 9/2": (["encode", "a.wav", "-o", "o", "-m", "v.pt", "--shard", "9/2"], "--shard"),
    "encode --metrics foo": (["encode", "--roundtrip", "a.wav", "-o", "o", "-m", "v.pt", "--metrics", "foo"], "unknown metric"),
    "train --device tpu": (["train", "-o", "run", "--device", "tpu"], "unknown device"),
    "train --set train.device=tpu": (["train", "-o", "run", "--set", "train.device=tpu"], "unknown device"),
    "export -o x.txt": (["export", "nsnet2", "-o", "x.txt"], "choose the format by the name"),
    "export --stream -o x.pt": (["export", "nsnet2", "-o", "x.pt", "--stream"], "--stream applies to ONNX"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_argument_errors_answer_before_torch_is_imported(case, tmp_path):
    args, message = CASES[case]
    for name in ("a.wav", "b.wav"):  # inputs that exist (only their names matter here)
        (tmp_path / name).write_bytes(b"RIFF")
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"code": 2, "torch": False}, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav"]  # nothing made, nothing replaced
    assert all(p.read_bytes() == b"RIFF" for p in tmp_path.iterdir())


@pytest.mark.parametrize("args,message", [
    (["train"], "error: Missing option '--output' / '-o' / '--out'. (see 'sectl train --help')"),
    (["eval", "--bogus"], "error: No such option: --bogus"),
    (["enhance", "x.wav", "-o", "y", "--mix", "3"], "error: Invalid value for '--mix'"),
    (["nosuch"], "error: No such command 'nosuch'."),
])  # fmt: skip
def test_usage_errors_of_the_parser_are_one_line_too(args, message, tmp_path):
    """Missing, unknown or out-of-range options (found by the parser itself): one line, exit 2, not a framed block."""
    result = subprocess.run([sys.executable, "-m", "sectl", *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1


def test_sectl_alone_shows_the_help(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sectl"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "Usage: sectl" in result.stdout and result.stdout.count("Usage: sectl") == 1
