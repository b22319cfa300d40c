"""Packages whose public names load their modules on first use (PEP 562), so that importing the package, as
commands do to check their arguments, does not import torch. Each such package keeps its table as a
literal ``_LAZY = {name: module}`` (``sectl.provenance`` reads it to follow imports) and sets
``__getattr__ = lazy_attributes(__name__, _LAZY)``."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_attributes(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(table[name]), name)

    return __getattr__
