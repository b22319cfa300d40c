"""Where a file's time goes: onnxruntime's kernel time per operator, sectl's DeepFilterNet3 stream graph beside
upstream's three official graphs, on the same 10 s of 48 kHz speech in noise, one thread.

Why this exists: the offline goal (sectl at most 0.8x upstream's ONNX pipeline) can only be met if sectl's
graph spends less than that on everything. Both graphs run the same GRU and convolution operators on the same
runtime; this prints their shared kernel time ("GRU + convolutions", with onnxruntime's NCHWc layout reorders)
against 0.8x upstream's whole pipeline. Profiling adds a little to every kernel, alike in both columns.

Run: python benchmarks/stream_profile.py [--repeats 3]   (needs DeepFilterLib and upstream's ONNX archive, as
benchmarks/stream.py's upstream row does)
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream import DATA, speech_with_noise, upstream_onnx_pipeline  # noqa: E402

SHARED = {"GRU", "Conv", "FusedConv", "ConvTranspose", "ReorderInput", "ReorderOutput"}


def _session(model, prefix: str, factory=None):
    import onnxruntime as ort

    factory = factory or ort.InferenceSession
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = prefix
    return factory(model, options, providers=["CPUExecutionProvider"])


def _kernel_ms(sessions, runs: int, skip_first: bool = False) -> collections.Counter:
    """Kernel time per operator type (ms per run) from the sessions' profiles, leaving out each session's first
    run where ``skip_first`` (upstream's pipeline checks itself on the reference trace before it is timed)."""
    totals: collections.Counter = collections.Counter()
    for session in sessions:
        events = json.load(open(session.end_profiling()))
        runs_at = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
        after = runs_at[0][1] if skip_first and runs_at else -1
        for event in events:
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] > after:
                totals[event["args"]["op_name"]] += event["dur"] / 1000 / runs
    return totals


def sectl_profile(x, folder: Path, runs: int):
    """Kernel times of sectl's stream graph over ``x`` (as ``enhance`` runs a file), and a function that runs it
    unprofiled (ms)."""
    import torch

    from sectl.export import export_model
    from sectl.onnx import OnnxFrames
    from sectl.streaming import Streamer

    graph = folder / "stream.onnx"
    export_model("default", graph)

    def run(frames) -> float:
        start = time.perf_counter()
        streamer = Streamer(frames)
        streamer.feed(torch.from_numpy(x)[None])
        streamer.flush()
        return 1000 * (time.perf_counter() - start)

    profiled = OnnxFrames(graph, session=_session(str(graph), str(folder / "sectl")))
    for _ in range(runs):
        run(profiled)
    plain = OnnxFrames(graph)
    return _kernel_ms([profiled.session], runs), lambda: run(plain)


def upstream_profile(x, folder: Path, runs: int) -> collections.Counter | None:
    """The graphs of upstream's pipeline (benchmarks/stream.py), profiled on the same input."""
    archive = DATA.parent / "models" / "deepfilternet3" / "DeepFilterNet3_onnx.tar.gz"
    if upstream_onnx_pipeline() is None or not archive.is_file():
        return None
    import onnxruntime as ort

    sessions = []
    original = ort.InferenceSession

    def profiled(model, options=None, providers=None):
        sessions.append(_session(model, str(folder / f"upstream{len(sessions)}"), original))
        return sessions[-1]

    ort.InferenceSession = profiled
    try:
        run = upstream_onnx_pipeline()
    finally:
        ort.InferenceSession = original
    for _ in range(runs):
        run(x)
    return _kernel_ms(sessions, runs, skip_first=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    x = speech_with_noise(48000)[0].numpy().astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        ours, run_ours = sectl_profile(x, Path(tmp), args.repeats)
        theirs = upstream_profile(x, Path(tmp), args.repeats)
        rows = {"sectl": run_ours}
        if theirs is not None:
            pipeline = upstream_onnx_pipeline()
            rows["upstream"] = lambda: pipeline(x)[0] * 1000
        for run in rows.values():  # warm: a new session's first run allocates
            run()
        best = {name: run() for name, run in rows.items()}
        for _ in range(6):  # interleaved, as benchmarks/stream.py: drift in machine load hits both alike
            for name, run in rows.items():
                best[name] = min(best[name], run())
        our_wall, their_wall = best["sectl"], best.get("upstream")
    print(f"kernel time per 10 s file (1000 hops), ms, one thread, mean of {args.repeats} profiled runs")
    print("| operator | sectl stream graph | upstream's 3 graphs |")
    print("|---|---:|---:|")
    theirs = theirs or collections.Counter()
    for name in sorted(set(ours) | set(theirs), key=lambda k: -max(ours[k], theirs[k]))[:14]:
        print(f"| {name} | {ours[name]:.1f} | {theirs[name]:.1f} |")
    shared = {side: sum(v for k, v in totals.items() if k in SHARED) for side, totals in (("ours", ours), ("theirs", theirs))}
    print(f"| **all kernels** | {sum(ours.values()):.1f} | {sum(theirs.values()):.1f} |")
    print(f"| **GRU + convolutions (with layout reorders)** | {shared['ours']:.1f} | {shared['theirs']:.1f} |")
    print(f"| **everything else** | {sum(ours.values()) - shared['ours']:.1f} | {sum(theirs.values()) - shared['theirs']:.1f} |")
    print(f"wall time, unprofiled, interleaved, best of 7: sectl {our_wall:.1f} ms", end="")
    if their_wall is not None:
        print(f", upstream's pipeline (libDF STFT, features and synthesis + 3 graphs) {their_wall:.1f} ms: ratio "
              f"{our_wall / their_wall:.2f}; 0.8x would take sectl {our_wall - 0.8 * their_wall:.1f} ms less", end="")  # fmt: skip
    print()

if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
