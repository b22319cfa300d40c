"""DeepFilterNet3 frame by frame, equal to :class:`sectl.models.DeepFilterNet3` on the whole signal.

Per step (one hop): the analysis frame's spectrum; the ERB and unit normalisation states; the encoder
on the features of this frame, which are the input of network time ``t = frame - conv_lookahead``
(the offline model shifts the features that far ahead); the causal convolutions read buffered past
frames; the GRUs carry their states; the deep filter reads a ring of the last spectra, which holds
frames ``t - (order - 1 - df_lookahead) ... t + df_lookahead`` of the unmasked spectrum; the enhanced
frame ``t`` is overlap-added. The first ``conv_lookahead`` frames only feed the normalisations and
the ring, as offline, where the shift drops them.
"""

from __future__ import annotations

import torch

from sectl.errors import ModelError
from sectl.models.enhancers.deepfilternet3 import ConvBlock, DeepFilterNet3, SqueezedGRU, post_filter_gain
from sectl.streaming.frames import FrameStep, StreamLayout, keep_if, past_end


def _conv_step(block: ConvBlock, past: torch.Tensor, new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A causal block on one new frame ``(B, C, 1, F)`` with its ``time_pad`` past frames; the new past."""
    window = torch.cat([past, new], dim=2)
    return block.unpadded(window), window[:, :, 1:]


def _gru_step(gru: SqueezedGRU, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame ``(B, 1, C)`` through a squeezed GRU; the state is kept batch-first ``(B, layers, H)``."""
    y, new = gru(x, state.transpose(0, 1).contiguous())
    return y, new.transpose(0, 1)


class DeepFilterNet3Step(FrameStep):
    def __init__(self, model: DeepFilterNet3) -> None:
        super().__init__()
        c = model.config
        if c.df_lookahead > c.conv_lookahead:
            raise ModelError("deepfilternet3: streaming needs df_lookahead <= conv_lookahead (the deep filter "
                             "would read frames the encoder has not seen)")  # fmt: skip
        self.model = model
        hop = model.hop
        self.ring = c.conv_lookahead + c.df_order - c.df_lookahead
        self.layout = StreamLayout(
            sample_rate=model.sample_rate,
            hop=hop,
            preroll=c.conv_lookahead * hop + c.n_fft - hop,  # network warm-up + the analysis delay istft drops
            end_pad=c.n_fft,
            first_frame=0,
        )
        self.register_dft(model.window, 2 * hop / c.n_fft**2, c.n_fft)
        self.to(model.window.device)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        c, enc = self.model.config, self.model.encoder
        bins = c.n_fft // 2 + 1
        return {
            "frame": (),
            "analysis": (c.n_fft - self.layout.hop,),
            "synthesis": (c.n_fft - self.layout.hop,),
            "erb_norm": (c.erb_bands,),
            "unit_norm": (c.df_bins,),
            "spectra": (self.ring, bins, 2),
            "erb_conv": (1, enc.erb_conv0.time_pad, c.erb_bands),
            "df_conv": (2, enc.df_conv0.time_pad, c.df_bins),
            "enc_gru": (1, c.emb_hidden),
            "erb_gru": (c.emb_layers - 1, c.emb_hidden),
            "df_gru": (c.df_layers, c.df_hidden),
            "pathway": (c.conv_ch, self.model.df_decoder.df_convp.time_pad, c.df_bins),
        }

    def init_value(self, name: str, zeros: torch.Tensor) -> torch.Tensor:
        if name == "erb_norm":
            return zeros + self.model.erb_norm_init
        if name == "unit_norm":
            return zeros + self.model.unit_norm_init
        return zeros

    def features(self, re: torch.Tensor, im: torch.Tensor, erb_norm: torch.Tensor, unit_norm: torch.Tensor):
        """This frame's normalised ERB ``(B, 1, 1, E)`` and complex ``(B, 2, 1, D)`` features, new states."""
        m, alpha, low = self.model, self.model.alpha, self.model.config.df_bins
        erb_db = 10 * torch.log10((re.pow(2) + im.pow(2)) @ m.erb_average + 1e-10)
        erb_norm = (1 - alpha) * erb_db + alpha * erb_norm
        magnitude = (re[:, :low].pow(2) + im[:, :low].pow(2) + 1e-24).sqrt()
        unit_norm = (1 - alpha) * magnitude + alpha * unit_norm
        root = unit_norm.sqrt()
        feat_erb = ((erb_db - erb_norm) / 40)[:, None, None]
        feat_spec = torch.stack([re[:, :low] / root, im[:, :low] / root], dim=1).unsqueeze(2)
        return feat_erb, feat_spec, erb_norm, unit_norm

    def forward(self, samples: torch.Tensor, length: torch.Tensor, frame: torch.Tensor, analysis: torch.Tensor,
                synthesis: torch.Tensor, erb_norm: torch.Tensor, unit_norm: torch.Tensor, spectra: torch.Tensor,
                erb_conv: torch.Tensor, df_conv: torch.Tensor, enc_gru: torch.Tensor, erb_gru: torch.Tensor,
                df_gru: torch.Tensor, pathway: torch.Tensor) -> tuple[torch.Tensor, ...]:  # fmt: skip
        m, c = self.model, self.model.config
        window = torch.cat([analysis, samples], dim=1)
        re, im = self.spectrum(window)
        feat_erb, feat_spec, erb_norm, unit_norm = self.features(re, im, erb_norm, unit_norm)
        present = 1.0 - past_end(frame, length, self.layout).to(re.dtype)  # beyond: zeros, as offline padding
        spectra = torch.cat([spectra[:, 1:], torch.stack([re, im], dim=-1).unsqueeze(1) * present], dim=1)
        started = frame[0] >= c.conv_lookahead

        enc = m.encoder
        e0, new_erb_conv = _conv_step(enc.erb_conv0, erb_conv, feat_erb * present)
        e1 = enc.erb_conv1(e0)
        e2 = enc.erb_conv2(e1)
        e3 = enc.erb_conv3(e2)
        c0, new_df_conv = _conv_step(enc.df_conv0, df_conv, feat_spec * present)
        emb, new_enc_gru = _gru_step(enc.emb_gru, enc.combine(e3, enc.df_conv1(c0)), enc_gru)
        recurrent, new_erb_gru = _gru_step(m.erb_decoder.emb_gru, emb, erb_gru)
        gains = m.erb_decoder.gains(recurrent, e3, e2, e1, e0)[:, 0, 0] @ m.erb_expand  # (B, bins)
        df_recurrent, new_df_gru = _gru_step(m.df_decoder.df_gru, emb, df_gru)
        path, new_pathway = _conv_step(m.df_decoder.df_convp, pathway, c0)
        coefs = m.df_decoder.coefficients(df_recurrent, emb, path)[:, 0].unflatten(-1, (c.df_order, 2))

        low, current = c.df_bins, spectra[:, self.ring - 1 - c.conv_lookahead]  # current: (B, bins, 2)
        taps = spectra[:, : c.df_order, :low].transpose(1, 2)  # (B, D, order, 2)
        filtered_re = (taps[..., 0] * coefs[..., 0] - taps[..., 1] * coefs[..., 1]).sum(-1)
        filtered_im = (taps[..., 0] * coefs[..., 1] + taps[..., 1] * coefs[..., 0]).sum(-1)
        enhanced_re = torch.cat([filtered_re, current[:, low:, 0] * gains[:, low:]], dim=1)
        enhanced_im = torch.cat([filtered_im, current[:, low:, 1] * gains[:, low:]], dim=1)
        if c.post_filter_beta > 0:
            gain = post_filter_gain(enhanced_re.pow(2) + enhanced_im.pow(2), current.pow(2).sum(-1), c.post_filter_beta)
            enhanced_re, enhanced_im = enhanced_re * gain, enhanced_im * gain
        gate = started.to(enhanced_re.dtype)
        out, synthesis = self.synthesise(enhanced_re * gate, enhanced_im * gate, synthesis)
        hop = self.layout.hop
        return (
            out,
            frame + 1,
            window[:, hop:],
            synthesis,
            erb_norm,
            unit_norm,
            spectra,
            keep_if(started, new_erb_conv, erb_conv),
            keep_if(started, new_df_conv, df_conv),
            keep_if(started, new_enc_gru, enc_gru),
            keep_if(started, new_erb_gru, erb_gru),
            keep_if(started, new_df_gru, df_gru),
            keep_if(started, new_pathway, pathway),
        )
