from __future__ import annotations

import pytest
import torch

from sectl.errors import SectlError
from sectl.losses.ssl_alignment import SSLMSELoss, SSLPadMSELoss, SSLSoftDTWLoss


def speechlike(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(16000) / 16000
    return (torch.sin(2 * torch.pi * 180 * t * (1 + t)) * torch.rand(1, generator=g) + 0.05 * torch.randn(2, 16000, generator=g))


@pytest.mark.parametrize("cls", [SSLMSELoss, SSLSoftDTWLoss])
def test_zero_for_identical_signals_without_perturbation(cls):
    kwargs = {"speeds": (1.0,)} if cls is SSLSoftDTWLoss else {}
    loss = cls("tiny", 2, **kwargs)
    x = speechlike()
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_pad_loss_compares_content_aligned_frames():
    x = speechlike()
    padded = SSLPadMSELoss("tiny", 2, pad_range=(0.04, 0.04))
    plain = SSLMSELoss("tiny", 2)
    torch.manual_seed(0)
    # Padding moves positions, not content: the loss on identical signals stays far below a mismatch.
    same = padded(x, x).item()
    other = padded(speechlike(1), x).item()
    assert same < other
    assert plain(speechlike(1), x).item() > 0
    with pytest.raises(SectlError, match="pad_side"):
        SSLPadMSELoss("tiny", 2, side="middle")


def test_soft_dtw_loss_tolerates_tempo_and_trains():
    loss = SSLSoftDTWLoss("tiny", 2, speeds=(0.8, 1.2))
    x = speechlike()
    est = (x + 0.2 * torch.randn_like(x)).requires_grad_()
    torch.manual_seed(0)
    value = loss(est, x)
    value.backward()
    assert value.item() > 0 and est.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())
