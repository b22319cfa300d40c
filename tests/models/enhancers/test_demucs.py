from __future__ import annotations

import pytest
import torch

from sectl.errors import ConfigError
from sectl.models import build_enhancer, count_parameters


def test_tiny_is_under_100k_parameters_and_sizes_grow():
    sizes = [count_parameters(build_enhancer(size=s)) for s in ("tiny", "small", "base")]
    assert sizes[0] < 100_000
    assert sizes[0] < sizes[1] < sizes[2]


@pytest.mark.parametrize("length", [1, 799, 16000, 16001])
def test_forward_keeps_shape_for_any_length(length):
    model = build_enhancer(size="tiny").eval()
    x = torch.randn(2, length)
    assert model(x).shape == (2, length)
    assert torch.isfinite(model(x)).all()
    assert model(x.unsqueeze(1)).shape == (2, 1, length)


def test_forward_is_decode_of_encode():
    model = build_enhancer(size="tiny").eval()
    x = torch.randn(1, 1, 4000)
    scale = model.scale(x)
    features = model.features(x, scale)
    assert len(features) == model.config.depth + 1
    manual = model.decode(features)[..., :4000] * scale
    assert torch.allclose(model(x), manual)


def test_valid_length_is_reproduced_exactly():
    model = build_enhancer(size="tiny")
    for length in (100, 1000, 12345):
        valid = model.valid_length(length)
        assert valid >= length
        assert model.decode(model.encode(torch.randn(1, 1, valid))).shape[-1] == valid


def test_causal_model_output_ignores_the_far_future():
    model = build_enhancer(size="tiny", causal=True).eval()
    x = torch.randn(1, 16000)
    y = torch.randn(1, 16000)
    y[:, :8000] = x[:, :8000]
    # Normalisation uses the whole-signal std, so compare on the normalised path directly.
    with torch.no_grad():
        fx = model.decode(model.features(x, torch.ones(1, 1, 1)))
        fy = model.decode(model.features(y, torch.ones(1, 1, 1)))
    # Receptive-field lookahead of the strided convs is below 0.1 s.
    assert torch.allclose(fx[..., :6000], fy[..., :6000], atol=1e-6)
    assert not torch.allclose(fx[..., 9000:12000], fy[..., 9000:12000])


def test_conv_bottleneck_and_bad_names():
    assert build_enhancer(size="tiny", bottleneck="conv")(torch.randn(1, 3000)).shape == (1, 3000)
    with pytest.raises(ConfigError, match="model.size"):
        build_enhancer(size="huge")
    with pytest.raises(ConfigError, match="model.name"):
        build_enhancer(name="nope")
