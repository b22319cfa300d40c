"""What produced a report's numbers, recorded in the report, so it can be re-scored and compared later.

Every ``sectl eval --json`` report (and :meth:`EvalReport.to_json`) carries this record: the sectl
version, each metric's backend (a package: its distribution name) and its version, the PESQ modes, the DNSMOS
model files' SHA-256 and the score mapping, the NISQA and UTMOS weights' path and SHA-256, and the
preprocessing (mono mix-down, resampling, length alignment).
"""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path
from typing import Any

from sectl import __version__

BACKENDS = {
    "pesq_wb": ("pesq", "ITU-T P.862.2 wide-band, 16 kHz, MOS-LQO"),
    "pesq_nb": ("pesq", "ITU-T P.862 narrow-band with the P.862.1 mapping, resampled to 8 kHz"),
    "stoi": ("pystoi", "STOI (Taal et al. 2011), 16 kHz input (pystoi resamples to 10 kHz)"),
    "estoi": ("pystoi", "extended STOI (Jensen and Taal 2016)"),
    "si_sdr": ("sectl", "sectl.signal.si_sdr_db, means removed, eps 1e-8"),
    "lsd": ("sectl", "512-point Hann STFT, hop 128, power floored at 1e-10"),
    "mcd": ("sectl", "c1..c24 of an 80-band mel spectrum, floor 80 dB below the reference peak, no DTW"),
    "mel_distance": ("sectl", "mean |log10 mel power| difference, 80 bands, floor 1e-5"),
    "composite": ("sectl", "Hu and Loizou 2008 (composite.m): PESQ-WB, order-16 LLR, Klatt WSS, segSNR [-10, 35] dB"),
    "dnsmos": ("onnxruntime", "DNSMOS P.835 (sig_bak_ovr.onnx) and P.808 (model_v8.onnx), 9.01 s windows hopped by 1 s"),
    "wer": ("torchaudio", "wav2vec 2.0 CTC, greedy decoding; upper-case letters and apostrophes; word edit distance / reference words"),
    "visqol": ("visqol-python", "ViSQOL v3 speech mode (port of C++ v3.3.3), 16 kHz, VAD patches, deep-lattice MOS mapping (the C++ default)"),
    "distillmos": ("distillmos", "DistillMOS v7 (weights in the wheel), 16 kHz, peak-normalised 7.68 s crops, mean over crops"),
    "nisqa": ("torchmetrics", "NISQA v2.0 (nisqa.tar) by torchmetrics.functional.audio.nisqa, scored at 16 kHz"),
    "utmos": ("utmos-pytorch", "UTMOS22 strong learner (fairseq-free port), batch 1, domain 0, listener 288"),
}


def _version(package: str) -> str:
    if package == "sectl":
        return __version__
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def provenance(metrics: list[str]) -> dict[str, Any]:
    """The record for a report scored with ``metrics``."""
    record: dict[str, Any] = {
        "sectl_version": __version__,
        "preprocessing": {
            "channels": "mixed to mono",
            "resampling": f"torchaudio {_version('torchaudio')} functional.resample (sinc_interp_hann, width 6) to 16 kHz",
            "alignment": "estimate and reference trimmed to the shorter; a warning above 10 ms difference",
        },
        "metrics": {},
    }
    from sectl.metrics.registry import METRICS

    for name in metrics:
        backend, method = BACKENDS[METRICS[name].group or name]
        record["metrics"][name] = {"backend": backend, "version": _version(backend), "method": method}
    if any(name.startswith("dnsmos_") for name in metrics):
        record["dnsmos"] = _dnsmos_record()
    if "wer" in metrics:
        from sectl.metrics.asr import recognizer_source

        record["asr_model"] = recognizer_source()
    for family in ("nisqa", "utmos"):
        if any((METRICS[name].group or name) == family for name in metrics):
            record[family] = _weights_record(family)
    return record


def _weights_record(family: str) -> dict[str, Any]:
    """The weights file a NISQA or UTMOS score came from, and its SHA-256."""
    import importlib

    from sectl.errors import SectlError

    try:
        path = importlib.import_module(f"sectl.metrics.{family}").model_path()
    except SectlError as exc:
        return {"unavailable": str(exc)}
    stat = path.stat()
    return {"weights": str(path), "sha256": _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)}


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """Hashed once per file version: a comparison writes one record per system, and UTMOS's file is 400 MB."""
    from sectl.modelfiles import sha256

    return sha256(Path(path))


def _dnsmos_record() -> dict[str, Any]:
    from sectl.errors import SectlError
    from sectl.metrics import dnsmos
    from sectl.modelfiles import sha256

    try:
        files = {name: sha256(path) for name, path in dnsmos.model_paths().items()}
    except SectlError as exc:
        files = {"unavailable": str(exc)}
    return {"model_files_sha256": files, "p835_scores": "mapped by the published non-personalised polynomials",
            "p808_scores": "raw model output"}  # fmt: skip
