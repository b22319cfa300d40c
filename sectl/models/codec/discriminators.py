"""Discriminators for GAN-trained waveform generators: multi-period (HiFi-GAN) and multi-resolution STFT.

Each sub-discriminator returns ``(score map, feature maps)``: the maps after each hidden convolution,
without the final score (they feed feature matching). Members come in two groups, as in the JMAS-VAE
release: ``period`` (the multi-period discriminator, whose input is DC-removed and peak-normalised,
as DAC's) and ``spectral`` (the second group, here multi-resolution STFT); the losses average within a
group and sum the groups (:mod:`sectl.losses.gan`). ``width`` scales every channel count (1.0 = the
published sizes), so the tiny test configuration and the real one share the code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

Output = tuple[torch.Tensor, list[torch.Tensor]]
Groups = dict[str, list[Output]]


def _leaky(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.leaky_relu(x, 0.1)


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> Output:
    """Leaky-ReLU convolutions then the score convolution; the hidden maps (not the score) are the features."""
    features = []
    for conv in convs:
        x = _leaky(conv(x))
        features.append(x)
    return post(x).flatten(1), features


class PeriodDiscriminator(nn.Module):
    """The waveform folded into ``period`` columns, 2-D convolutions along time (HiFi-GAN's MPD member)."""

    def __init__(self, period: int, width: float = 1.0) -> None:
        super().__init__()
        self.period = period
        channels = [1, *(max(1, int(c * width)) for c in (32, 128, 512, 1024, 1024))]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(cin, cout, (5, 1), (3 if i < 4 else 1, 1), (2, 0)))
            for i, (cin, cout) in enumerate(zip(channels, channels[1:]))
        )
        self.post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), 1, (1, 0)))

    def forward(self, wave: torch.Tensor) -> Output:
        b, t = wave.shape
        wave = wave - wave.mean(dim=-1, keepdim=True)  # DC removed and peak-normalised, as DAC's MPD
        wave = 0.8 * wave / (wave.abs().amax(dim=-1, keepdim=True) + 1e-9)
        pad = -t % self.period
        x = nn.functional.pad(wave.unsqueeze(1), (0, pad), mode="reflect" if t > pad else "constant")
        x = x.view(b, 1, -1, self.period)
        return _conv_stack(self.convs, self.post, x)


class SpectrogramDiscriminator(nn.Module):
    """2-D convolutions over one STFT magnitude (a multi-resolution discriminator member, as in UnivNet)."""

    def __init__(self, n_fft: int, hop: int, width: float = 1.0) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        ch = max(1, int(32 * width))
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, ch, (3, 9), padding=(1, 4))),
            *(weight_norm(nn.Conv2d(ch, ch, (3, 9), (1, 2), (1, 4))) for _ in range(3)),
            weight_norm(nn.Conv2d(ch, ch, (3, 3), padding=(1, 1))),
        ])  # fmt: skip
        self.post = weight_norm(nn.Conv2d(ch, 1, (3, 3), padding=(1, 1)))

    def forward(self, wave: torch.Tensor) -> Output:
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, return_complex=True)
        x = (spec.real.pow(2) + spec.imag.pow(2) + 1e-9).sqrt().transpose(1, 2).unsqueeze(1)  # (B, 1, T, F)
        return _conv_stack(self.convs, self.post, x)


@dataclass
class DiscriminatorConfig:
    periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    stft: list[list[int]] = field(default_factory=lambda: [[1024, 256], [2048, 512], [512, 128]])  # (n_fft, hop)
    width: float = 1.0


class Discriminators(nn.Module):
    """All members in their groups; ``forward(wave)`` -> ``{"period": [...], "spectral": [...]}``, one
    ``(score, features)`` per member."""

    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.config = DiscriminatorConfig(**kwargs)
        c = self.config
        self.groups = nn.ModuleDict({
            "period": nn.ModuleList(PeriodDiscriminator(p, c.width) for p in c.periods),
            "spectral": nn.ModuleList(SpectrogramDiscriminator(n_fft, hop, c.width) for n_fft, hop in c.stft),
        })  # fmt: skip

    @property
    def constructor_args(self) -> dict:
        return asdict(self.config)

    def forward(self, wave: torch.Tensor) -> Groups:
        return {name: [member(wave) for member in members] for name, members in self.groups.items()}
