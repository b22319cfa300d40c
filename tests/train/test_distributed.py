"""Data-parallel training with 2 gloo processes on CPU, launched by torchrun as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
import yaml
from torch import nn

from sectl.models.io.checkpoint import load_checkpoint
from sectl.train import train
from sectl.train.distributed import GradientReducer, Workers
from tests.conftest import REPO
from tests.train.test_trainer import params, tiny_config

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
RANK_SCRIPT = """
import sys, torch, yaml
from sectl.train.trainer import Trainer
trainer = Trainer(yaml.safe_load(open(sys.argv[1])), sys.argv[2])
trainer.prepare_run_folder(False, "test", [])
trainer.fit()
torch.save(trainer.task.model.state_dict(), f"{sys.argv[2]}/rank{trainer.workers.rank}.pt")
"""


# Loss terms that are means over examples, so 2 x 2 examples give the gradient of 1 x 4 exactly. (MR-STFT's
# spectral convergence is a ratio over the whole batch: each rank computes it on its share.)
PER_EXAMPLE_LOSSES = ["loss.l1=1", "loss.sisdr=0.1", "loss.mrstft=0"]


def distributed_config(data_dir, *extra):
    return tiny_config(data_dir, "baseline", "train.batch_size=4", "train.steps=4", "train.warmup_steps=1",
                       "train.log_every=1", "train.device=cpu", *PER_EXAMPLE_LOSSES, *extra)  # fmt: skip


def worker_env() -> dict[str, str]:
    """One thread per rank (2 ranks share 2 cores), and this checkout importable from any script."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def launch(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = worker_env()
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, **kwargs)


def test_two_ranks_hold_identical_weights_equal_to_one_process_with_the_same_global_batch(data_dir, tmp_path):
    config = distributed_config(data_dir)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "rank_script.py").write_text(RANK_SCRIPT)
    result = launch([*TORCHRUN, str(tmp_path / "rank_script.py"), str(tmp_path / "config.yaml"), str(tmp_path / "ddp")])
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / "ddp" / f"rank{r}.pt") for r in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)

    train(config, tmp_path / "single")
    single = params(tmp_path / "single")
    moved = max(float((single[k] - rank0[k]).abs().max()) for k in single)
    assert moved < 1e-6, f"2 ranks x 2 examples differ from 1 process x 4 examples by {moved:.2e}"
    # The tolerance must be far below what training changes: compare with a run on other data.
    other = train(distributed_config(data_dir, "seed=1"), tmp_path / "other")
    assert other.step == 4
    changed = max(float((single[k] - params(tmp_path / "other")[k]).abs().max()) for k in single)
    assert changed > 100 * max(moved, 1e-7)


def test_torchrun_cli_run_matches_one_process_and_only_rank_0_writes(data_dir, tmp_path):
    overrides = ["model.size=tiny", "train.batch_size=4", "train.steps=3", "train.warmup_steps=1", "train.log_every=1",
                 "data.segment_s=0.5", f"data.clean={data_dir / 'speech'}", f"data.noise={data_dir / 'noise'}",
                 "train.device=cpu", "train.threads=1", *PER_EXAMPLE_LOSSES, "validation.every=3",
                 f"validation.noisy={data_dir / 'vctk' / 'noisy'}", f"validation.clean={data_dir / 'vctk' / 'clean'}",
                 "validation.metric=si_sdr", "validation.metrics=[si_sdr, estoi]"]  # fmt: skip
    sets = [a for o in overrides for a in ("--set", o)]
    result = launch([*TORCHRUN, "-m", "sectl", "train", "-o", str(tmp_path / "ddp"), *sets])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained 3 steps") == 1  # rank 0 reports; rank 1 is silent
    assert json_lines(tmp_path / "ddp" / "metrics.jsonl") == [1, 2, 3]  # one log, not one per rank
    assert yaml.safe_load((tmp_path / "ddp" / "run.json").read_text())["processes"] == 2
    single = launch([sys.executable, "-m", "sectl", "train", "-o", str(tmp_path / "single"), "-q", *sets])
    assert single.returncode == 0, single.stderr[-3000:]
    a, b = params(tmp_path / "ddp"), params(tmp_path / "single")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    # Validation sharded over the ranks (3 files each) averages all 6 files, as one process does.
    sharded, whole = (validation_scores(tmp_path / run / "metrics.jsonl") for run in ("ddp", "single"))
    assert sharded.keys() == whole.keys() == {"si_sdr", "estoi"}
    assert all(abs(sharded[k] - whole[k]) < 1e-4 for k in whole)


