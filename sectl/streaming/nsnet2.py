"""NSNet2 frame by frame, equal to :class:`sectl.models.NSNet2` on the whole signal.

The offline model's frame ``t`` covers samples ``[t hop, t hop + n_fft)`` with no left padding, so the
step that has seen only the first hops has no frame yet: the frame counter starts negative and the GRU
and the synthesis ignore those steps.
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
        re, im = self.spectrum(window)
        log_power = torch.log10((re.pow(2) + im.pow(2)).clamp_min(1e-12))
        states, new_gru = m.gru(m.fc_in(log_power).unsqueeze(1), gru.transpose(0, 1).contiguous())
        gain = m.gain(states.transpose(1, 2))[:, :, 0]
        active = (frame[0] >= 0) & ~past_end(frame, length, self.layout)
        gate = active.to(re.dtype)
        out, synthesis = self.synthesise(re * gain * gate, im * gain * gate, synthesis)
        return out, frame + 1, window[:, self.layout.hop :], synthesis, keep_if(active, new_gru.transpose(0, 1), gru)
