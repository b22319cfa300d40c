"""Shared fixtures: the real audio in ../shared/data and small synthetic signals."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SECTL_TEST_DATA", REPO.parent / "shared" / "data"))
MODELS = Path(os.environ.get("SECTL_TEST_MODELS", REPO.parent / "shared" / "models"))


@pytest.fixture(autouse=True, scope="session")
def dnsmos_models():
    """Point DNSMOS at the shared model files; without them, commands report DNSMOS as unavailable."""
    folder = MODELS / "dnsmos"
    os.environ["SECTL_DNSMOS_DIR"] = str(folder if folder.is_dir() else REPO / "no-dnsmos-models")
    yield


@pytest.fixture(autouse=True, scope="session")
def pretrained_model_files():
    """Named pretrained models (deepfilternet3, nsnet2) read the official files from the shared folder."""
    os.environ["SECTL_MODELS_DIR"] = str(MODELS if MODELS.is_dir() else REPO / "no-pretrained-models")
    yield


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """sectl's cache (onnxruntime graphs of the models enhance runs) in a folder of the test session's own,
    so tests neither read a developer's cache nor leave files in it."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not (MODELS / "deepfilternet3").is_dir() or not (MODELS / "nsnet2").is_dir():
        pytest.skip(f"pretrained model files not found at {MODELS} (set SECTL_TEST_MODELS)")
    return MODELS


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real test audio not found at {DATA} (set SECTL_TEST_DATA)")
    return DATA


@pytest.fixture(scope="session")
def vctk(data_dir: Path) -> Path:
    return data_dir / "vctk"


@pytest.fixture(scope="session")
def clean_speech(vctk: Path) -> np.ndarray:
    """A real 16 kHz utterance (p287_001, about 2 s) as float64."""
    audio, rate = sf.read(vctk / "clean" / "p287_001.wav")
    assert rate == 16000
    return audio


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, subtype=subtype)
    return path


def tone(seconds: float = 1.0, rate: int = 16000, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised tiny enhancer saved as a sectl checkpoint."""
    import torch

    from sectl.models import build_enhancer
    from sectl.models.io.checkpoint import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, build_enhancer(size="tiny"))
    return path


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` need a GPU: skipped, with that reason, where torch sees none (CI)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run benchmarks/device_check.sh on one)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
