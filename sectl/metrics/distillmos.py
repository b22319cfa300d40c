"""DistillMOS (Stahl and Gamper, 2025, arXiv:2502.05356): a non-intrusive MOS predictor distilled from an XLS-R-based
speech quality model into a small convolutional transformer, through Microsoft's ``distillmos`` package (MIT),
whose wheel carries its weights (``distill_mos_v7.pt``), so it runs offline.

The package's own procedure, unchanged: 16 kHz input; signals shorter than 7.68 s are zero-padded to it,
longer ones cut into 7.68 s crops evenly spread with hops of at most 1 s; each crop is peak-normalised;
the score is the mean over crops, 1 + 4 x the network's output (1 to 5).
"""

from __future__ import annotations

import contextlib
import functools
import io

import numpy as np
import torch

from sectl.metrics.extras import require

DISTRIBUTION = "distillmos"


@functools.lru_cache(maxsize=1)
def model() -> torch.nn.Module:
    package = require("distillmos", "distillmos", DISTRIBUTION)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints where it loaded its weights from: stdout is --json's
        return package.ConvTransformerSQAModel().eval()


def prepare() -> None:
    """Load the package and its weights now (a missing package is one error before any scoring)."""
    model()


@torch.no_grad()
def distillmos(est: np.ndarray) -> float:
    """DistillMOS of a 16 kHz mono signal."""
    return float(model()(torch.as_tensor(np.asarray(est), dtype=torch.float32)[None]).item())
