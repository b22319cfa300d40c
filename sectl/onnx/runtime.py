"""Running exported stream graphs with onnxruntime: as a runner for :class:`sectl.streaming.Streamer`
(:class:`OnnxFrames`: a hop or many per call, states carried) and as an enhancer that ``sectl enhance``
uses like any model (:class:`OnnxEnhancer`: the same stream over the whole input)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sectl.errors import ModelError, SectlError
from sectl.onnx.export import METADATA_KEY
from sectl.streaming.frames import StreamLayout

DTYPES = {"float32": np.float32, "int64": np.int64}


def _session(path: Path, threads: int):
    import onnxruntime as ort

    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX model file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None


def read_record(session, path: Path) -> dict[str, Any]:
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise ModelError(f"{path}: an ONNX model without sectl's metadata (export it with `sectl export`)")
    return json.loads(raw)


class OnnxFrames:
    """The exported stream step: whole hops in (one per call, or any number where ``multi_hop``), as many
    samples out; states stay numpy arrays between calls."""

    def __init__(self, path: str | Path, threads: int = 1, session=None) -> None:
        self.path = Path(path)
        self.session = session or _session(self.path, threads)
        self.record = read_record(self.session, self.path)
        if self.record["kind"] != "stream":  # older versions also exported whole-signal graphs
            raise ModelError(f"{path}: a whole-signal graph from an older sectl; export the model again (`sectl export`)")
        known = StreamLayout.__dataclass_fields__
        self.layout = StreamLayout(**{k: v for k, v in self.record["layout"].items() if k in known})  # newer keys: ignored
        self.multi_hop = bool(self.record.get("multi_hop", False))  # graphs exported before it took one hop
        self.states = self.record["states"]
        self.input_names = {i.name for i in self.session.get_inputs()}  # the exporter drops unused inputs
        self.fed = [spec["name"] in self.input_names for spec in self.states]
        self.length_fed = "length" in self.input_names

    def initial_state(self, batch: int) -> list[np.ndarray]:
        state = []
        for spec in self.states:
            dtype = DTYPES[spec["dtype"]]
            if spec["name"] == "frame":
                state.append(np.full((1,), self.layout.first_frame, dtype))
                continue
            shape = [batch, *spec["shape"][1:]]
            value = np.zeros(shape, dtype)
            if "initial" in spec:
                value[:] = np.asarray(spec["initial"], dtype)
            state.append(value)
        return state

    def select_rows(self, state: list[np.ndarray], rows: list[int]) -> list[np.ndarray]:
        """The state of batch rows ``rows`` (the frame counter is shared)."""
        return [value if spec["name"] == "frame" else value[rows] for spec, value in zip(self.states, state)]

    def __call__(self, samples: torch.Tensor, length: int, state: list[np.ndarray]) -> tuple[torch.Tensor, list]:
        feeds = {"samples": samples.numpy().astype(np.float32, copy=False)}
        if self.length_fed:
            feeds["length"] = np.array([length], np.int64)
        feeds.update((spec["name"], value) for spec, value, fed in zip(self.states, state, self.fed) if fed)
        out, *state = self.session.run(None, feeds)
        return torch.from_numpy(out), state


class OnnxEnhancer:
    """An exported stream graph as an enhancer: ``(B, T)`` or ``(B, 1, T)`` at ``sample_rate`` -> the same
    shape, through a :class:`Streamer` (equal to the PyTorch model over the whole input). It has no weights
    to train and no encoder levels: it enhances, streams and is scored, not trained.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.path = Path(path)
        self.session = _session(self.path, threads)
        self.frames = OnnxFrames(path, session=self.session)
        self.record = self.frames.record
        self.sample_rate = self.frames.layout.sample_rate
        self.name = f"{self.record['architecture']} (ONNX)"

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        from sectl.streaming import Streamer

        x = wave if wave.dim() == 2 else wave[:, 0]
        streamer = Streamer(self.frames, channels=x.shape[0])
        y = torch.cat([streamer.feed(x), streamer.flush()], dim=-1)
        return y if wave.dim() == 2 else y.unsqueeze(1)

    def frame_runner(self) -> OnnxFrames:
        return self.frames

    def eval(self) -> "OnnxEnhancer":
        return self

    def to(self, device: Any) -> "OnnxEnhancer":
        if torch.device(device).type != "cpu":
            raise SectlError(f"{self.path}: ONNX models run on the CPU with onnxruntime (use --device cpu)")
        return self


def load_onnx(path: str | Path, threads: int = 1) -> OnnxEnhancer:
    return OnnxEnhancer(path, threads)
