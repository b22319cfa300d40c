from __future__ import annotations

import pytest
import torch

from sectl.losses.stft import MultiResolutionSTFTLoss
from sectl.losses.waveform import L1Loss, NegSISDRLoss

LOSSES = [L1Loss, NegSISDRLoss, MultiResolutionSTFTLoss]


def signals(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 8000, generator=g), torch.randn(2, 8000, generator=g)


@pytest.mark.parametrize("cls", [L1Loss, MultiResolutionSTFTLoss])
def test_zero_for_identical_signals(cls):
    x, _ = signals()
    assert cls()(x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_l1_known_value():
    x = torch.zeros(3, 100)
    assert L1Loss()(x + 0.5, x).item() == pytest.approx(0.5)
    assert L1Loss(reduction="none")(x + 0.5, x).shape == (3,)


def test_neg_si_sdr_known_values():
    x, n = signals()
    assert NegSISDRLoss()(3.0 * x, x).item() < -60  # a scaled copy is perfect
    # est = x + n with |n| = |x| and n orthogonal-ish to x -> SI-SDR about 0 dB
    assert NegSISDRLoss()(x + n, x).item() == pytest.approx(0.0, abs=0.5)


def test_mrstft_orders_distortions():
    x, n = signals()
    loss = MultiResolutionSTFTLoss()
    assert 0 < loss(x + 0.01 * n, x).item() < loss(x + 0.5 * n, x).item()


@pytest.mark.parametrize("cls", LOSSES)
def test_wrong_shapes_are_rejected(cls):
    with pytest.raises(ValueError, match="differ in shape"):
        cls()(torch.randn(2, 100), torch.randn(2, 101))
    with pytest.raises(ValueError, match="expected waveforms"):
        cls()(torch.randn(2, 2, 100), torch.randn(2, 2, 100))


@pytest.mark.parametrize("cls", LOSSES)
def test_gradient_reaches_the_estimate_only(cls):
    x, n = signals()
    est = (x + 0.1 * n).requires_grad_()
    ref = x.clone().requires_grad_()
    cls()(est.unsqueeze(1), ref.unsqueeze(1)).backward()
    assert est.grad is not None and est.grad.abs().sum() > 0


def test_mrstft_gradient_is_finite_on_digital_silence():
    est = torch.zeros(1, 4000, requires_grad=True)
    ref = torch.zeros(1, 4000)
    ref[0, 1000] = 1.0
    MultiResolutionSTFTLoss()(est, ref).backward()
    assert torch.isfinite(est.grad).all()
