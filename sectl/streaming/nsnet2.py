"""NSNet2 frame by frame, equal to :class:`sectl.models.NSNet2` on the whole signal.

The offline model's frame ``t`` covers samples ``[t hop, t hop + n_fft)`` with no left padding, so the
steps that have seen only the first hops have no frame yet: the frame counter starts negative, and the
GRU and the synthesis ignore those (warm-up) steps.
"""

from __future__ import annotations

import torch

from sectl.errors import ModelError
from sectl.models.enhancers.nsnet2 import NSNet2
from sectl.streaming.frames import FrameStep, StreamLayout, keep_if, past_end


class NSNet2Step(FrameStep):
    def __init__(self, model: NSNet2) -> None:
        super().__init__()
        c = model.config
        self.model = model
        if c.n_fft % c.hop:
            raise ModelError(f"nsnet2: streaming needs n_fft ({c.n_fft}) to be a multiple of hop ({c.hop})")
        self.history = c.n_fft - c.hop
        self.layout = StreamLayout(
            sample_rate=model.sample_rate,
            hop=c.hop,
            preroll=self.history,  # the steps before the buffer holds the first frame
            end_pad=c.hop - 1,  # offline: ceil(T / hop) frames
            first_frame=-(self.history // c.hop),
            warmup=self.history // c.hop,
        )
        self.register_dft(model.window)
        self.to(model.window.device)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        c = self.model.config
        return {
            "frame": (),
            "analysis": (self.history,),
            "synthesis": (self.history,),
            "gru": (c.gru_layers, c.hidden),
        }

    def forward(self, samples: torch.Tensor, length: torch.Tensor, frame: torch.Tensor, analysis: torch.Tensor,
                synthesis: torch.Tensor, gru: torch.Tensor) -> tuple[torch.Tensor, ...]:  # fmt: skip
        m = self.model
        window = torch.cat([analysis, samples], dim=1)
        re, im = self.spectra(window)  # (B, N, bins)
        log_power = torch.log10((re.pow(2) + im.pow(2)).clamp_min(1e-12))
        states, new_gru = m.gru(m.fc_in(log_power), gru.transpose(0, 1).contiguous())
        gain = m.gain(states.transpose(1, 2)).transpose(1, 2)
        index = self.frame_indices(frame, re)
        gate = ((index >= 0) & ~past_end(index, length, self.layout)).to(re.dtype).unsqueeze(-1)
        out, synthesis = self.synthesise(re * gain * gate, im * gain * gate, synthesis)
        started = frame[0] >= 0  # the warm-up calls leave the GRU as it was
        return (out, index[-1:] + 1, window[:, -self.history :], synthesis,
                keep_if(started, new_gru.transpose(0, 1), gru))  # fmt: skip
