"""Discriminators for GAN-trained waveform generators: multi-period (HiFi-GAN), multi-scale sub-band
CQT (BigVGAN-v2) and multi-resolution STFT (UnivNet).

Each sub-discriminator returns ``(score map, feature maps)``: the maps after each hidden convolution,
without the final score (they feed feature matching). Members come in two groups, as in the JMAS-VAE
release: ``period`` (the multi-period discriminator, whose input is DC-removed and peak-normalised,
as DAC's) and ``spectral``: the release's sub-band CQT discriminator, or the multi-resolution STFT
one, cheaper on a CPU (``spectral="stft"``); the losses average within a group and sum the groups
(:mod:`sectl.losses.gan`). ``width`` scales every channel count (1.0 = the published sizes), so the
tiny test configuration and the real one share the code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from sectl.audio.io import Resampler

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


class CQTDiscriminator(nn.Module):
    """BigVGAN-v2's sub-band CQT member: the complex constant-Q transform of the signal upsampled 2x
    (real and imaginary parts as two channels), one convolution per octave, then a 2-D stack with
    dilations along time and stride 2 along frequency.

    The CQT is nnAudio's ``CQT2010v2`` (what the release uses): differentiable, octave by octave with
    downsampling, so its kernels stay short; hand-writing it would repeat a maintained library.
    """

    def __init__(self, sample_rate: int, hop: int, octaves: int, bins_per_octave: int, width: float = 1.0,
                 filters: int = 32, max_filters: int = 1024, dilations: tuple[int, ...] = (1, 2, 4),
                 fmin: float = 32.7) -> None:  # fmt: skip
        super().__init__()
        import logging

        from nnAudio.features.cqt import CQT2010v2

        logging.getLogger("nnAudio").setLevel(logging.ERROR)
        self.octaves, self.bins_per_octave = octaves, bins_per_octave
        self.upsample = Resampler(sample_rate, 2 * sample_rate)
        self.cqt = CQT2010v2(sr=2 * sample_rate, hop_length=hop, fmin=fmin, n_bins=octaves * bins_per_octave,
                             bins_per_octave=bins_per_octave, output_format="Complex", pad_mode="constant",
                             verbose=False)  # fmt: skip
        ch = min(max(1, int(filters * width)), max_filters)
        self.per_octave = nn.ModuleList(nn.Conv2d(2, 2, (3, 9), padding=(1, 4)) for _ in range(octaves))
        self.convs = nn.ModuleList([
            nn.Conv2d(2, ch, (3, 9), padding=(1, 4)),
            *(weight_norm(nn.Conv2d(ch, ch, (3, 9), (1, 2), (d, 4), (d, 1))) for d in dilations),
            weight_norm(nn.Conv2d(ch, ch, (3, 3), padding=(1, 1))),
        ])  # fmt: skip
        self.post = weight_norm(nn.Conv2d(ch, 1, (3, 3), padding=(1, 1)))

    def forward(self, wave: torch.Tensor) -> Output:
        spec = self.cqt(self.upsample(wave))  # (B, bins, frames, 2): real, imaginary
        x = spec.permute(0, 3, 2, 1)  # (B, 2, frames, bins)
        bands = x.split(self.bins_per_octave, dim=-1)
        x = torch.cat([conv(band) for conv, band in zip(self.per_octave, bands)], dim=-1)
        return _conv_stack(self.convs, self.post, x)


SPECTRAL = ("cqt", "stft")


@dataclass
class DiscriminatorConfig:
    sample_rate: int = 16000
    periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    spectral: str = "cqt"  # the second group: "cqt" (the release's) or "stft" (faster on a CPU)
    cqt: list[list[int]] = field(default_factory=lambda: [[512, 24], [256, 36], [256, 48]])  # (hop, bins/octave)
    cqt_octaves: int = 8  # from 32.7 Hz; 8 octaves reach 8.4 kHz, below the Nyquist rate of 16 kHz audio
    stft: list[list[int]] = field(default_factory=lambda: [[1024, 256], [2048, 512], [512, 128]])  # (n_fft, hop)
    width: float = 1.0


class Discriminators(nn.Module):
    """All members in their groups; ``forward(wave)`` -> ``{"period": [...], "spectral": [...]}``, one
    ``(score, features)`` per member."""

    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.config = DiscriminatorConfig(**kwargs)
        c = self.config
        if c.spectral not in SPECTRAL:
            raise ValueError(f"spectral discriminator {c.spectral!r}: use one of {', '.join(SPECTRAL)}")
        if c.spectral == "cqt":
            spectral = [CQTDiscriminator(c.sample_rate, hop, c.cqt_octaves, bins, c.width) for hop, bins in c.cqt]
        else:
            spectral = [SpectrogramDiscriminator(n_fft, hop, c.width) for n_fft, hop in c.stft]
        self.groups = nn.ModuleDict({
            "period": nn.ModuleList(PeriodDiscriminator(p, c.width) for p in c.periods),
            "spectral": nn.ModuleList(spectral),
        })  # fmt: skip

    @property
    def constructor_args(self) -> dict:
        return asdict(self.config)

    def forward(self, wave: torch.Tensor) -> Groups:
        return {name: [member(wave) for member in members] for name, members in self.groups.items()}
