"""A Demucs-style waveform U-Net (Defossez et al., 2020) with separate encode/decode stages.

Differences from facebookresearch/denoiser, on purpose: no 4x input upsampling (it quadruples the
cost for a small gain; the real-time target on one CPU thread matters more) and an optional
convolutional bottleneck for fully convolutional models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sectl.models.base import Enhancer
from sectl.models.enhancers.blocks import ConvBottleneck, DecoderLevel, EncoderLevel, LSTMBottleneck


@dataclass
class DemucsConfig:
    sample_rate: int = 16000  # the rate of the training data; enhance resamples to it
    hidden: int = 48  # channels of the first level
    depth: int = 5  # encoder levels
    kernel_size: int = 8
    stride: int = 4
    growth: float = 2.0  # channel multiplier per level
    max_hidden: int = 1024
    bottleneck: str = "lstm"  # "lstm" or "conv"
    causal: bool = False  # unidirectional LSTM / causal conv bottleneck
    normalize: bool = True  # scale each input by its whole-signal level; false (absolute levels) can stream


SIZES: dict[str, dict] = {
    "tiny": dict(hidden=8, depth=3, max_hidden=32),  # tests: < 100k parameters
    "small": dict(hidden=24, depth=4, max_hidden=192),  # CPU-trainable, real-time on one core
    "base": dict(hidden=48, depth=5),
}


class Demucs(Enhancer):
    name = "demucs"
    config_class = DemucsConfig  # constructor arguments (validated by sectl.train.schema)

    def __init__(self, **kwargs) -> None:
        super().__init__()
        c = self.configure(kwargs)
        self.encoder = nn.ModuleList()
        decoder = []
        chin, channels = 1, c.hidden
        for level in range(c.depth):
            self.encoder.append(EncoderLevel(chin, channels, c.kernel_size, c.stride))
            decoder.insert(0, DecoderLevel(channels, chin, c.kernel_size, c.stride, last=level == 0))
            chin, channels = channels, min(int(channels * c.growth), c.max_hidden)
        self.decoder = nn.ModuleList(decoder)
        if c.bottleneck == "lstm":
            self.bottleneck: nn.Module = LSTMBottleneck(chin, bidirectional=not c.causal)
        elif c.bottleneck == "conv":
            self.bottleneck = ConvBottleneck(chin, causal=c.causal)
        else:
            raise ValueError(f"unknown bottleneck {c.bottleneck!r}; use 'lstm' or 'conv'")

    def valid_length(self, length: int) -> int:
        c = self.config
        for _ in range(c.depth):
            length = max(math.ceil((length - c.kernel_size) / c.stride) + 1, 1)
        for _ in range(c.depth):
            length = (length - 1) * c.stride + c.kernel_size
        return int(length)

    def encoder_levels(self) -> list[nn.Module]:
        return [*self.encoder, self.bottleneck]

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.encoder:
            x = level(x)
            features.append(x)
        features.append(self.bottleneck(x))
        return features

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        *skips, x = features
        for level, skip in zip(self.decoder, reversed(skips)):
            x = level(x + skip[..., : x.shape[-1]])
        return x
