"""GTCRN hop by hop, equal to :class:`sectl.models.GTCRN` on the whole signal.

The offline STFT centres frame ``t`` on sample ``t hop`` and mirrors the signal at both ends, so frame 0
reads samples ``0 ... hop`` (its first half is ``x[hop] ... x[1]``) and frame ``t >= 1`` reads
``x[(t - 1) hop ... (t + 1) hop - 1]``. With ``hop - 1`` zeros of lead-in, stream hop ``k`` ends on sample
``k hop``, which is exactly what frame ``k - 1`` needs: every hop completes one frame, the first hop
(the warm-up) none, and the latency is ``2 hop`` samples (32 ms at 16 kHz), one sample more than the
frame itself. Each call gathers its frames from a buffer of the last three hops and the new ones,
mirroring at the start (frame 0) and, once the length is known, at the end, as the offline model
pads; everything else is the model's own stages, run over the call's frames as one sequence with the
GT blocks' past frames and the GRUs' states carried.
"""

from __future__ import annotations

import torch

from sectl.errors import ModelError
from sectl.models.enhancers.gtcrn import GTCRN, mirrored_sources
from sectl.streaming.frames import FrameStep, StreamLayout, keep_if, past_end

UNKNOWN_END = 2**40
"""The last sample's index while the length is unknown (a live stream): beyond any position a stream reaches."""

HISTORY_HOPS = 3
"""Hops of past input kept: the frame that hop ``k`` completes starts on the last sample of hop ``k - 2``, and its
mirror image at the signal's end reads up to ``hop`` samples before that start."""


class GTCRNStep(FrameStep):
    def __init__(self, model: GTCRN) -> None:
        super().__init__()
        if model.config.normalize:
            raise ModelError("gtcrn cannot stream: it scales each input by the whole signal's level, which a stream "
                             "does not know yet; use model.args={normalize: false}")  # fmt: skip
        self.model = model
        hop = model.hop
        self.layout = StreamLayout(
            sample_rate=model.sample_rate,
            hop=hop,
            preroll=2 * hop,  # the warm-up hop, and the mirrored half frame before sample 0
            end_pad=2 * hop - 1,  # offline: ceil(T / hop) + 1 frames
            first_frame=-1,
            lead_in=hop - 1,
            warmup=1,
        )
        self.past_frames = [block.past_frames for block in model.temporal_blocks()]
        self.register_dft(model.window)
        self.register_buffer("frame_offsets", torch.arange(2 * hop), persistent=False)
        self.to(model.window.device)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        m, hop = self.model, self.layout.hop
        ch = m.config.channels
        return {
            "frame": (),
            "analysis": (HISTORY_HOPS * hop,),
            "synthesis": (hop,),
            "conv": (ch, sum(self.past_frames), m.width),  # each GT block's past depthwise inputs, in block order
            "attention": (len(self.past_frames), ch),  # each GT block's attention GRU
            "time_gru": (len(m.bottleneck), m.width, ch),  # each dual-path GRU's time GRU, per band
        }

    def frames(self, window: torch.Tensor, index: torch.Tensor, frame: torch.Tensor,
               length: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """The call's ``N`` analysis frames ``(B, N, n_fft)`` from ``window`` (the kept hops, then the new ones):
        frame ``t`` reads input samples ``(t - 1) hop ...``, mirrored at 0 and, once ``length`` is known, at its
        end, and zeros more than a hop past the end (the offline padding)."""
        hop = self.layout.hop
        positions = (index[:, None] - 1) * hop + self.frame_offsets  # (N, n_fft) input sample indices
        last = torch.where(length[0] >= 0, length[0] - 1, torch.full_like(length[0], UNKNOWN_END))
        sources = torch.where(index[:, None] >= 0, mirrored_sources(positions, last), positions)  # warm-up: as is
        first = (frame[0] - (HISTORY_HOPS - 1)) * hop - self.layout.lead_in  # input index of window[:, 0]
        end = torch.ones_like(window[0], dtype=torch.int64).sum() - 1
        columns = torch.minimum((sources - first).clamp_min(0), end)
        inside = (positions <= last + hop).to(window.dtype)
        return window[:, columns.flatten()].view(window.shape[0], -1, 2 * hop) * inside

    def forward(self, samples: torch.Tensor, length: torch.Tensor, frame: torch.Tensor, analysis: torch.Tensor,
                synthesis: torch.Tensor, conv: torch.Tensor, attention: torch.Tensor,
                time_gru: torch.Tensor) -> tuple[torch.Tensor, ...]:  # fmt: skip
        m, hop = self.model, self.layout.hop
        batch, blocks = samples.shape[0], len(self.past_frames)
        window = torch.cat([analysis, samples], dim=1)
        index = self.frame_indices(frame, samples.view(batch, -1, hop))  # (N,) the frame each new hop completes
        frames = self.frames(window, index, frame, length)
        re, im = self.dft(frames)  # (B, N, bins)

        pasts = list(torch.split(conv, self.past_frames, dim=2))
        states = [attention[:, i].unsqueeze(0).contiguous() for i in range(blocks)]
        levels, enc_pasts, enc_states = m.run_encoder(m.input_features(re, im), pasts[: blocks // 2], states[: blocks // 2])
        gru_states = [time_gru[:, i].reshape(1, -1, m.config.channels) for i in range(len(m.bottleneck))]
        deepest, gru_states = m.run_bottleneck(levels[-1], gru_states)
        mask, dec_pasts, dec_states = m.run_decoder(deepest, levels, pasts[blocks // 2 :], states[blocks // 2 :])
        enhanced_re, enhanced_im = m.apply_mask(mask, re, im)

        gate = ((index >= 0) & ~past_end(index, length, self.layout)).to(re.dtype)[:, None]
        out, synthesis = self.synthesise(enhanced_re * gate, enhanced_im * gate, synthesis)
        started = frame[0] >= 0  # the warm-up call leaves the network's state as it was
        new_time_gru = torch.stack([s.view(batch, m.width, -1) for s in gru_states], dim=1)
        return (
            out,
            index[-1:] + 1,
            window[:, -HISTORY_HOPS * hop :],
            synthesis,
            keep_if(started, torch.cat([*enc_pasts, *dec_pasts], dim=2), conv),
            keep_if(started, torch.stack([s[0] for s in [*enc_states, *dec_states]], dim=1), attention),
            keep_if(started, new_time_gru, time_gru),
        )
