"""Intrusive metrics: an estimate scored against its clean reference.

All functions take 1-D float arrays at :data:`METRIC_RATE` (16 kHz) of equal length, the estimate
first and the reference by keyword (``fn(est, ref=ref)``), the order of every loss and of
:func:`sectl.metrics.evaluate`: most of these metrics are asymmetric, and a keyword-only reference makes
a swapped call an error instead of a wrong number. :mod:`sectl.metrics.evaluation` resamples and trims
before calling.

Choices (documented here because papers rarely state them):

* PESQ-NB resamples to 8 kHz; PESQ-WB and STOI/ESTOI run at 16 kHz.
* SI-SDR removes the mean of both signals first (Le Roux et al., 2019).
* LSD uses a 512-point Hann STFT (32 ms) with hop 128 on power spectra floored at 1e-10, and averages
  ``sqrt(mean_f (10 log10 P - 10 log10 P_hat)^2)`` over frames.
* MCD uses cepstra c1..c24 (c0, the energy, is excluded) of an 80-band mel spectrum (25 ms Hann
  window, 10 ms hop), in natural-log amplitude units so that ``(10 / ln 10) * sqrt(2 * sum dc^2)`` is
  in dB; mel power is floored 80 dB below the reference's peak (digital silence would otherwise
  dominate); frames are compared at the same time index (no DTW: enhancement keeps the timing).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio
from pesq import pesq as _pesq
from pystoi import stoi as _stoi

from sectl.audio.io import resample
from sectl.signal import si_sdr_db

METRIC_RATE = 16000
_EPS = 1e-10
MCD_ORDER = 24
MCD_MELS = 80
MCD_FLOOR = 1e-8
"""Mel power is floored 80 dB below the reference's peak so digital silence cannot dominate MCD."""


def pesq_wb(est: np.ndarray, *, ref: np.ndarray) -> float:
    """Wide-band PESQ (ITU-T P.862.2), MOS-LQO from about 1.04 to 4.64."""
    with np.errstate(invalid="ignore", divide="ignore"):  # pesq normalises by the peak: silence warns, then fails cleanly
        return float(_pesq(METRIC_RATE, ref, est, "wb"))


def pesq_nb(est: np.ndarray, *, ref: np.ndarray) -> float:
    """Narrow-band PESQ (P.862 with the P.862.1 mapping), computed at 8 kHz."""
    ref8 = resample(torch.from_numpy(ref), METRIC_RATE, 8000).numpy()
    est8 = resample(torch.from_numpy(est), METRIC_RATE, 8000).numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(_pesq(8000, ref8, est8, "nb"))


def stoi(est: np.ndarray, *, ref: np.ndarray) -> float:
    """Short-time objective intelligibility (Taal et al., 2011), 0..1."""
    return float(_stoi(ref, est, METRIC_RATE, extended=False))


def estoi(est: np.ndarray, *, ref: np.ndarray) -> float:
    """Extended STOI (Jensen & Taal, 2016), which also credits modulation structure."""
    return float(_stoi(ref, est, METRIC_RATE, extended=True))


def si_sdr(est: np.ndarray, *, ref: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (mean removed from both signals)."""
    return float(si_sdr_db(torch.from_numpy(np.asarray(est, np.float64)), torch.from_numpy(np.asarray(ref, np.float64))))


def _power_spectrogram(x: np.ndarray, n_fft: int = 512, hop: int = 128) -> torch.Tensor:
    signal = torch.from_numpy(x.astype(np.float32))
    window = torch.hann_window(n_fft)
    spec = torch.stft(signal, n_fft, hop, window=window, return_complex=True)
    return spec.abs().pow(2)  # (freq, frames)


def lsd(est: np.ndarray, *, ref: np.ndarray) -> float:
    """Log-spectral distance in dB (0 for identical signals)."""
    ref_db = 10 * torch.log10(_power_spectrogram(ref) + _EPS)
    est_db = 10 * torch.log10(_power_spectrogram(est) + _EPS)
    return float((ref_db - est_db).pow(2).mean(dim=0).sqrt().mean())


_mel_cache: dict[str, torch.nn.Module] = {}


def mel_power(x: np.ndarray) -> torch.Tensor:
    """80-band mel power spectrogram (mels, frames) with 25 ms windows and 10 ms hop."""
    if "mel" not in _mel_cache:
        _mel_cache["mel"] = torchaudio.transforms.MelSpectrogram(
            sample_rate=METRIC_RATE, n_fft=512, win_length=400, hop_length=160, n_mels=MCD_MELS
        )
    return _mel_cache["mel"](torch.from_numpy(x.astype(np.float32)))


def mel_cepstrum(power: torch.Tensor, floor: float, order: int = MCD_ORDER) -> torch.Tensor:
    """Cepstral coefficients c1..c_order (frames, order) of the floored log mel amplitude."""
    log_amplitude = 0.5 * torch.log(power.clamp_min(floor))
    # Orthonormal DCT-II divided by sqrt(2 * mels) gives c_d of ln|H(w)| = c0 + 2 sum_d c_d cos(d w),
    # the definition the MCD formula (and SPTK's mel-cepstrum) assumes.
    dct = torchaudio.functional.create_dct(order + 1, MCD_MELS, norm="ortho") / math.sqrt(2 * MCD_MELS)
    return (log_amplitude.T @ dct)[:, 1:]


def mel_distance(est: np.ndarray, *, ref: np.ndarray) -> float:
    """Mean absolute difference of log10 80-band mel power spectra (codec papers' "mel distance"; 0 if identical)."""
    floor = 1e-5  # -50 dB: quiet bins do not dominate
    return float((torch.log10(mel_power(ref) + floor) - torch.log10(mel_power(est) + floor)).abs().mean())


def mcd(est: np.ndarray, *, ref: np.ndarray) -> float:
    """Mel-cepstral distortion in dB over c1..c24, frame-synchronous."""
    ref_power, est_power = mel_power(ref), mel_power(est)
    floor = max(float(ref_power.max()) * MCD_FLOOR, _EPS)
    diff = mel_cepstrum(ref_power, floor) - mel_cepstrum(est_power, floor)
    per_frame = (10.0 / math.log(10.0)) * torch.sqrt(2.0 * diff.pow(2).sum(dim=1))
    return float(per_frame.mean())
