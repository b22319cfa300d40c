"""DNSMOS (Reddy, Gopal & Cutler, ICASSP 2021/2022): non-intrusive MOS from Microsoft's ONNX models.

Follows the published procedure exactly: 16 kHz mono; windows of 9.01 s hopped by 1 s (shorter inputs
tiled by repetition until they fill one window); the P.835 model (SIG, BAK, OVRL) reads the raw
window, the P.808 model a 120-band Slaney mel power spectrogram of the window minus its last 160
samples (n_fft 321, hop 160, centred with zero padding as librosa does), scaled as
``(power_to_db(mel, ref=max, top_db=80) + 40) / 40``; raw P.835 scores go through the published
non-personalised polynomials; scores are averaged over windows. Windows run in batches, so memory is
bounded by the batch size, not the file's duration.

Model files are looked up as every model is (:mod:`sectl.modelfiles`): ``--dnsmos-dir``
(:func:`set_model_dir`), then ``$SECTL_DNSMOS_DIR``, then ``$SECTL_MODELS_DIR/dnsmos``, then
``~/.cache/sectl/dnsmos``; where none has them, they are downloaded once into the cache from the
DNS-Challenge repository and checked against their SHA-256.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from sectl.errors import SectlError, UsageError
from sectl.modelfiles import ModelFiles, cache_root, locate, search_folders

RATE = 16000
WINDOW = int(9.01 * RATE)  # 144160 samples
HOP = RATE
BATCH = 8  # windows per ONNX call

FILES = ModelFiles(
    name="DNSMOS",
    files={
        "sig_bak_ovr.onnx": "269fbebdb513aa23cddfbb593542ecc540284a91849ac50516870e1ac78f6edd",
        "model_v8.onnx": "9246480c58567bc6affd4200938e77eef49468c8bc7ed3776d109c07456f6e91",
    },
    url="https://github.com/microsoft/DNS-Challenge/raw/master/DNSMOS/DNSMOS/",
    hint="copy sig_bak_ovr.onnx and model_v8.onnx into $SECTL_MODELS_DIR/dnsmos/ or a folder named by "
    "SECTL_DNSMOS_DIR (eval and iterate also take --dnsmos-dir)",
)
# Non-personalised P.835 mappings from raw model output to MOS, highest power first.
POLY_SIG = (-0.08397278, 1.22083953, 0.0052439)
POLY_BAK = (-0.13166888, 1.60915514, -0.39604546)
POLY_OVRL = (-0.06766283, 1.11546468, 0.04602535)

_explicit_dir: Path | None = None


def set_model_dir(path: str | Path | None) -> None:
    """Use this folder first (what ``--dnsmos-dir`` sets)."""
    global _explicit_dir
    _explicit_dir = None if path is None else Path(path)
    _sessions.cache_clear()


def cache_dir() -> Path:
    return cache_root() / "dnsmos"


def candidate_dirs() -> list[Path]:
    return search_folders("dnsmos", "SECTL_DNSMOS_DIR", _explicit_dir)


def model_paths() -> dict[str, Path]:
    """Paths of both model files, downloading them into the cache if no folder has them."""
    return locate(FILES, candidate_dirs(), cache_dir())


@functools.lru_cache(maxsize=1)
def _sessions():
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError("DNSMOS needs onnxruntime: pip install onnxruntime") from None
    paths = model_paths()
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    make = lambda p: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])  # noqa: E731
    return make(paths["sig_bak_ovr.onnx"]), make(paths["model_v8.onnx"])


def prepare() -> None:
    """Find and load the models now (a missing file is one error before any scoring, or before training)."""
    _sessions()


def _hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's default)."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_region = hz >= 1000.0
    return np.where(log_region, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    hz = (200.0 / 3) * mel
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), hz)


@functools.lru_cache(maxsize=1)
def _mel_filters() -> torch.Tensor:
    """``(161, 120)`` Slaney-normalised triangular filters for n_fft 321, as librosa builds them.

    Written out rather than taken from ``torchaudio.functional.melscale_fbanks``: that function places
    FFT bins on ``linspace(0, sr/2)``, but with DNSMOS's odd n_fft (321) the bins are ``k * sr / 321``
    and the last one sits below Nyquist. The P.808 model was trained on librosa's bins; torchaudio's
    shift P.808 scores by about 0.05 MOS.
    """
    fft_freqs = np.fft.rfftfreq(321, d=1.0 / RATE)
    mel_points = _slaney_mel_to_hz(np.linspace(_hz_to_slaney_mel(0.0), _hz_to_slaney_mel(RATE / 2), 122))
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    return torch.from_numpy(weights.T)


def p808_features(window: np.ndarray) -> np.ndarray:
    """``(frames, 120)`` scaled log-mel features of one window (minus its last 160 samples)."""
    x = torch.from_numpy(window[:-160].astype(np.float64))
    spec = torch.stft(
        x, n_fft=321, hop_length=160, window=torch.hann_window(321, dtype=torch.float64),
        center=True, pad_mode="constant", return_complex=True,
    )
    mel = _mel_filters().double().T @ spec.abs().pow(2)  # (120, frames)
    db = 10 * torch.log10(mel.clamp_min(1e-10))
    db = db - 10 * torch.log10(mel.max().clamp_min(1e-10))
    db = torch.maximum(db, db.max() - 80.0)
    return ((db + 40) / 40).T.numpy().astype(np.float32)


def windows(audio: np.ndarray) -> list[np.ndarray]:
    """The 9.01 s analysis windows, 1 s apart; short inputs are tiled first, as published."""
    while len(audio) < WINDOW:
        audio = np.append(audio, audio)
    count = int(np.floor(len(audio) / RATE) - WINDOW / RATE) + 1
    return [audio[i * HOP : i * HOP + WINDOW] for i in range(count) if len(audio[i * HOP : i * HOP + WINDOW]) == WINDOW]


def score_signal(audio: np.ndarray) -> dict[str, float]:
    """DNSMOS SIG, BAK, OVRL (P.835) and P.808 MOS of a 16 kHz mono signal."""
    if len(audio) == 0:
        raise SectlError("DNSMOS needs a non-empty signal")
    p835, p808 = _sessions()
    raw: list[np.ndarray] = []
    mos808: list[np.ndarray] = []
    segments = windows(np.asarray(audio, dtype=np.float64))
    for start in range(0, len(segments), BATCH):
        batch = segments[start : start + BATCH]
        raw.append(p835.run(None, {"input_1": np.stack(batch).astype(np.float32)})[0])
        mos808.append(p808.run(None, {"input_1": np.stack([p808_features(w) for w in batch])})[0][:, 0])
    scores = np.concatenate(raw)
    return {
        "dnsmos_sig": float(np.polyval(POLY_SIG, scores[:, 0]).mean()),
        "dnsmos_bak": float(np.polyval(POLY_BAK, scores[:, 1]).mean()),
        "dnsmos_ovrl": float(np.polyval(POLY_OVRL, scores[:, 2]).mean()),
        "dnsmos_p808": float(np.concatenate(mos808).mean()),
    }
