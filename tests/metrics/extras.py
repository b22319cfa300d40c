"""The packages of ``sectl[metrics]`` in tests: the test extra installs them, so under CI (``CI`` set) a missing
one fails its tests; elsewhere they skip, saying how to install it."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def extra(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = f"{module} is not installed ({exc}); pip install -e '.[test]' installs sectl[metrics]"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set: the test extra must install it)")
        pytest.skip(reason)
