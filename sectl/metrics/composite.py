"""Composite measures (Hu and Loizou, 2008): CSIG, CBAK, COVL, and segmental SNR.

Hu and Loizou regressed listener ratings of enhanced speech (signal distortion, background
intrusiveness, overall quality) on objective measures; enhancement papers report the three
predictors beside PESQ. Definitions, as in Loizou's ``composite.m`` (30 ms Hann frames, 75 %
overlap, at 16 kHz):

* segSNR: per-frame SNR of the reference against the difference, clipped to [-10, 35] dB, averaged
  (the last frame dropped);
* LLR: log-likelihood ratio of order-16 LPC models (``log(a_e R_r a_e' / a_r R_r a_r')``), mean of the
  lowest 95 % of frames, not clipped per frame (the standalone LLR measure clips at 2; the composite
  does not);
* WSS: Klatt's weighted spectral slope over 25 critical bands (Kmax 20, Klocmax 1), mean of the lowest
  95 % of frames;
* ``CSIG = 3.093 - 1.029 LLR + 0.603 PESQ - 0.009 WSS``,
  ``CBAK = 1.634 + 0.478 PESQ - 0.007 WSS + 0.063 segSNR``,
  ``COVL = 1.594 + 0.805 PESQ - 0.512 LLR - 0.007 WSS``, each clipped to [1, 5].

PESQ here is the wide-band MOS-LQO (P.862.2), as ``composite.m`` uses at 16 kHz and as the
VoiceBank-DEMAND literature reports. ``tests/metrics/test_composite.py`` cross-checks segSNR, LLR and
WSS against the independent ``pysepm-evo`` implementation (a test extra).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_toeplitz, toeplitz

from sectl.metrics.intrusive import METRIC_RATE, pesq_wb

FRAME_S = 0.03
LPC_ORDER = 16
KEEP = 0.95  # LLR and WSS average the best 95 % of frames
# Klatt's 25 critical bands: centre frequencies and bandwidths (Hz), and the WSS weighting constants.
CENTRES = np.array([50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372, 703.378, 798.717, 904.128,
                    1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08, 2446.71, 2701.97,
                    2978.04, 3276.17, 3597.63])  # fmt: skip
BANDWIDTHS = np.array([70.0] * 7 + [77.3724, 86.0056, 95.3398, 105.411, 116.256, 127.914, 140.423, 153.823, 168.154,
                                    183.457, 199.776, 217.153, 235.631, 255.255, 276.072, 298.126, 321.465, 346.136])  # fmt: skip
K_MAX, K_LOC_MAX = 20.0, 1.0
EPS = np.finfo(np.float64).eps


def _window(length: int) -> np.ndarray:
    """MATLAB's ``hanning`` (no zero end points)."""
    return 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, length + 1) / (length + 1)))


def _frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    count = (len(x) - (length - hop)) // hop
    index = np.arange(length)[None, :] + hop * np.arange(count)[:, None]
    return x[index] * _window(length)


def _geometry(rate: int) -> tuple[int, int]:
    length = round(FRAME_S * rate)
    return length, int(np.floor(0.25 * length))


def segmental_snr(est: np.ndarray, *, ref: np.ndarray, rate: int = METRIC_RATE) -> float:
    length, hop = _geometry(rate)
    clean, noise = _frames(ref, length, hop), _frames(ref, length, hop) - _frames(est, length, hop)
    snr = 10 * np.log10((clean**2).sum(-1) / ((noise**2).sum(-1) + EPS) + EPS)
    return float(np.clip(snr, -10, 35)[:-1].mean())


