"""ONNX export of enhancers and their onnxruntime runtime, so an exported model is a first-class model."""

from sectl.onnx.export import export_onnx, sidecar_path
from sectl.onnx.runtime import OnnxEnhancer, OnnxFrames, load_onnx

__all__ = ["OnnxEnhancer", "OnnxFrames", "export_onnx", "load_onnx", "sidecar_path"]
