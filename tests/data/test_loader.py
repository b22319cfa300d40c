"""Batches from loader processes equal the samplers' own batches, so workers never change a run."""

from __future__ import annotations

import pytest
import torch

from sectl.data.loader import batch_loader, default_workers, resolve_workers
from sectl.data.mixing import MixingConfig, MixingSampler
from sectl.errors import ConfigError
from sectl.models.io.checkpoint import load_checkpoint
from sectl.train import train
from tests.train.test_trainer import params, tiny_config, train_interrupted_at


def test_a_loader_with_workers_yields_the_samplers_batches_from_any_start(data_dir):
    sampler = MixingSampler(MixingConfig(clean=str(data_dir / "speech"), noise=str(data_dir / "noise"),
                                         rir=str(data_dir / "rir"), segment_s=0.25), 16000, seed=3)  # fmt: skip
    examples = range(2, 4)  # rank 1 of 2 with a global batch of 4
    loaded = list(batch_loader(sampler, examples, 5, 9, workers=2, device=torch.device("cpu")))
    assert len(loaded) == 4
    for step, (noisy, clean) in zip(range(5, 9), loaded):
        expected = sampler.batch(step, examples)
        assert torch.equal(noisy, expected[0]) and torch.equal(clean, expected[1])


def test_the_loader_leaves_the_training_rng_alone(data_dir):
    sampler = MixingSampler(MixingConfig(clean=str(data_dir / "speech"), noise=str(data_dir / "noise"), segment_s=0.25))
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    list(batch_loader(sampler, range(2), 0, 2, workers=0, device=torch.device("cpu")))
    assert torch.equal(torch.rand(3), expected)


def test_training_with_two_workers_equals_training_in_process(data_dir, tmp_path):
    for workers in (0, 2):
        train(tiny_config(data_dir, "baseline", "train.steps=3", f"data.workers={workers}"), tmp_path / f"w{workers}")
    a, b = params(tmp_path / "w0"), params(tmp_path / "w2")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Resumed with workers (the loader restarts at the saved step): still the same weights.
    train_interrupted_at(tiny_config(data_dir, "baseline", "train.steps=3", "data.workers=2"), tmp_path / "resumed", 1)
    c = params(tmp_path / "resumed")
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["step"] == 3
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_worker_counts():
    assert resolve_workers(3) == 3 and resolve_workers("auto") == default_workers()
    assert 0 <= default_workers() <= 8 and default_workers(processes_per_node=10**6) == 0
    for bad in (-1, "many", True):
        with pytest.raises(ConfigError, match="data.workers"):
            resolve_workers(bad)
