"""The speech VAE, its activations and discriminators: shapes, lengths, sizes."""

from __future__ import annotations

import math

import pytest
import torch

from sectl.models import build_codec, count_parameters
from sectl.models.codec.activations import AntiAliased, SnakeBeta, kaiser_sinc_filter
from sectl.models.codec.discriminators import Discriminators


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


@pytest.mark.parametrize("length,spectral", [(1600, "cqt"), (1601, "cqt"), (1601, "stft")])
def test_every_discriminator_member_scores_and_exposes_features_without_the_score(length, spectral):
    discriminators = Discriminators(width=0.1, spectral=spectral)
    groups = discriminators(torch.randn(2, length))
    assert {name: len(outputs) for name, outputs in groups.items()} == {"period": 5, "spectral": 3}
    for name, outputs in groups.items():
        for member, (score, features) in zip(discriminators.groups[name], outputs):
            assert score.shape[0] == 2 and len(features) == len(member.convs)  # hidden maps only, no logits


def test_the_spectral_group_is_the_released_sub_band_cqt_discriminator():
    """BigVGAN-v2's MS-SB-CQT-D as the release configures it: 3 members (hops 512/256/256, 24/36/48 bins
    per octave, 8 octaves from 32.7 Hz on the 2x-upsampled signal), 32 filters, dilations 1, 2, 4."""
    from sectl.models.codec.discriminators import CQTDiscriminator

    members = Discriminators(sample_rate=16000).groups["spectral"]
    assert all(isinstance(m, CQTDiscriminator) for m in members)
    assert [(m.cqt.hop_length, m.bins_per_octave, m.octaves) for m in members] == [(512, 24, 8), (256, 36, 8), (256, 48, 8)]
    assert [conv.dilation[0] for conv in members[0].convs[1:4]] == [1, 2, 4]
    # per octave 8 x (2x2x3x9 + 2); 2->32 (3x9); three 32->32 (3x9) and one (3x3), weight-normed; score 32->1 (3x3)
    assert [sum(p.numel() for p in m.parameters()) for m in members] == [95346] * 3
    x = torch.randn(1, 16000, requires_grad=True)
    score, _ = members[1](x)
    score.sum().backward()
    assert x.grad.abs().sum() > 0  # differentiable down to the waveform, through the CQT


def test_the_period_group_sees_dc_removed_peak_normalised_audio():
    torch.manual_seed(0)
    discriminators = Discriminators(width=0.1)
    x = torch.randn(2, 1600)
    a, b = discriminators(x)["period"], discriminators(3.0 * x + 0.5)["period"]
    assert all(torch.allclose(sa, sb, atol=1e-5) for (sa, _), (sb, _) in zip(a, b))


def test_gan_losses_average_members_within_a_group_and_sum_the_groups():
    from sectl.losses.gan import discriminator_loss, feature_matching_loss, generator_adversarial_loss

    def member(score: float, feature: float):
        return torch.full((1, 4), score), [torch.full((1, 3), feature)]

    fake = {"period": [member(0.0, 1.0), member(2.0, 1.0)], "spectral": [member(1.0, 3.0)]}
    real = {"period": [member(1.0, 0.0), member(1.0, 0.0)], "spectral": [member(1.0, 2.0)]}
    # period: mean((0-1)^2, (2-1)^2) = 1; spectral: (1-1)^2 = 0 -> 1 (a flat mean over 3 members: 2/3)
    assert float(generator_adversarial_loss(fake)) == pytest.approx(1.0)
    # period: mean(0 + 0^2, 0 + 2^2) = 2; spectral: 0 + 1^2 = 1 -> 3 (a flat mean over 3 members: 5/3)
    assert float(discriminator_loss(real, fake)) == pytest.approx(3.0)
    # period: L1 1 (absolute); spectral: |3 - 2| / |2| = 0.5 (relative to the real feature) -> 1.5
    assert float(feature_matching_loss(fake, on_real=real)) == pytest.approx(1.5)
