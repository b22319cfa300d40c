"""Report fixtures: small generated corpora, built reports, and a real headless Chromium.

The browser is Debian's chromium-headless-shell, provided by .ci/browser.sh (no root) or named by
$SECTL_CHROMIUM; Playwright launches it through executable_path (no `playwright install`). Where it is
missing the browser tests skip and say why, except under CI (``CI`` set), where they fail: CI must never
pass without having run them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, write_wav

RATE = 16000


def make_corpus(root: Path, count: int, seconds: float = 0.5, seed: int = 0) -> Path:
    """``root/{clean,noisy,enhanced}/uNNN.wav``: harmonic tones in noise, the enhanced ones with less of it, and
    each utterance a different SNR so that metrics order them."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    for i in range(count):
        f0 = 120 + 7 * i % 180
        clean = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)) * np.hanning(t.size) ** 0.2
        noise = rng.standard_normal(t.size) * (0.02 + 0.3 * (i % 17) / 17)
        name = f"u{i:03d}.wav"
        write_wav(root / "clean" / name, clean)
        write_wav(root / "noisy" / name, clean + noise)
        write_wav(root / "enhanced" / name, clean + 0.3 * noise)
    return root


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """Four 2-second utterances: long enough to hear the clock advance in a browser."""
    return make_corpus(tmp_path_factory.mktemp("corpus"), 4, seconds=2.0)


@pytest.fixture(scope="session")
def small_report(corpus: Path) -> Path:
    from sectl.report import build_report

    out = corpus.parent / "report"
    build_report([("noisy", str(corpus / "noisy")), ("DF3", str(corpus / "enhanced"))], out, ref=str(corpus / "clean"),
                 metrics="si_sdr,stoi", title="Test report")  # fmt: skip
    return out


def chromium_path() -> Path | None:
    path = Path(os.environ.get("SECTL_CHROMIUM") or REPO / ".browser" / "chromium")
    return path if path.is_file() and os.access(path, os.X_OK) else None


def missing(reason: str) -> None:
    """Fail under CI (the browser tests must run there), skip elsewhere, saying why either way."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser tests must run; .ci/run provides the browser)")
    pytest.skip(f"{reason}; run .ci/browser.sh to provide it")


@pytest.fixture(scope="module")  # not the session: Playwright's event loop must end before later tests fork
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        missing(f"no headless Chromium at $SECTL_CHROMIUM or {REPO / '.browser' / 'chromium'}")
    with sync_playwright() as playwright:
        # Autoplay without a user gesture: the tests play audio from scripts and key presses.
        launched = playwright.chromium.launch(executable_path=str(path), args=["--autoplay-policy=no-user-gesture-required"])
        yield launched
        launched.close()


def build_test(corpus: Path, out: Path, method: str, **options) -> Path:
    from sectl.report import build_report

    build_report([("noisy", str(corpus / "noisy")), ("DF3", str(corpus / "enhanced"))], out, ref=str(corpus / "clean"),
                 metrics="si_sdr,stoi", title="Test", test=method, practice=1, **options)  # fmt: skip
    return out


@pytest.fixture(scope="session")
def acr_test(corpus: Path) -> Path:
    return build_test(corpus, corpus.parent / "acr", "acr")


@pytest.fixture(scope="session")
def mushra_test(corpus: Path) -> Path:
    return build_test(corpus, corpus.parent / "mushra", "mushra")
