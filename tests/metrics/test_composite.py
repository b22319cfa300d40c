"""Composite measures (CSIG, CBAK, COVL, segSNR): formulas, ranges, and a cross-check against pysepm-evo."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import soundfile as sf

from sectl.metrics import composite as C
from sectl.metrics import score_signals
from sectl.metrics.intrusive import pesq_wb


@pytest.fixture(scope="module")
def pair(vctk):
    clean, _ = sf.read(vctk / "clean" / "p287_001.wav")
    noisy, _ = sf.read(vctk / "noisy" / "p287_001.wav")
    return noisy, clean


@pytest.fixture(scope="module")
def pysepm():
    """pysepm-evo (a test extra). Its package imports two things it does not provide: scipy.signal.kaiser
    (moved to scipy.signal.windows in scipy 1.13) and srmrpy (only its reverberation measures use it)."""
    import scipy.signal
    import scipy.signal.windows

    scipy.signal.kaiser = getattr(scipy.signal, "kaiser", scipy.signal.windows.kaiser)
    sys.modules.setdefault("srmrpy", types.ModuleType("srmrpy"))
    return pytest.importorskip("pysepm_evo", reason="the test extra pysepm-evo is not installed (pip install -e '.[test]')")


def test_components_match_the_independent_implementation(pair, pysepm):
    noisy, clean = pair
    assert C.segmental_snr(noisy, ref=clean) == pytest.approx(pysepm.SNRseg(clean, noisy, 16000), abs=1e-9)
    assert C.log_likelihood_ratio(noisy, ref=clean) == pytest.approx(pysepm.llr(clean, noisy, 16000, used_for_composite=True), abs=1e-8)
    assert C.weighted_spectral_slope(noisy, ref=clean) == pytest.approx(pysepm.wss(clean, noisy, 16000), abs=1e-8)


def test_composite_is_the_published_regression_of_its_components(pair):
    noisy, clean = pair
    scores = C.composite(noisy, ref=clean)
    pesq, llr = pesq_wb(noisy, ref=clean), C.log_likelihood_ratio(noisy, ref=clean)
    wss, seg = C.weighted_spectral_slope(noisy, ref=clean), C.segmental_snr(noisy, ref=clean)
    assert scores["csig"] == pytest.approx(np.clip(3.093 - 1.029 * llr + 0.603 * pesq - 0.009 * wss, 1, 5))
    assert scores["cbak"] == pytest.approx(np.clip(1.634 + 0.478 * pesq - 0.007 * wss + 0.063 * seg, 1, 5))
    assert scores["covl"] == pytest.approx(np.clip(1.594 + 0.805 * pesq - 0.512 * llr - 0.007 * wss, 1, 5))


def test_identical_signals_score_at_the_top_and_noise_lowers_every_measure(pair):
    noisy, clean = pair
    perfect = C.composite(clean, ref=clean)
    assert perfect["segsnr"] == pytest.approx(35.0) and perfect["csig"] > 4.5 and perfect["covl"] > 4.5
    degraded = C.composite(noisy, ref=clean)
    assert all(degraded[k] < perfect[k] for k in ("csig", "cbak", "covl", "segsnr"))


def test_the_composite_group_is_computed_once_and_needs_a_reference(pair):
    noisy, clean = pair
    scores, failures = score_signals(noisy, ["csig", "cbak", "covl", "segsnr"], ref=clean)
    assert not failures and scores == pytest.approx(C.composite(noisy, ref=clean))
    scores, failures = score_signals(noisy, ["csig"])
    assert scores["csig"] is None and "reference" in failures["csig"]
