"""Whole-signal graphs for export: each enhancer's offline pipeline in real-valued, exportable operations.

The networks are the models' own modules; only the signal stages are restated: the STFT as a strided
convolution with DFT kernels, overlap-add as its transpose, and DeepFilterNet's running
normalisations as linear recurrences (an ONNX ``RNN`` with a ReLU that never clips, because the
states are kept positive), since ``torch.stft`` with complex output and ``lfilter`` do not export.
Each graph equals its model's ``forward`` (tests hold it to 1e-4 through onnxruntime).
"""

from __future__ import annotations

import torch
from torch import nn

from sectl.models import GTCRN, DeepFilterNet3, NSNet2
from sectl.models.enhancers.deepfilternet3 import post_filter_gain
from sectl.models.enhancers.erb import ERB_OFFSET_DB, running_mean_rnn
from sectl.models.enhancers.gtcrn import mirrored_sources


class FrameTransform(nn.Module):
    """Analysis ``(B, T) -> re, im (B, bins, frames)`` and overlap-add synthesis at hop ``n_fft / 2``.

    One radix-2 step halves the DFT matmuls, which were a sixth of DeepFilterNet3's graph: with
    ``h = n_fft / 2``, bin ``k`` of a frame ``[u, v]`` (two windowed hops) is the ``h``-point sum of
    ``u + v`` for even ``k`` and of ``u - v`` for odd ``k``; synthesis mirrors it. Frames are two
    consecutive hops of the input cut into hop-long rows, so framing and overlap-add are reshapes.
    """

    def __init__(self, window: torch.Tensor, hop: int, analysis_scale: float, synthesis_scale: float) -> None:
        super().__init__()
        n_fft = window.numel()
        if n_fft != 2 * hop:
            raise ValueError(f"FrameTransform needs hop = n_fft / 2 (got n_fft {n_fft}, hop {hop})")
        self.hop, self.bins = hop, n_fft // 2 + 1
        n = torch.arange(hop, dtype=torch.float64).unsqueeze(1)
        for parity in ("even", "odd"):
            k = torch.arange(0 if parity == "even" else 1, self.bins, 2, dtype=torch.float64)
            angle = 2 * torch.pi * n * k / n_fft  # (hop, bins of this parity)
            analysis = torch.cat([torch.cos(angle), -torch.sin(angle)], dim=1) * analysis_scale
            weight = torch.where((k == 0) | (k == n_fft // 2), 1.0, 2.0) / n_fft * synthesis_scale
            synthesis = torch.cat([torch.cos(angle).T * weight[:, None], -torch.sin(angle).T * weight[:, None]])
            self.register_buffer(f"analysis_{parity}", analysis.float(), persistent=False)
            self.register_buffer(f"synthesis_{parity}", synthesis.float(), persistent=False)
        self.register_buffer("window", window.float().view(2, hop), persistent=False)
        even_then_odd = torch.cat([torch.arange(0, self.bins, 2), torch.arange(1, self.bins, 2)])
        self.register_buffer("natural_order", torch.argsort(even_then_odd), persistent=False)

    def spectrum(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``x[t hop : t hop + n_fft]`` of ``(B, L)`` (trailing samples short of a hop are dropped)."""
        rows = x[:, : x.shape[-1] // self.hop * self.hop].reshape(x.shape[0], -1, self.hop)  # (B, frames + 1, hop)
        first, second = rows[:, :-1] * self.window[0], rows[:, 1:] * self.window[1]
        even = (first + second) @ self.analysis_even  # (B, frames, 2 * even bins): real parts, then imaginary
        odd = (first - second) @ self.analysis_odd
        e, o = self.analysis_even.shape[1] // 2, self.analysis_odd.shape[1] // 2
        re = torch.cat([even[..., :e], odd[..., :o]], dim=-1).index_select(-1, self.natural_order)
        im = torch.cat([even[..., e:], odd[..., o:]], dim=-1).index_select(-1, self.natural_order)
        return re.transpose(1, 2), im.transpose(1, 2)

    def overlap_add(self, re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
        """``(B, bins, frames)`` -> ``(B, hop * (frames + 1))``: windowed inverse DFTs, overlap-added."""
        even = torch.cat([re[:, 0::2], im[:, 0::2]], dim=1).transpose(1, 2) @ self.synthesis_even  # (B, frames, hop)
        odd = torch.cat([re[:, 1::2], im[:, 1::2]], dim=1).transpose(1, 2) @ self.synthesis_odd
        first, second = (even + odd) * self.window[0], (even - odd) * self.window[1]
        rows = nn.functional.pad(first, (0, 0, 0, 1)) + nn.functional.pad(second, (0, 0, 1, 0))
        return rows.reshape(rows.shape[0], -1)


class DeepFilterNet3Graph(nn.Module):
    def __init__(self, model: DeepFilterNet3) -> None:
        super().__init__()
        c = self.config = model.config
        self.model, self.hop = model, model.hop
        self.transform = FrameTransform(model.window.cpu(), model.hop, 2 * model.hop / c.n_fft**2, c.n_fft)
        self.erb_mean = running_mean_rnn(c.erb_bands, model.alpha)
        self.unit_mean = running_mean_rnn(c.df_bins, model.alpha)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, T) -> (B, T)``."""
        m, c, hop = self.model, self.config, self.hop
        length = wave.shape[-1]
        # One frame more than the model analyses; frames from (T + n_fft) // hop on are masked to zero.
        re, im = self.transform.spectrum(nn.functional.pad(wave, (c.n_fft - hop, c.n_fft + hop)))
        index = torch.ones_like(re[0, 0]).cumsum(0) - 1
        present = (index < (length + c.n_fft) // hop).to(re.dtype)
        re, im = re * present, im * present
        batch = wave.shape[0]
        erb_db = 10 * torch.log10(((re.pow(2) + im.pow(2)).transpose(1, 2) @ m.erb_average) + 1e-10)  # (B, T, E)
        erb_init = (m.erb_norm_init + ERB_OFFSET_DB).expand(1, batch, -1).contiguous()
        erb_norm = self.erb_mean(erb_db + ERB_OFFSET_DB, erb_init)[0] - ERB_OFFSET_DB
        feat_erb = ((erb_db - erb_norm) / 40).unsqueeze(1)
        low_re, low_im = re[:, : c.df_bins].transpose(1, 2), im[:, : c.df_bins].transpose(1, 2)  # (B, T, D)
        unit_init = m.unit_norm_init.expand(1, batch, -1).contiguous()
        root = self.unit_mean((low_re.pow(2) + low_im.pow(2) + 1e-24).sqrt(), unit_init)[0].sqrt()
        feat_spec = torch.stack([low_re / root, low_im / root], dim=1)
        ahead = c.conv_lookahead
        shift = lambda feat: nn.functional.pad(feat[:, :, ahead:] * present[ahead:, None], (0, 0, 0, ahead))  # noqa: E731
        e0, e1, e2, e3, c0, emb = m.encoder(shift(feat_erb), shift(feat_spec))
        gains = m.erb_decoder(emb, e3, e2, e1, e0)[:, 0] @ m.erb_expand  # (B, T, bins)
        coefs = m.df_decoder(emb, c0).unflatten(-1, (c.df_order, 2))  # (B, T, D, order, 2)
        frames = re.shape[-1]
        pad = (c.df_order - 1 - c.df_lookahead, c.df_lookahead)
        padded_re = nn.functional.pad(low_re.transpose(1, 2), pad)  # (B, D, T + order - 1)
        padded_im = nn.functional.pad(low_im.transpose(1, 2), pad)
        filtered_re, filtered_im = 0.0, 0.0
        for k in range(c.df_order):
            tap_re, tap_im = padded_re[..., k : k + frames], padded_im[..., k : k + frames]
            coef_re, coef_im = coefs[..., k, 0].transpose(1, 2), coefs[..., k, 1].transpose(1, 2)
            filtered_re = filtered_re + tap_re * coef_re - tap_im * coef_im
            filtered_im = filtered_im + tap_re * coef_im + tap_im * coef_re
        high_gain = gains[..., c.df_bins :].transpose(1, 2)
        enhanced_re = torch.cat([filtered_re, re[:, c.df_bins :] * high_gain], dim=1)
        enhanced_im = torch.cat([filtered_im, im[:, c.df_bins :] * high_gain], dim=1)
        if c.post_filter_beta > 0:
            gain = post_filter_gain(enhanced_re.pow(2) + enhanced_im.pow(2), re.pow(2) + im.pow(2), c.post_filter_beta)
            enhanced_re, enhanced_im = enhanced_re * gain, enhanced_im * gain
        y = self.transform.overlap_add(enhanced_re, enhanced_im)
        return y[:, c.n_fft - hop : c.n_fft - hop + length]


class NSNet2Graph(nn.Module):
    def __init__(self, model: NSNet2) -> None:
        super().__init__()
        self.model, c = model, model.config
        self.transform = FrameTransform(model.window.cpu(), c.hop, 1.0, 1.0)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, T) -> (B, T)``: frames ``ceil(T / hop)``, as the model's ``valid_length`` padding gives."""
        m, c = self.model, self.model.config
        re, im = self.transform.spectrum(nn.functional.pad(wave, (0, c.n_fft - 1)))
        log_power = torch.log10((re.pow(2) + im.pow(2)).clamp_min(1e-12)).transpose(1, 2)
        states, _ = m.gru(m.fc_in(log_power))
        gain = m.gain(states.transpose(1, 2))
        return self.transform.overlap_add(re * gain, im * gain)[:, : wave.shape[-1]]


class GTCRNGraph(nn.Module):
    def __init__(self, model: GTCRN) -> None:
        super().__init__()
        self.model = model
        self.transform = FrameTransform(model.window.cpu(), model.hop, 1.0, 1.0)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, T) -> (B, T)``: the signal mirrored at both ends as the model pads it, gathered by index, then
        ``ceil(T / hop) + 1`` centred frames (the positions run a hop short of a frame further, which the
        transform drops)."""
        m, hop = self.model, self.model.hop
        positions = torch.ones_like(nn.functional.pad(wave[0], (hop, 2 * hop - 1)), dtype=torch.int64).cumsum(0) - 1 - hop
        last = torch.ones_like(wave[0], dtype=torch.int64).sum() - 1
        padded = wave[:, mirrored_sources(positions, last)] * (positions <= last + hop).to(wave.dtype)
        re, im = self.transform.spectrum(padded)  # (B, bins, frames)
        re, im = re.transpose(1, 2), im.transpose(1, 2)
        levels, _, _ = m.run_encoder(m.input_features(re, im))
        deepest, _ = m.run_bottleneck(levels[-1])
        mask, _, _ = m.run_decoder(deepest, levels)
        enhanced_re, enhanced_im = m.apply_mask(mask, re, im)
        y = self.transform.overlap_add(enhanced_re.transpose(1, 2), enhanced_im.transpose(1, 2))
        return y[:, hop : hop + wave.shape[-1]]


OFFLINE_GRAPHS: dict[type, type[nn.Module]] = {DeepFilterNet3: DeepFilterNet3Graph, NSNet2: NSNet2Graph, GTCRN: GTCRNGraph}
