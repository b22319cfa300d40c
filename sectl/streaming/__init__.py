"""Real-time enhancement: frame steps with explicit state, a streamer over them, stateful export.

:func:`frame_step` gives a loaded enhancer's :class:`FrameStep` (:mod:`sectl.streaming.steps` says
which architectures stream and why the others do not); :class:`Streamer` runs one over live audio.
"""

from __future__ import annotations

from sectl.streaming.frames import FrameStep, StreamLayout
from sectl.streaming.resample import StreamingResampler
from sectl.streaming.steps import FRAME_STEPS, frame_step
from sectl.streaming.streamer import FrameRunner, Streamer, TorchFrames, enhance_together, frame_runner, streamer_for

__all__ = ["FRAME_STEPS", "FrameRunner", "FrameStep", "StreamLayout", "Streamer", "StreamingResampler",
           "TorchFrames", "enhance_together", "frame_runner", "frame_step", "streamer_for"]
