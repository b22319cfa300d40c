"""The speech VAE, its activations and discriminators: shapes, lengths, sizes."""

from __future__ import annotations

import math

import pytest
import torch

from sectl.models import build_codec, count_parameters
from sectl.models.activations import AntiAliased, SnakeBeta, kaiser_sinc_filter
from sectl.models.discriminators import Discriminators


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return build_codec("speech_vae", "tiny").eval()


@pytest.mark.parametrize("length", [1, 399, 400, 401, 16001])
def test_frames_are_ceil_of_hops_and_decoding_restores_the_length(vae, length):
    mean, std = vae.encode(torch.randn(2, length))
    assert mean.shape == std.shape == (2, 64, math.ceil(length / 400))
    assert (std > 0).all()
    assert vae(torch.randn(2, length)).shape == (2, length)
    assert vae.decode(mean).shape == (2, mean.shape[-1] * 400)


def test_a_7_23_second_file_gives_64_by_290_latents(vae):
    mean, _ = vae.encode(torch.zeros(1, int(7.23 * 16000)))
    assert mean.shape == (1, 64, 290)  # 40 frames per second, the last one partial


def test_paper_size_matches_the_release_part_by_part():
    """Encoder 73.6 M + proj_out 0.26 M, decoder (upsample_initial_channel 512) 13.0 M: 86.8 M in all."""
    vae = build_codec("speech_vae", "paper")
    encoder, proj_out, decoder = (count_parameters(m) for m in (vae.encoder, vae.to_moments, vae.decoder))
    assert proj_out == 2048 * 128 + 128 and vae.to_moments.kernel_size == (1,)
    assert encoder + proj_out == pytest.approx(73.9e6, rel=0.02)
    assert decoder == pytest.approx(13.0e6, rel=0.02)
    assert encoder + proj_out + decoder == pytest.approx(86.8e6, rel=0.02)
    last = vae.encoder[-1]  # DAC's final convolution, 2048 -> 2048, kernel 3, before proj_out
    assert (last.in_channels, last.out_channels, last.kernel_size) == (2048, 2048, (3,))


def test_anti_aliased_activation_keeps_length_and_passes_low_frequencies():
    identity = AntiAliased(torch.nn.Identity())
    t = torch.arange(4000) / 16000
    low = torch.sin(2 * math.pi * 500 * t).view(1, 1, -1)
    assert identity(low).shape == low.shape
    assert torch.allclose(identity(low)[..., 100:-100], low[..., 100:-100], atol=0.02)
    high = torch.sin(2 * math.pi * 7600 * t).view(1, 1, -1)  # near Nyquist: in the filters' transition band
    assert identity(high)[..., 100:-100].abs().max() < 0.6
    assert AntiAliased(SnakeBeta(3))(torch.randn(2, 3, 101)).shape == (2, 3, 101)
    assert kaiser_sinc_filter(0.25, 0.3, 12).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("length", [1600, 1601])
def test_every_discriminator_member_scores_and_exposes_features(length):
    outputs = Discriminators(width=0.1)(torch.randn(2, length))
    assert len(outputs) == 5 + 3
    for score, features in outputs:
        assert score.shape[0] == 2 and len(features) >= 5
