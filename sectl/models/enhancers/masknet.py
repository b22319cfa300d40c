"""A spectral-masking enhancer: STFT -> recurrent mask estimator -> masked STFT -> inverse STFT.

Why a second architecture: a bounded magnitude mask can only attenuate what is in the input, which
keeps speech distortion low when training data are scarce or synthetic (the bundled default model's
situation), and it costs little (125 frames per second). It keeps the enhancer interface: ``encode``
returns the per-level features (the noisy STFT, the frame embedding, the recurrent state sequence),
``decode`` turns them back into a waveform, so Model as Loss and every training recipe apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sectl.models.base import Enhancer


@dataclass
class MaskNetConfig:
    sample_rate: int = 16000  # the rate of the training data; enhance resamples to it
    n_fft: int = 512  # 32 ms at 16 kHz
    hop: int = 128  # 8 ms
    hidden: int = 256
    layers: int = 2
    causal: bool = False  # unidirectional LSTM
    max_gain: float = 1.0  # upper bound of the mask
    normalize: bool = True  # scale each input by its whole-signal level; false (absolute levels) can stream


MASKNET_SIZES: dict[str, dict] = {
    "tiny": dict(hidden=32, layers=1),
    "small": dict(hidden=192, layers=2),
    "base": dict(hidden=384, layers=3),
}


class MaskNet(Enhancer):
    name = "masknet"
    config_class = MaskNetConfig  # constructor arguments (validated by sectl.train.schema)

    def __init__(self, **kwargs) -> None:
        super().__init__()
        c = self.configure(kwargs)
        bins = c.n_fft // 2 + 1
        self.register_buffer("window", torch.hann_window(c.n_fft), persistent=False)
        self.embed = nn.Sequential(nn.Linear(bins, c.hidden), nn.LayerNorm(c.hidden), nn.ReLU())
        self.rnn = nn.LSTM(c.hidden, c.hidden, c.layers, batch_first=True, bidirectional=not c.causal)
        self.mask = nn.Linear(c.hidden * (1 if c.causal else 2), bins)

    def valid_length(self, length: int) -> int:
        hop = self.config.hop
        return max(1, -(-length // hop)) * hop

    def encoder_levels(self) -> list[nn.Module]:
        return [nn.Identity(), self.embed, self.rnn]

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        spec = torch.stft(
            x[:, 0], self.config.n_fft, self.config.hop, window=self.window, pad_mode="constant", return_complex=True
        )
        log_power = torch.log(spec.real.pow(2) + spec.imag.pow(2) + 1e-8).transpose(1, 2)  # (B, T, F)
        embedded = self.embed(log_power)
        states, _ = self.rnn(embedded)
        # Features as (B, C, T), like the waveform U-Net's levels; the STFT as stacked real/imag.
        return [torch.cat([spec.real, spec.imag], dim=1), embedded.transpose(1, 2), states.transpose(1, 2)]

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        stacked, _, states = features
        bins = stacked.shape[1] // 2
        spec = torch.complex(stacked[:, :bins], stacked[:, bins:])
        mask = self.config.max_gain * torch.sigmoid(self.mask(states.transpose(1, 2))).transpose(1, 2)
        length = (spec.shape[-1] - 1) * self.config.hop
        wave = torch.istft(spec * mask, self.config.n_fft, self.config.hop, window=self.window, length=length)
        return wave.unsqueeze(1)
