"""ONNX export of enhancers and their onnxruntime runtime, so an exported model is a first-class model.

The names below load their modules on first use (PEP 562): ``sectl cache`` and the cache key's helpers
need neither torch nor onnxruntime.
"""

from __future__ import annotations

from sectl.lazy import lazy_attributes

_LAZY = {
    "export_onnx": "sectl.onnx.export",
    "sidecar_path": "sectl.onnx.export",
    "OnnxEnhancer": "sectl.onnx.runtime",
    "OnnxFrames": "sectl.onnx.runtime",
    "load_onnx": "sectl.onnx.runtime",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_attributes(__name__, _LAZY)
