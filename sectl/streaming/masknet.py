"""A causal MaskNet with absolute levels (``causal=True, normalize=False``) frame by frame, equal to
:class:`sectl.models.MaskNet` on the whole signal.

The offline model frames with ``torch.stft(center=True)`` (``n_fft / 2`` zeros each side) and
``torch.istft`` divides the overlap-add by the summed squared windows of the frames that exist, which
near the edges are fewer than in the middle; the step therefore overlap-adds that envelope too, frame
by frame, and divides by it.
"""

from __future__ import annotations

import torch

from sectl.errors import ModelError
from sectl.models.enhancers.masknet import MaskNet
from sectl.streaming.frames import FrameStep, StreamLayout, keep_if, past_end, require_streamable


class MaskNetStep(FrameStep):
    def __init__(self, model: MaskNet) -> None:
        super().__init__()
        c = model.config
        require_streamable(model, "its bidirectional LSTM")
        if c.n_fft % c.hop or c.n_fft % 2:
            raise ModelError(f"masknet: streaming needs n_fft ({c.n_fft}) to be an even multiple of hop ({c.hop})")
        self.model = model
        self.history = c.n_fft - c.hop
        warmup = self.history // c.hop - (c.n_fft // 2) // c.hop  # steps before frame 0 (centred frames)
        self.layout = StreamLayout(
            sample_rate=model.sample_rate,
            hop=c.hop,
            preroll=warmup * c.hop + c.n_fft // 2,  # the warm-up steps and the centring that istft trims
            end_pad=2 * c.hop - 1,  # offline: ceil(T / hop) + 1 frames
            first_frame=-warmup,
            warmup=warmup,
        )
        self.register_dft(model.window)
        self.register_buffer("window_power", model.window.cpu().pow(2).unsqueeze(0), persistent=False)
        self.to(model.window.device)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        c = self.model.config
        return {
            "frame": (),
            "analysis": (self.history,),
            "synthesis": (self.history,),
            "envelope": (self.history,),
            "lstm_h": (c.layers, c.hidden),
            "lstm_c": (c.layers, c.hidden),
        }

    def forward(self, samples: torch.Tensor, length: torch.Tensor, frame: torch.Tensor, analysis: torch.Tensor,
                synthesis: torch.Tensor, envelope: torch.Tensor, lstm_h: torch.Tensor,
                lstm_c: torch.Tensor) -> tuple[torch.Tensor, ...]:  # fmt: skip
        m = self.model
        window = torch.cat([analysis, samples], dim=1)
        re, im = self.spectra(window)  # (B, N, bins)
        embedded = m.embed(torch.log(re.pow(2) + im.pow(2) + 1e-8))
        states, (new_h, new_c) = m.rnn(embedded, (lstm_h.transpose(0, 1).contiguous(), lstm_c.transpose(0, 1).contiguous()))
        mask = m.config.max_gain * torch.sigmoid(m.mask(states))
        index = self.frame_indices(frame, re)
        gate = ((index >= 0) & ~past_end(index, length, self.layout)).to(re.dtype).unsqueeze(-1)  # frames offline computes
        out, synthesis = self.synthesise(re * mask * gate, im * mask * gate, synthesis)
        covered, envelope = self.overlap_add(self.window_power * gate.expand(re.shape[0], -1, -1), envelope)
        out = torch.where(covered > 1e-11, out / covered.clamp_min(1e-11), torch.zeros_like(out))
        started = frame[0] >= 0  # the warm-up calls leave the LSTM as it was
        return (out, index[-1:] + 1, window[:, -self.history :], synthesis, envelope,
                keep_if(started, new_h.transpose(0, 1), lstm_h), keep_if(started, new_c.transpose(0, 1), lstm_c))  # fmt: skip
