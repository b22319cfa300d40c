"""Standard output is written whole or the command fails (exit 2, one line): a real pipe whose reader leaves
early, with unbuffered stdout (``PYTHONUNBUFFERED``, ``python -u``), where a raw write can be cut short."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from sectl.fileutil import complete_text, write_all
from sectl.models import build_enhancer
from sectl.models.io.checkpoint import save_checkpoint
from sectl.streaming.pipe import PcmFormat
from tests.streaming.test_pipe import Trickle

fcntl = pytest.importorskip("fcntl")
if not hasattr(fcntl, "F_SETPIPE_SZ"):
    pytest.skip("needs Linux pipes (F_SETPIPE_SZ)", allow_module_level=True)
PIPE_BYTES = 4096


@pytest.fixture(scope="module")
def tiny_dfn3(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "dfn3.pt"
    save_checkpoint(path, build_enhancer("deepfilternet3", "tiny").eval())  # 48 kHz
    return path


def run_into_closing_pipe(args: list[str], stdin: bytes, expected_bytes: int, tmp_path) -> subprocess.CompletedProcess:
    """Runs sectl with stdout on a one-page pipe and stops reading 8 KiB before the end: the child is then in
    the middle of its last write, which a raw file may return short instead of failing."""
    source = tmp_path / "stdin.bin"
    source.write_bytes(stdin)
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(source, "rb") as stdin_file:
        child = subprocess.Popen([sys.executable, "-m", "sectl", *args], stdin=stdin_file, stdout=write_end,
                                 stderr=subprocess.PIPE, env=env)  # fmt: skip
    os.close(write_end)
    got, wanted = 0, expected_bytes - 2 * PIPE_BYTES
    while got < wanted and (chunk := os.read(read_end, min(65536, wanted - got))):
        got += len(chunk)
    os.close(read_end)
    _, stderr = child.communicate(timeout=300)
    assert got == wanted, stderr.decode()
    return subprocess.CompletedProcess(args, child.returncode, b"", stderr)


def test_offline_enhance_to_a_pipe_closed_early_fails(tiny_dfn3, tmp_path):
    x = 0.1 * np.random.default_rng(0).standard_normal(48000).astype(np.float32)
    wav = io.BytesIO()
    sf.write(wav, x, 48000, format="WAV", subtype="PCM_16")  # one write of 96 KB on stdout
    result = run_into_closing_pipe(["enhance", "-m", str(tiny_dfn3), "--device", "cpu", "-", "-o", "-"],
                                   wav.getvalue(), len(wav.getvalue()), tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr.decode()
    assert result.stderr.decode().strip().splitlines()[-1] == "error: cannot write to standard output (Broken pipe)"


def test_live_stream_to_a_pipe_closed_early_fails(tiny_dfn3, tmp_path):
    fmt = PcmFormat(48000, 2, "<f4")  # the flush's last write: the model's delay, > 1400 frames of 8 bytes
    wav = fmt.header() + fmt.encode(0.1 * torch.randn(2, 6000))
    result = run_into_closing_pipe(["enhance", "--stream", "-m", str(tiny_dfn3), "--device", "cpu", "-", "-o", "-"],
                                   wav, len(wav), tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr.decode()
    assert result.stderr.decode().strip().splitlines()[-1] == "error: cannot write to standard output (Broken pipe)"


def test_short_writes_are_written_again():
    sink = Trickle()
    write_all(sink, b"x" * 4500)
    assert sink.data == b"x" * 4500
    text = io.TextIOWrapper(Trickle(), encoding="utf-8", write_through=True)
    whole = complete_text(text)  # tables and JSON: a text layer alone would keep 1000 of 4500 bytes
    whole.write("y" * 4500)
    whole.flush()
    assert whole.buffer.raw.data == b"y" * 4500
    buffered = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    assert complete_text(buffered) is buffered
