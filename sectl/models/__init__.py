"""Assembled networks: enhancers (encode/decode stages), SSL teachers, checkpoints."""

from __future__ import annotations

from sectl.errors import ConfigError
from sectl.models.base import Enhancer
from sectl.models.enhancers.deepfilternet3 import DFN3_SIZES, DeepFilterNet3
from sectl.models.enhancers.demucs import SIZES, Demucs
from sectl.models.enhancers.gtcrn import GTCRN_SIZES, GTCRN
from sectl.models.enhancers.masknet import MASKNET_SIZES, MaskNet
from sectl.models.enhancers.nsnet2 import NSNET2_SIZES, NSNet2
from sectl.models.codec.vae import VAE_SIZES, SpeechVAE

ARCHITECTURES = {"demucs": Demucs, "masknet": MaskNet, "deepfilternet3": DeepFilterNet3, "nsnet2": NSNet2, "gtcrn": GTCRN}
ARCHITECTURE_SIZES = {"demucs": SIZES, "masknet": MASKNET_SIZES, "deepfilternet3": DFN3_SIZES, "nsnet2": NSNET2_SIZES,
                      "gtcrn": GTCRN_SIZES}


def build_enhancer(name: str = "demucs", size: str | None = "small", **overrides) -> Enhancer:
    """Build an enhancer from an architecture name, a size preset and constructor overrides."""
    if name not in ARCHITECTURES:
        raise ConfigError(f"model.name: unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    args = {}
    sizes = ARCHITECTURE_SIZES[name]
    if size is not None:
        if size not in sizes:
            raise ConfigError(f"model.size: unknown size {size!r}; known: {', '.join(sizes)}")
        args.update(sizes[size])
    args.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ARCHITECTURES[name](**args)
    except TypeError as exc:  # an argument this architecture does not take
        raise ConfigError(f"model: {name} does not accept these settings ({exc})") from None


CODECS = {"speech_vae": SpeechVAE}
CODEC_SIZES = {"speech_vae": VAE_SIZES}
MODEL_CLASSES = {**ARCHITECTURES, **CODECS}
"""Every class a checkpoint can name: enhancers and codecs."""


def build_codec(name: str = "speech_vae", size: str | None = "small", **overrides):
    """Build a codec (speech VAE) from a name, a size preset and constructor overrides."""
    if name not in CODECS:
        raise ConfigError(f"model.name: {name!r} is not a codec; known: {', '.join(CODECS)}")
    sizes = CODEC_SIZES[name]
    if size is not None and size not in sizes:
        raise ConfigError(f"model.size: unknown size {size!r}; known: {', '.join(sizes)}")
    return CODECS[name](**(sizes[size] if size else {}), **{k: v for k, v in overrides.items() if v is not None})


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["ARCHITECTURES", "CODECS", "DeepFilterNet3", "Demucs", "Enhancer", "GTCRN", "MaskNet", "NSNet2", "SpeechVAE",
           "build_codec", "build_enhancer", "count_parameters"]
