"""Offline and streaming enhancement speed, PyTorch and onnxruntime, side by side in one process.

10 s of real 48 kHz speech with noise (or 16 kHz for NSNet2), one thread, repetitions interleaved
across the rows, best of 7: real-time factor (processing time / audio duration), per-frame p50/p99
for the streaming rows (each timing is one hop through ``Streamer.feed``, state carried), and the
algorithmic latency. The ONNX graphs are exported into a temporary folder first (``sectl export``).

Run: python benchmarks/stream.py [--model default|nsnet2|RUN] [--repeats 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def speech_with_noise(rate: int, seconds: float = 10.0) -> torch.Tensor:
    """Real speech from the shared data mixed with real noise at 5 dB SNR (white noise if absent)."""
    from sectl.audio import read_audio, resample

    length = int(seconds * rate)
    speech_files = sorted((DATA / "speech_ivr").rglob("*.flac"))[:20]
    noise_files = sorted((DATA / "noise").rglob("*.wav"))[:1]
    if not speech_files:
        return 0.1 * torch.randn(1, length)
    parts, total = [], 0
    for path in speech_files:
        audio = read_audio(path)
        parts.append(resample(audio.samples[:1], audio.sample_rate, rate))
        total += parts[-1].shape[-1]
        if total >= length:
            break
    speech = torch.cat(parts, dim=-1)[:, :length]
    noise = 0.05 * torch.randn_like(speech)
    if noise_files:
        audio = read_audio(noise_files[0])
        noise = resample(audio.samples[:1], audio.sample_rate, rate)
        noise = noise.repeat(1, 1 + length // noise.shape[-1])[:, :length]
    noise = noise * speech.std() / (noise.std() + 1e-9) * 10 ** (-5 / 20)
    return speech + noise


def stream_timings(streamer, x: torch.Tensor) -> tuple[float, list[float]]:
    """Total seconds and per-hop seconds of streaming ``x`` one hop per call."""
    hop = streamer.layout.hop
    per_frame = []
    start = time.perf_counter()
    for offset in range(0, x.shape[-1], hop):
        tick = time.perf_counter()
        streamer.feed(x[:, offset : offset + hop])
        per_frame.append(time.perf_counter() - tick)
    streamer.flush()
    return time.perf_counter() - start, per_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from sectl.enhance import enhance_tensor
    from sectl.export import export_model
    from sectl.engines import load_enhancer
    from sectl.onnx import OnnxFrames, load_onnx
    from sectl.streaming import Streamer, streamer_for

    model = load_enhancer(args.model)
    rate = model.sample_rate
    x = speech_with_noise(rate)
    seconds = x.shape[-1] / rate
    with tempfile.TemporaryDirectory() as tmp:
        export_model(args.model, Path(tmp) / "offline.onnx")
        export_model(args.model, Path(tmp) / "stream.onnx", stream=True)
        onnx_offline = load_onnx(Path(tmp) / "offline.onnx")
        onnx_frames = OnnxFrames(Path(tmp) / "stream.onnx")
        rows = {
            "offline torch": lambda: (_timed(lambda: enhance_tensor(model, x, rate)), []),
            "offline onnxruntime": lambda: (_timed(lambda: enhance_tensor(onnx_offline, x, rate)), []),
            "stream torch": lambda: stream_timings(streamer_for(model), x),
            "stream onnxruntime": lambda: stream_timings(Streamer(onnx_frames), x),
        }
        for run in rows.values():  # warm-up
            run()
        best: dict[str, float] = {name: float("inf") for name in rows}
        frames: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.repeats):  # interleaved: drift in machine load hits every row alike
            for name, run in rows.items():
                total, per_frame = run()
                best[name] = min(best[name], total)
                frames[name].extend(per_frame)
    latency_ms = 1000 * streamer_for(model).latency / rate
    results = []
    for name in rows:
        row = {"row": name, "rtf": best[name] / seconds}
        if frames[name]:
            row["p50_ms"] = 1000 * float(np.percentile(frames[name], 50))
            row["p99_ms"] = 1000 * float(np.percentile(frames[name], 99))
            row["latency_ms"] = latency_ms
        results.append(row)
    if args.json:
        print(json.dumps({"model": args.model, "sample_rate": rate, "seconds": seconds, "rows": results}, indent=2))
        return
    print(f"model: {args.model} ({type(model).__name__}, {rate} Hz), {seconds:.0f} s of speech in noise, 1 thread, "
          f"best of {args.repeats}")  # fmt: skip
    print("| | RTF | per frame p50 | per frame p99 | latency |")
    print("|---|---:|---:|---:|---:|")
    for row in results:
        cells = [f"{row[k]:.3f} ms" if k in row else "" for k in ("p50_ms", "p99_ms")]
        latency = f"{row['latency_ms']:.1f} ms" if "latency_ms" in row else ""
        print(f"| {row['row']} | {row['rtf']:.4f} | {cells[0]} | {cells[1]} | {latency} |")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
