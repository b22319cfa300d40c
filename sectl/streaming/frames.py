"""Hops in, hops out: the frame step every streamable enhancer implements.

A :class:`FrameStep` is an ``nn.Module`` whose ``forward(samples, length, *state)`` takes any whole
number of hops of input (``(B, N * hop)``; one hop where ``multi_hop`` is false), the input's total
length (``-1`` while it is not known: a live stream) and every piece of model state as explicit
tensors, and returns as many hops of output and the new state. Nothing is hidden in Python attributes,
so the same module runs a Python stream (:class:`sectl.streaming.Streamer`), a whole file in a few large
calls, and exports as one ONNX graph with a dynamic time axis whose states are inputs and outputs.
Hops are frames: the recurrent layers run over the ``N`` frames of a call as one sequence, convolutions
read their buffered past frames, and analysis and overlap-add take ``N`` frames at once.

Alignment with the offline model is bookkeeping, kept here as data: the first ``preroll`` output
samples precede the offline output's first sample; ``lead_in`` zeros go in before the first sample
(so that a strided model's frame grid lines up); once ``length`` is known, each step leaves out the
frames the offline model never computes (``end_pad``: it computes ``(T + end_pad) // hop`` frames).
The first ``warmup`` steps precede the model's first frame and leave its recurrent state as it was; the
state is held per call, not per frame, so no call may hold both warm-up hops and later ones (the first
calls carry exactly ``warmup`` hops, then any number); :class:`WarmupGuard` turns such a call's output
into NaN rather than let it pass.

Why DFTs as matmuls (:mod:`sectl.streaming.dft`) instead of ``torch.fft``: exporters and runtimes need no
complex tensors, and the window and scaling fold into them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sectl.errors import ModelError
from sectl.streaming.dft import InverseRealDFT, RealDFT


@dataclass(frozen=True)
class StreamLayout:
    """How a frame step's hops line up with the offline model's output (all in model-rate samples)."""

    sample_rate: int
    hop: int
    preroll: int  # output samples before the offline output's first sample
    end_pad: int  # the offline model analyses (T + end_pad) // hop frames of a T-sample input
    first_frame: int  # analysis frame index of the first step (negative: steps before the first frame)
    lead_in: int = 0  # zeros fed before the signal
    warmup: int = 0  # steps before the model's first frame: no call holds both these hops and later ones

    @property
    def latency(self) -> int:
        """Worst-case samples between an input sample's arrival and its enhanced sample's return."""
        return self.preroll + self.hop - 1 - self.lead_in

    def steps_for(self, length: int) -> int:
        """Steps until every one of ``length`` offline-aligned output samples has been returned."""
        return -(-(length + self.preroll) // self.hop)


def past_end(frame: torch.Tensor, length: torch.Tensor, layout: StreamLayout) -> torch.Tensor:
    """Whether analysis frames ``frame`` (any shape) lie beyond the frames the offline model computes for
    ``length`` samples (never while ``length`` is unknown, ``-1``)."""
    return (length[0] >= 0) & (frame >= torch.div(length[0] + layout.end_pad, layout.hop, rounding_mode="floor"))


def keep_if(condition: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``new`` where ``condition`` (a scalar bool tensor) holds, else ``old``: state updates that
    depend on the step without a Python branch (a host sync, and no branch survives export)."""
    return torch.where(condition, new, old)


