from __future__ import annotations

import numpy as np
import pytest

from sectl.metrics import intrusive, score_signals


def test_identical_signals_score_perfectly(clean_speech):
    x = clean_speech
    assert intrusive.pesq_wb(x, x) == pytest.approx(4.64, abs=0.01)
    assert intrusive.stoi(x, x) == pytest.approx(1.0, abs=1e-6)
    assert intrusive.estoi(x, x) == pytest.approx(1.0, abs=1e-6)
    assert intrusive.lsd(x, x) == pytest.approx(0.0, abs=1e-9)
    assert intrusive.mcd(x, x) == pytest.approx(0.0, abs=1e-9)
    assert intrusive.si_sdr(x, x) > 80


def test_si_sdr_is_scale_invariant(clean_speech):
    rng = np.random.default_rng(0)
    noisy = clean_speech + 0.01 * rng.standard_normal(len(clean_speech))
    base = intrusive.si_sdr(clean_speech, noisy)
    assert intrusive.si_sdr(clean_speech, 0.3 * noisy) == pytest.approx(base, abs=1e-6)
    assert intrusive.si_sdr(clean_speech, 5.0 * noisy) == pytest.approx(base, abs=1e-6)
    assert 10 < base < 40


def test_delayed_copy_is_penalised_by_sample_metrics(clean_speech):
    x = clean_speech
    delayed = np.concatenate([np.zeros(160), x[:-160]])  # 10 ms late
    assert intrusive.si_sdr(x, delayed) < 5  # sample-exact metric collapses
    assert intrusive.lsd(x, delayed) > 1
    assert intrusive.pesq_wb(x, delayed) > 3.5  # PESQ compensates delays


def test_noise_lowers_every_metric(clean_speech):
    rng = np.random.default_rng(1)
    noisy = clean_speech + 0.05 * rng.standard_normal(len(clean_speech))
    assert intrusive.pesq_wb(clean_speech, noisy) < 2.5
    assert intrusive.estoi(clean_speech, noisy) < 0.9
    assert intrusive.mcd(clean_speech, noisy) > 1
    assert 1.0 < intrusive.pesq_nb(clean_speech, noisy) < 4.6


def test_failing_metric_is_missing_not_a_crash():
    silence = np.zeros(16000)
    scores, failures = score_signals(silence, silence, ["pesq_wb", "lsd"])
    assert scores["pesq_wb"] is None and "pesq_wb" in failures
    assert scores["lsd"] == pytest.approx(0.0)


def test_intrusive_metric_without_reference_is_missing():
    scores, failures = score_signals(None, np.ones(100), ["si_sdr"])
    assert scores == {"si_sdr": None} and "reference" in failures["si_sdr"]
