"""GTCRN (Rong, Sun, Zhang, Hu, Zhu, Lu, ICASSP 2024): a complex-mask enhancer of 24 K learned weights.

Written from the paper and the official repository's architecture (Xiaobin-Rong/gtcrn, commit 3862c44, MIT),
so that its published checkpoints load (:mod:`sectl.models.io.pretrained`). The pipeline, at 16 kHz:

1. STFT: square-root Hann window of ``n_fft`` samples, hop ``n_fft / 2``, frames centred on multiples
   of the hop with the signal mirrored at both ends (``torch.stft(center=True)``'s reflect padding, which
   the official inference used). The signal's mirror image is read at the start and the end only.
2. Features: magnitude, real and imaginary part per bin; the bins above ``erb_low_bins`` merged into
   ``erb_bands`` triangular ERB bands (fixed, not learned); each bin with its two neighbours.
3. Encoder: two frequency-strided convolutions, then three grouped temporal blocks (GT-Conv): half
   the channels pass through, the other half goes through pointwise, causal dilated depthwise (time
   dilations 1, 2, 5) and pointwise convolutions and a temporal recurrent attention gate, and the two
   halves are interleaved again.
4. Two grouped dual-path GRUs: a bidirectional GRU across frequency within each frame, a causal GRU
   across time per band, each on two channel groups, with a linear mix and a layer norm.
5. Decoder: the encoder mirrored with transposed convolutions and U-Net skips (added), ending in a
   tanh; the two outputs, expanded from ERB bands back to bins, are a complex ratio mask.

Everything across time is causal, so the model streams (:mod:`sectl.streaming.gtcrn`): the only
future it reads is the half frame that the centred STFT reads, and the mirrored samples at the start.

Encoder levels (for Model as Loss): the noisy spectrum (no weights), the five encoder levels, and the
dual-path GRUs' output, deepest last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sectl.models.base import Enhancer
from sectl.models.enhancers.spectral import float32_signal, overlap_add, sqrt_hann_window, stack_complex, unstack_complex

DILATIONS = (1, 2, 5)
"""Time dilations of the encoder's GT blocks (the decoder's run backwards): a 3-tap kernel reads 2, 4, 10 past frames."""


@dataclass
class GTCRNConfig:
    sample_rate: int = 16000
    n_fft: int = 512  # 32 ms at 16 kHz; the hop is half of it
    erb_low_bins: int = 65  # bins kept as they are (up to 2 kHz at 16 kHz)
    erb_bands: int = 64  # ERB bands the remaining bins are merged into
    channels: int = 16
    normalize: bool = False  # absolute levels, as the published models were trained


GTCRN_SIZES: dict[str, dict] = {
    "tiny": dict(channels=8),
    "paper": {},  # the published configuration (23.7 K learned parameters, 48.2 K with the fixed ERB matrices)
}


def erb_filterbank(sample_rate: int, n_fft: int, low_bins: int, bands: int) -> torch.Tensor:
    """``(bands, bins - low_bins)``: triangular bands from bin ``low_bins`` to Nyquist, centres equally spaced on
    the ERB-rate scale ``21.4 log10(1 + 0.00437 f)`` and rounded to bins; each band rises from the previous
    centre and falls to the next, so the bands sum to 1 on every bin (the first centre is bin ``low_bins``,
    the last is Nyquist)."""
    def to_erb(hz: float) -> float:
        return 21.4 * math.log10(1 + 0.00437 * hz)

    def to_bin(erb: float) -> int:
        return round((10 ** (erb / 21.4) - 1) / 0.00437 * n_fft / sample_rate)

    low, high = to_erb(low_bins * sample_rate / n_fft), to_erb(sample_rate / 2)
    centres = [to_bin(low + (high - low) * i / (bands - 1)) for i in range(bands)]
    edges = [centres[0], *centres, centres[-1] + 1]  # the first band does not rise; the last falls within one bin
    matrix = torch.zeros(bands, n_fft // 2 + 1, dtype=torch.float64)
    for band in range(bands):
        before, centre, after = edges[band], edges[band + 1], edges[band + 2]
        if centre > before:
            rising = torch.arange(before, centre, dtype=torch.float64)
            matrix[band, before:centre] = (rising - before) / (centre - before)
        falling = torch.arange(centre, after, dtype=torch.float64)
        matrix[band, centre:after] = (after - falling) / (after - centre)
    return matrix[:, low_bins:].float()


def mirrored_sources(positions: torch.Tensor, last: torch.Tensor | int) -> torch.Tensor:
    """The input index that each position of the reflect-padded signal reads: positions mirror at 0 and at
    ``last`` (the final sample's index), as ``torch.stft(center=True)`` pads; a signal shorter than the padding
    is mirrored once and held at its ends."""
    mirrored = torch.where(positions < 0, -positions, positions)
    mirrored = torch.where(mirrored > last, 2 * last - mirrored, mirrored)
    if isinstance(last, int):  # offline: a Python number, never a tensor copied to the device
        return mirrored.clamp(0, last)
    return torch.minimum(mirrored.clamp_min(0), last)


def with_neighbours(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, F) -> (B, 3C, T, F)``: each bin with the bins below and above it (zeros past the edges),
    channel ``3c + k`` holding bin ``f - 1 + k`` of channel ``c`` (the subband feature extraction)."""
    bins = x.shape[-1]
    padded = nn.functional.pad(x, (1, 1))
    return torch.stack([padded[..., k : k + bins] for k in range(3)], dim=2).flatten(1, 2)


class ConvNormAct(nn.Module):
    """A ``(1, 5)`` convolution that halves the bins (or a transposed one that doubles them), batch norm, and
    a PReLU, or a tanh at the network's output."""

    def __init__(self, cin: int, cout: int, groups: int = 1, transposed: bool = False, last: bool = False) -> None:
        super().__init__()
        conv = nn.ConvTranspose2d if transposed else nn.Conv2d
        self.conv = conv(cin, cout, (1, 5), stride=(1, 2), padding=(0, 2), groups=groups)
        self.norm = nn.BatchNorm2d(cout)
        self.act: nn.Module = nn.Tanh() if last else nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class TemporalAttention(nn.Module):
    """Temporal recurrent attention: a gate per channel and frame from the history of each channel's frame
    energy (mean square over the bins) through a GRU, a linear layer and a sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gru = nn.GRU(channels, 2 * channels, batch_first=True)
        self.fc = nn.Linear(2 * channels, channels)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, T, F)`` gated, and the GRU's last state ``(1, B, 2C)``."""
        energy = x.pow(2).mean(-1).transpose(1, 2)  # (B, T, C)
        history, state = self.gru(energy, state)
        gate = torch.sigmoid(self.fc(history)).transpose(1, 2).unsqueeze(-1)
        return x * gate, state


class GroupedTemporalBlock(nn.Module):
    """GT-Conv: the first half of the channels, each bin with its neighbours, through a pointwise convolution
    to ``channels``, a causal depthwise ``(3, 3)`` convolution dilated in time, a pointwise convolution back to
    half, and the attention gate; then interleaved channel by channel with the untouched second half.

    The decoder's blocks are transposed convolutions (as published): a transposed depthwise convolution whose
    padding crops what the past frames add is the same causal filter with its taps reversed.
    """

    def __init__(self, channels: int, dilation: int, transposed: bool = False) -> None:
        super().__init__()
        half = channels // 2
        conv = nn.ConvTranspose2d if transposed else nn.Conv2d
        self.past_frames = 2 * dilation
        self.expand = conv(3 * half, channels, 1)
        self.expand_norm = nn.BatchNorm2d(channels)
        self.expand_act = nn.PReLU()
        time_padding = self.past_frames if transposed else 0
        self.temporal = conv(channels, channels, (3, 3), padding=(time_padding, 1), dilation=(dilation, 1), groups=channels)
        self.temporal_norm = nn.BatchNorm2d(channels)
        self.temporal_act = nn.PReLU()
        self.project = conv(channels, half, 1)
        self.project_norm = nn.BatchNorm2d(half)
        self.attention = TemporalAttention(half)

    def forward(self, x: torch.Tensor, past: torch.Tensor | None = None,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """``(B, C, T, F)`` -> the block's output, its last ``past_frames`` depthwise inputs ``(B, C, P, F)`` and the
        attention state: what the next frames need. ``past`` (zeros if absent) precedes ``x``'s first frame."""
        processed, kept = x.chunk(2, dim=1)
        h = self.expand_act(self.expand_norm(self.expand(with_neighbours(processed))))
        if past is None:
            past = h.new_zeros(h.shape[0], h.shape[1], self.past_frames, h.shape[3])
        window = torch.cat([past, h], dim=2)
        h = self.temporal_act(self.temporal_norm(self.temporal(window)))
        h, state = self.attention(self.project_norm(self.project(h)), state)
        return torch.stack([h, kept], dim=2).flatten(1, 2), window[:, :, -self.past_frames :], state


class GroupedGRU(nn.Module):
    """Two GRUs side by side, each on half of the features and half of the state (half the weights of one)."""

    def __init__(self, features: int, hidden: int, bidirectional: bool = False) -> None:
        super().__init__()
        self.low = nn.GRU(features // 2, hidden // 2, batch_first=True, bidirectional=bidirectional)
        self.high = nn.GRU(features // 2, hidden // 2, batch_first=True, bidirectional=bidirectional)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, L, features)`` -> ``(N, L, hidden)`` (twice that if bidirectional) and the state ``(1, N, hidden)``."""
        first, second = x.chunk(2, dim=-1)
        states = (None, None) if state is None else tuple(s.contiguous() for s in state.chunk(2, dim=-1))
        y_low, s_low = self.low(first, states[0])
        y_high, s_high = self.high(second, states[1])
        return torch.cat([y_low, y_high], dim=-1), torch.cat([s_low, s_high], dim=-1)


class DualPathGRU(nn.Module):
    """A grouped GRU across frequency within each frame (bidirectional), then one across time per band
    (causal), each followed by a linear layer and a layer norm over (bands, channels) and added back."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.intra = GroupedGRU(channels, channels // 2, bidirectional=True)
        self.intra_fc = nn.Linear(channels, channels)
        self.intra_norm = nn.LayerNorm((width, channels), eps=1e-8)
        self.inter = GroupedGRU(channels, channels)
        self.inter_fc = nn.Linear(channels, channels)
        self.inter_norm = nn.LayerNorm((width, channels), eps=1e-8)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, T, F)`` -> the same shape, and the time GRU's state ``(1, B F, C)``."""
        batch, channels, _, width = x.shape
        x = x.permute(0, 2, 3, 1)  # (B, T, F, C)
        within = self.intra(x.reshape(-1, width, channels))[0]
        x = x + self.intra_norm(self.intra_fc(within).view(batch, -1, width, channels))
        across, state = self.inter(x.transpose(1, 2).reshape(batch * width, -1, channels), state)
        x = x + self.inter_norm(self.inter_fc(across).view(batch, width, -1, channels).transpose(1, 2))
        return x.permute(0, 3, 1, 2), state


class GTCRN(Enhancer):
    name = "gtcrn"
    config_class = GTCRNConfig  # constructor arguments (validated by sectl.train.schema)

    def __init__(self, **kwargs) -> None:
        super().__init__()
        c = self.configure(kwargs)
        bands = c.erb_low_bins + c.erb_bands
        if c.n_fft % 2 or bands % 4 != 1 or c.channels % 4:
            raise ValueError(f"gtcrn: needs an even n_fft, erb_low_bins + erb_bands = 1 mod 4 (two halvings and two "
                             f"doublings of the bands), channels divisible by 4; got {c}")  # fmt: skip
        if c.erb_low_bins >= c.n_fft // 2:
            raise ValueError(f"gtcrn: erb_low_bins ({c.erb_low_bins}) must be below the {c.n_fft // 2 + 1} bins")
        self.hop = c.n_fft // 2
        self.width = (bands + 3) // 4  # bands after the two strided convolutions
        ch = c.channels
        self.register_buffer("window", sqrt_hann_window(c.n_fft), persistent=False)
        self.register_buffer("erb", erb_filterbank(c.sample_rate, c.n_fft, c.erb_low_bins, c.erb_bands), persistent=False)
        self.encoder = nn.ModuleList([
            ConvNormAct(9, ch), ConvNormAct(ch, ch, groups=2), *(GroupedTemporalBlock(ch, d) for d in DILATIONS),
        ])  # fmt: skip
        self.bottleneck = nn.ModuleList([DualPathGRU(ch, self.width), DualPathGRU(ch, self.width)])
        self.decoder = nn.ModuleList([
            *(GroupedTemporalBlock(ch, d, transposed=True) for d in reversed(DILATIONS)),
            ConvNormAct(ch, ch, groups=2, transposed=True), ConvNormAct(ch, 2, transposed=True, last=True),
        ])  # fmt: skip

    def encoder_levels(self) -> list[nn.Module]:
        return [nn.Identity(), *self.encoder, self.bottleneck]

    def temporal_blocks(self) -> list[GroupedTemporalBlock]:
        """The blocks that carry past frames and an attention state, encoder first (a stream's state order)."""
        return [m for m in [*self.encoder, *self.decoder] if isinstance(m, GroupedTemporalBlock)]

    # ------------------------------------------------------------------------------ signal stages
    def frame_sources(self, frames: int, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Input indices ``((frames + 1) hop,)`` that the padded signal of ``frames`` centred frames reads, and
        whether each position lies within the mirrored padding (past it: zeros)."""
        positions = torch.arange(-self.hop, frames * self.hop, device=device)
        return mirrored_sources(positions, length - 1), positions <= length - 1 + self.hop

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> complex ``(B, bins, frames)``; frame ``t`` is centred on sample ``t hop``, ``frames =
        ceil(T / hop) + 1``, so two frames overlap on every sample (the official one, and one more when the
        length is not a multiple of the hop)."""
        length = max(x.shape[-1], 1)
        if x.shape[-1] == 0:
            x = x.new_zeros(x.shape[0], 1)
        frames = (length + 2 * self.hop - 1) // self.hop
        sources, inside = self.frame_sources(frames, length, x.device)
        padded = x[:, sources] * inside
        return torch.stft(padded, self.config.n_fft, self.hop, window=self.window, center=False, return_complex=True)

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """Overlap-add of ``(B, bins, frames)`` without the mirrored half frame at the start: ``(B, frames hop)``."""
        return overlap_add(spec, self.window, self.hop)[:, self.hop :]

    def input_features(self, re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
        """``(B, T, bins)`` real and imaginary parts -> ``(B, 9, T, erb_low_bins + erb_bands)``."""
        magnitude = (re.pow(2) + im.pow(2) + 1e-12).sqrt()
        return with_neighbours(self.merge_bands(torch.stack([magnitude, re, im], dim=1)))

    def merge_bands(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., bins) -> (..., erb_low_bins + erb_bands)``: the low bins as they are, the rest as ERB bands."""
        low = self.config.erb_low_bins
        return torch.cat([x[..., :low], x[..., low:] @ self.erb.T], dim=-1)

    def split_bands(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., erb_low_bins + erb_bands) -> (..., bins)``: each band's value spread over its bins by its weights."""
        low = self.config.erb_low_bins
        return torch.cat([x[..., :low], x[..., low:] @ self.erb], dim=-1)

    # ------------------------------------------------------------------------------ network stages
    def run_encoder(self, features: torch.Tensor, pasts: list | None = None,
                    states: list | None = None) -> tuple[list[torch.Tensor], list, list]:  # fmt: skip
        """The five encoder levels' outputs, and the GT blocks' new past frames and attention states."""
        pasts, states = pasts or [None] * len(DILATIONS), states or [None] * len(DILATIONS)
        levels, new_pasts, new_states = [], [], []
        x = features
        for module in self.encoder:
            if isinstance(module, GroupedTemporalBlock):
                x, past, state = module(x, pasts[len(new_pasts)], states[len(new_states)])
                new_pasts.append(past)
                new_states.append(state)
            else:
                x = module(x)
            levels.append(x)
        return levels, new_pasts, new_states

    def run_bottleneck(self, x: torch.Tensor, states: list | None = None) -> tuple[torch.Tensor, list]:
        states = states or [None] * len(self.bottleneck)
        new_states = []
        for module, state in zip(self.bottleneck, states):
            x, state = module(x, state)
            new_states.append(state)
        return x, new_states

    def run_decoder(self, x: torch.Tensor, skips: list[torch.Tensor], pasts: list | None = None,
                    states: list | None = None) -> tuple[torch.Tensor, list, list]:  # fmt: skip
        """The mask ``(B, 2, T, bands)`` from the bottleneck's output and the encoder's levels (added, deepest
        first), and the GT blocks' new past frames and attention states."""
        pasts, states = pasts or [None] * len(DILATIONS), states or [None] * len(DILATIONS)
        new_pasts, new_states = [], []
        for module, skip in zip(self.decoder, reversed(skips)):
            if isinstance(module, GroupedTemporalBlock):
                x, past, state = module(x + skip, pasts[len(new_pasts)], states[len(new_states)])
                new_pasts.append(past)
                new_states.append(state)
            else:
                x = module(x + skip)
        return x, new_pasts, new_states

    def apply_mask(self, mask: torch.Tensor, re: torch.Tensor, im: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The complex ratio mask ``(B, 2, T, bands)``, spread to bins, times the spectrum ``(B, T, bins)``."""
        gain = self.split_bands(mask)
        return re * gain[:, 0] - im * gain[:, 1], im * gain[:, 0] + re * gain[:, 1]

    # ------------------------------------------------------------------------------ enhancer stages
    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        with float32_signal(x):
            spec = self.stft(x[:, 0].float())
            features = self.input_features(spec.real.transpose(1, 2), spec.imag.transpose(1, 2))
        levels, _, _ = self.run_encoder(features)
        deepest, _ = self.run_bottleneck(levels[-1])
        return [stack_complex(spec), *levels, deepest]

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        stacked, *levels, deepest = features
        mask, _, _ = self.run_decoder(deepest, levels)
        with float32_signal(stacked):  # the mask arrives in 16 bits under mixed precision
            spec = unstack_complex(stacked.float()).transpose(1, 2)  # (B, T, bins)
            re, im = self.apply_mask(mask.float(), spec.real, spec.imag)
            return self.istft(torch.complex(re, im).transpose(1, 2)).unsqueeze(1)
