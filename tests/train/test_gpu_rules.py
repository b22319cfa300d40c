"""What a GPU run needs that a CPU run does not show: NCCL's rules, mixed precision in every
architecture, no host synchronisation inside a step, one decision for all ranks (issue 24, items 1-7).

Each test here failed on the code before its fix; :mod:`tests.train.test_matrix` then runs every preset
under the same rules.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from torch import nn

from sectl.errors import SectlError
from sectl.losses.mal import CollapseMonitor
from sectl.models import ARCHITECTURES, build_enhancer
from sectl.train.distributed import Workers
from sectl.train.optim import GradientStep, Precision, adamw
from tests.train.guards import NcclRules, StepGuard
from tests.train.test_distributed import FakeCollectives


@pytest.fixture
def guard():
    installed = StepGuard().install()
    yield installed
    installed.uninstall()


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_rank_0_broadcasts_every_architecture_as_nccl_takes_it(monkeypatch, name):
    """Item 1: DeepFilterNet3's ERB expansion buffer was a transposed view; NCCL refuses it at the first broadcast."""
    FakeCollectives(monkeypatch, torch.device("cpu"))
    rules = NcclRules(torch.device("cpu")).install()
    try:
        model = build_enhancer(name, "tiny")
        Workers(rank=0, world_size=2).broadcast(model)
    finally:
        rules.uninstall()
    assert rules.violations == []
    assert [n for n, b in model.named_buffers() if not b.is_contiguous()] == []


def test_nccl_rules_refuse_what_nccl_refuses(monkeypatch):
    FakeCollectives(monkeypatch, torch.device("cpu"))
    rules = NcclRules(torch.device("cpu")).install()
    try:
        dist.broadcast(torch.zeros(3, 4).T, src=0)
        dist.all_reduce(torch.zeros(2, dtype=torch.int16))
    finally:
        rules.uninstall()
    assert len(rules.violations) == 2
    assert "not contiguous" in rules.violations[0] and "no NCCL type" in rules.violations[1]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_trains_under_16_bit_autocast(name, precision):
    """Item 2: DeepFilterNet3 crashed in bf16 (lfilter on a bf16 ERB spectrum; a bf16 complex view)."""
    torch.manual_seed(0)
    model = build_enhancer(name, "tiny")
    noisy = torch.randn(2, 1, model.sample_rate // 4)
    with Precision(precision).autocast():
        out = model(noisy)
    assert out.dtype == torch.float32 and out.shape == noisy.shape and torch.isfinite(out).all()
    out.pow(2).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_a_forward_and_backward_reads_nothing_back_from_the_device(guard, name):
    """Item 3: DeepFilterNet3's normalisation built its filter taps from Python lists on every call."""
    model = build_enhancer(name, "tiny")
    noisy = torch.randn(2, 1, model.sample_rate // 4)
    with guard.step():
        model(noisy).pow(2).mean().backward()
    assert guard.violations == []


@pytest.mark.parametrize("term", ["ssl", "ssl_mse", "ssl_pad", "ssl_sdtw"])
def test_ssl_loss_terms_read_nothing_back_from_the_device(guard, term):
    """Item 3: WavLM's position bias was built on the CPU and copied every forward; soft-DTW moved its
    lengths to the host and gathered with a CPU index; the pad and speed draws built tensors from lists."""
    from sectl.losses.feature import SSLFeatureLoss
    from sectl.losses.ssl_alignment import SSLMSELoss, SSLPadMSELoss, SSLSoftDTWLoss

    classes = {"ssl": SSLFeatureLoss, "ssl_mse": SSLMSELoss, "ssl_pad": SSLPadMSELoss, "ssl_sdtw": SSLSoftDTWLoss}
    loss = classes[term]("tiny", 2, sample_rate=48000)
    estimate, reference = torch.randn(2, 1, 24000, requires_grad=True), torch.randn(2, 1, 24000)
    loss(estimate, reference)  # first call: kernels and frame counts are built and kept
    with guard.step():
        loss(estimate, reference).backward()
    assert guard.violations == []


def test_the_guard_catches_what_it_is_for(guard):
    from torchaudio.models.wav2vec2.wavlm_attention import WavLMSelfAttention

    from sectl.models.teachers.ssl import build_ssl_model

    attention = next(m for m in build_ssl_model("tiny").modules() if isinstance(m, WavLMSelfAttention))
    with guard.step():
        WavLMSelfAttention.compute_bias(attention, 5, 5)  # torchaudio's own: positions built on the CPU
        torch.tensor([1.0, 2.0]).sum().item()
    assert any("torch.arange() without a device" in v for v in guard.violations)
    assert any("Python data" in v for v in guard.violations) and any(".item()" in v for v in guard.violations)


def test_an_unused_parameter_keeps_no_gradient_under_data_parallelism(monkeypatch):
    """Item 5: the reducer gave a parameter without a gradient zeros, so AdamW decayed and moved it under
    torchrun but not in one process (DeepFilterNet3's lsnr_fc)."""
    FakeCollectives(monkeypatch, torch.device("cpu"))
    model = nn.ModuleDict({"used": nn.Linear(4, 1), "unused": nn.Linear(4, 1)})
    before = model["unused"].weight.detach().clone()
    optimizer = adamw(model.parameters(), {"lr": 1e-2, "betas": [0.9, 0.99], "weight_decay": 0.1}, torch.device("cpu"))
    step = GradientStep(optimizer, 1.0, Precision(), Workers(rank=0, world_size=2))
    step(model["used"](torch.ones(2, 4)).pow(2).mean())
    assert model["unused"].weight.grad is None
    assert torch.equal(model["unused"].weight, before)
    assert bool(step.reducer.consistent)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])  # fp16: the loss scaler must skip it too
