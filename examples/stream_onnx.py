"""Enhance a WAV file with an exported stream graph, using only numpy, onnxruntime and the graph's sidecar:
what an integrator needs to run a sectl model in another program (no sectl, no torch).

    sectl export nsnet2 -o nsnet2_stream.onnx --stream
    python examples/stream_onnx.py nsnet2_stream.onnx noisy_16k.wav enhanced.wav

The input is 16-bit PCM at the graph's sample rate (its sidecar's layout.sample_rate; resample first
otherwise), mono or multi-channel (channels run as a batch). The protocol, from the sidecar's "protocol":
start each state at its "initial" (zeros if absent); feed lead_in zeros, then the signal, one hop per call
with length -1; at the end feed the last partial hop zero-padded and then zeros, with length T, until
ceil((T + preroll) / hop) calls in all; drop the first preroll output samples and keep T.
"""

from __future__ import annotations

import json
import sys
import wave
from pathlib import Path

import numpy as np
import onnxruntime as ort

DTYPES = {"float32": np.float32, "int64": np.int64}


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
    calls = -(-(total + preroll) // hop)
    live_calls = padded.shape[1] // hop  # whole hops of the signal: its length is not needed yet
    padded = np.pad(padded, ((0, 0), (0, max(0, calls * hop - padded.shape[1]))))
    outputs = []
    for call in range(calls):
        feeds = {"samples": padded[:, call * hop : (call + 1) * hop],
                 "length": np.array([-1 if call < live_calls else total], np.int64), **states}  # fmt: skip
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
