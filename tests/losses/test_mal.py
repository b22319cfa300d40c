"""Model as Loss: each variant freezes what it claims (parameter checksums) and the collapse guard."""

from __future__ import annotations

import pytest
import torch

from sectl.errors import SectlError
from sectl.losses.mal import CollapseMonitor, ModelAsLoss, learned_levels
from sectl.losses.waveform import L1Loss
from sectl.models import build_enhancer
from sectl.train.losses import LossSet


def checksum(module: torch.nn.Module) -> float:
    return float(sum(p.detach().double().sum() for p in module.parameters()))


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    clean = torch.randn(2, 4000, generator=g) * 0.1
    return clean + 0.05 * torch.randn(2, 4000, generator=g), clean


def train_steps(model, loss, steps: int = 3) -> None:
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for s in range(steps):
        noisy, clean = batch(s)
        opt.zero_grad()
        loss(model(noisy), clean).backward()
        opt.step()


@pytest.mark.parametrize("variant", ["frozen", "frozen-fe", "dynamic"])
def test_zero_for_identical_signals(variant):
    model = build_enhancer(size="tiny")
    _, clean = batch()
    assert ModelAsLoss(model, variant)(clean, clean).item() == pytest.approx(0.0, abs=1e-7)


def test_frozen_snapshot_never_changes_while_the_model_trains():
    torch.manual_seed(0)
    trained = build_enhancer(size="tiny")
    model = build_enhancer(size="tiny")
    model.load_state_dict(trained.state_dict())
    loss = ModelAsLoss(model, "frozen", snapshot=trained)
    before_snapshot, before_model = checksum(loss.encoder_model), checksum(model)
    train_steps(model, loss)
    assert checksum(loss.encoder_model) == before_snapshot
    assert checksum(model) != before_model
    assert all(p.grad is None for p in loss.encoder_model.parameters())


def test_frozen_fe_freezes_the_front_end_only():
    model = build_enhancer(size="tiny")
    loss = ModelAsLoss(model, "frozen-fe", frozen_levels=2)
    front = [checksum(level) for level in model.encoder[:2]]
    rest = [checksum(model.encoder[2]), checksum(model.decoder)]
    train_steps(model, loss)
    assert [checksum(level) for level in model.encoder[:2]] == front
    assert [checksum(model.encoder[2]), checksum(model.decoder)] != rest


def test_dynamic_uses_the_live_encoder_with_a_detached_clean_branch():
    model = build_enhancer(size="tiny")
    loss = ModelAsLoss(model, "dynamic")
    assert loss.encoder_model is model
    assert not list(loss.parameters())  # the live model is not duplicated inside the loss
    noisy, clean = batch()
    clean = clean.clone().requires_grad_()
    loss(model(noisy), clean).backward()
    assert clean.grad is None  # no gradient through the clean branch: targets cannot shrink
    assert model.encoder[0].down.weight.grad.abs().sum() > 0  # the live encoder learns from MAL


def test_gradient_reaches_the_decoder():
    model = build_enhancer(size="tiny")
    noisy, clean = batch()
    ModelAsLoss(model, "frozen")(model(noisy), clean).backward()
    assert model.decoder[-1].up.weight.grad.abs().sum() > 0


def test_collapse_guard_stops_a_collapsing_and_a_runaway_encoder():
    model = build_enhancer(size="tiny")
    mal = ModelAsLoss(model, "dynamic")
    losses = LossSet({"mal": mal, "l1": L1Loss()}, {"mal": 1.0, "l1": 0.1})
    monitor = CollapseMonitor(low=0.05, high=20.0)
    noisy, clean = batch()
    losses(model(noisy), clean)
    assert monitor.check(mal.last_spread) == 1.0  # the first step is the baseline
    weights = [level.down.weight.detach().clone() for level in model.encoder]
    for factor, message in ((1e-4, "collapse"), (1e4, "runaway")):
        with torch.no_grad():
            for level, w in zip(model.encoder, weights):
                level.down.weight.copy_(w * factor)  # (almost) a constant encoder / exploding features
        losses(model(noisy), clean)
        case = CollapseMonitor(low=0.05, high=20.0)
        case.load_state_dict(monitor.state_dict())  # the same baseline; the first step outside is each case's
        with pytest.raises(SectlError, match=message):
            case.check(mal.last_spread)
    restored = CollapseMonitor(0.05, 20.0)
    restored.load_state_dict(monitor.state_dict())  # the baseline travels in checkpoints
    assert float(restored.baseline) == float(monitor.baseline)


def test_levels_and_weights_select_and_validate():
    model = build_enhancer(size="tiny")
    noisy, clean = batch()
    est = model(noisy).detach()
    full = ModelAsLoss(model, "dynamic")(est, clean)
    parts = [ModelAsLoss(model, "dynamic", levels=[i])(est, clean) for i in range(4)]
    assert full.item() == pytest.approx(sum(p.item() for p in parts), rel=1e-5)
    assert ModelAsLoss(model, "dynamic", levels=[-1])(est, clean).item() == parts[-1].item()  # bottleneck
    with pytest.raises(SectlError, match="weights"):
        ModelAsLoss(model, "dynamic", levels=[0, 1], weights=[1.0])(est, clean)
    with pytest.raises(SectlError, match="out of range"):
        ModelAsLoss(model, "dynamic", levels=[4])
    with pytest.raises(SectlError, match="variant"):
        ModelAsLoss(model, "sometimes")


def test_levels_without_weights_are_left_out_and_refused():
    """MaskNet's level 0 is the input STFT: no weights, so not the model's representation."""
    model = build_enhancer("masknet", "tiny")
    assert learned_levels(model) == [1, 2]
    assert ModelAsLoss(model, "dynamic").levels == [1, 2]
    with pytest.raises(SectlError, match="level 0 of masknet has no weights"):
        ModelAsLoss(model, "dynamic", levels=[0])
    with pytest.raises(SectlError, match="2 levels with weights .* freezes 1 to 1"):
        ModelAsLoss(model, "frozen-fe", frozen_levels=2)
