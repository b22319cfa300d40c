"""DeepFilterNet3 (Schröter et al., Interspeech 2023): ERB-gain and deep-filtering speech enhancement.

Written from the DeepFilterNet papers, the released ``config.ini`` and the official ONNX graphs
(``enc.onnx``, ``erb_dec.onnx``, ``df_dec.onnx``, batch norms already folded into the convolutions,
which is why each convolution here carries its own bias). The pipeline, at 48 kHz:

1. STFT: Vorbis window of ``n_fft`` samples, hop ``n_fft / 2``, scaled by ``2 hop / n_fft^2`` (libDF);
   the input is padded by ``n_fft`` zeros at the end and ``n_fft - hop`` of delay are dropped after
   synthesis, so the output is aligned with the input.
2. Features: ERB-band log power with a running mean removed (``erb_bands`` bands), and the complex
   spectrum of the lowest ``df_bins`` bins divided by the square root of its running magnitude;
   both shifted ``conv_lookahead`` frames ahead.
3. Encoder: causal 2-D convolutions over (time, frequency) for each feature, summed into one
   embedding and run through a grouped GRU.
4. ERB decoder: GRUs + transposed convolutions with U-Net skips -> a gain per ERB band (all bins).
5. DF decoder: GRUs + a pathway convolution -> ``df_order`` complex filter taps per low bin; the
   deep filter combines frames ``t - (order - 1 - lookahead) ... t + lookahead`` of the *unmasked*
   spectrum, replacing the masked spectrum below ``df_bins``.

Encoder levels (for Model as Loss): the spectrum (no weights), ``e0 ... e3`` (ERB path), ``c0`` (the
complex path) and the embedding, deepest last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from sectl.models.base import Enhancer
from sectl.models.enhancers.erb import (
    band_average_matrix,
    band_expand_matrix,
    erb_band_widths,
    norm_alpha,
    running_mean,
)
from sectl.models.enhancers.spectral import (
    analysis, float32_signal, magnitude, overlap_add, stack_complex, unstack_complex, vorbis_window,
)


@dataclass
class DeepFilterNet3Config:
    sample_rate: int = 48000
    n_fft: int = 960  # 20 ms frames, hop half of it
    erb_bands: int = 32
    min_erb_bins: int = 2  # narrowest ERB band, in FFT bins
    df_bins: int = 96  # bins below ~4.8 kHz get deep filtering
    df_order: int = 5  # filter taps per bin, over frames
    df_lookahead: int = 2  # future frames the deep filter sees
    conv_lookahead: int = 2  # future frames the encoder sees
    conv_ch: int = 64
    emb_hidden: int = 256  # GRU units of the embedding path
    emb_layers: int = 3  # 1 in the encoder, the rest in the ERB decoder
    df_hidden: int = 256
    df_layers: int = 2
    enc_groups: int = 32  # groups of the complex-path embedding projection
    lin_groups: int = 16  # groups of the other grouped linear layers
    df_in_groups: int = 8  # groups of the DF decoder's input projection
    df_pathway_kernel: int = 5  # time taps of the DF decoder's convolution on c0
    norm_tau_s: float = 1.0  # time constant of the feature normalisations
    lsnr_min: float = -15.0
    lsnr_max: float = 35.0
    post_filter_beta: float = 0.0  # > 0: DeepFilterNet2's mask post-filter at inference (0.02 = its --pf)
    normalize: bool = False  # absolute levels: the features are dB and running magnitudes, as trained


DFN3_SIZES: dict[str, dict] = {
    "tiny": dict(conv_ch=8, emb_hidden=32, df_hidden=32, enc_groups=8, lin_groups=4, df_in_groups=4),
    "paper": {},  # the published configuration (2.14 M parameters)
}


class GroupedLinear(nn.Module):
    """Block-diagonal linear map: ``groups`` independent ``(in/g -> out/g)`` projections, no bias."""

    def __init__(self, in_features: int, out_features: int, groups: int) -> None:
        super().__init__()
        if in_features % groups or out_features % groups:
            raise ValueError(f"GroupedLinear: {in_features} -> {out_features} is not divisible into {groups} groups")
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(groups, in_features // groups, out_features // groups))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export() and x.dim() == 3:  # onnxruntime runs a grouped 1x1 convolution 1.5-7x
            return self.over_channels(x.transpose(1, 2)).transpose(1, 2)  # faster than a batched MatMul or Einsum
        grouped = x.unflatten(-1, (self.groups, -1))  # PyTorch runs an einsum twice as fast as a batched MatMul
        return torch.einsum("...gi,gih->...gh", grouped, self.weight).flatten(-2)

    def over_channels(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in, N)`` -> ``(B, out, N)``: the same map over the channel axis, as a grouped 1x1 convolution."""
        groups, width, out = self.weight.shape
        return nn.functional.conv1d(x, self.weight.transpose(1, 2).reshape(groups * out, width, 1), groups=groups)


