"""Enhance a WAV file with an exported stream graph, using only numpy, onnxruntime and the graph's sidecar:
what an integrator needs to run a sectl model in another program (no sectl, no torch).

    sectl export nsnet2 -o nsnet2_stream.onnx
    python examples/stream_onnx.py nsnet2_stream.onnx noisy_16k.wav enhanced.wav

The input is 16-bit PCM at the graph's sample rate (its sidecar's layout.sample_rate; resample first
otherwise), mono or multi-channel (channels run as a batch). The protocol, from the sidecar's "protocol":
start each state at its "initial" (zeros if absent); feed lead_in zeros, then the signal, in whole hops
with length -1 (one hop per call, or any number where "multi_hop" is true, except that the first calls
carry exactly layout.warmup hops in all); at the end feed the last partial hop zero-padded and then zeros,
with length T, until ceil((T + preroll) / hop) hops in all; drop the first preroll output samples and keep T.
A live program feeds what it has (10 ms, 100 ms) as it arrives; this file-to-file driver feeds blocks of
up to BLOCK_HOPS hops, which is as fast as the graph gets.
"""

from __future__ import annotations

import json
import sys
import wave
from pathlib import Path

import numpy as np
import onnxruntime as ort

DTYPES = {"float32": np.float32, "int64": np.int64}
BLOCK_HOPS = 512


def calls(hops: int, warmup: int, live: int, most: int) -> list[tuple[int, int]]:
    """``(first hop, hop count)`` of each call: never across the end of the warm-up (``warmup``) or of the
    live part (``live``: hops fed before the length is known), never more than ``most`` hops."""
    edges = sorted({0, hops, *(e for e in (warmup, live) if 0 < e < hops)})
    return [(start, min(most, end - start)) for begin, end in zip(edges, edges[1:]) for start in range(begin, end, most)]


def initial_states(sidecar: dict, batch: int) -> dict[str, np.ndarray]:
    states = {}
    for spec in sidecar["states"]:
        dtype = DTYPES[spec["dtype"]]
        shape = [batch if size == "batch" else size for size in spec["shape"]]
        states[spec["name"]] = np.broadcast_to(np.asarray(spec.get("initial", 0), dtype), shape).copy()
    return states


def enhance(graph: str | Path, signal: np.ndarray) -> np.ndarray:
    """``signal`` ``(channels, T)`` float32 at the graph's rate -> the enhanced ``(channels, T)``."""
    sidecar = json.loads(Path(graph).with_suffix(".json").read_text())
    layout = sidecar["layout"]
    hop, preroll, total = layout["hop"], layout["preroll"], signal.shape[1]
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}  # the exporter drops inputs a model does not use
    states = initial_states(sidecar, signal.shape[0])
    padded = np.concatenate([np.zeros((signal.shape[0], layout["lead_in"]), np.float32), signal], axis=1)
    hops = -(-(total + preroll) // hop)
    live_hops = padded.shape[1] // hop  # whole hops of the signal: its length is not needed yet
    padded = np.pad(padded, ((0, 0), (0, max(0, hops * hop - padded.shape[1]))))
    outputs = []
    for first, count in calls(hops, layout.get("warmup", 0), live_hops, BLOCK_HOPS if sidecar.get("multi_hop") else 1):
        feeds = {"samples": padded[:, first * hop : (first + count) * hop],
                 "length": np.array([-1 if first < live_hops else total], np.int64), **states}  # fmt: skip
        enhanced, *next_states = session.run(None, {k: v for k, v in feeds.items() if k in wanted})
        states = {spec["name"]: value for spec, value in zip(sidecar["states"], next_states)}
        outputs.append(enhanced)
    return np.concatenate(outputs, axis=1)[:, preroll : preroll + total]


def main(graph: str, source: str, target: str) -> None:
    with wave.open(source, "rb") as reader:
        rate, channels, width = reader.getframerate(), reader.getnchannels(), reader.getsampwidth()
        raw = reader.readframes(reader.getnframes())
    expected = json.loads(Path(graph).with_suffix(".json").read_text())["layout"]["sample_rate"]
    if width != 2 or rate != expected:
        sys.exit(f"{source}: needs 16-bit PCM at {expected} Hz (got {8 * width}-bit, {rate} Hz)")
    signal = (np.frombuffer(raw, "<i2").reshape(-1, channels).T / 32768.0).astype(np.float32)
    out = np.clip(np.round(enhance(graph, signal) * 32768), -32768, 32767).astype("<i2")
    with wave.open(target, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(out.T.tobytes())


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python examples/stream_onnx.py GRAPH.onnx IN.wav OUT.wav")
    main(*sys.argv[1:])
