"""ViSQOL v3 in speech mode (Chinen et al., QoMEX 2020): the intrusive metric of the codec papers, through
``visqol-python``, a port of Google's C++ ViSQOL v3.3.3 whose wheel carries both of its model files.

Speech mode as the C++ binary runs it with ``--use_speech_mode`` and its defaults: 16 kHz input, a 21-band
gammatone spectrogram (50 Hz to 8 kHz), patches of 20 frames placed by voice activity on the reference,
global then per-patch alignment of the degraded signal, NSIM per patch, and the deep-lattice network that maps
similarity to MOS-LQO (``--use_lattice_model``, the C++ default since v3.2; it runs on ``ai-edge-litert``).
The older exponential mapping is not used. Scores range from 1 to about 4.5 (a signal against itself).

On the reference implementation's own speech example (``testdata/clean_speech/CA01_01.wav`` against its
transcoded copy, 48 kHz files scored as they are), the package gives 3.3153 where the C++ conformance value
is 3.3129 (3.3756 vs 3.3745 with the exponential mapping, 4.50554 vs 4.50555 for the file against itself);
``tests/metrics/test_visqol.py`` checks it. sectl scores at 16 kHz, as speech mode is defined (same file
pair resampled by sectl: 3.3059).

The package sets ``NUMBA_THREADING_LAYER=workqueue`` on import where it is unset (its kernels are numba's).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator

import numpy as np

from sectl.errors import UsageError, first_line
from sectl.metrics.extras import INSTALL, require

RATE = 16000
DISTRIBUTION = "visqol-python"


@functools.lru_cache(maxsize=1)
def _api():
    visqol = require("visqol", "visqol", DISTRIBUTION)
    api = visqol.VisqolApi()
    try:
        with _native_stderr_silenced():  # LiteRT's C++ logs "INFO: Created TensorFlow Lite XNNPACK delegate" there
            api.create(mode="speech", use_lattice_model=True)
    except ImportError as exc:  # the lattice mapper's runtime (ai-edge-litert) is missing
        raise UsageError(f"-m visqol needs ai-edge-litert for ViSQOL's lattice mapper ({first_line(exc)}): {INSTALL}") from None
    return api


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for a block (what native code prints there; Python's errors still raise)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def prepare() -> None:
    """Load the package and its mapper now (a missing one is one error before any scoring)."""
    _api()


def visqol(est: np.ndarray, *, ref: np.ndarray) -> float:
    """ViSQOL speech-mode MOS-LQO of ``est`` against ``ref`` (16 kHz mono, same length)."""
    try:
        result = _api().measure_from_arrays(np.asarray(ref, dtype=np.float64), np.asarray(est, dtype=np.float64), sample_rate=RATE)
    except IndexError:  # the package indexes the first reference patch without checking that one exists
        raise ValueError("no speech found in the reference (ViSQOL's voice activity detection made no patch)") from None
    return float(result.moslqo)
