"""Synthesise a training corpus offline: espeak-ng speech (many voices, rates, pitches, sentences)
plus synthetic noises (coloured noise and espeak babble).

The corpus is generated, never committed. It is deterministic for a given --seed.

    python examples/synthesize_corpus.py --out data/synth --utterances 1500
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

RATE = 16000
VOICES = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
VARIANTS = ["", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5", "+klatt", "+klatt2"]
SUBJECTS = "the old man|a young girl|my neighbour|the teacher|our doctor|the driver|his sister|a small dog|the farmer|every student|the singer|her brother|the captain|a stranger|the baker".split("|")
VERBS = "walked to|looked at|talked about|painted|carried|found|remembered|bought|cleaned|opened|followed|described|repaired|visited|forgot".split("|")
OBJECTS = "the red house|a wooden boat|the quiet station|an old letter|the blue window|a heavy box|the garden gate|seven green bottles|the morning paper|a broken clock|the river bank|the kitchen table|a silver spoon|the village church|a long road".split("|")
TAILS = "yesterday|before the rain started|in the afternoon|with great care|near the bridge|after dinner|on a cold morning|without a word|for the third time|as the sun went down|last summer|while we waited|in the city|at the end of the week|quite slowly".split("|")
QUESTIONS = "Why did|When will|How could|Where did|Should".split("|")


def sentence(rng: np.random.Generator) -> str:
    pick = lambda words: words[rng.integers(len(words))]  # noqa: E731
    if rng.random() < 0.2:
        return f"{pick(QUESTIONS)} {pick(SUBJECTS)} {pick(VERBS).split()[0]} {pick(OBJECTS)}?"
    text = f"{pick(SUBJECTS).capitalize()} {pick(VERBS)} {pick(OBJECTS)} {pick(TAILS)}."
    if rng.random() < 0.4:
        text += f" Then {pick(SUBJECTS)} {pick(VERBS)} {pick(OBJECTS)}."
    return text


def speak(text: str, voice: str, speed: int, pitch: int, amplitude: int) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude), "-w", tmp.name, text],
            check=True, capture_output=True,
        )
        audio, rate = sf.read(tmp.name, dtype="float32")
    return AF.resample(torch.from_numpy(audio), rate, RATE).numpy()


def coloured_noise(rng: np.random.Generator, seconds: float, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown)."""
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n)
    return (0.3 * noise / np.abs(noise).max()).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--utterances", type=int, default=1500)
    parser.add_argument("--babble", type=int, default=40, help="babble noise clips")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    speech_dir, noise_dir = args.out / "speech", args.out / "noise"
    speech_dir.mkdir(parents=True, exist_ok=True)
    noise_dir.mkdir(parents=True, exist_ok=True)
    for i in range(args.utterances):
        voice = VOICES[rng.integers(len(VOICES))] + VARIANTS[rng.integers(len(VARIANTS))]
        audio = speak(sentence(rng), voice, int(rng.integers(120, 200)), int(rng.integers(20, 80)), 100)
        sf.write(speech_dir / f"synth_{i:05d}.wav", audio, RATE, subtype="PCM_16")
    for i, exponent in enumerate([0.0, 1.0, 2.0, 0.5, 1.5]):
        sf.write(noise_dir / f"coloured_{i}.wav", coloured_noise(rng, 20.0, exponent), RATE, subtype="PCM_16")
    for i in range(args.babble):
        talkers = [speak(" ".join(sentence(rng) for _ in range(3)), VOICES[rng.integers(len(VOICES))] + VARIANTS[rng.integers(len(VARIANTS))],
                         int(rng.integers(140, 200)), int(rng.integers(20, 80)), 100) for _ in range(int(rng.integers(3, 7)))]
        length = min(len(t) for t in talkers)
        babble = sum(t[:length] / (np.std(t[:length]) + 1e-6) for t in talkers)
        sf.write(noise_dir / f"babble_{i:03d}.wav", (0.3 * babble / np.abs(babble).max()).astype(np.float32), RATE, subtype="PCM_16")
    print(f"wrote {args.utterances} utterances to {speech_dir} and {5 + args.babble} noises to {noise_dir}")


if __name__ == "__main__":
    main()
