"""ERB band layout and the running normalisations of DeepFilterNet's input features (libDF's ``erb_fb``,
``band_mean_norm_erb``, ``band_unit_norm``), written as batched, differentiable tensor operations.

The running normalisations are first-order IIR filters along time; ``torchaudio.functional.lfilter``
runs them in compiled code with autograd, and the initial state enters in closed form
(``s_t = EMA_t(x) + alpha^(t+1) s_0``), so no Python loop over frames remains.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchaudio.functional import lfilter


def _freq_to_erb(hz: float) -> float:
    return 9.265 * math.log1p(hz / (24.7 * 9.265))


def _erb_to_freq(erb: float) -> float:
    return 24.7 * 9.265 * (math.exp(erb / 9.265) - 1)


def erb_band_widths(sample_rate: int, n_fft: int, bands: int, min_bins: int) -> list[int]:
    """FFT bins per ERB band, equally spaced on the ERB scale, each at least ``min_bins`` wide (libDF)."""
    bin_hz = sample_rate / n_fft
    step = (_freq_to_erb(sample_rate / 2) - _freq_to_erb(0.0)) / bands
    widths, previous, borrowed = [], 0, 0
    for i in range(1, bands + 1):
        edge = round(_erb_to_freq(_freq_to_erb(0.0) + i * step) / bin_hz)
        width = edge - previous - borrowed
        borrowed = max(0, min_bins - width)
        widths.append(max(width, min_bins))
        previous = edge
    widths[-1] += 1  # the Nyquist bin
    widths[-1] -= sum(widths) - (n_fft // 2 + 1)
    return widths


def band_average_matrix(widths: list[int]) -> torch.Tensor:
    """``(bins, bands)``: the mean over each band's bins (``power @ M``)."""
    matrix = torch.zeros(sum(widths), len(widths))
    start = 0
    for band, width in enumerate(widths):
        matrix[start : start + width, band] = 1.0 / width
        start += width
    return matrix


def band_expand_matrix(widths: list[int]) -> torch.Tensor:
    """``(bands, bins)``: copies each band's gain to its bins (``gains @ M``)."""
    # Contiguous: a transposed view is refused by NCCL when rank 0 broadcasts the model's buffers.
    return (band_average_matrix(widths) > 0).float().T.contiguous()


def norm_alpha(sample_rate: int, hop: int, tau_s: float) -> float:
    """Smoothing factor ``exp(-hop / (sample_rate * tau))``, rounded as libDF rounds it (to 3+ decimals, < 1)."""
    exact = math.exp(-hop / sample_rate / tau_s)
    precision = 3
    while (alpha := round(exact, precision)) >= 1.0:
        precision += 1
    return alpha


def running_mean(x: torch.Tensor, alpha: float, initial: torch.Tensor) -> torch.Tensor:
    """``s_t = (1 - alpha) x_t + alpha s_{t-1}`` along the last axis, ``s_{-1} = initial`` (broadcast over it)."""
    steps = x.shape[-1]
    coeffs = dict(dtype=x.dtype, device=x.device)
    # The filter taps from Python numbers without a host-to-device copy per call (a GPU would wait on it).
    denominator = torch.stack([torch.ones((), **coeffs), torch.full((), -alpha, **coeffs)])
    numerator = torch.stack([torch.full((), 1.0 - alpha, **coeffs), torch.zeros((), **coeffs)])
    smoothed = lfilter(x, denominator, numerator, clamp=False)
    decay = alpha ** torch.arange(1, steps + 1, **coeffs)
    return smoothed + initial.unsqueeze(-1).to(**coeffs) * decay


ERB_OFFSET_DB = 200.0
"""Added to ERB levels in dB before :func:`running_mean_rnn`: > 100 dB below the floor of ``10 log10(power +
1e-10)``, so the state stays positive and the ReLU never clips."""


def running_mean_rnn(channels: int, alpha: float) -> nn.RNN:
    """:func:`running_mean` as a ReLU ``nn.RNN`` with diagonal weights (identity on positive states), for graphs
    and streams: it exports as one ONNX ``RNN`` node and runs its time loop in C++, where ``lfilter`` exports
    not at all. Inputs and states must stay positive (shift them, as :data:`ERB_OFFSET_DB` does)."""
    rnn = nn.RNN(channels, channels, nonlinearity="relu", bias=False, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.eye(channels) * (1 - alpha))
        rnn.weight_hh_l0.copy_(torch.eye(channels) * alpha)
    return rnn.requires_grad_(False)
