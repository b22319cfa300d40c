"""UTMOS (Saeki et al., 2022; the UTokyo-SaruLab system of the VoiceMOS Challenge 2022), the speech-VAE and
TTS literature's non-intrusive MOS, through ``utmos-pytorch``: a fairseq-free port (MIT) of the official
UTMOS22 strong learner (wav2vec 2.0 base, domain and listener embeddings, a BLSTM and a projection), whose
author checked it against the original and converted its weights (``utmos_state_dict.pt``). The original
needs fairseq, which no longer installs beside a current torch.

The weights are a download that sectl does not make: the file is looked up as
:func:`sectl.modelfiles.find_weights` says (``--utmos-model``, then ``$SECTL_UTMOS_MODEL``, each the file or
its folder; then ``$SECTL_MODELS_DIR/utmos/utmos_state_dict.pt`` and sectl's cache). Scoring is the
package's: batch size 1 (padding shifts scores), domain 0 and the mean listener (id 288), frame scores
averaged, ``2 x + 3``.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import torch

from sectl.errors import ModelError, first_line
from sectl.metrics.extras import require
from sectl.modelfiles import find_weights

FILE = "utmos_state_dict.pt"
URL = "https://huggingface.co/Blinorot/UTMOS-PyTorch/resolve/main/utmos_state_dict.pt"
HOW_TO_PROVIDE = (
    f"download {URL} and put it at $SECTL_MODELS_DIR/utmos/{FILE}, or name the file or its folder in "
    "SECTL_UTMOS_MODEL (eval also takes --utmos-model)"
)
DISTRIBUTION = "utmos-pytorch"

_explicit: str | None = None


def set_model(source: str | Path | None) -> None:
    """Use this file or folder (what ``--utmos-model`` sets)."""
    global _explicit
    _explicit = None if source is None else str(source)


def model_path() -> Path:
    """The weights file that scores, or one error saying where to put it and where it comes from."""
    return find_weights("UTMOS", "utmos", FILE, "SECTL_UTMOS_MODEL", _explicit, HOW_TO_PROVIDE)


def model() -> torch.nn.Module:
    """The scorer of the weights :func:`model_path` finds now (loaded once per file)."""
    package = require("utmos_pytorch", "utmos", DISTRIBUTION)
    return _load(model_path().absolute(), package)


@functools.lru_cache(maxsize=1)
def _load(path: Path, package) -> torch.nn.Module:
    _check_weights(path, package)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the port's wav2vec 2.0 uses torch's older weight_norm
        return package.UTMOSScoreTorch(ckpt_path=str(path), device="cpu")


def _check_weights(path: Path, package) -> None:
    """The package loads with ``strict=False``: a file missing any of the model's weights would score with random
    ones, silently. Refuse it (names beyond the model's are allowed, as the package allows them)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001 - torch.load raises many types on a damaged or foreign file
        raise ModelError(f"{path}: not a readable UTMOS weights file ({first_line(exc, 200)}); {HOW_TO_PROVIDE}") from None
    with torch.device("meta"), warnings.catch_warnings():  # the names only: no memory, no initialisation
        warnings.simplefilter("ignore", FutureWarning)
        expected = package.utmos_torch.UTMOSModel().state_dict().keys()
    missing = [key for key in expected if not isinstance(state, dict) or key not in state]
    if missing:
        raise ModelError(f"{path}: not UTMOS weights ({len(missing)} of the model's {len(expected)} tensors missing, "
                         f"e.g. {missing[0]}); {HOW_TO_PROVIDE}")  # fmt: skip


def prepare() -> None:
    """Find and load the weights now (a missing file is one error before any scoring, or before training)."""
    model()


@torch.no_grad()
def utmos(est: np.ndarray) -> float:
    """UTMOS of a 16 kHz mono signal."""
    return float(model().score(torch.as_tensor(np.asarray(est), dtype=torch.float32))[0])
