"""The optional packages behind some metrics (``pip install 'sectl[metrics]'``): one error naming the install
command when one is missing, and their versions for a report's provenance."""

from __future__ import annotations

import importlib
from types import ModuleType

from sectl.errors import UsageError, first_line

INSTALL = "pip install 'sectl[metrics]'"


def require(module: str, metric: str, distribution: str) -> ModuleType:
    """``import module``, or one error saying that ``-m metric`` needs ``distribution`` and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(f"-m {metric} needs the {distribution} package ({first_line(exc)}): {INSTALL}") from None
