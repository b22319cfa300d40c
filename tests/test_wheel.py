"""A plain (non-editable) wheel carries everything the commands need: presets, bundled weights, licences."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

CHECK = """
import sectl, sys
from pathlib import Path
assert Path(sectl.__file__).parent.parent == Path(sys.argv[1]), sectl.__file__   # the wheel's copy, not the checkout
from sectl.train.config import resolve_config
from sectl.models.loading import DEFAULT_MODEL
assert resolve_config("mal")["loss"]["mal"] == 1.0 and resolve_config("vae_jmas")["task"] == "vae"
assert DEFAULT_MODEL.is_file() and (DEFAULT_MODEL.parent / "LICENSE-DeepFilterNet3-MIT").is_file()
"""


def test_a_wheel_install_finds_presets_and_weights(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path / "dist")],
                           capture_output=True, text=True)  # fmt: skip
    if build.returncode != 0:
        pytest.skip(f"could not build a wheel here (pip wheel failed: {build.stderr.strip().splitlines()[-1:]})")
    wheel = next((tmp_path / "dist").glob("sectl-*.whl"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)], check=True)
    subprocess.run([sys.executable, "-c", CHECK, str(site)], check=True, cwd=tmp_path, env={"PYTHONPATH": str(site), "PATH": ""})
