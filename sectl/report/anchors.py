"""MUSHRA's low-pass anchors (ITU-R BS.1534-3, 5.1): the reference low-passed at 3.5 kHz and at 7 kHz.

The filter is a linear-phase FIR designed by the Kaiser window method (:func:`scipy.signal.kaiserord` and
:func:`scipy.signal.firwin`): 80 dB stop-band attenuation, a 400 Hz transition band centred on the cut-off
(-6 dB there), applied with its delay removed (odd length, ``mode="same"``), so that the anchor is sample
aligned with the reference and switching between them keeps the position exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from sectl.errors import UsageError

ANCHORS_HZ = (3500.0, 7000.0)
STOPBAND_DB = 80.0
TRANSITION_HZ = 400.0


def check_rate(cutoff_hz: float, rate: int, where: str = "the reference") -> None:
    """Refuse a reference whose band ends below the anchor's transition band (the anchor would be the reference)."""
    if cutoff_hz + TRANSITION_HZ / 2 >= rate / 2:
        raise UsageError(f"the {cutoff_hz / 1000:g} kHz MUSHRA anchor needs audio above {2 * cutoff_hz + TRANSITION_HZ:.0f} Hz "
                         f"sample rate; {where} is at {rate} Hz (narrowband audio: --test acr or p835)")  # fmt: skip


def lowpass_taps(cutoff_hz: float, rate: int) -> np.ndarray:
    """The anchor's FIR taps at ``rate`` (odd length, linear phase)."""
    from scipy import signal

    nyquist = rate / 2
    check_rate(cutoff_hz, rate)
    count, beta = signal.kaiserord(STOPBAND_DB, TRANSITION_HZ / nyquist)
    return signal.firwin(count | 1, cutoff_hz, window=("kaiser", beta), fs=rate)


def lowpass(samples: torch.Tensor, rate: int, cutoff_hz: float) -> torch.Tensor:
    """``samples`` ``(channels, time)`` low-passed at ``cutoff_hz``, same length and alignment."""
    from scipy import signal

    taps = lowpass_taps(cutoff_hz, rate)
    filtered = signal.oaconvolve(samples.double().numpy(), taps[None, :], mode="same", axes=-1)
    return torch.from_numpy(filtered).to(samples.dtype)
