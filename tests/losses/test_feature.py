import torch

from sectl.losses.feature import SSLFeatureLoss


def test_ssl_feature_loss_zero_on_identity_and_differentiable():
    loss = SSLFeatureLoss("tiny", layer=2)
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(2, 8000, generator=g)
    assert loss(clean, clean).item() == 0.0
    est = (clean + 0.3 * torch.randn(2, 8000, generator=g)).requires_grad_()
    value = loss(est, clean)
    value.backward()
    assert value.item() > 0
    assert est.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())  # the teacher stays frozen
