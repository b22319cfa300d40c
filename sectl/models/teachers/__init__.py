"""Frozen teachers for distillation and probes: an SSL model's layer, or a pretrained enhancer's encoder.

Every teacher maps 16 kHz waveforms ``(B, T)`` to frames ``(B, frames, D)``. SSL models (WavLM,
HuBERT, ...) need weights from a download or ``ssl.checkpoint``; the pretrained enhancers
(``deepfilternet3``, ``nsnet2``) are available offline wherever their official files are, which makes
them the teachers an offline machine can use for real (a denoiser's encoder is a learned speech
representation, though not a phonetic one). For them ``layer`` is the 1-based index into the encoder's
levels (DeepFilterNet3: 7 = the 512-d embedding at 100 Hz).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sectl.audio import resample
from sectl.errors import ConfigError
from sectl.models.base import frames_per_second, frozen_mode
from sectl.models.teachers.ssl import SSL_RATE, FrozenTeacher, SSLFeatures


class EnhancerFeatures(FrozenTeacher):
    def __init__(self, name: str, layer: int) -> None:
        super().__init__()
        from sectl.models.io.pretrained import load_pretrained

        self.model = frozen_mode(load_pretrained(name).requires_grad_(False))
        levels = len(self.model.encoder_levels())
        if not 1 <= layer <= levels:
            raise ConfigError(f"ssl.layer {layer} out of range 1..{levels} for the {name} encoder")
        self.layer = layer
        self.hop = round(SSL_RATE / frames_per_second(lambda n: self(torch.zeros(1, n)).shape[1], SSL_RATE))

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder frames; ``lengths`` is accepted for the batched losses but a denoiser's convolutions see
        the zero padding (it is silence to them), so the last frames of a padded row are approximate."""
        if wave.dim() == 3:
            wave = wave[:, 0]
        level = self.model.features(resample(wave, SSL_RATE, self.model.sample_rate))[self.layer - 1]
        return level.transpose(1, 2).flatten(2)  # (B, C, T[, F]) -> (B, T, C[*F])


def build_teacher(name: str, layer: int, checkpoint: str | Path | None = None) -> nn.Module:
    from sectl.models.io.pretrained import PRETRAINED

    if name in PRETRAINED:
        if checkpoint is not None:
            raise ConfigError(f"ssl.checkpoint: not used with the {name} teacher (its official files are found by name)")
        return EnhancerFeatures(name, layer)
    return SSLFeatures(name, layer, checkpoint)
