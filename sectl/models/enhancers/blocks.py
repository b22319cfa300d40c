"""Building blocks shared by the encoder and the decoder of the waveform U-Net."""

from __future__ import annotations

import torch
from torch import nn


class EncoderLevel(nn.Module):
    """Strided conv (downsample by ``stride``) -> ReLU -> 1x1 conv -> GLU, as in Demucs."""

    def __init__(self, chin: int, chout: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.down = nn.Conv1d(chin, chout, kernel_size, stride)
        self.mix = nn.Conv1d(chout, 2 * chout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.glu(self.mix(nn.functional.relu(self.down(x))), dim=1)


class DecoderLevel(nn.Module):
    """1x1 conv -> GLU -> transposed conv (upsample by ``stride``) -> ReLU unless it is the output."""

    def __init__(self, chin: int, chout: int, kernel_size: int, stride: int, last: bool) -> None:
        super().__init__()
        self.mix = nn.Conv1d(chin, 2 * chin, 1)
        self.up = nn.ConvTranspose1d(chin, chout, kernel_size, stride)
        self.last = last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(nn.functional.glu(self.mix(x), dim=1))
        return x if self.last else nn.functional.relu(x)


class LSTMBottleneck(nn.Module):
    """Sequence model over the coarsest frames; unidirectional when the model must be causal."""

    def __init__(self, dim: int, layers: int = 2, bidirectional: bool = True) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers, bidirectional=bidirectional, batch_first=True)
        self.proj = nn.Linear(2 * dim, dim) if bidirectional else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        y, _ = self.lstm(x.transpose(1, 2))
        if self.proj is not None:
            y = self.proj(y)
        return y.transpose(1, 2)


class ConvBottleneck(nn.Module):
    """Dilated residual convs: a cheaper, fully convolutional alternative to the LSTM."""

    def __init__(self, dim: int, layers: int = 3, causal: bool = False) -> None:
        super().__init__()
        self.causal = causal
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, 3, dilation=2**i) for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            pad = 2 * 2**i
            padded = nn.functional.pad(x, (pad, 0) if self.causal else (pad // 2, pad // 2))
            x = x + nn.functional.relu(conv(padded))
        return x
