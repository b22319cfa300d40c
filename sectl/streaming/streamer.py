"""``Streamer``: samples in, enhanced samples out over any streamable enhancer, at any rate and any chunk
size (whole hops go to the frame step in as few calls as it takes).

What comes out is the offline enhancement of everything fed so far, minus the last ``latency``
samples at most: concatenating every ``feed`` and the ``flush`` gives the offline output of the whole
signal (same length as the input), to float rounding. A live pipeline therefore hears it ``latency``
samples late; a file gets it aligned.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator, Protocol, Sequence

import torch

from sectl.signal import FULLY_WET, DryWet
from sectl.streaming.frames import FrameStep, StreamLayout, guarded
from sectl.streaming.resample import StreamingResampler

State = Sequence


MAX_HOPS_PER_CALL = 512
"""The most hops one call takes (about 5 s at a 10 ms hop): large enough that a file runs as a few big
calls, small enough that a call's activations stay a few MB whatever the feed."""

FEED_FRAMES = 2**18
"""The most samples per row :func:`enhance_together` feeds at a time (5.5 s at 48 kHz, at least a 512-hop
call): the stream's transient copies (resamplers, pending hops, the dry signal, call outputs) scale with
this, not with the group (fed whole, 32 one-minute files at 44.1 kHz peaked at 7x their size, 2.6 GB)."""


class FrameRunner(Protocol):
    """What a streamer drives: a PyTorch :class:`FrameStep` or an exported graph (onnxruntime)."""

    layout: StreamLayout
    multi_hop: bool  # takes any whole number of hops per call (else one)

    def initial_state(self, batch: int) -> State: ...

    def select_rows(self, state: State, rows: list[int]) -> State: ...

    def __call__(self, samples: torch.Tensor, length: int, state: State) -> tuple[torch.Tensor, State]: ...


@contextmanager
def full_precision_matmul() -> Iterator[None]:
    """CUDA matmuls in full float32 (not TF32, which training may have switched on) for the block."""
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


class TorchFrames:
    """Runs a :class:`FrameStep` without autograd on its module's device; samples come and go on the CPU."""

    def __init__(self, step: FrameStep) -> None:
        self.step = step.eval()
        self.guarded = guarded(step)  # a call mixing warm-up and later hops comes out NaN, as in the exported graph
        self.layout, self.multi_hop = step.layout, step.multi_hop
        self.device = step.device
        self._lengths: dict[int, torch.Tensor] = {}

    def initial_state(self, batch: int) -> State:
        return self.step.initial_state(batch)

    def length_tensor(self, length: int) -> torch.Tensor:
        """``length`` as the step's ``(1,)`` input, made once per value (a stream passes -1, then its length), not
        a host-to-device copy per call on a GPU; only -1 and the latest length are kept (a runner serves many files)."""
        known = self._lengths.get(length)
        if known is None:  # kept: -1 and this one (any other negative length, also "unknown", is not kept)
            known = torch.tensor([length], dtype=torch.int64, device=self.device)
            kept = {key: value for key, value in self._lengths.items() if key == -1}
            kept[length] = known
            self._lengths = kept  # swapped whole: a call beside this one never looks up a half-built dict
        return known

    def select_rows(self, state: State, rows: list[int]) -> State:
        """The state of batch rows ``rows`` (the frame counter is shared: every row is at the same step)."""
        return [value if name == "frame" else value[rows] for name, value in zip(self.step.state_names, state)]

    def __call__(self, samples: torch.Tensor, length: int, state: State) -> tuple[torch.Tensor, State]:
        known = self.length_tensor(length)
        # Full float32 whatever the caller set: the DFT matmuls and running means lose 40+ dB in bf16/TF32.
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=False), full_precision_matmul():
            out, *state = self.guarded(samples.to(self.device), known, *state)
        # An ordinary tensor, not an inference-mode one (which refuses in-place updates outside inference mode):
        # the streamer may hand it to the caller as it is, without a joining copy.
        return (out.cpu() if out.device.type != "cpu" else out.clone()), state


