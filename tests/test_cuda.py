"""GPU checks (marked ``cuda``; skipped where torch sees no CUDA device, as on CI).

``benchmarks/device_check.sh`` runs them on a lent GPU: every model forward and backward on CUDA
against the CPU, every streamable model streamed on CUDA against the CPU offline, the soft-DTW CUDA kernel against the CPU kernel, VAE encode/decode on CUDA, and a
one-process torchrun NCCL run killed and resumed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from sectl.models import build_codec, build_enhancer
from tests.conftest import REPO
from tests.train.test_distributed import kill_after_log_lines

pytestmark = pytest.mark.cuda
TOLERANCE = 1e-4


def no_tf32() -> None:
    """Full float32 on the GPU, so CUDA and CPU may be compared at 1e-4."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False


@pytest.mark.parametrize("name", ["demucs", "masknet", "deepfilternet3", "nsnet2", "gtcrn"])
def test_enhancer_forward_and_backward_on_cuda_equal_the_cpu(name):
    no_tf32()
    torch.manual_seed(0)
    cpu = build_enhancer(name, "tiny").train()
    gpu = build_enhancer(name, "tiny").train()
    gpu.load_state_dict(cpu.state_dict())
    gpu.cuda()
    x = 0.1 * torch.randn(2, cpu.sample_rate)
    y_cpu, y_gpu = cpu(x), gpu(x.cuda())
    assert (y_cpu - y_gpu.cpu()).abs().max() < TOLERANCE
    y_cpu.pow(2).mean().backward()
    y_gpu.pow(2).mean().backward()
    for (n, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        assert (p.grad is None) == (q.grad is None), n
        if p.grad is None:  # an unused head (DeepFilterNet3's lsnr_fc): no gradient on either device
            continue
        scale = max(1.0, float(p.grad.abs().max()))
        assert (p.grad - q.grad.cpu()).abs().max() < TOLERANCE * scale, n


@pytest.mark.parametrize("name", ["demucs", "masknet", "deepfilternet3", "nsnet2", "gtcrn"])
def test_streaming_on_cuda_equals_offline_on_the_cpu(name):
    """Every state of a frame step lives on the model's device; outputs come back to the CPU per hop."""
    from sectl.streaming import streamer_for
    from tests.streaming.test_streamer import STREAMABLE, random_chunks, stream

    no_tf32()
    torch.manual_seed(0)
    cpu = build_enhancer(name, "tiny", **STREAMABLE[name]).eval()
    gpu = build_enhancer(name, "tiny", **STREAMABLE[name]).eval()
    gpu.load_state_dict(cpu.state_dict())
    gpu.cuda()
    x = 0.1 * torch.randn(1, 3001)
    with torch.no_grad():
        expected = cpu(x)
    y = stream(streamer_for(gpu), x, random_chunks(x.shape[-1], 0, 700))
    assert (y - expected).abs().max() < TOLERANCE


def test_vae_encode_decode_on_cuda_equal_the_cpu():
    from sectl.codec import decode_tensor, encode_tensor

    no_tf32()
    vae = build_codec("speech_vae", "tiny").eval()
    wave = 0.1 * torch.randn(vae.sample_rate)
    latents_cpu = encode_tensor(vae, wave)
    vae.cuda()
    latents_gpu = encode_tensor(vae, wave)  # the CPU input goes to the VAE's device; the result comes back
    assert latents_gpu.device.type == "cpu" and (latents_cpu - latents_gpu).abs().max() < TOLERANCE
    audio_gpu = decode_tensor(vae, latents_gpu, wave.shape[-1])
    audio_cpu = decode_tensor(vae.cpu(), latents_gpu, wave.shape[-1])
    assert audio_gpu.device.type == "cpu" and (audio_cpu - audio_gpu).abs().max() < TOLERANCE


def test_soft_dtw_cuda_kernel_equals_the_cpu_kernel_and_auto_picks_it():
    from sectl.losses.softdtw import SoftDTW, auto_backend

    assert auto_backend(torch.device("cuda")) == "cuda"
    torch.manual_seed(0)
    x, y = torch.randn(4, 120, 16, dtype=torch.float64), torch.randn(4, 97, 16, dtype=torch.float64)
    lengths = torch.tensor([97, 80, 51, 97])
    values = {}
    for device, backend in (("cpu", "numba"), ("cuda", "cuda")):
        xd = x.detach().to(device).requires_grad_()  # a leaf on each device (x itself on the CPU)
        loss = SoftDTW(gamma=0.1, divergence=True, backend=backend)(xd, y.to(device), y_lengths=lengths)
        loss.sum().backward()
        values[device] = (loss.detach().cpu(), xd.grad.cpu())
    assert (values["cpu"][0] - values["cuda"][0]).abs().max() < 1e-8
    assert (values["cpu"][1] - values["cuda"][1]).abs().max() < 1e-8


def test_a_training_step_never_waits_on_the_gpu(data_dir, tmp_path):
    """CUDA's own synchronisation detector, around the steps between two log intervals."""
    from sectl.train import resolve_config
    from sectl.train.trainer import Trainer

    config = resolve_config("baseline", [
        "model.size=tiny", "train.batch_size=4", "train.steps=6", "train.log_every=6", "train.checkpoint_every=100",
        "data.segment_s=0.5", f"data.clean={data_dir / 'speech'}", f"data.noise={data_dir / 'noise'}",
        "train.device=cuda", "data.workers=0",
    ])  # fmt: skip
    trainer = Trainer(config, tmp_path / "run")
    trainer.prepare_run_folder(False, "test", [])
    original = trainer.train_step

    def checked(step, batch):
        if step in (2, 3, 4):  # after warm-up (cuDNN autotuning may synchronise once)
            torch.cuda.set_sync_debug_mode("error")
        try:
            return original(step, batch)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    trainer.train_step = checked
    trainer.fit()


def test_torchrun_nccl_run_on_one_gpu_killed_then_resumed(data_dir, tmp_path):
    """One process in an NCCL group (every collective runs), SIGKILLed mid-run, resumed to the end."""
    overrides = ["model.size=tiny", "train.batch_size=4", "train.steps=12", "train.log_every=1",
                 "train.checkpoint_every=1", "data.segment_s=0.5", f"data.clean={data_dir / 'speech'}",
                 f"data.noise={data_dir / 'noise'}", "train.device=cuda", "train.precision=bf16", "data.workers=2"]  # fmt: skip
    sets = [a for o in overrides for a in ("--set", o)]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m", "sectl", "train"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = tmp_path / "run"
    kill_after_log_lines([*torchrun, "-o", str(run), "-q", *sets], run / "metrics.jsonl", 4, env)
    resumed = subprocess.run([*torchrun, "-o", str(run), "--resume", "-q"], capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))
    assert json.loads((run / "run.json").read_text())["device"].startswith("cuda")