def test_ranks_that_disagree_on_which_parameters_got_gradients_skip_the_step(monkeypatch, precision):
    """Item 5's other half: if the ranks' sets of parameters with gradients differ, no rank applies the step."""
    fake = FakeCollectives(monkeypatch, torch.device("cpu"))

    def other_rank_lacks_one_gradient(tensor, op=None, group=None, async_op=False):
        fake.all_reduce(tensor, op, group, async_op)
        if tensor.dtype == torch.float32:  # the bucket: its last element counts the ranks with that gradient
            tensor[-1] = 1.0
        return None if not async_op else FakeWorkDone()

    monkeypatch.setattr(dist, "all_reduce", other_rank_lacks_one_gradient)
    model = nn.Linear(4, 1)
    before = model.weight.detach().clone()
    optimizer = adamw(model.parameters(), {"lr": 1e-2, "betas": [0.9, 0.99], "weight_decay": 0.0}, torch.device("cpu"))
    step = GradientStep(optimizer, 1.0, Precision(precision), Workers(rank=0, world_size=2))
    _, finite = step(model(torch.ones(2, 4)).pow(2).mean())
    assert not bool(finite) and torch.equal(model.weight, before)


class FakeWorkDone:
    def wait(self) -> None:
        pass


def test_the_collapse_guard_sees_every_step_not_only_the_read_backs():
    """Item 7: a collapse between two log intervals went unseen when the ratio had recovered at the read-back."""
    monitor = CollapseMonitor(low=0.05, high=20.0)
    for step, spread in enumerate([1.0, 0.5, 0.01, 0.6]):
        monitor.observe(torch.tensor(spread), step)
    with pytest.raises(SectlError, match="collapse at step 3: clean-feature spread fell to 0.010"):
        monitor.raise_if_outside()


def test_the_clip_cache_budget_is_shared_by_the_loader_workers(data_dir):
    """Item 6: every loader worker (and every rank on a node) held its own 2 GiB."""
    from sectl.data.loader import batch_loader
    from sectl.data.speech import SpeechSampler

    sampler = SpeechSampler(str(data_dir / "speech"), 0.5, 16000, 0)
    loader = batch_loader(sampler, range(2), 0, 1, workers=4, device=torch.device("cpu"), cache_bytes=2**30)
    assert loader.dataset.sampler.cache.max_bytes == 2**30 // 4


def test_the_trainer_splits_the_clip_cache_over_the_ranks_of_a_node(data_dir, tmp_path, monkeypatch):
    import sectl.train.trainer as trainer_module
    from tests.train.test_trainer import tiny_config

    seen = {}
    original = trainer_module.batch_loader

    def recording(sampler, examples, start, stop, workers, device, cache_bytes=None):
        seen.update(workers=workers, cache_bytes=cache_bytes)
        return original(sampler, examples, start, stop, workers, device, cache_bytes)

    monkeypatch.setattr(trainer_module, "batch_loader", recording)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    trainer_module.train(tiny_config(data_dir, "baseline", "train.steps=1", "data.workers=0", "data.cache_gb=1"), tmp_path / "run")
    assert seen == {"workers": 0, "cache_bytes": 2**30 // 2}


def test_numba_soft_dtw_keeps_torchs_thread_count():
    """Found by the matrix: numba's first parallel call reset torch's OpenMP thread count (1 became 2),
    so a run and its resume reduced in different orders. A fresh process: the first call is the one."""
    code = (
        "import torch; torch.set_num_threads(1)\n"
        "from sectl.losses.softdtw import SoftDTW\n"
        "x = torch.randn(2, 30, 8, requires_grad=True)\n"
        "SoftDTW(0.1, backend='numba')(x, torch.randn(2, 40, 8)).sum().backward()\n"
        "print(torch.get_num_threads())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "1"


ONE_RANK_GOES_NON_FINITE = """
import os, sys, torch, yaml
from sectl.errors import SectlError
from sectl.train.trainer import Trainer
trainer = Trainer(yaml.safe_load(open(sys.argv[1])), sys.argv[2])
trainer.prepare_run_folder(False, "test", [])
rank, calls, forward = int(os.environ["RANK"]), [0], trainer.task.losses.forward

def inf_on_rank_1_at_step_2(estimate, clean):
    total, terms = forward(estimate, clean)
    calls[0] += 1
    return (total + float("inf") if rank == 1 and calls[0] == 2 else total), terms  # a finite gradient all the same

trainer.task.losses.forward = inf_on_rank_1_at_step_2
try:
    trainer.fit()
except SectlError as exc:
    print(f"rank {rank}: {exc}", flush=True)
    sys.exit(3)
"""


def test_a_loss_non_finite_on_one_rank_stops_every_rank_at_the_same_step(data_dir, tmp_path):
    """Item 4: the non-finite flag was per rank: rank 1 skipped the update that rank 0 applied, then only
    rank 1 stopped and rank 0 waited in the next collective until the timeout."""
    import yaml

    from tests.train.test_distributed import TORCHRUN, distributed_config, launch

    config = distributed_config(data_dir, "train.checkpoint_every=1", "train.dist_timeout_s=120")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "rank_script.py").write_text(ONE_RANK_GOES_NON_FINITE)
    result = launch([*TORCHRUN, str(tmp_path / "rank_script.py"), str(tmp_path / "config.yaml"), str(tmp_path / "run")])
    assert result.returncode != 0
    for rank in (0, 1):
        assert f"rank {rank}: step 2: non-finite loss or gradient (on any rank)" in result.stdout, result.stdout + result.stderr[-2000:]
    from sectl.models.io.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 1  # nothing after the bad step
