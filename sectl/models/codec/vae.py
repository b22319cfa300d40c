"""A speech VAE: DAC-style convolutional encoder, Gaussian bottleneck, BigVGAN-style decoder.

As released with JMAS-VAE (``../shared/METHODS.md`` section 2): 16 kHz in and out; the encoder
downsamples by strides 4, 4, 5, 5 (hop 400: 40 latent frames per second) with Snake activations and
weight-normalised convolutions, ends in DAC's final kernel-3 convolution (2048 -> 2048 channels at the
``paper`` size), and a plain 1x1 ``proj_out`` gives each frame's mean and scale
(``std = softplus(scale) + 1e-4``, 64 channels; the adaptive distillation weights are taken at it);
the decoder (BigVGAN-v2, ``upsample_initial_channel`` 512) upsamples by 5, 5, 4, 4 with
anti-aliased SnakeBeta residual blocks and ends in ``tanh``. Inputs are zero-padded to whole hops, so
``T`` samples give ``ceil(T / hop)`` frames, and decoding crops back to ``T``.

Sizes: ``tiny`` (tests), ``small`` (trains on a CPU in hours), ``paper`` (the release: encoder 73.9 M
parameters with ``proj_out``, decoder 13.0 M, 86.8 M in all); the smaller sizes keep the structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from sectl.models.codec.activations import AntiAliased, Snake, SnakeBeta
from sectl.models.base import Configurable


def wn_conv(cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1, padding: int | None = None) -> nn.Module:
    pad = dilation * (kernel - 1) // 2 if padding is None else padding
    return weight_norm(nn.Conv1d(cin, cout, kernel, stride, pad, dilation))


@dataclass
class SpeechVAEConfig:
    sample_rate: int = 16000
    latent_dim: int = 64
    encoder_channels: int = 128  # doubled at each downsampling block
    encoder_strides: list[int] = field(default_factory=lambda: [4, 4, 5, 5])
    decoder_channels: int = 512  # BigVGAN-v2's upsample_initial_channel, halved at each upsampling block
    decoder_strides: list[int] = field(default_factory=lambda: [5, 5, 4, 4])
    resblock_kernels: list[int] = field(default_factory=lambda: [3, 7, 11])  # BigVGAN's multi-receptive-field fusion


VAE_SIZES: dict[str, dict] = {
    "tiny": dict(encoder_channels=8, decoder_channels=32, resblock_kernels=[3]),
    "small": dict(encoder_channels=32, decoder_channels=256, resblock_kernels=[3]),
    "paper": {},
}


class EncoderResidual(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.block = nn.Sequential(Snake(channels), wn_conv(channels, channels, 7, dilation=dilation),
                                   Snake(channels), wn_conv(channels, channels, 1))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class EncoderBlock(nn.Sequential):
    """Three dilated residual units, then a strided convolution that doubles the channels."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__(
            *(EncoderResidual(channels, d) for d in (1, 3, 9)),
            Snake(channels),
            wn_conv(channels, 2 * channels, 2 * stride, stride, padding=math.ceil(stride / 2)),
        )


class AMPBlock(nn.Module):
    """BigVGAN's anti-aliased multi-periodicity block: dilated convolutions between anti-aliased SnakeBetas."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...] = (1, 3, 5)) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(AntiAliased(SnakeBeta(channels)), wn_conv(channels, channels, kernel, dilation=d),
                          AntiAliased(SnakeBeta(channels)), wn_conv(channels, channels, kernel))  # fmt: skip
            for d in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer(x)
        return x


class DecoderBlock(nn.Module):
    """Transposed convolution (upsample by ``stride``, halve channels), then the mean of AMP blocks."""

    def __init__(self, channels: int, stride: int, kernels: list[int]) -> None:
        super().__init__()
        padding, output_padding = math.ceil(stride / 2), stride % 2  # exactly ``stride`` x the length
        self.up = weight_norm(nn.ConvTranspose1d(channels, channels // 2, 2 * stride, stride, padding, output_padding))
        self.resblocks = nn.ModuleList(AMPBlock(channels // 2, k) for k in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        return sum(block(x) for block in self.resblocks) / len(self.resblocks)


class SpeechVAE(Configurable, nn.Module):
    """``encode(wave) -> (mean, std)`` latents ``(B, latent_dim, frames)``; ``decode(z, length) -> wave``."""

    name = "speech_vae"
    config_class = SpeechVAEConfig  # constructor arguments (validated by sectl.train.schema)

    def __init__(self, **kwargs) -> None:
        super().__init__()
        c = self.configure(kwargs)
        if math.prod(c.encoder_strides) != math.prod(c.decoder_strides):
            raise ValueError("encoder and decoder strides must have the same product (the hop)")
        self.hop = math.prod(c.encoder_strides)
        channels = c.encoder_channels
        layers: list[nn.Module] = [wn_conv(1, channels, 7)]
        for stride in c.encoder_strides:
            layers.append(EncoderBlock(channels, stride))
            channels *= 2
        self.encoder = nn.Sequential(*layers, Snake(channels), wn_conv(channels, channels, 3))  # DAC's last conv
        self.to_moments = nn.Conv1d(channels, 2 * c.latent_dim, 1)  # proj_out: the last layer (adaptive weights)
        channels = c.decoder_channels
        blocks: list[nn.Module] = [wn_conv(c.latent_dim, channels, 7)]
        for stride in c.decoder_strides:
            blocks.append(DecoderBlock(channels, stride, c.resblock_kernels))
            channels //= 2
        self.decoder = nn.Sequential(*blocks, AntiAliased(SnakeBeta(channels)), wn_conv(channels, 1, 7), nn.Tanh())

    def frames(self, length: int) -> int:
        return max(1, -(-length // self.hop))

    def encode(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T)`` or ``(B, 1, T)`` -> mean and std ``(B, latent_dim, ceil(T / hop))``."""
        x = wave if wave.dim() == 3 else wave.unsqueeze(1)
        x = nn.functional.pad(x, (0, self.frames(x.shape[-1]) * self.hop - x.shape[-1]))
        mean, scale = self.to_moments(self.encoder(x)).chunk(2, dim=1)
        return mean, nn.functional.softplus(scale) + 1e-4

    def decode(self, latents: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """``(B, latent_dim, frames)`` -> ``(B, length)`` (default ``frames * hop``)."""
        wave = self.decoder(latents)[:, 0]
        return wave if length is None else nn.functional.pad(wave, (0, max(0, length - wave.shape[-1])))[:, :length]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """The deterministic round trip (mean latents), same shape as ``wave``: what ``sectl enhance`` machinery runs."""
        squeeze = wave.dim() == 3
        x = wave[:, 0] if squeeze else wave
        y = self.decode(self.encode(x)[0], x.shape[-1])
        return y.unsqueeze(1) if squeeze else y