class WarmupGuard(nn.Module):
    """A frame step whose output is NaN for a call holding both warm-up hops and later ones.

    Why: the warm-up is gated per call (the state is kept or replaced as a whole), so such a call would
    come out silently wrong. :class:`sectl.streaming.Streamer` never makes one, but an integrator driving
    an exported graph by hand can, and a graph cannot raise: NaN makes the mistake impossible to miss. A
    step without warm-up is returned unwrapped (:func:`guarded`)."""

    def __init__(self, step: "FrameStep") -> None:
        super().__init__()
        self.step = step
        self.frame = step.state_names.index("frame")
        self.first_live = step.layout.first_frame + step.layout.warmup  # the first step after the warm-up

    def forward(self, samples: torch.Tensor, length: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, *rest = self.step(samples, length, *state)
        start, end = state[self.frame][0], rest[self.frame][0]  # the counter before and after this call's hops
        mixed = (start < self.first_live) & (end > self.first_live)
        return (out + torch.where(mixed, torch.nan, 0.0), *rest)


def guarded(step: "FrameStep") -> nn.Module:
    """``step`` behind a :class:`WarmupGuard` where it has a warm-up (one hop per call cannot mix)."""
    return WarmupGuard(step) if step.layout.warmup > 0 and step.multi_hop else step


def require_streamable(model: nn.Module, future: str) -> None:
    """Refuse a model trained in a way no stream can reproduce, naming the setting that would stream."""
    fix = "train with model.causal=true and model.args={normalize: false} to stream"
    if not model.config.causal:
        raise ModelError(f"{model.name} cannot stream: {future} reads the future; {fix}")
    if model.config.normalize:
        raise ModelError(f"{model.name} cannot stream: it scales each input by the whole signal's level, which a "
                         f"stream does not know yet; {fix}")  # fmt: skip


class FrameStep(nn.Module):
    """Base of the per-model frame steps: a frame analysis buffer and overlap-add synthesis buffer.

    Subclasses hold the model as ``model``, set ``layout``, register their DFTs
    (:meth:`register_dft`), list their states in :meth:`state_shapes` (name -> shape without the batch
    axis; ``frame`` is the step counter, one for the whole batch) and implement ``forward``.
    """

    layout: StreamLayout
    model: nn.Module
    multi_hop: bool = True  # forward takes any whole number of hops (False: exactly one)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def initial_state(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """Zeros, then the model's own initial values (:meth:`init_value`), in ``state_names`` order."""
        device = self.device
        state = []
        for name, shape in self.state_shapes().items():
            if name == "frame":
                state.append(torch.full((1,), self.layout.first_frame, dtype=torch.int64, device=device))
            else:
                state.append(self.init_value(name, torch.zeros(batch, *shape, device=device)))
        return tuple(state)

    def init_value(self, name: str, zeros: torch.Tensor) -> torch.Tensor:
        return zeros

    @property
    def device(self) -> torch.device:
        """Where the model's weights are, and so the states (the step holds the model as ``self.model``)."""
        return next(self.model.parameters()).device

    @property
    def state_names(self) -> list[str]:
        return list(self.state_shapes())

    def register_dft(self, window: torch.Tensor, analysis_scale: float = 1.0, synthesis_scale: float = 1.0) -> None:
        """The analysis and synthesis transforms of ``window`` (on the CPU; the step moves them with itself)."""
        self.dft = RealDFT(window.cpu(), analysis_scale)
        self.idft = InverseRealDFT(window.cpu(), synthesis_scale)

    @property
    def overlap(self) -> int:
        """Hops per analysis frame (``n_fft / hop``; every streaming model's ``n_fft`` is a multiple of its hop)."""
        return self.dft.n // self.layout.hop

    def frame_indices(self, frame: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``(N,)`` analysis frame index of each of a call's frames (``rows``: anything ``(B, N, ...)``), made
        from the tensor rather than from a Python ``N``, so the exported graph keeps a dynamic time axis."""
        return torch.ones_like(rows[0, :, 0], dtype=torch.int64).cumsum(0) - 1 + frame[0]

    def spectra(self, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, N, bins)`` real and imaginary spectra of the ``N`` frames in ``window`` (the buffered
        ``n_fft - hop`` samples, then ``N`` hops)."""
        hop, r = self.layout.hop, self.overlap
        rows = window.reshape(window.shape[0], -1, hop)  # (B, N + r - 1, hop)
        frames = torch.cat([rows[:, k : (k - r + 1) or None] for k in range(r)], dim=-1)  # (B, N, n_fft)
        return self.dft(frames)

    def overlap_add(self, frames: torch.Tensor, tail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Overlap-add ``(B, N, n_fft)`` frames onto ``tail`` (``n_fft - hop`` samples): the ``N`` completed
        hops ``(B, N * hop)`` and the new tail."""
        hop, r = self.layout.hop, self.overlap
        pieces = frames.reshape(frames.shape[0], frames.shape[1], r, hop)
        acc = sum(nn.functional.pad(pieces[:, :, k], (0, 0, k, r - 1 - k)) for k in range(r))  # (B, N + r - 1, hop)
        acc = torch.cat([acc[:, : r - 1] + tail.reshape(tail.shape[0], r - 1, hop), acc[:, r - 1 :]], dim=1)
        return acc[:, : 1 - r].flatten(1), acc[:, 1 - r :].flatten(1)

    def synthesise(self, re: torch.Tensor, im: torch.Tensor, tail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inverse DFTs of ``(B, N, bins)`` spectra, overlap-added: the completed hops and the new tail."""
        return self.overlap_add(self.idft(re, im), tail)
