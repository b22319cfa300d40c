"""`sectl enhance --stream`: live WAV (unknown length) and raw PCM through a child process, and
`sectl export` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.enhance import enhance_tensor
from sectl.models import build_enhancer
from sectl.models.io.checkpoint import save_checkpoint
from sectl.streaming.pipe import PcmFormat

runner = CliRunner()
RATE = 16000
BLOCK = 1600  # 100 ms


@pytest.fixture(scope="module")
def tiny_dfn3(tmp_path_factory):
    torch.manual_seed(0)
    model = build_enhancer("deepfilternet3", "tiny").eval()
    path = tmp_path_factory.mktemp("model") / "dfn3.pt"
    save_checkpoint(path, model)
    return model, path


def offline(model, x: torch.Tensor) -> torch.Tensor:
    return enhance_tensor(model, x, RATE, chunk_s=10_000)


def test_live_wav_stream_emits_before_its_input_ends_and_equals_offline(tiny_dfn3):
    model, path = tiny_dfn3
    fmt = PcmFormat(RATE, 1, "<f4")
    x = 0.1 * torch.randn(1, 40 * BLOCK)
    child = subprocess.Popen([sys.executable, "-m", "sectl", "enhance", "--stream", "-m", str(path), "--device", "cpu",
                              "-", "-o", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    received: list[tuple[float, bytes]] = []

    def read() -> None:
        while chunk := child.stdout.read1(65536):
            received.append((time.monotonic(), chunk))

    reader = threading.Thread(target=read)
    reader.start()
    child.stdin.write(fmt.header())
    sent, deadline = 0, time.monotonic() + 120
    while sent < x.shape[-1]:  # one block every 100 ms, as a recorder delivers them
        child.stdin.write(fmt.encode(x[:, sent : sent + BLOCK]))
        child.stdin.flush()
        sent += BLOCK
        time.sleep(0.1)
        header_and_audio = sum(len(chunk) for _, chunk in received) > 44 + 4 * BLOCK
        while not header_and_audio and sent >= 20 * BLOCK and time.monotonic() < deadline:  # wait for the child's start-up
            time.sleep(0.1)
            header_and_audio = sum(len(chunk) for _, chunk in received) > 44 + 4 * BLOCK
    closed_at = time.monotonic()
    child.stdin.close()
    reader.join(timeout=120)
    assert child.wait(timeout=120) == 0, child.stderr.read().decode()
    output = b"".join(chunk for _, chunk in received)
    assert output[:4] == b"RIFF" and output[4:8] == b"\xff\xff\xff\xff"
    before_close = sum(len(chunk) for t, chunk in received if t < closed_at) - 44
    assert before_close >= 4 * 10 * BLOCK  # at least 10 blocks of enhanced float32 audio came out while it was live
    y = torch.from_numpy(np.frombuffer(output[44:], "<f4").copy())[None]
    assert y.shape == x.shape
    assert (y - offline(model, x)).abs().max() < 1e-4


def test_raw_pcm_stream_with_atten_lim(tiny_dfn3, tmp_path):
    model, path = tiny_dfn3
    x = torch.from_numpy(np.round(0.1 * np.random.default_rng(1).standard_normal((1, 9000)) * 32768) / 32768).float()
    raw = PcmFormat(RATE, 1, "<i2").encode(x)
    result = subprocess.run([sys.executable, "-m", "sectl", "enhance", "--stream", "--raw", str(RATE), "--atten-lim", "6",
                             "-m", str(path), "--device", "cpu", "-", "-o", "-"], input=raw, capture_output=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    y = torch.from_numpy(np.frombuffer(result.stdout, "<i2").astype(np.float32) / 32768)[None]
    from sectl.signal import DryWet

    expected = enhance_tensor(model, x, RATE, chunk_s=10_000, dry_wet=DryWet(atten_lim_db=6))
    assert y.shape == x.shape
    assert (y - expected).abs().max() <= 1.01 / 32768  # 16-bit rounding


@pytest.mark.parametrize("args,message", [
    (["--stream", "in.wav", "-o", "-"], "--stream reads '-' and writes '-'"),
    (["--raw", "16000", "-", "-o", "-"], "--raw applies to --stream"),
])  # fmt: skip
def test_stream_usage_errors(args, message):
    result = runner.invoke(app, ["enhance", *args])
    assert result.exit_code == 2 and message in result.output


def test_stream_refuses_bad_input_and_models_that_cannot_stream(tiny_dfn3, tmp_path):
    _, path = tiny_dfn3
    result = runner.invoke(app, ["enhance", "--stream", "-m", str(path), "-", "-o", "-"], input=b"hello, not audio")
    assert result.exit_code == 1 and "<stdin>: not a WAV stream" in result.output
    demucs = tmp_path / "demucs.pt"
    save_checkpoint(demucs, build_enhancer("demucs", "tiny"))
    result = runner.invoke(app, ["enhance", "--stream", "-m", str(demucs), "-", "-o", "-"], input=b"")
    assert result.exit_code == 2 and "demucs cannot stream" in result.output


def test_export_command_writes_graph_and_sidecar(tiny_dfn3, tmp_path):
    _, path = tiny_dfn3
    result = runner.invoke(app, ["export", str(path), "-o", str(tmp_path / "s.onnx"), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["kind"] == "stream" and record["latency_samples"] == 1919 and record["layout"]["hop"] == 480
    assert json.loads((tmp_path / "s.json").read_text()) == record
    again = runner.invoke(app, ["export", str(path), "-o", str(tmp_path / "s.onnx")])
    assert again.exit_code != 0 and "output exists" in again.output
    wrong = runner.invoke(app, ["export", str(path), "-o", str(tmp_path / "s.wav")])
    assert wrong.exit_code == 2 and "NAME.onnx" in wrong.output


def test_exported_stream_graph_streams_from_the_command_line(tiny_dfn3, tmp_path):
    model, path = tiny_dfn3
    assert runner.invoke(app, ["export", str(path), "-o", str(tmp_path / "s.onnx"), "--stream"]).exit_code == 0
    assert runner.invoke(app, ["export", str(path), "-o", str(tmp_path / "o.onnx")]).exit_code == 0
    x = torch.from_numpy(np.round(0.1 * np.random.default_rng(2).standard_normal((1, 5000)) * 32768) / 32768).float()
    raw = PcmFormat(RATE, 1, "<i2").encode(x)
    result = runner.invoke(app, ["enhance", "--stream", "--raw", str(RATE), "-m", str(tmp_path / "s.onnx"), "-", "-o", "-"],
                           input=raw)  # fmt: skip
    assert result.exit_code == 0, result.output
    y = torch.from_numpy(np.frombuffer(result.stdout_bytes, "<i2").astype(np.float32) / 32768)[None]
    assert y.shape == x.shape and (y - offline(model, x)).abs().max() <= 1.01 / 32768
    # --stream, kept for old scripts, changes nothing: every ONNX export is the stream graph
    assert (tmp_path / "s.json").read_text() == (tmp_path / "o.json").read_text()


def test_stream_edges_answer_in_one_line(tiny_dfn3):
    _, path = tiny_dfn3
    base = ["enhance", "--stream", "-m", str(path), "--device", "cpu"]
    fmt = PcmFormat(RATE, 1, "<i2")
    pcm = fmt.encode(0.1 * torch.randn(1, 3000))
    result = runner.invoke(app, [*base, "--raw", str(RATE), "-", "-o", "-"], input=fmt.header() + pcm + b"\x01")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: <stdin>: raw PCM that starts like a WAV file ('RIFF'): its header will play as a click (leave out "
        "--raw to read WAV)",
        "warning: <stdin>: the stream ended inside a sample frame (2 bytes); its last 1 byte(s) were dropped",
    ]  # fmt: skip
    assert len(result.stdout_bytes) == 44 + len(pcm)
    bad = runner.invoke(app, [*base, "--raw", "500", "-", "-o", "-"], input=pcm)  # an argument: exit 2, before loading
    assert bad.exit_code == 2 and bad.stderr.strip().splitlines() == ["error: --raw 500: streams take 1000 to 768000 Hz"]
    empty = runner.invoke(app, [*base, "--raw", "44100", "-", "-o", "-"], input=b"")
    assert empty.exit_code == 0 and empty.stdout_bytes == b""


@pytest.mark.parametrize("flag", [["--jobs", "1"], ["--chunk", "10"], ["--json"], ["--shard", "1/2"], ["--skip-existing"],
                                  ["--overwrite"]])  # fmt: skip
def test_flags_that_do_not_apply_to_a_stream_are_errors(tiny_dfn3, flag):
    """Even at their default values: a flag that does not apply is an error, not silently ignored."""
    _, path = tiny_dfn3
    result = runner.invoke(app, ["enhance", "--stream", "-m", str(path), "-", "-o", "-", *flag], input=b"")
    assert result.exit_code == 2 and f"{flag[0]}: does not apply to --stream" in result.stderr


def test_engine_torch_with_an_exported_graph_is_an_error(tiny_dfn3, tmp_path, vctk):
    _, path = tiny_dfn3
    assert runner.invoke(app, ["export", str(path), "-o", str(tmp_path / "g.onnx")]).exit_code == 0
    args = ["enhance", str(vctk / "noisy" / "p287_001.wav"), "-o", str(tmp_path / "o.wav"), "-m", str(tmp_path / "g.onnx")]
    refused = runner.invoke(app, [*args, "--engine", "torch"])
    assert refused.exit_code == 2 and "is an exported graph, which onnxruntime runs" in refused.stderr
    assert not (tmp_path / "o.wav").exists()
    assert runner.invoke(app, args).exit_code == 0


@pytest.mark.parametrize("engine,used", [(None, "onnxruntime"), ("torch", "PyTorch")])
def test_streams_run_on_onnxruntime_by_default_and_torch_on_request(tiny_dfn3, engine, used):
    """The cached stream graph by default (about 3x faster hop by hop), the frame step with --engine torch:
    the same output either way."""
    model, path = tiny_dfn3
    fmt = PcmFormat(RATE, 1, "<f4")
    x = 0.1 * torch.randn(1, 5 * BLOCK + 77)
    args = ["enhance", "--stream", "-m", str(path), "--device", "cpu", "-", "-o", "-", *(["--engine", engine] if engine else [])]
    result = runner.invoke(app, args, input=fmt.header() + fmt.encode(x))
    assert result.exit_code == 0, result.output
    assert f"({used}, 1 thread(s))" in result.stderr
    y = torch.from_numpy(np.frombuffer(result.stdout_bytes[44:], "<f4").copy())[None]
    assert y.shape == x.shape and (y - offline(model, x)).abs().max() < 1e-4
