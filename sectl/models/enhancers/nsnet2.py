"""NSNet2 (Braun, Gamper, Reddy, Tashev, ICASSP 2021): the DNS Challenge's recurrent gain estimator.

Log10 power spectrum of 20 ms square-root-Hann frames (hop 10 ms) -> Linear + ReLU -> GRUs ->
three Linear layers -> sigmoid gain per bin, clipped to [``min_gain``, 1] and applied to the noisy
spectrum, then overlap-add. Framing follows the published feature code: frame ``t`` covers samples
``[t * hop, t * hop + n_fft)``, so there is no delay. The pretrained weights come from the official
ONNX graph (``sectl.models.io.pretrained``); the numbers here are that graph's.

Encoder levels (for Model as Loss): the noisy spectrum (no weights), the input projection, the GRU
states; ``decode`` maps the GRU states to the gain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sectl.models.base import Enhancer
from sectl.models.enhancers.spectral import analysis, overlap_add, sqrt_hann_window, stack_complex, unstack_complex


@dataclass
class NSNet2Config:
    sample_rate: int = 16000
    n_fft: int = 320  # 20 ms at 16 kHz; the window spans the whole FFT
    hop: int = 160
    hidden: int = 400  # fc_in width and GRU units
    gru_layers: int = 2
    fc_hidden: int = 600
    min_gain_db: float = -80.0  # the reference code's suppression limit
    normalize: bool = False  # absolute levels: the log-power features are, as the network was trained


NSNET2_SIZES: dict[str, dict] = {
    "tiny": dict(hidden=32, gru_layers=1, fc_hidden=48),
    "paper": {},  # the published configuration (2.69 M parameters)
}


class NSNet2(Enhancer):
    name = "nsnet2"
    config_class = NSNet2Config  # constructor arguments (validated by sectl.train.schema)

    def __init__(self, **kwargs) -> None:
        super().__init__()
        c = self.configure(kwargs)
        bins = c.n_fft // 2 + 1
        # Symmetric, as the published feature code (``np.hanning``) uses for analysis and synthesis.
        self.register_buffer("window", sqrt_hann_window(c.n_fft, periodic=False), persistent=False)
        self.fc_in = nn.Sequential(nn.Linear(bins, c.hidden), nn.ReLU())
        self.gru = nn.GRU(c.hidden, c.hidden, c.gru_layers, batch_first=True)
        self.fc_out = nn.Sequential(
            nn.Linear(c.hidden, c.fc_hidden), nn.ReLU(),
            nn.Linear(c.fc_hidden, c.fc_hidden), nn.ReLU(),
            nn.Linear(c.fc_hidden, bins), nn.Sigmoid(),
        )  # fmt: skip

    def encoder_levels(self) -> list[nn.Module]:
        return [nn.Identity(), self.fc_in, self.gru]

    def valid_length(self, length: int) -> int:
        """Frames need ``n_fft - hop`` samples beyond the last hop: pad to whole hops plus that."""
        c = self.config
        return -(-(length + c.n_fft - c.hop) // c.hop) * c.hop

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        spec = analysis(x[:, 0], self.window, self.config.hop)  # (B, F, T)
        log_power = torch.log10((spec.real.pow(2) + spec.imag.pow(2)).clamp_min(1e-12)).transpose(1, 2)
        embedded = self.fc_in(log_power)
        states, _ = self.gru(embedded)
        return [stack_complex(spec), embedded.transpose(1, 2), states.transpose(1, 2)]

    def gain(self, states: torch.Tensor) -> torch.Tensor:
        """Per-bin gain ``(B, F, T)`` from GRU states ``(B, hidden, T)``."""
        min_gain = 10 ** (self.config.min_gain_db / 20)
        return self.fc_out(states.transpose(1, 2)).transpose(1, 2).clamp(min_gain, 1.0)

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        stacked, _, states = features
        spec = unstack_complex(stacked) * self.gain(states)
        return overlap_add(spec, self.window, self.config.hop).unsqueeze(1)
