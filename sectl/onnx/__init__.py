"""ONNX export of enhancers and their onnxruntime runtime, so an exported model is a first-class model.

The names below load their modules on first use (PEP 562): ``sectl cache`` and the cache key's helpers
need neither torch nor onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "export_onnx": "sectl.onnx.export",
    "sidecar_path": "sectl.onnx.export",
    "OnnxEnhancer": "sectl.onnx.runtime",
    "OnnxFrames": "sectl.onnx.runtime",
    "load_onnx": "sectl.onnx.runtime",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'sectl.onnx' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