def validation_scores(path) -> dict:
    (record,) = [json.loads(line) for line in path.read_text().splitlines() if "validation" in json.loads(line)]
    return record["validation"]


def kill_after_log_lines(command: list[str], log, lines: int, env: dict) -> None:
    """Start a training command, SIGKILL its whole process group (torchrun and every rank, no chance to
    clean up) once ``log`` has ``lines`` lines."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= lines:
            break
        time.sleep(0.05)
    assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read().decode()[-2000:]}"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def json_lines(path) -> list[int]:
    """The steps of the training records in a metrics log."""
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if "loss" in json.loads(line)]


@pytest.fixture(scope="module")
def twelve_steps(data_dir, tmp_path_factory):
    """A 12-step two-rank run's configuration file and its uninterrupted weights (checkpoint_every does not
    change what is computed: runs that save at other steps end with the same weights)."""
    folder = tmp_path_factory.mktemp("twelve")
    config_file = folder / "config.yaml"
    config_file.write_text(yaml.safe_dump(distributed_config(data_dir, "train.steps=12", "train.checkpoint_every=1")))
    full = launch([*TORCHRUN, "-m", "sectl", "train", "-p", str(config_file), "-o", str(folder / "full"), "-q"])
    assert full.returncode == 0, full.stderr[-3000:]
    return config_file, params(folder / "full")


def test_sigkill_of_a_distributed_run_then_resume_equals_an_uninterrupted_run(twelve_steps, tmp_path):
    config_file, full = twelve_steps
    killed = tmp_path / "killed"
    kill_after_log_lines([*TORCHRUN, "-m", "sectl", "train", "-p", str(config_file), "-o", str(killed), "-q"],
                         killed / "metrics.jsonl", 4, worker_env())  # fmt: skip
    at_kill = load_checkpoint(killed / "checkpoints" / "last.pt")["step"]  # readable: writes are atomic
    assert 1 <= at_kill < 12

    resumed = launch([*TORCHRUN, "-m", "sectl", "train", "-o", str(killed), "--resume", "-q"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    b = params(killed)
    assert all(torch.equal(full[k], b[k]) for k in full)
    assert json_lines(killed / "metrics.jsonl") == list(range(1, 13))

    one_process = launch([sys.executable, "-m", "sectl", "train", "-o", str(killed), "--resume", "-q"])
    assert one_process.returncode == 2 and "trained with 2 process(es)" in one_process.stderr


def test_ctrl_c_of_a_distributed_run_saves_one_agreed_step_and_names_the_torchrun_resume(twelve_steps, tmp_path):
    """Ctrl-C in a terminal reaches torchrun and every rank (and torchrun forwards it again), each rank within
    a different step: the ranks agree on one step through the step's own all-reduce and save it."""
    from tests.train.test_stopping import signal_after_log_lines

    config_file, full = twelve_steps
    (tmp_path / "config.yaml").write_text(config_file.read_text().replace("checkpoint_every: 1\n", "checkpoint_every: 100\n"))
    run = tmp_path / "run"
    command = [*TORCHRUN, "-m", "sectl", "train", "-p", str(tmp_path / "config.yaml"), "-o", str(run), "-q"]
    result = signal_after_log_lines(command, run / "metrics.jsonl", 3, signal.SIGINT, group=True)
    assert result.returncode != 0
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    assert 3 <= saved < 12, result.stderr[-3000:]
    assert f"stopped by SIGINT; step {saved} is saved in {run / 'checkpoints' / 'last.pt'}; continue with: " \
           f"torchrun --nproc_per_node 2 -m sectl train -o {run} --resume" in result.stderr, result.stderr[-3000:]  # fmt: skip
    assert result.stderr.count("stopped by SIGINT") == 1  # rank 0 says it
    assert json_lines(run / "metrics.jsonl") == list(range(1, saved + 1))

    resumed = launch([*TORCHRUN, "-m", "sectl", "train", "-o", str(run), "--resume", "-q"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    b = params(run)
    assert all(torch.equal(full[k], b[k]) for k in full)


@pytest.mark.parametrize("batch", [3])
def test_a_global_batch_that_does_not_split_over_the_ranks_is_refused(data_dir, tmp_path, batch):
    config = distributed_config(data_dir, f"train.batch_size={batch}")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    result = launch([*TORCHRUN, "-m", "sectl", "train", "-p", str(config_file), "-o", str(tmp_path / "run"), "-q"])
    assert result.returncode != 0
    assert "does not split evenly over 2 processes" in result.stderr


class FakeCollectives:
    """Stands in for a 2-rank process group whose backend (like NCCL) carries tensors of one device only:
    it records every tensor it is handed and refuses any on another device. Sums over "2 ranks" that
    hold the same values, so an average returns the input."""

    def __init__(self, monkeypatch, device: torch.device) -> None:
        self.device, self.calls = device, []
        monkeypatch.setattr(dist, "all_reduce", self.all_reduce)
        monkeypatch.setattr(dist, "broadcast", self.broadcast)

    def check(self, kind: str, tensor: torch.Tensor) -> None:
        assert tensor.device == self.device, f"{kind} of a tensor on {tensor.device}; the backend carries {self.device}"
        self.calls.append(kind)

    def all_reduce(self, tensor, op=None, group=None, async_op=False):
        self.check("all_reduce", tensor)
        if tensor.device.type != "meta":
            tensor.mul_(2)
        return FakeWork() if async_op else None

    def broadcast(self, tensor, src=0, group=None, async_op=False):
        self.check("broadcast", tensor)


class FakeWork:
    def wait(self) -> None:
        pass


def test_every_collective_gets_tensors_on_the_ranks_device(monkeypatch):
    """NCCL carries only CUDA tensors: a CPU tensor in any collective crashed multi-GPU runs at step 1. The
    meta device stands for the GPU here (no data, so only placement is checked)."""
    device = torch.device("meta")
    fake = FakeCollectives(monkeypatch, device)
    workers = Workers(rank=0, world_size=2, device=device)
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1)).to(device)
    workers.broadcast(model)
    reducer = GradientReducer(model.parameters(), workers, bucket_bytes=64)
    model(torch.ones(2, 4, device=device)).sum().backward()
    reducer.finish()
    logged = workers.mean({"loss": torch.ones((), device=device), "l1": torch.zeros((), device=device)})
    assert all(v.device == device for v in logged.values())
    assert fake.calls.count("broadcast") == 4 and fake.calls.count("all_reduce") >= 2


