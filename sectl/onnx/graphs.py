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

from sectl.models import DeepFilterNet3, NSNet2
from sectl.streaming.frames import dft_matrices, idft_matrices

ERB_OFFSET_DB = 200.0  # > 100 dB below the floor of 10 log10(power + 1e-10): the ERB state stays positive


class FrameTransform(nn.Module):
    """Analysis ``(B, T) -> re, im (B, bins, frames)`` and overlap-add synthesis, as (transposed) convolutions."""

    def __init__(self, window: torch.Tensor, hop: int, analysis_scale: float, synthesis_scale: float) -> None:
        super().__init__()
        self.hop = hop
        re, im = dft_matrices(window, analysis_scale)
        self.register_buffer("analysis", torch.cat([re, im], dim=1).T.unsqueeze(1), persistent=False)
        re, im = idft_matrices(window, synthesis_scale)
        self.register_buffer("synthesis", torch.cat([re, im], dim=0).unsqueeze(1), persistent=False)

    def spectrum(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        both = nn.functional.conv1d(x.unsqueeze(1), self.analysis, stride=self.hop)
        return both.chunk(2, dim=1)

    def overlap_add(self, re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv_transpose1d(torch.cat([re, im], dim=1), self.synthesis, stride=self.hop)[:, 0]


def running_mean_rnn(channels: int, alpha: float) -> nn.RNN:
    """``s_t = (1 - alpha) x_t + alpha s_{t-1}`` per channel, as a ReLU RNN (identity on positive states)."""
    rnn = nn.RNN(channels, channels, nonlinearity="relu", bias=False, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.eye(channels) * (1 - alpha))
        rnn.weight_hh_l0.copy_(torch.eye(channels) * alpha)
    return rnn.requires_grad_(False)


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


OFFLINE_GRAPHS: dict[type, type[nn.Module]] = {DeepFilterNet3: DeepFilterNet3Graph, NSNet2: NSNet2Graph}
