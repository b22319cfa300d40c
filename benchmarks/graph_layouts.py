"""Two layout choices in DeepFilterNet3's exported graph, each timed both ways on onnxruntime (one thread).

Why this exists: the README and the code cite these numbers for choices that change no output, only speed:

1. ``ConvBlock`` runs a grouped convolution and its 1x1 as one dense convolution where that costs fewer
   multiply-adds (``df_conv0``: 2 -> 64 channels, 3x3, on 96 bins); both ways, per 1000 frames.
2. The deep filter's coefficients reach the pathway's layout with one 4-D channels-last-to-first transpose
   ``(B, N, D, 10) -> (B, 10, N, D)``, where they once took a 5-D permute ``(B, N, D, 5, 2) -> (B, 2, 5, N, D)``;
   per 512-frame call.

Run: python benchmarks/graph_layouts.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import io
import time
import warnings

import numpy as np
import torch


def _session(model_bytes: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _best_ms(session, x: np.ndarray, repeats: int) -> float:
    name = session.get_inputs()[0].name
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {name: x})
        best = min(best, time.perf_counter() - start)
    return best * 1000


class _Unpadded(torch.nn.Module):
    """The block as the stream runs it: on input that already carries its past frames."""

    def __init__(self, block: torch.nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block.unpadded(x)


def conv_block_ms(fused: bool, frames: int, repeats: int) -> float:
    from sectl.models.enhancers.deepfilternet3 import ConvBlock

    torch.manual_seed(0)
    block = ConvBlock(2, 64, (3, 3)).eval()
    block.fused = fused
    x = torch.randn(1, 2, frames + block.time_pad, 96)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(_Unpadded(block), (x,), buffer, opset_version=17, dynamo=False)
    return _best_ms(_session(buffer.getvalue()), x.numpy(), repeats)


def transpose_ms(shape: list[int], perm: list[int], repeats: int) -> float:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Transpose", ["x"], ["y"], perm=perm)], "t", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return _best_ms(_session(model.SerializeToString()), np.random.randn(*shape).astype(np.float32), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    frames = 1000
    print(f"df_conv0 (2 -> 64 channels, 3x3, 96 bins), {frames} frames, onnxruntime, 1 thread, best of {args.repeats}")
    print(f"  grouped 3x3 + 1x1: {conv_block_ms(False, frames, args.repeats):.2f} ms")
    print(f"  one dense 3x3:     {conv_block_ms(True, frames, args.repeats):.2f} ms")
    print("deep-filter coefficients to the pathway's layout, one 512-frame call")
    print(f"  5-D permute (B, N, D, 5, 2) -> (B, 2, 5, N, D): {transpose_ms([1, 512, 96, 5, 2], [0, 4, 3, 1, 2], args.repeats):.3f} ms")
    print(f"  4-D transpose (B, N, D, 10) -> (B, 10, N, D):  {transpose_ms([1, 512, 96, 10], [0, 3, 1, 2], args.repeats):.3f} ms")


if __name__ == "__main__":
    main()