def _lpc(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prediction polynomial ``[1, -a_1 .. -a_P]`` and autocorrelation lags 0..P."""
    lags = np.array([frame[: len(frame) - k] @ frame[k:] for k in range(LPC_ORDER + 1)])
    return np.concatenate([[1.0], -solve_toeplitz(lags[:LPC_ORDER], lags[1:])]), lags


def _best_frames_mean(values: np.ndarray) -> float:
    return float(np.sort(values)[: int(round(len(values) * KEEP))].mean())


def log_likelihood_ratio(est: np.ndarray, *, ref: np.ndarray, rate: int = METRIC_RATE) -> float:
    length, hop = _geometry(rate)
    clean, processed = _frames(ref + EPS, length, hop), _frames(est + EPS, length, hop)
    ratios = []
    for c, p in zip(clean[:-1], processed[:-1]):
        a_clean, lags = _lpc(c)
        a_processed, _ = _lpc(p)
        matrix = toeplitz(lags)
        ratios.append((a_processed @ matrix @ a_processed) / (a_clean @ matrix @ a_clean))
    ratios = np.array(ratios)
    ratios[~np.isfinite(ratios)] = np.inf
    ratios[ratios <= 0] = 1000.0
    return _best_frames_mean(np.log(ratios))


def _band_log_energies(x: np.ndarray, rate: int) -> np.ndarray:
    """(bands, frames) critical-band energies in dB (floored at -100) of Hann frames."""
    length, hop = _geometry(rate)
    n_fft = int(2 ** np.ceil(np.log2(2 * length)))
    count = int(len(x) / hop - length / hop)
    frames = x[np.arange(length)[None, :] + hop * np.arange(count)[:, None]] * _window(length)
    power = np.abs(np.fft.rfft(frames, n_fft))[:, :-1] ** 2  # (frames, n_fft / 2)
    bins = np.arange(n_fft // 2)
    centre = np.floor(CENTRES / (rate / 2) * (n_fft // 2))
    width = BANDWIDTHS / (rate / 2) * (n_fft // 2)
    filters = np.exp(-11 * ((bins[None, :] - centre[:, None]) / width[:, None]) ** 2 + np.log(BANDWIDTHS[0] / BANDWIDTHS)[:, None])
    filters *= filters > np.exp(-30.0 / (2.0 * 2.303))  # the -30 dB point of each filter
    return np.maximum(10 * np.log10(filters @ power.T), -100.0)


def _nearest_peaks(slope: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """For each band, the energy of the spectral peak it climbs to (positive slope) or descends from."""
    bands = len(energy)
    peaks = np.empty(len(slope))
    for i in range(len(slope)):
        n = i
        if slope[i] > 0:
            while n < bands - 1 and slope[n] > 0:
                n += 1
            peaks[i] = energy[n - 1]
        else:
            while n >= 0 and slope[n] <= 0:
                n -= 1
            peaks[i] = energy[n + 1]
    return peaks


def weighted_spectral_slope(est: np.ndarray, *, ref: np.ndarray, rate: int = METRIC_RATE) -> float:
    clean = _band_log_energies(ref.astype(np.float64) + EPS, rate)
    processed = _band_log_energies(est.astype(np.float64) + EPS, rate)
    slopes = [np.diff(e, axis=0) for e in (clean, processed)]
    weights = []
    for energy, slope in zip((clean, processed), slopes):
        peaks = np.stack([_nearest_peaks(slope[:, t], energy[:, t]) for t in range(energy.shape[1])], axis=1)
        w_max = K_MAX / (K_MAX + energy.max(axis=0) - energy[:-1])
        weights.append(w_max * K_LOC_MAX / (K_LOC_MAX + peaks - energy[:-1]))
    weight = (weights[0] + weights[1]) / 2
    distortion = (weight * (slopes[0] - slopes[1]) ** 2).sum(axis=0) / weight.sum(axis=0)
    return _best_frames_mean(distortion)


def composite(est: np.ndarray, *, ref: np.ndarray) -> dict[str, float]:
    """CSIG, CBAK, COVL and segSNR of a 16 kHz estimate against its reference."""
    pesq = pesq_wb(est, ref=ref)
    llr = log_likelihood_ratio(est, ref=ref)
    wss = weighted_spectral_slope(est, ref=ref)
    seg = segmental_snr(est, ref=ref)
    clip = lambda v: float(np.clip(v, 1.0, 5.0))  # noqa: E731
    return {
        "csig": clip(3.093 - 1.029 * llr + 0.603 * pesq - 0.009 * wss),
        "cbak": clip(1.634 + 0.478 * pesq - 0.007 * wss + 0.063 * seg),
        "covl": clip(1.594 + 0.805 * pesq - 0.512 * llr - 0.007 * wss),
        "segsnr": seg,
    }