class Streamer:
    """``feed(samples) -> enhanced samples available so far``, ``flush() -> the rest``, ``reset()``.

    ``samples`` is ``(channels, n)`` or ``(n,)`` at ``sample_rate`` (resampled to the model's rate and
    back with streaming resamplers, whose delay ``latency`` includes); channels run as a batch.
    ``dry_wet`` applies ``--atten-lim`` and ``--mix`` against the input, time-aligned.
    """

    def __init__(self, runner: FrameRunner, sample_rate: int | None = None, channels: int = 1,
                 dry_wet: DryWet = FULLY_WET) -> None:  # fmt: skip
        self.runner, self.layout = runner, runner.layout
        self.sample_rate = sample_rate or self.layout.sample_rate
        self.channels, self.dry_wet = channels, dry_wet
        model_rate = self.layout.sample_rate
        resampling = self.sample_rate != model_rate
        self.to_model = StreamingResampler(self.sample_rate, model_rate) if resampling else None
        self.from_model = StreamingResampler(model_rate, self.sample_rate) if resampling else None
        self.reset()

    @property
    def latency(self) -> int:
        """Worst-case delay in input samples: the model's algorithmic latency plus the resamplers'."""
        if self.to_model is None:
            return self.layout.latency
        model_rate = self.layout.sample_rate
        model_part = -(-(self.layout.latency + self.from_model.latency) * self.sample_rate // model_rate)
        return self.to_model.latency + model_part + 1

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency / self.sample_rate

    def reset(self) -> None:
        """Forget the signal so far: the next ``feed`` starts a new one."""
        self.state = self.runner.initial_state(self.channels)
        self.pending = torch.zeros(self.channels, self.layout.lead_in)  # not counted as input
        self.dry = torch.zeros(self.channels, 0)
        self.steps = 0
        self.model_input = 0  # samples fed to the model (its rate)
        self.model_output = 0  # offline-aligned samples it has returned
        self.input_length = 0
        self.flat = False
        for resampler in (self.to_model, self.from_model):
            if resampler is not None:
                resampler.reset()

    def split(self, rows: list[int]) -> "Streamer":
        """Hand channels ``rows`` to a new streamer that goes on exactly where this one is, and keep the rest.

        Why: files enhanced together run as rows of one batch (:func:`sectl.streaming.enhance_together`);
        when one ends, its rows are flushed on their own (the end needs that file's length) while the
        others go on. Rows never interact, so each comes out as it would alone."""
        chosen = set(rows)
        keep = [row for row in range(self.channels) if row not in chosen]
        state, pending, dry, to_model, from_model = self.state, self.pending, self.dry, self.to_model, self.from_model
        part = copy.copy(self)
        for streamer, selected in ((part, list(rows)), (self, keep)):
            streamer.channels = len(selected)
            streamer.state = self.runner.select_rows(state, selected)
            streamer.pending, streamer.dry = pending[selected], dry[selected]
            streamer.to_model = to_model.split(selected) if to_model is not None else None
            streamer.from_model = from_model.split(selected) if from_model is not None else None
        return part

    def _as_channels(self, samples: torch.Tensor) -> torch.Tensor:
        x = samples if samples.dim() == 2 else samples.unsqueeze(0)
        if x.shape[0] != self.channels:
            raise ValueError(f"expected {self.channels} channel(s), got {x.shape[0]}")
        return x.float()

    def _call_sizes(self, hops: int) -> list[int]:
        """How ``hops`` waiting hops go to the runner: as few calls as it takes (one hop each for a runner that
        takes one), none holding both warm-up hops and later ones, none over :data:`MAX_HOPS_PER_CALL`."""
        sizes, done = [], self.steps
        while hops > 0:
            most = MAX_HOPS_PER_CALL if self.runner.multi_hop else 1
            if done < self.layout.warmup:
                most = min(most, self.layout.warmup - done)
            sizes.append(min(most, hops))
            hops -= sizes[-1]
            done += sizes[-1]
        return sizes

    def _run_hops(self, samples: torch.Tensor, length: int = -1) -> torch.Tensor:
        """Whole hops ``(channels, k * hop)`` through the runner, in :meth:`_call_sizes` calls."""
        hop, outs, start = self.layout.hop, [], 0
        for size in self._call_sizes(samples.shape[-1] // hop):
            out, self.state = self.runner(samples[:, start : start + size * hop], length, self.state)
            outs.append(out)
            self.steps += size
            start += size * hop
        return _joined(outs) if outs else torch.zeros(self.channels, 0)

    def _run_model(self, x: torch.Tensor) -> torch.Tensor:
        """Whole hops of ``pending + x`` through the model; the offline-aligned output they complete."""
        hop = self.layout.hop
        self.pending = _joined([self.pending, x])
        self.model_input += x.shape[-1]
        whole = self.pending.shape[-1] // hop * hop
        y = self._run_hops(self.pending[:, :whole])
        self.pending = _kept(self.pending[:, whole:])
        return self._aligned(y)

    def _aligned(self, y: torch.Tensor, limit: int | None = None) -> torch.Tensor:
        """Drops the preroll from the newest step outputs ``y`` (and anything past ``limit`` samples in all)."""
        produced_before = self.steps * self.layout.hop - y.shape[-1]
        skip = max(0, self.layout.preroll - produced_before)
        y = y[:, skip:]
        if limit is not None:
            y = y[:, : max(0, limit - self.model_output)]
        self.model_output += y.shape[-1]
        return y

    def _mix(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.dry = _joined([self.dry, x])
        noisy, self.dry = self.dry[:, : y.shape[-1]], _kept(self.dry[:, y.shape[-1] :])
        return self.dry_wet.apply(y, noisy)

    def feed(self, samples: torch.Tensor) -> torch.Tensor:
        """Enhanced samples that ``samples`` (any length, even 0 or 1) completes; shape ``(channels, m)``."""
        x = self._as_channels(samples)
        self.flat = samples.dim() == 1  # flush answers in the same shape
        self.input_length += x.shape[-1]
        model_in = self.to_model.feed(x) if self.to_model is not None else x
        y = self._run_model(model_in)
        if self.from_model is not None:
            y = self.from_model.feed(y)
        y = self._mix(y, x)
        return y if samples.dim() == 2 else y[0]

    def _finish_model(self) -> torch.Tensor:
        """The steps after the input's end, which is now known: its last partial hop zero-padded, then
        zeros until the lookahead has passed."""
        total, hop = self.model_input, self.layout.hop
        count = max(0, self.layout.steps_for(total) - self.steps)
        samples = torch.nn.functional.pad(self.pending[:, : count * hop], (0, max(0, count * hop - self.pending.shape[-1])))
        self.pending = self.pending[:, count * hop :]
        return self._aligned(self._run_hops(samples, length=total), limit=total)

    def flush(self) -> torch.Tensor:
        """The rest of the enhanced signal, then :meth:`reset` (the output totals the input's length)."""
        if self.to_model is not None:
            tail = self._run_model(self.to_model.flush().reshape(self.channels, -1))
            y = torch.cat([tail, self._finish_model()], dim=-1)
            y = torch.cat([self.from_model.feed(y), self.from_model.flush().reshape(self.channels, -1)], dim=-1)
        else:
            y = self._finish_model()
        emitted = self.input_length - self.dry.shape[-1]
        y = torch.nn.functional.pad(y, (0, max(0, self.input_length - emitted - y.shape[-1])))
        y = self._mix(y[:, : self.input_length - emitted], torch.zeros(self.channels, 0))
        flat = self.flat
        self.reset()
        return y[0] if flat else y


def _joined(parts: list[torch.Tensor]) -> torch.Tensor:
    """``parts`` concatenated in time, without a copy where all but one are empty (the usual live case: a hop
    in, a hop out, nothing left over; each copy is a few microseconds of a 10 ms hop's budget)."""
    filled = [part for part in parts if part.shape[-1]]
    return filled[0] if len(filled) == 1 else torch.cat(parts, dim=-1)


def _kept(tail: torch.Tensor) -> torch.Tensor:
    """A buffer's tail that outlives the call, as its own copy: after :func:`_joined` it may be a view of the
    caller's samples, whose array an audio callback refills in place for the next block."""
    return tail.clone() if tail.shape[-1] else tail


def enhance_together(runner: FrameRunner, signals: Sequence[torch.Tensor], sample_rate: int | None = None,
                     dry_wet: DryWet = FULLY_WET) -> list[torch.Tensor]:  # fmt: skip
    """Several ``(channels, samples)`` signals at one rate through one stream, every channel a row of the
    same batch: each comes out as it would alone (rows never interact), in one runner call per block
    for all of them, which is what fills a GPU. The shortest ends first: its rows are split off and
    flushed with its own length (:meth:`Streamer.split`) while the rest go on. Fed :data:`FEED_FRAMES` at
    a time, so beside the signals and their outputs memory stays a few blocks."""
    order = sorted(range(len(signals)), key=lambda i: signals[i].shape[-1])
    streamer = Streamer(runner, sample_rate, sum(signals[i].shape[0] for i in order), dry_wet)
    outputs: dict[int, list[torch.Tensor]] = {i: [] for i in order}
    done = 0
    for position, ending in enumerate(order):
        active = order[position:]  # their rows, in this order, are the streamer's rows
        end = signals[ending].shape[-1]
        for start in range(done, end, FEED_FRAMES):
            stop = min(end, start + FEED_FRAMES)
            y = streamer.feed(torch.cat([signals[i][:, start:stop].float() for i in active]))
            for i, rows in zip(active, y.split([signals[i].shape[0] for i in active])):
                outputs[i].append(rows)
        done = max(done, end)
        last = position == len(order) - 1
        part = streamer if last else streamer.split(list(range(signals[ending].shape[0])))
        outputs[ending].append(part.flush())
    return [torch.cat(outputs[i], dim=-1) for i in range(len(signals))]


def frame_runner(model: object) -> FrameRunner:
    """The runner of a loaded PyTorch enhancer, or of an exported stream graph (its ``frame_runner``)."""
    if isinstance(model, torch.nn.Module):
        from sectl.streaming.steps import frame_step  # the steps import the models; streams of graphs need none

        return TorchFrames(frame_step(model))
    return model.frame_runner()


def streamer_for(model: object, sample_rate: int | None = None, channels: int = 1,
                 dry_wet: DryWet = FULLY_WET) -> Streamer:  # fmt: skip
    """A :class:`Streamer` over a loaded enhancer (refused, with the reason, if it cannot stream)."""
    return Streamer(frame_runner(model), sample_rate, channels, dry_wet)
