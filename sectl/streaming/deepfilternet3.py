"""DeepFilterNet3 frame by frame, equal to :class:`sectl.models.DeepFilterNet3` on the whole signal.

Per call (``N`` hops, as ``N`` frames at once): the frames' spectra; the ERB and unit normalisation states; the encoder
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
from sectl.models.enhancers.erb import ERB_OFFSET_DB, running_mean_rnn
from sectl.streaming.frames import FrameStep, StreamLayout, keep_if, past_end


def _conv_step(block: ConvBlock, past: torch.Tensor, new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A causal block on ``N`` new frames ``(B, C, N, F)`` with its ``time_pad`` past frames; the new past."""
    window = torch.cat([past, new], dim=2)
    return block.unpadded(window), window[:, :, -block.time_pad :] if block.time_pad else past


def _gru_step(gru: SqueezedGRU, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``N`` frames ``(B, N, C)`` through a squeezed GRU; the state is kept batch-first ``(B, layers, H)``."""
    y, new = gru(x, state.transpose(0, 1).contiguous())
    return y, new.transpose(0, 1)


def _later(x: torch.Tensor, skip: int, keep_last: int) -> torch.Tensor:
    """``x[:, :, skip : len - keep_last]`` along axis 2, with constant bounds (a traced graph keeps its time axis)."""
    return x[:, :, skip : -keep_last or None]


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
            warmup=c.conv_lookahead,
        )
        self.register_dft(model.window, 2 * hop / c.n_fft**2, c.n_fft)
        self.erb_mean = running_mean_rnn(c.erb_bands, model.alpha)
        self.unit_mean = running_mean_rnn(c.df_bins, model.alpha)
        # +1 on real planes, -1 on imaginary ones (deep_filter); a buffer, so no host-to-device copy per call
        self.register_buffer("plane_sign", torch.tensor([1.0, -1.0]).view(2, 1, 1), persistent=False)
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
            "spectra": (2, self.ring, bins),  # real parts, then imaginary parts
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
        """The frames' normalised ERB ``(B, 1, N, E)`` and complex ``(B, 2, N, D)`` features, and the
        normalisation states after the last frame (the running means as ReLU RNNs on positive values)."""
        m, low = self.model, self.model.config.df_bins
        erb_db = 10 * torch.log10((re.pow(2) + im.pow(2)) @ m.erb_average + 1e-10)  # (B, N, E)
        erb_means = self.erb_mean(erb_db + ERB_OFFSET_DB, (erb_norm + ERB_OFFSET_DB).unsqueeze(0))[0] - ERB_OFFSET_DB
        magnitude = (re[..., :low].pow(2) + im[..., :low].pow(2) + 1e-24).sqrt()
        unit_means = self.unit_mean(magnitude, unit_norm.unsqueeze(0).contiguous())[0]
        root = unit_means.sqrt()
        feat_erb = ((erb_db - erb_means) / 40).unsqueeze(1)
        feat_spec = torch.stack([re[..., :low] / root, im[..., :low] / root], dim=1)
        return feat_erb, feat_spec, erb_means[:, -1], unit_means[:, -1]

    def embedding_input(self, e3: torch.Tensor, c1: torch.Tensor) -> torch.Tensor:
        """``Encoder.combine``, with ``df_fc_emb`` reading ``c1``'s channels in place (one transpose, not two)."""
        enc = self.model.encoder
        projected = enc.df_fc_emb.over_channels(c1.permute(0, 3, 1, 2).flatten(1, 2)).transpose(1, 2)
        return e3.permute(0, 2, 3, 1).flatten(2) + torch.relu(projected)

    def coefficients(self, recurrent: torch.Tensor, emb: torch.Tensor, pathway: torch.Tensor) -> torch.Tensor:
        """``DfDecoder.coefficients`` laid out for :meth:`deep_filter`: ``(B, order, 2, N, D)``, real and imaginary
        planes per tap. The decoder's come as ``(B, N, D, order * 2)``, the pathway's as ``(B, order * 2, N, D)``:
        the decoder's are moved to the pathway's layout, one 4-D channels-last-to-first transpose (onnxruntime:
        0.11 ms per 512 frames, where the 5-D permute to ``(B, 2, order, N, D)`` took 1.60;
        ``benchmarks/graph_layouts.py``)."""
        d, c = self.model.df_decoder, self.model.config
        taps = torch.tanh(d.df_out(recurrent + d.df_skip(emb))).unflatten(-1, (c.df_bins, c.df_order * 2))
        return (taps.permute(0, 3, 1, 2) + pathway).unflatten(1, (c.df_order, 2))

    def deep_filter(self, spectra: torch.Tensor, coefs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The filtered low bins ``(B, N, D)`` (real, imaginary) and the unfiltered current frames ``(B, 2, N, bins)``.

        ``coefs``: ``(B, order, 2, N, D)`` (:meth:`coefficients`). ``spectra``: ``(B, 2, ring + N, bins)``, the
        ring's ``ring`` past spectra, then the ``N`` new ones. The output frame ``j`` (network time ``t``) is new
        frame ``j`` minus ``conv_lookahead``, its taps positions ``j + 1 ... j + order``. Real and imaginary parts
        lie in separate planes and the taps are summed in one reduction: a few large ops instead of a dozen small
        ones per tap (the graph runs them every hop)."""
        c, ring = self.model.config, self.ring
        current = _later(spectra, ring - c.conv_lookahead, c.conv_lookahead)
        low = spectra[..., : c.df_bins]  # cut once, not once per tap
        taps = torch.stack([_later(low, 1 + k, ring - 1 - k) for k in range(c.df_order)], 1)  # (B, order, 2, N, D)
        sign = self.plane_sign.to(taps.dtype)
        filtered_re = (taps * coefs * sign).sum((1, 2))  # re re - im im, no plane picked out
        filtered_im = (taps.flip(2) * coefs).sum((1, 2))  # im re + re im
        return filtered_re, filtered_im, current

    def forward(self, samples: torch.Tensor, length: torch.Tensor, frame: torch.Tensor, analysis: torch.Tensor,
                synthesis: torch.Tensor, erb_norm: torch.Tensor, unit_norm: torch.Tensor, spectra: torch.Tensor,
                erb_conv: torch.Tensor, df_conv: torch.Tensor, enc_gru: torch.Tensor, erb_gru: torch.Tensor,
                df_gru: torch.Tensor, pathway: torch.Tensor) -> tuple[torch.Tensor, ...]:  # fmt: skip
        m, c = self.model, self.model.config
        window = torch.cat([analysis, samples], dim=1)
        re, im = self.spectra(window)  # (B, N, bins)
        feat_erb, feat_spec, erb_norm, unit_norm = self.features(re, im, erb_norm, unit_norm)
        index = self.frame_indices(frame, re)
        present = 1.0 - past_end(index, length, self.layout).to(re.dtype)  # beyond: zeros, as offline padding
        spectra = torch.cat([spectra, torch.stack([re, im], dim=1) * present[:, None]], dim=2)
        started = frame[0] >= c.conv_lookahead  # the warm-up calls only fill the normalisations and the ring

        enc = m.encoder
        e0, new_erb_conv = _conv_step(enc.erb_conv0, erb_conv, feat_erb * present[:, None])
        e1 = enc.erb_conv1(e0)
        e2 = enc.erb_conv2(e1)
        e3 = enc.erb_conv3(e2)
        c0, new_df_conv = _conv_step(enc.df_conv0, df_conv, feat_spec * present[:, None])
        emb, new_enc_gru = _gru_step(enc.emb_gru, self.embedding_input(e3, enc.df_conv1(c0)), enc_gru)
        recurrent, new_erb_gru = _gru_step(m.erb_decoder.emb_gru, emb, erb_gru)
        gains = m.erb_decoder.gains(recurrent, e3, e2, e1, e0)[:, 0] @ m.erb_expand  # (B, N, bins)
        df_recurrent, new_df_gru = _gru_step(m.df_decoder.df_gru, emb, df_gru)
        path, new_pathway = _conv_step(m.df_decoder.df_convp, pathway, c0)
        coefs = self.coefficients(df_recurrent, emb, path)

        filtered_re, filtered_im, current = self.deep_filter(spectra, coefs)
        low = c.df_bins
        enhanced_re = torch.cat([filtered_re, current[:, 0, :, low:] * gains[..., low:]], dim=-1)
        enhanced_im = torch.cat([filtered_im, current[:, 1, :, low:] * gains[..., low:]], dim=-1)
        if c.post_filter_beta > 0:
            gain = post_filter_gain(enhanced_re.pow(2) + enhanced_im.pow(2), current.pow(2).sum(1), c.post_filter_beta)
            enhanced_re, enhanced_im = enhanced_re * gain, enhanced_im * gain
        gate = started.to(enhanced_re.dtype)
        out, synthesis = self.synthesise(enhanced_re * gate, enhanced_im * gate, synthesis)
        return (
            out,
            index[-1:] + 1,
            window[:, -(c.n_fft - self.layout.hop) :],
            synthesis,
            erb_norm,
            unit_norm,
            spectra[:, :, -self.ring :],
            keep_if(started, new_erb_conv, erb_conv),
            keep_if(started, new_df_conv, df_conv),
            keep_if(started, new_enc_gru, enc_gru),
            keep_if(started, new_erb_gru, erb_gru),
            keep_if(started, new_df_gru, df_gru),
            keep_if(started, new_pathway, pathway),
        )