class SqueezedGRU(nn.Module):
    """Grouped projection in -> GRU at a smaller width -> optional grouped projection out (ReLUs)."""

    def __init__(self, in_features: int, hidden: int, layers: int, in_groups: int, out_features: int | None = None,
                 out_groups: int = 1) -> None:  # fmt: skip
        super().__init__()
        self.linear_in = GroupedLinear(in_features, hidden, in_groups)
        self.gru = nn.GRU(hidden, hidden, layers, batch_first=True)
        self.linear_out = GroupedLinear(hidden, out_features, out_groups) if out_features else None

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, in)`` -> outputs ``(B, T, out)`` and the GRU's last state (carried when streaming)."""
        y, state = self.gru(torch.relu(self.linear_in(x)), state)
        return (torch.relu(self.linear_out(y)) if self.linear_out is not None else y), state


class ConvBlock(nn.Module):
    """Causal-in-time 2-D convolution over ``(B, C, T, F)``, separable where the channels allow.

    As in DeepFilterNet: grouped by ``gcd(in, out)``; a grouped convolution with a kernel larger
    than 1x1 is followed by a 1x1 convolution; the last layer carries the (folded batch-norm) bias.

    Nothing lies between the two but a sum, so they are one dense convolution (weights ``P @ W``,
    group by group). The block runs it so where that costs fewer multiply-adds per output: with few
    input channels (DeepFilterNet3's ``df_conv0``: 2 in, 64 out, 3x3; 18 instead of 9 + 64), where
    the grouped convolution is also the slowest kind on CPU runtimes (onnxruntime: 14.1 -> 4.6 ms per
    1000 frames, ``benchmarks/graph_layouts.py``). The parameters stay the two layers, as trained.
    """

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], fstride: int = 1, transposed: bool = False,
                 activation: type[nn.Module] = nn.ReLU) -> None:  # fmt: skip
        super().__init__()
        kt, kf = kernel
        groups = math.gcd(cin, cout)
        pointwise = groups > 1 and max(kernel) > 1
        self.time_pad = kt - 1
        common = dict(stride=(1, fstride), padding=(0, kf // 2), groups=groups, bias=not pointwise)
        if transposed:
            self.conv: nn.Module = nn.ConvTranspose2d(cin, cout, kernel, output_padding=(0, fstride - 1), **common)
        else:
            self.conv = nn.Conv2d(cin, cout, kernel, **common)
        self.pointwise = nn.Conv2d(cout, cout, 1) if pointwise else None
        self.fused = pointwise and not transposed and cin * kt * kf < cin // groups * kt * kf + cout
        self.activation = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_pad:
            x = nn.functional.pad(x, (0, 0, self.time_pad, 0))
        return self.unpadded(x)

    def unpadded(self, x: torch.Tensor) -> torch.Tensor:
        """The block on input that already carries its ``time_pad`` past frames (a stream's buffer)."""
        if self.fused:
            conv = self.conv
            x = nn.functional.conv2d(x, self.fused_weight(), self.pointwise.bias, conv.stride, conv.padding)
        else:
            x = self.conv(x)
            if self.pointwise is not None:
                x = self.pointwise(x)
        return self.activation(x)

    def fused_weight(self) -> torch.Tensor:
        """The grouped convolution and its 1x1 as one dense weight ``(out, in, kt, kf)``: for each group, the
        1x1's weights on that group's channels times their kernels. Shapes come from the layers' sizes, not the
        tensors', so the product depends on the weights alone and constant folding turns it into one constant:
        the exporter's on a lone block; in the stream graph, where the exporter keeps the product, onnxruntime's
        at session load (tested), so no onnxruntime call pays for it. PyTorch (``--engine torch``) forms it on
        every call: one small batched matmul beside the convolution."""
        conv, groups = self.conv, self.conv.groups
        out, per_group = conv.out_channels, conv.out_channels // groups
        mixing = self.pointwise.weight.view(out, groups, per_group).transpose(0, 1)  # (groups, out, out / groups)
        kernels = conv.weight.view(groups, per_group, -1)  # (groups, out / groups, in / groups * kt * kf)
        fused = (mixing @ kernels).transpose(0, 1)  # (out, groups, in / groups * kt * kf)
        return fused.reshape(out, conv.in_channels, *conv.kernel_size)


class DfnEncoder(nn.Module):
    def __init__(self, c: DeepFilterNet3Config) -> None:
        super().__init__()
        ch = c.conv_ch
        self.erb_conv0 = ConvBlock(1, ch, (3, 3))
        self.erb_conv1 = ConvBlock(ch, ch, (1, 3), fstride=2)
        self.erb_conv2 = ConvBlock(ch, ch, (1, 3), fstride=2)
        self.erb_conv3 = ConvBlock(ch, ch, (1, 3))
        self.df_conv0 = ConvBlock(2, ch, (3, 3))
        self.df_conv1 = ConvBlock(ch, ch, (1, 3), fstride=2)
        emb = ch * c.erb_bands // 4
        self.df_fc_emb = GroupedLinear(ch * c.df_bins // 2, emb, c.enc_groups)
        self.emb_gru = SqueezedGRU(emb, c.emb_hidden, 1, c.lin_groups, emb, c.lin_groups)
        self.lsnr_fc = nn.Linear(emb, 1)
        self.lsnr_range = (c.lsnr_min, c.lsnr_max)

    def forward(self, feat_erb: torch.Tensor, feat_spec: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 1, T, E)``, ``(B, 2, T, D)`` -> ``[e0, e1, e2, e3, c0, emb (B, T, C)]``."""
        e0 = self.erb_conv0(feat_erb)
        e1 = self.erb_conv1(e0)
        e2 = self.erb_conv2(e1)
        e3 = self.erb_conv3(e2)
        c0 = self.df_conv0(feat_spec)
        c1 = self.df_conv1(c0)
        return [e0, e1, e2, e3, c0, self.emb_gru(self.combine(e3, c1))[0]]

    def combine(self, e3: torch.Tensor, c1: torch.Tensor) -> torch.Tensor:
        """The two paths' sum ``(B, T, C)`` that the embedding GRU reads."""
        return e3.permute(0, 2, 3, 1).flatten(2) + torch.relu(self.df_fc_emb(c1.permute(0, 2, 3, 1).flatten(2)))

    def local_snr(self, emb: torch.Tensor) -> torch.Tensor:
        """Estimated local SNR in dB per frame ``(B, T, 1)`` (a training target upstream; reported only)."""
        low, high = self.lsnr_range
        return torch.sigmoid(self.lsnr_fc(emb)) * (high - low) + low


class ErbDecoder(nn.Module):
    def __init__(self, c: DeepFilterNet3Config) -> None:
        super().__init__()
        ch = c.conv_ch
        emb = ch * c.erb_bands // 4
        self.emb_gru = SqueezedGRU(emb, c.emb_hidden, c.emb_layers - 1, c.lin_groups, emb, c.lin_groups)
        self.conv3p = ConvBlock(ch, ch, (1, 1))
        self.convt3 = ConvBlock(ch, ch, (1, 3))
        self.conv2p = ConvBlock(ch, ch, (1, 1))
        self.convt2 = ConvBlock(ch, ch, (1, 3), fstride=2, transposed=True)
        self.conv1p = ConvBlock(ch, ch, (1, 1))
        self.convt1 = ConvBlock(ch, ch, (1, 3), fstride=2, transposed=True)
        self.conv0p = ConvBlock(ch, ch, (1, 1))
        self.conv0_out = ConvBlock(ch, 1, (1, 3), activation=nn.Sigmoid)

    def forward(self, emb: torch.Tensor, e3: torch.Tensor, e2: torch.Tensor, e1: torch.Tensor,
                e0: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """ERB gains ``(B, 1, T, E)`` in [0, 1]."""
        return self.gains(self.emb_gru(emb)[0], e3, e2, e1, e0)

    def gains(self, recurrent: torch.Tensor, e3: torch.Tensor, e2: torch.Tensor, e1: torch.Tensor,
              e0: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """The U-Net half after the GRU (frame-local: streaming runs it per frame)."""
        b, _, t, bands = e3.shape
        x = recurrent.view(b, t, bands, -1).permute(0, 3, 1, 2)
        x = self.convt3(self.conv3p(e3) + x)
        x = self.convt2(self.conv2p(e2) + x)
        x = self.convt1(self.conv1p(e1) + x)
        return self.conv0_out(self.conv0p(e0) + x)


class DfDecoder(nn.Module):
    def __init__(self, c: DeepFilterNet3Config) -> None:
        super().__init__()
        emb = c.conv_ch * c.erb_bands // 4
        self.df_bins, self.taps = c.df_bins, c.df_order * 2
        self.df_gru = SqueezedGRU(emb, c.df_hidden, c.df_layers, c.df_in_groups)
        self.df_skip = GroupedLinear(emb, c.df_hidden, c.lin_groups)
        self.df_out = GroupedLinear(c.df_hidden, c.df_bins * self.taps, c.lin_groups)
        self.df_convp = ConvBlock(c.conv_ch, self.taps, (c.df_pathway_kernel, 1))

    def forward(self, emb: torch.Tensor, c0: torch.Tensor) -> torch.Tensor:
        """Filter taps ``(B, T, df_bins, 2 * df_order)`` (interleaved real/imaginary per tap)."""
        return self.coefficients(self.df_gru(emb)[0], emb, self.df_convp(c0))

    def coefficients(self, recurrent: torch.Tensor, emb: torch.Tensor, pathway: torch.Tensor) -> torch.Tensor:
        """Taps from the GRU output, its input and the pathway convolution's output (frame-local)."""
        coefs = torch.tanh(self.df_out(recurrent + self.df_skip(emb))).unflatten(-1, (self.df_bins, self.taps))
        return coefs + pathway.permute(0, 2, 3, 1)


def deep_filter(spec: torch.Tensor, coefs: torch.Tensor, lookahead: int) -> torch.Tensor:
    """``y_t = sum_k coefs_k,t x_{t - order + 1 + lookahead + k}`` per bin.

    ``spec``: complex ``(B, T, F)``; ``coefs``: complex ``(B, order, T, F)``.
    """
    order = coefs.shape[1]
    frames = spec.shape[1]
    padded = nn.functional.pad(torch.view_as_real(spec), (0, 0, 0, 0, order - 1 - lookahead, lookahead))
    padded = torch.view_as_complex(padded)
    return sum(padded[:, k : k + frames] * coefs[:, k] for k in range(order))


def post_filter_gain(enhanced_power: torch.Tensor, noisy_power: torch.Tensor, beta: float) -> torch.Tensor:
    """DeepFilterNet2's post-filter (after Valin et al., PercepNet): a gain ``(1 + b) / (1 + b / sin^2(pi m / 2))``
    on the effective mask ``m = |enhanced| / |noisy|``, 1 where nothing was removed and below ``m`` where
    much was, so very noisy bins are attenuated a little more. Takes powers (no complex ``abs``)."""
    eps = 1e-12
    mask = (enhanced_power.sqrt() / (noisy_power.sqrt() + eps)).clamp(eps, 1.0)
    sine = torch.sin(math.pi * mask / 2).clamp_min(eps)
    return (1 + beta) / (1 + beta / sine.pow(2))


class DeepFilterNet3(Enhancer):
    name = "deepfilternet3"
    config_class = DeepFilterNet3Config  # constructor arguments (validated by sectl.train.schema)

    def __init__(self, **kwargs) -> None:
        super().__init__()
        c = self.configure(kwargs)
        self.hop = c.n_fft // 2
        widths = erb_band_widths(c.sample_rate, c.n_fft, c.erb_bands, c.min_erb_bins)
        self.alpha = norm_alpha(c.sample_rate, self.hop, c.norm_tau_s)
        self.register_buffer("window", vorbis_window(c.n_fft), persistent=False)
        self.register_buffer("erb_average", band_average_matrix(widths), persistent=False)
        self.register_buffer("erb_expand", band_expand_matrix(widths), persistent=False)
        self.register_buffer("erb_norm_init", torch.linspace(-60.0, -90.0, c.erb_bands), persistent=False)
        self.register_buffer("unit_norm_init", torch.linspace(1e-3, 1e-4, c.df_bins), persistent=False)
        self.encoder = DfnEncoder(c)
        self.erb_decoder = ErbDecoder(c)
        self.df_decoder = DfDecoder(c)

    def encoder_levels(self) -> list[nn.Module]:
        e = self.encoder
        return [nn.Identity(), e.erb_conv0, e.erb_conv1, e.erb_conv2, e.erb_conv3, e.df_conv0,
                nn.ModuleList([e.df_conv1, e.df_fc_emb, e.emb_gru])]  # fmt: skip

    # ------------------------------------------------------------------------------ signal stages
    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> complex ``(B, bins, frames)``, ``frames = (T + n_fft) // hop`` as libDF's offline mode."""
        n_fft, hop = self.config.n_fft, self.hop
        frames = (x.shape[-1] + n_fft) // hop
        padded = nn.functional.pad(x, (n_fft - hop, (frames + 1) * hop - x.shape[-1] - (n_fft - hop)))
        return analysis(padded, self.window, hop) * (2 * hop / n_fft**2)

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """Overlap-add synthesis with the analysis delay removed: ``(B, bins, frames)`` -> ``(B, frames * hop)``."""
        n_fft = self.config.n_fft
        return (overlap_add(spec, self.window, self.hop) * n_fft)[:, n_fft - self.hop :]

    def input_features(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ERB features ``(B, 1, T, E)`` and complex features ``(B, 2, T, D)``, before the lookahead shift."""
        power = (spec.real.pow(2) + spec.imag.pow(2)).transpose(1, 2) @ self.erb_average  # (B, T, E)
        erb_db = 10 * torch.log10(power + 1e-10).transpose(1, 2)  # (B, E, T)
        feat_erb = (erb_db - running_mean(erb_db, self.alpha, self.erb_norm_init)) / 40
        low = spec[:, : self.config.df_bins]
        feat_spec = low / running_mean(magnitude(low), self.alpha, self.unit_norm_init).sqrt()
        feat_spec = torch.stack([feat_spec.real, feat_spec.imag], dim=1).transpose(2, 3)
        return feat_erb.transpose(1, 2).unsqueeze(1), feat_spec

    def _look_ahead(self, feat: torch.Tensor) -> torch.Tensor:
        ahead = self.config.conv_lookahead
        return nn.functional.pad(feat, (0, 0, -ahead, ahead))

    # ------------------------------------------------------------------------------ enhancer stages
    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        with float32_signal(x):
            spec = self.stft(x[:, 0].float())
            feat_erb, feat_spec = self.input_features(spec)
        e0, e1, e2, e3, c0, emb = self.encoder(self._look_ahead(feat_erb), self._look_ahead(feat_spec))
        return [stack_complex(spec), e0, e1, e2, e3, c0, emb.transpose(1, 2)]

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        stacked, e0, e1, e2, e3, c0, emb = features
        emb = emb.transpose(1, 2)
        spec = unstack_complex(stacked).transpose(1, 2)  # (B, T, bins)
        band_gains = self.erb_decoder(emb, e3, e2, e1, e0)[:, 0]
        taps = self.df_decoder(emb, c0)
        with float32_signal(spec):  # the decoders' outputs arrive in 16 bits under mixed precision
            gains = band_gains.float() @ self.erb_expand
            coefs = taps.float().unflatten(-1, (self.config.df_order, 2))  # (B, T, D, order, 2)
            coefs = torch.view_as_complex(coefs.permute(0, 3, 1, 2, 4).contiguous())
            low = deep_filter(spec[..., : self.config.df_bins], coefs, self.config.df_lookahead)
            enhanced = torch.cat([low, spec[..., self.config.df_bins :] * gains[..., self.config.df_bins :]], dim=-1)
            if self.config.post_filter_beta > 0:
                power = lambda z: z.real.pow(2) + z.imag.pow(2)  # noqa: E731
                enhanced = enhanced * post_filter_gain(power(enhanced), power(spec), self.config.post_filter_beta)
            return self.istft(enhanced.transpose(1, 2)).unsqueeze(1)

    def with_post_filter(self, beta: float = 0.02) -> "DeepFilterNet3":
        """Switch the inference post-filter on (``beta`` > 0) or off (0); it is part of the config, so
        checkpoints, streams and exports carry it."""
        if beta < 0:
            raise ValueError(f"post-filter beta must be >= 0, got {beta}")
        self.config = replace(self.config, post_filter_beta=beta)
        return self
