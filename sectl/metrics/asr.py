"""Word error rate through a wav2vec 2.0 CTC recogniser (torchaudio), the position-invariant paper's
downstream evaluation.

The recogniser is torchaudio's ``WAV2VEC2_ASR_BASE_960H`` pipeline by default (downloaded on first
use), another pipeline by name, or a local file in sectl's format (``sectl-asr/1``: the
``torchaudio.models.wav2vec2_model`` arguments, the CTC labels and the weights), which is how offline
machines use it: ``python -m sectl.metrics.asr export wav2vec2.pt`` on a machine with internet. It is
looked up as every model is (:mod:`sectl.modelfiles`): ``--asr-model``, then ``$SECTL_ASR_MODEL``, then
``$SECTL_MODELS_DIR/asr/WAV2VEC2_ASR_BASE_960H.pt``, then the default pipeline.
Decoding is greedy CTC; hypothesis and transcript are upper-cased and stripped of punctuation (the
LibriSpeech convention the pipelines were trained on) before the word-level edit distance.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import re
from pathlib import Path

import numpy as np
import torch
import torchaudio

from sectl.errors import ModelError, SectlError, first_line
from sectl.fileutil import atomic_write_bytes
from sectl.modelfiles import search_folders

DEFAULT_PIPELINE = "WAV2VEC2_ASR_BASE_960H"
FORMAT = "sectl-asr/1"
HOW_TO_PROVIDE = (
    f"offline, write a file with `python -m sectl.metrics.asr export FILE` where the weights can be downloaded "
    f"and put it at $SECTL_MODELS_DIR/asr/{DEFAULT_PIPELINE}.pt or name it in SECTL_ASR_MODEL (eval also takes --asr-model)"
)
ASR_RATE = 16000
_explicit_source: str | None = None


class Recognizer(torch.nn.Module):
    """A wav2vec 2.0 CTC model and its labels (``labels[0]`` the blank, ``"|"`` the word boundary)."""

    def __init__(self, model: torch.nn.Module, labels: list[str], normalize_waveform: bool = False) -> None:
        super().__init__()
        self.model, self.labels, self.normalize_waveform = model.eval(), list(labels), normalize_waveform

    @torch.no_grad()
    def forward(self, wave: np.ndarray | torch.Tensor) -> str:
        """The transcript of one 16 kHz mono signal ``(T,)``."""
        x = torch.as_tensor(np.asarray(wave), dtype=torch.float32)[None]
        if self.normalize_waveform:
            x = torch.nn.functional.layer_norm(x, x.shape)
        emissions, _ = self.model(x)
        return ctc_greedy(emissions[0].argmax(-1).tolist(), self.labels)


def ctc_greedy(indices: list[int], labels: list[str]) -> str:
    """Collapse repeats, drop blanks (index 0), map ``|`` to spaces."""
    chars = [labels[i] for k, i in enumerate(indices) if i != 0 and (k == 0 or i != indices[k - 1])]
    return " ".join("".join(chars).replace("|", " ").split())


def normalise_text(text: str) -> list[str]:
    """Upper-case words of letters and apostrophes (punctuation and digits dropped)."""
    return re.sub(r"[^A-Z' ]+", " ", text.upper()).split()


def word_error_rate(hypothesis: str, *, reference: str) -> float:
    """Word-level edit distance / number of reference words (torchaudio's edit distance)."""
    ref_words, hyp_words = normalise_text(reference), normalise_text(hypothesis)
    if not ref_words:
        raise SectlError("empty reference transcript")
    return torchaudio.functional.edit_distance(ref_words, hyp_words) / len(ref_words)


def set_recognizer(source: str | Path | None) -> None:
    """Use ``source`` (a pipeline name or a ``sectl-asr/1`` file) for ``wer`` (what ``--asr-model`` sets)."""
    global _explicit_source
    _explicit_source = None if source is None else str(source)
    recognizer.cache_clear()


def recognizer_source() -> str:
    """What ``wer`` uses: ``set_recognizer``'s source, else ``$SECTL_ASR_MODEL``, else the default
    pipeline's exported file in ``$SECTL_MODELS_DIR/asr``, else the default pipeline itself."""
    given = _explicit_source or os.environ.get("SECTL_ASR_MODEL")
    if given:
        return given
    exported = [folder / f"{DEFAULT_PIPELINE}.pt" for folder in search_folders("asr")]
    return next((str(path) for path in exported if path.is_file()), DEFAULT_PIPELINE)


@functools.lru_cache(maxsize=1)
def recognizer() -> Recognizer:
    return load_recognizer(recognizer_source())


def prepare() -> None:
    """Load the recogniser now (a missing one is one error before any scoring, or before training)."""
    recognizer()


def load_recognizer(source: str | Path) -> Recognizer:
    if Path(source).is_file():
        return _load_file(Path(source))
    bundle = getattr(torchaudio.pipelines, str(source), None)
    if bundle is None or not hasattr(bundle, "get_labels"):
        raise ModelError(f"wer: {source} is neither a file nor a torchaudio ASR pipeline (e.g. {DEFAULT_PIPELINE})")
    try:
        model = bundle.get_model()
    except Exception as exc:  # noqa: BLE001 - download errors come as URLError, OSError, RuntimeError
        raise ModelError(f"wer: could not load torchaudio's {source} ({first_line(exc)}); {HOW_TO_PROVIDE}") from None
    inner = getattr(model, "model", model)  # torchaudio wraps some pipelines to normalise the waveform
    return Recognizer(inner, list(bundle.get_labels()), bool(getattr(model, "normalize_waveform", False)))


def _load_file(path: Path) -> Recognizer:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{path}: not a readable ASR model file ({first_line(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path}: not an ASR model in sectl's format ({FORMAT}); make one with `python -m sectl.metrics.asr export`")
    args = {k: [tuple(c) for c in v] if k == "extractor_conv_layer_config" and v else v for k, v in payload["args"].items()}
    model = torchaudio.models.wav2vec2_model(**args)
    model.load_state_dict(payload["state_dict"])
    return Recognizer(model, payload["labels"], payload.get("normalize_waveform", False))


def save_recognizer(path: str | Path, model: torch.nn.Module, args: dict, labels: list[str], normalize_waveform: bool = False) -> None:
    """Write a ``sectl-asr/1`` file: ``args`` are ``torchaudio.models.wav2vec2_model``'s arguments."""
    payload = {
        "format": FORMAT, "args": {k: [list(c) for c in v] if k == "extractor_conv_layer_config" and v else v for k, v in args.items()},
        "labels": list(labels), "normalize_waveform": normalize_waveform,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }  # fmt: skip
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def wer(est: np.ndarray, *, transcript: str) -> float:
    """The ``wer`` metric: recognise ``est`` (16 kHz) and compare with the reference's transcript."""
    return word_error_rate(recognizer()(est), reference=transcript)


def export(pipeline: str, out: Path) -> None:
    bundle = getattr(torchaudio.pipelines, pipeline)
    model = bundle.get_model()
    inner = getattr(model, "model", model)
    # torchaudio keeps a pipeline's model arguments in its private ``_params``; they rebuild the model offline.
    save_recognizer(out, inner, dict(bundle._params), list(bundle.get_labels()), bool(getattr(model, "normalize_waveform", False)))


def main() -> None:
    parser = argparse.ArgumentParser(description="Save a torchaudio wav2vec 2.0 ASR pipeline for offline `sectl eval -m wer`.")
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser("export", help="download a pipeline's weights and write them as one file")
    command.add_argument("out", type=Path)
    command.add_argument("--pipeline", default=DEFAULT_PIPELINE)
    args = parser.parse_args()
    export(args.pipeline, args.out)
    print(f"wrote {args.out}; use it with: sectl eval ... -m wer --asr-model {args.out}")


if __name__ == "__main__":
    main()
