from __future__ import annotations

import pytest
import torch

from sectl.errors import ConfigError
from sectl.losses.mal import ModelAsLoss
from sectl.models import build_enhancer, count_parameters


@pytest.mark.parametrize("length", [1, 100, 16000, 16001])
def test_forward_keeps_shape_for_any_length(length):
    model = build_enhancer("masknet", "tiny").eval()
    y = model(torch.randn(2, length))
    assert y.shape == (2, length) and torch.isfinite(y).all()


def test_a_unit_mask_reconstructs_the_input():
    model = build_enhancer("masknet", "tiny").eval()
    with torch.no_grad():
        model.mask.weight.zero_()
        model.mask.bias.fill_(20.0)  # sigmoid -> 1
    x = torch.randn(1, 8000)
    assert torch.allclose(model(x)[:, 256:-256], x[:, 256:-256], atol=1e-4)


def test_encode_decode_split_and_mal():
    model = build_enhancer("masknet", "tiny")
    features = model.features(torch.randn(2, 4000))
    assert len(features) == 3 and all(f.dim() == 3 and f.shape[0] == 2 for f in features)
    clean = torch.randn(2, 4000)
    assert ModelAsLoss(model, "dynamic", levels=[1, 2])(clean, clean).item() == pytest.approx(0.0, abs=1e-6)


def test_sizes_and_unknown_settings():
    assert count_parameters(build_enhancer("masknet", "tiny")) < 100_000
    with pytest.raises(ConfigError, match="does not accept"):
        build_enhancer("masknet", "tiny", depth=3)
