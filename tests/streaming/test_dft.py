"""The factored real DFTs against ``torch.fft`` (sizes of every streaming model, a prime, odd lengths)."""

import pytest
import torch

from sectl.streaming.dft import InverseRealDFT, RealDFT, split_length

SIZES = [960, 512, 400, 320, 256, 97, 15]


@pytest.mark.parametrize("n", SIZES)
def test_analysis_equals_rfft(n):
    window = torch.rand(n) + 0.5
    frames = torch.randn(2, 5, n)
    re, im = RealDFT(window, scale=0.25)(frames)
    expected = torch.fft.rfft(frames.double() * window.double()) * 0.25
    assert re.shape == im.shape == (2, 5, n // 2 + 1)
    torch.testing.assert_close(re.double(), expected.real, atol=2e-5 * n**0.5, rtol=0)
    torch.testing.assert_close(im.double(), expected.imag, atol=2e-5 * n**0.5, rtol=0)


@pytest.mark.parametrize("n", SIZES)
def test_synthesis_equals_irfft(n):
    window = torch.rand(n) + 0.5
    spectrum = torch.randn(3, 1, n // 2 + 1, dtype=torch.complex128)
    out = InverseRealDFT(window, scale=3.0)(spectrum.real.float(), spectrum.imag.float())
    expected = torch.fft.irfft(spectrum, n) * window.double() * 3.0  # ignores DC's (and Nyquist's) imaginary part
    assert out.shape == (3, 1, n)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=0)


def test_analysis_then_synthesis_round_trips():
    n = 960
    frames = torch.randn(4, n)
    ones = torch.ones(n)
    assert torch.allclose(InverseRealDFT(ones)(*RealDFT(ones)(frames)), frames, atol=1e-5)


@pytest.mark.parametrize("n, split", [(960, (30, 32)), (512, (16, 32)), (97, (1, 97))])
def test_split_length_takes_the_cheapest_factors(n, split):
    assert split_length(n) == split
