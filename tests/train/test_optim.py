"""One optimiser update: non-finite steps leave weights untouched without a host read; precisions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sectl.errors import ConfigError
from sectl.train.optim import GradientStep, Precision, adamw

TRAIN = {"lr": 0.1, "betas": [0.9, 0.999], "weight_decay": 0.0}


def test_a_non_finite_loss_skips_the_update_and_keeps_the_moments():
    model = nn.Linear(4, 1)
    optimizer = adamw(model.parameters(), TRAIN, torch.device("cpu"))
    update = GradientStep(optimizer, clip=1.0, precision=Precision())
    x = torch.randn(8, 4)
    _, finite = update(model(x).pow(2).mean())
    assert bool(finite)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    moments = {k: v.clone() for k, v in optimizer.state[model.weight].items()}
    grad_norm, finite = update(model(x).pow(2).mean() * float("nan"))
    assert not bool(finite) and not torch.isfinite(grad_norm)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(moments[k], v) for k, v in optimizer.state[model.weight].items())
    _, finite = update(model(x).pow(2).mean())  # training goes on from where it was
    assert bool(finite) and not torch.equal(weights["weight"], model.weight)


@pytest.mark.parametrize("name,dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_networks_run_in_the_autocast_dtype_and_losses_in_float32(name, dtype):
    precision = Precision(name, "cpu")
    model = nn.Linear(4, 4)
    with precision.autocast():
        y = model(torch.randn(2, 4))
        with precision.full():
            z = model(y.float())
    assert y.dtype == dtype and z.dtype == torch.float32
    assert precision.scaler().is_enabled() == (name == "fp16")


def test_fp16_steps_through_the_loss_scaler():
    """The scaler may skip a step whose scaled gradient overflows (and lower the scale): weights still move."""
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    optimizer = adamw(model.parameters(), TRAIN, torch.device("cpu"))
    update = GradientStep(optimizer, clip=1.0, precision=Precision("fp16", "cpu"))
    before = model.weight.detach().clone()
    for _ in range(5):
        with Precision("fp16", "cpu").autocast():
            loss = model(torch.randn(8, 4)).float().pow(2).mean()
        _, finite = update(loss)
        assert bool(finite)
    assert not torch.equal(before, model.weight)
    assert update.state_dict()["scale"] > 0  # checkpointed with the run


def test_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="train.precision"):
        Precision("fp8")


def test_auto_precision_is_bf16_on_a_gpu_with_it_and_fp32_on_the_cpu(monkeypatch):
    from sectl.train import resolve_config

    assert Precision.resolve("auto", torch.device("cpu")) == Precision("fp32", "cpu")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert Precision.resolve("auto", torch.device("cuda")) == Precision("bf16", "cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert Precision.resolve("auto", torch.device("cuda")) == Precision("fp32", "cuda")
    assert Precision.resolve("fp16", torch.device("cpu")) == Precision("fp16", "cpu")
    for preset in ("vae_vanilla", "vae_tas", "vae_jmas"):  # the release trains in 16-bit mixed precision
        assert resolve_config(preset)["train"]["precision"] == "auto"
