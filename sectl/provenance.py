"""Where a written artefact came from: the sectl source commit and versions (no model imports here, so
checkpoint, export and training code can all use it without import cycles)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit() -> str | None:
    """The commit of the sectl source tree in use (None outside a git checkout)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def versions() -> dict[str, str]:
    """The versions that decide what an exported graph computes."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    found = {"torch": torch.__version__}
    for package in ("sectl", "onnx", "onnxruntime"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found
