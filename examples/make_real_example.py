"""Build the real-speech example pair (examples/clean/prompt.wav, examples/noisy/prompt.wav).

The speech is a real studio recording: Asterisk's English voice prompt ``demo-congrats`` (voice of
Allison Smith, Digium/Sangoma; CC BY-SA 3.0), as Debian ships it in ``asterisk-core-sounds-en-g722``
(G.722, 16 kHz). The noise is pink noise with a slow loudness sway (a fan or distant traffic) plus a
50 Hz hum, mixed at 5 dB SNR; seed 0, so the files are reproducible:

    apt-get install asterisk-core-sounds-en-g722 ffmpeg
    python examples/make_real_example.py
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SOURCE = Path("/usr/share/asterisk/sounds/en_US_f_Allison/demo-congrats.g722")
RATE = 16000
SECONDS = 9.0
SNR_DB = 5.0
HERE = Path(__file__).resolve().parent


def decode(path: Path) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "g722", "-i", str(path), "-ar", str(RATE), str(wav)], check=True)
        return sf.read(wav)[0]


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0))  # 1/f power above 20 Hz
    return np.fft.irfft(spectrum, n)


def main() -> None:
    rng = np.random.default_rng(0)
    speech = decode(SOURCE)[: int(SECONDS * RATE)]
    speech = 0.5 * speech / np.abs(speech).max()
    t = np.arange(len(speech)) / RATE
    noise = pink_noise(len(speech), rng) * (1 + 0.4 * np.sin(2 * np.pi * 0.3 * t))
    noise = noise / noise.std() + 0.3 * np.sin(2 * np.pi * 50 * t)
    noise *= np.sqrt(np.mean(speech**2) / np.mean(noise**2)) * 10 ** (-SNR_DB / 20)
    noisy = speech + noise
    peak = max(np.abs(noisy).max(), 1e-9) / 0.9
    sf.write(HERE / "clean" / "prompt.wav", speech / peak, RATE, subtype="PCM_16")
    sf.write(HERE / "noisy" / "prompt.wav", noisy / peak, RATE, subtype="PCM_16")


if __name__ == "__main__":
    main()