def test_gradient_buckets_are_sent_while_backward_runs_and_averaged(monkeypatch):
    fake = FakeCollectives(monkeypatch, torch.device("cpu"))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    x = torch.randn(4, 8)
    expected = torch.autograd.grad(model(x).pow(2).mean(), list(model.parameters()))
    reducer = GradientReducer(model.parameters(), Workers(rank=0, world_size=2), bucket_bytes=(8 * 8 + 8) * 4)
    model[0].weight.register_hook(lambda grad: fake.calls.append("first layer's gradient"))
    model(x).pow(2).mean().backward()
    # The last layers' buckets went out before backward reached the first layer.
    assert fake.calls.index("all_reduce") < fake.calls.index("first layer's gradient")
    reducer.finish()
    assert fake.calls.count("all_reduce") == 3  # one bucket per layer
    # Two ranks with equal gradients average to the same gradient.
    assert all(torch.allclose(p.grad, g) for p, g in zip(model.parameters(), expected))


VAE_RANK_SCRIPT = """
import sys, torch, yaml
from sectl.train.trainer import Trainer
trainer = Trainer(yaml.safe_load(open(sys.argv[1])), sys.argv[2])
trainer.prepare_run_folder(False, "test", [])
trainer.fit()
task = trainer.task
torch.save({"model": task.model.state_dict(), "project": task.distill.project.state_dict(),
            "discriminators": task.discriminators.state_dict()}, f"{sys.argv[2]}/rank{trainer.workers.rank}.pt")
"""


def test_jmas_trains_data_parallel_with_its_batch_terms_per_rank(data_dir, tmp_path):
    """JMAS's joint distance matrix and adaptive weights are computed over each rank's share (README):
    the ranks then differ in those terms, yet the averaged gradients keep every weight identical."""
    from tests.train.test_vae_task import vae_config

    config = vae_config(data_dir, "vae_jmas", "train.batch_size=4", "train.steps=2", "train.log_every=1",
                        "train.device=cpu", "vae.alternate=false")  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "rank_script.py").write_text(VAE_RANK_SCRIPT)
    result = launch([*TORCHRUN, str(tmp_path / "rank_script.py"), str(tmp_path / "config.yaml"), str(tmp_path / "ddp")])
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / "ddp" / f"rank{r}.pt") for r in (0, 1))
    for part in rank0:
        assert all(torch.equal(rank0[part][k], rank1[part][k]) for k in rank0[part]), part
    records = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "mdms" in r] == [1, 2]  # the per-rank terms, averaged over the ranks
