"""NISQA v2.0 (Mittag et al., Interspeech 2021): non-intrusive MOS and four quality dimensions (noisiness,
discontinuity, colouration, loudness), the Model-as-Loss paper's headline metric, computed by torchmetrics'
implementation (``torchmetrics.functional.audio.nisqa``) on the official ``nisqa.tar``.

The weights are CC BY-NC-SA 4.0, so sectl cannot ship them, and it downloads nothing for NISQA: the file is
looked up as :func:`sectl.modelfiles.find_weights` says (``--nisqa-model``, then ``$SECTL_NISQA_MODEL``, each
the file or its folder; then ``$SECTL_MODELS_DIR/nisqa/nisqa.tar``, sectl's cache, and torchmetrics' own
download place ``~/.torchmetrics/NISQA``) and handed to torchmetrics by pointing its ``NISQA_DIR`` at it.

The procedure is torchmetrics' (upstream's): a 48-band mel spectrogram (4096-point FFT, 20 ms windows hopped
by 10 ms, up to 20 kHz, in dB), cut into segments of 15 frames hopped by 4; a CNN, two self-attention layers
and five attention-pooling heads. NISQA reads each file at its own rate; sectl scores at 16 kHz like every
metric (on 16 kHz files the two are the same; above 8 kHz the mel bands are empty). NISQA has no value for
signals under 0.15 s (fewer than 15 frames) or over about 52 s (its 1,300 segments).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from sectl.errors import ModelError, first_line
from sectl.metrics.extras import require
from sectl.modelfiles import find_weights

RATE = 16000
FILE = "nisqa.tar"  # the name torchmetrics reads in NISQA_DIR
URL = "https://github.com/gabrielmittag/NISQA/raw/master/weights/nisqa.tar"
HOW_TO_PROVIDE = (
    f"download {URL} (CC BY-NC-SA 4.0: sectl cannot ship it) and put it at $SECTL_MODELS_DIR/nisqa/{FILE}, "
    "or name the file or its folder in SECTL_NISQA_MODEL (eval also takes --nisqa-model)"
)
NAMES = ("nisqa", "nisqa_noi", "nisqa_dis", "nisqa_col", "nisqa_loud")
"""The metrics, in the order of the model's outputs (overall MOS, noisiness, discontinuity, colouration, loudness)."""
DISTRIBUTION = "torchmetrics"

_explicit: str | None = None


def set_model(source: str | Path | None) -> None:
    """Use this file or folder (what ``--nisqa-model`` sets)."""
    global _explicit
    _explicit = None if source is None else str(source)


def model_path() -> Path:
    """The ``nisqa.tar`` that scores, or one error saying where to put it and where it comes from."""
    path = find_weights("NISQA", "nisqa", FILE, "SECTL_NISQA_MODEL", _explicit, HOW_TO_PROVIDE,
                        also=(Path("~/.torchmetrics/NISQA").expanduser(),))  # fmt: skip
    if path.name != FILE:
        raise ModelError(f"{path}: torchmetrics reads NISQA's weights from a file named {FILE}; rename it, or name its folder")
    return path


def _functional():
    """torchmetrics' NISQA module, pointed at the weights :func:`model_path` finds now, with their model loaded."""
    require("librosa", "nisqa", "librosa")  # torchmetrics computes NISQA's features with librosa
    module = require("torchmetrics.functional.audio.nisqa", "nisqa", DISTRIBUTION)
    path = model_path().absolute()
    if module.NISQA_DIR != str(path.parent):
        module.NISQA_DIR = str(path.parent)
        module._load_nisqa_model.cache_clear()  # torchmetrics caches the model of the folder it read last
    try:
        module._load_nisqa_model()  # loaded once: torchmetrics caches it
    except Exception as exc:  # noqa: BLE001 - torch.load and load_state_dict raise many types
        raise ModelError(f"{path}: not NISQA's weights ({first_line(exc, 200)}); {HOW_TO_PROVIDE}") from None
    return module


def prepare() -> None:
    """Find and load the weights now (a missing file is one error before any scoring, or before training)."""
    _functional()


def score_signal(est: np.ndarray) -> dict[str, float]:
    """NISQA's MOS and dimensions of a 16 kHz mono signal, by :data:`NAMES`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa: empty mel filters above 8 kHz, as upstream
        scores = _functional().non_intrusive_speech_quality_assessment(torch.as_tensor(np.asarray(est), dtype=torch.float32), RATE)
    return {name: float(value) for name, value in zip(NAMES, scores.tolist())}
