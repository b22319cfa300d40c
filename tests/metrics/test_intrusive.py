from __future__ import annotations

import numpy as np
import pytest

from sectl.metrics import intrusive, score_signals


def test_identical_signals_score_perfectly(clean_speech):
    x = clean_speech
    assert intrusive.pesq_wb(x, ref=x) == pytest.approx(4.64, abs=0.01)
    assert intrusive.stoi(x, ref=x) == pytest.approx(1.0, abs=1e-6)
    assert intrusive.estoi(x, ref=x) == pytest.approx(1.0, abs=1e-6)
    assert intrusive.lsd(x, ref=x) == pytest.approx(0.0, abs=1e-9)
    assert intrusive.mcd(x, ref=x) == pytest.approx(0.0, abs=1e-9)
    assert intrusive.si_sdr(x, ref=x) > 80


def test_si_sdr_is_scale_invariant(clean_speech):
    rng = np.random.default_rng(0)
    noisy = clean_speech + 0.01 * rng.standard_normal(len(clean_speech))
    base = intrusive.si_sdr(noisy, ref=clean_speech)
    assert intrusive.si_sdr(0.3 * noisy, ref=clean_speech) == pytest.approx(base, abs=1e-6)
    assert intrusive.si_sdr(5.0 * noisy, ref=clean_speech) == pytest.approx(base, abs=1e-6)
    assert 10 < base < 40


def test_delayed_copy_is_penalised_by_sample_metrics(clean_speech):
    x = clean_speech
    delayed = np.concatenate([np.zeros(160), x[:-160]])  # 10 ms late
    assert intrusive.si_sdr(delayed, ref=x) < 5  # sample-exact metric collapses
    assert intrusive.lsd(delayed, ref=x) > 1
    assert intrusive.pesq_wb(delayed, ref=x) > 3.5  # PESQ compensates delays


def test_noise_lowers_every_metric(clean_speech):
    rng = np.random.default_rng(1)
    noisy = clean_speech + 0.05 * rng.standard_normal(len(clean_speech))
    assert intrusive.pesq_wb(noisy, ref=clean_speech) < 2.5
    assert intrusive.estoi(noisy, ref=clean_speech) < 0.9
    assert intrusive.mcd(noisy, ref=clean_speech) > 1
    assert 1.0 < intrusive.pesq_nb(noisy, ref=clean_speech) < 4.6


def test_failing_metric_is_missing_not_a_crash(clean_speech, monkeypatch):
    from dataclasses import replace

    from sectl.metrics.registry import METRICS

    def no_utterance(est, *, ref):
        raise RuntimeError("No utterances detected")  # what PESQ raises on some inputs

    monkeypatch.setitem(METRICS, "pesq_wb", replace(METRICS["pesq_wb"], compute=no_utterance))
    scores, failures = score_signals(0.5 * clean_speech, ["pesq_wb", "lsd"], ref=clean_speech)
    assert scores["pesq_wb"] is None and failures["pesq_wb"] == "RuntimeError: No utterances detected"
    assert scores["lsd"] is not None


@pytest.mark.parametrize("est_is_silent", [True, False])
def test_no_metric_is_defined_on_silence(clean_speech, est_is_silent):
    """An all-zero estimate used to score SI-SDR 0 dB (and a better DNSMOS than the noisy input): silence
    must never beat real output, so every metric is missing with the reason."""
    silence = np.zeros_like(clean_speech)
    est, ref = (silence, clean_speech) if est_is_silent else (clean_speech, silence)
    names = ["pesq_wb", "stoi", "si_sdr", "lsd", "mcd", "mel_distance", "segsnr"]
    scores, failures = score_signals(est, names, ref=ref)
    assert all(scores[n] is None for n in names)
    side = "estimate" if est_is_silent else "reference"
    assert all(failures[n] == f"undefined: the {side} is silent" for n in names)


def test_too_short_signals_have_no_score(clean_speech):
    for samples, missing in ((1, {"si_sdr", "lsd", "pesq_wb", "stoi"}), (1600, {"pesq_wb", "stoi"})):
        est = clean_speech[:samples]
        scores, failures = score_signals(est, ["si_sdr", "lsd", "pesq_wb", "stoi"], ref=est)
        assert {n for n, v in scores.items() if v is None} == missing
        assert all("needs at least" in failures[n] for n in missing)


def test_intrusive_metric_without_reference_is_missing():
    scores, failures = score_signals(np.ones(100), ["si_sdr"])
    assert scores == {"si_sdr": None} and "reference" in failures["si_sdr"]


ASYMMETRIC = ["pesq_wb", "pesq_nb", "stoi", "estoi", "mcd"]
# SI-SDR is symmetric: with the means removed it equals 10 log10(rho^2 / (1 - rho^2)) of the correlation rho.


@pytest.mark.parametrize("name", [n for n, m in __import__("sectl.metrics", fromlist=["METRICS"]).METRICS.items() if m.intrusive])
def test_a_swapped_positional_call_is_an_error_not_a_number(name, clean_speech):
    from sectl.metrics import METRICS

    with pytest.raises(TypeError):
        METRICS[name].compute(clean_speech, clean_speech)  # the reference must be passed by keyword


@pytest.mark.parametrize("name", ASYMMETRIC)
def test_asymmetric_metrics_really_depend_on_which_signal_is_the_reference(name, clean_speech):
    from sectl.metrics import METRICS

    rng = np.random.default_rng(2)
    degraded = 0.5 * clean_speech + 0.05 * rng.standard_normal(len(clean_speech))
    right = METRICS[name].compute(degraded, ref=clean_speech)
    swapped = METRICS[name].compute(clean_speech, ref=degraded)
    assert abs(right - swapped) > 1e-3  # so the keyword-only reference is what protects the caller


def test_the_si_sdr_loss_and_metric_are_one_implementation(clean_speech):
    import torch

    from sectl.losses.waveform import NegSISDRLoss

    rng = np.random.default_rng(3)
    noisy = clean_speech + 0.02 * rng.standard_normal(len(clean_speech))
    loss = NegSISDRLoss()(torch.from_numpy(noisy)[None], torch.from_numpy(clean_speech)[None])
    assert float(loss) == pytest.approx(-intrusive.si_sdr(noisy, ref=clean_speech), abs=1e-9)


def test_si_sdr_equals_its_correlation_form(clean_speech):
    rng = np.random.default_rng(4)
    degraded = 0.5 * clean_speech + 0.05 * rng.standard_normal(len(clean_speech))
    rho = np.corrcoef(degraded, clean_speech)[0, 1]
    assert intrusive.si_sdr(degraded, ref=clean_speech) == pytest.approx(10 * np.log10(rho**2 / (1 - rho**2)), abs=1e-6)
