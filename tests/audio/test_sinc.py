"""Tap-by-tap resampling (sectl.audio.sinc) is torchaudio's filter: the two forms agree, and odd rate pairs
use it in sectl.audio.resample."""

from __future__ import annotations

import pytest
import torch
import torchaudio

from sectl.audio import resample
from sectl.audio.sinc import SparseSinc, uses_kernels


@pytest.mark.parametrize("rates", [(44100, 48000), (48000, 16000), (16000, 48000), (22050, 16000), (7, 5), (997, 1000)])
def test_tap_by_tap_equals_torchaudio_kernels(rates: tuple[int, int]) -> None:
    x = torch.randn(2, 3001, dtype=torch.float64)  # float64: torchaudio's float32 kernels round at 3e-5
    expected = torchaudio.functional.resample(x, *rates)
    y = SparseSinc(*rates)(x)
    assert y.shape == expected.shape and (y - expected).abs().max() < 1e-10


def test_odd_pairs_resample_tap_by_tap_and_usual_pairs_keep_torchaudio() -> None:
    assert all(uses_kernels(a, b) and uses_kernels(b, a) for a in (8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000)
               for b in (8000, 16000, 22050, 24000, 44100, 48000))  # fmt: skip
    assert not uses_kernels(7999, 16000) and not uses_kernels(44100, 47999)
    x = torch.randn(1, 20000)
    y = resample(x, 7999, 16000)  # torchaudio: 16000 kernels of 8013 taps, 512 MB
    assert y.shape == (1, 40006) and (y - SparseSinc(7999, 16000)(x)).abs().max() == 0


def test_outputs_from_a_kept_span_equal_the_whole_signal() -> None:
    x = torch.randn(3, 5000)
    sinc = SparseSinc(7999, 16000)
    whole = sinc(x)
    start = sinc.keep_from(4000)
    assert torch.equal(sinc.outputs(x[:, start:], start, 4000, whole.shape[-1]), whole[:, 4000:])
