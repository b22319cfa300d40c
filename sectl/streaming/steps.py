"""Which architectures stream, and their frame steps: the registry :func:`frame_step` reads."""

from __future__ import annotations

from torch import nn

from sectl.errors import ModelError
from sectl.models import GTCRN, DeepFilterNet3, Demucs, MaskNet, NSNet2
from sectl.streaming.deepfilternet3 import DeepFilterNet3Step
from sectl.streaming.demucs import DemucsStep
from sectl.streaming.frames import FrameStep
from sectl.streaming.gtcrn import GTCRNStep
from sectl.streaming.masknet import MaskNetStep
from sectl.streaming.nsnet2 import NSNet2Step

FRAME_STEPS: dict[type, type[FrameStep]] = {
    DeepFilterNet3: DeepFilterNet3Step, NSNet2: NSNet2Step, GTCRN: GTCRNStep, MaskNet: MaskNetStep, Demucs: DemucsStep,
}
"""Every architecture streams; a step refuses a configuration it cannot stream (MaskNet and Demucs:
non-causal, or normalised by the whole signal's level), naming it and the setting that would."""


def frame_step(model: nn.Module) -> FrameStep:
    """The frame step of a loaded (pretrained, trained or fine-tuned) enhancer, in eval mode (a training loop's
    validation restores its own mode afterwards)."""
    kind = type(model)
    if kind in FRAME_STEPS:
        return FRAME_STEPS[kind](model.eval())
    raise ModelError(f"{getattr(model, 'name', kind.__name__)} cannot stream: no frame step is implemented for it")
