"""The table of metrics sectl knows, and scoring one signal with a chosen set of them."""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from sectl.errors import SectlError, UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    """One named score.

    ``compute`` takes ``(est, ref=ref)`` for intrusive metrics, ``(est, transcript=text)`` for metrics
    scored against the reference's transcript (``transcript``: a ``.txt`` beside the reference audio),
    and ``(est,)`` otherwise; metrics that share a ``group`` come from one computation that returns all
    of them as a dict (e.g. DNSMOS). ``prepare`` finds and loads what the metric needs from outside the
    package (model files, a recogniser), so :func:`prepare_metrics` can fail before any scoring.
    """

    name: str
    compute: Callable[..., float | dict[str, float]]
    intrusive: bool = True
    higher_is_better: bool = True
    unit: str = ""
    group: str | None = None
    transcript: bool = False
    min_seconds: float = 0.05  # shorter signals have no defined score (one analysis frame at least)
    prepare: Callable[[], None] | None = None


SILENT_PEAK = 1e-5
"""A signal whose peak stays below -100 dBFS is silence: no metric is defined on it (an all-zero estimate
would otherwise score SI-SDR 0 dB and a better DNSMOS than the noisy input)."""


def undefined_reason(metric: Metric, est: np.ndarray, ref: np.ndarray | None, rate: int = 16000) -> str | None:
    """Why ``metric`` has no value for this pair (silent or too short), or ``None``."""
    if est.shape[-1] < metric.min_seconds * rate:
        return f"undefined on {est.shape[-1] / rate:.3g} s (needs at least {metric.min_seconds:g} s)"
    if not np.abs(est).max() >= SILENT_PEAK:
        return "undefined: the estimate is silent"
    if metric.intrusive and ref is not None and not np.abs(ref).max() >= SILENT_PEAK:
        return "undefined: the reference is silent"
    return None


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported on first use: the table (and the check of metric names on the command line)
    must not cost the import of torch, pesq and pystoi, nor onnxruntime (DNSMOS) or a recogniser (WER)."""
    return functools.partial(_call, module, name)


def _call(module: str, name: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(importlib.import_module(module), name)(*args, **kwargs)


def _intrusive(name: str) -> Callable[..., float]:
    return _lazy("sectl.metrics.intrusive", name)


_composite_scores = _lazy("sectl.metrics.composite", "composite")
_dnsmos_scores = _lazy("sectl.metrics.dnsmos", "score_signal")
_wer = _lazy("sectl.metrics.asr", "wer")
_prepare_dnsmos = _lazy("sectl.metrics.dnsmos", "prepare")
_prepare_wer = _lazy("sectl.metrics.asr", "prepare")
_visqol = _lazy("sectl.metrics.visqol", "visqol")
_prepare_visqol = _lazy("sectl.metrics.visqol", "prepare")
_distillmos = _lazy("sectl.metrics.distillmos", "distillmos")
_prepare_distillmos = _lazy("sectl.metrics.distillmos", "prepare")
_nisqa_scores = _lazy("sectl.metrics.nisqa", "score_signal")
_prepare_nisqa = _lazy("sectl.metrics.nisqa", "prepare")
_utmos = _lazy("sectl.metrics.utmos", "utmos")
_prepare_utmos = _lazy("sectl.metrics.utmos", "prepare")


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("pesq_wb", _intrusive("pesq_wb"), min_seconds=0.25),
        Metric("pesq_nb", _intrusive("pesq_nb"), min_seconds=0.25),
        Metric("stoi", _intrusive("stoi"), min_seconds=0.4),  # 30 frames of 25.6 ms at 10 kHz, hop 12.8 ms
        Metric("estoi", _intrusive("estoi"), min_seconds=0.4),
        Metric("si_sdr", _intrusive("si_sdr"), unit="dB"),
        Metric("lsd", _intrusive("lsd"), higher_is_better=False, unit="dB"),
        Metric("mcd", _intrusive("mcd"), higher_is_better=False, unit="dB"),
        Metric("mel_distance", _intrusive("mel_distance"), higher_is_better=False),
        *[Metric(k, _composite_scores, group="composite") for k in ("csig", "cbak", "covl")],
        Metric("segsnr", _composite_scores, unit="dB", group="composite"),
        *[
            Metric(f"dnsmos_{k}", _dnsmos_scores, intrusive=False, group="dnsmos", min_seconds=0.5, prepare=_prepare_dnsmos)
            for k in ("sig", "bak", "ovrl", "p808")
        ],
        Metric("wer", _wer, intrusive=False, higher_is_better=False, transcript=True, prepare=_prepare_wer),
        # ViSQOL places 20-frame patches by voice activity: visqol-python makes none from under 0.65 s of speech.
        Metric("visqol", _visqol, min_seconds=0.7, prepare=_prepare_visqol),
        Metric("distillmos", _distillmos, intrusive=False, prepare=_prepare_distillmos),
        *[  # 0.15 s: NISQA's first segment needs 15 mel frames hopped by 10 ms
            Metric(k, _nisqa_scores, intrusive=False, group="nisqa", min_seconds=0.15, prepare=_prepare_nisqa)
            for k in ("nisqa", "nisqa_noi", "nisqa_dis", "nisqa_col", "nisqa_loud")
        ],
        Metric("utmos", _utmos, intrusive=False, prepare=_prepare_utmos),
    ]
}


def parse_metric_names(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """Split ``"a,b"`` into names and check each exists (one clear error naming the bad one)."""
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise UsageError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    if not names:
        raise UsageError(f"no metric given (-m NAME[,NAME...]; known: {', '.join(METRICS)})")
    return names


def prepare_metrics(names: list[str]) -> None:
    """Find and load what the metrics ``names`` need (DNSMOS's models, the ``wer`` recogniser, the packages and
    weights of ViSQOL, DistillMOS, NISQA and UTMOS), once and before any scoring: a missing one is one error up
    front, not a failure at the first file (or at a training run's first validation, after steps that would be
    lost)."""
    for prepare in dict.fromkeys(METRICS[name].prepare for name in names if METRICS[name].prepare is not None):
        prepare()


def score_signals(
    est: np.ndarray, names: list[str], *, ref: np.ndarray | None = None, transcript: str | None = None
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Score one estimate (16 kHz, 1-D, same length as ``ref``) with every metric in ``names``.

    A metric that fails on this signal (e.g. PESQ finds no utterance) is returned as ``None`` with
    its reason in the second dict, instead of aborting the whole evaluation.
    """
    scores: dict[str, float | None] = {}
    failures: dict[str, str] = {}
    group_results: dict[str, dict[str, float] | Exception] = {}
    for name in names:
        metric = METRICS[name]
        if metric.intrusive and ref is None:
            scores[name] = None
            failures[name] = "needs a reference (--ref)"
            continue
        if metric.transcript and transcript is None:
            scores[name] = None
            failures[name] = "no transcript (a .txt file beside the reference audio)"
            continue
        reason = undefined_reason(metric, est, ref)
        if reason is not None:
            scores[name] = None
            failures[name] = reason
            continue
        try:
            if metric.group is not None:
                if metric.group not in group_results:
                    try:
                        group_results[metric.group] = (  # type: ignore[assignment]
                            metric.compute(est, ref=ref) if metric.intrusive else metric.compute(est)
                        )
                    except SectlError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - recorded per metric below
                        group_results[metric.group] = exc
                result = group_results[metric.group]
                if isinstance(result, Exception):
                    raise result
                scores[name] = float(result[name])
            elif metric.transcript:
                scores[name] = float(metric.compute(est, transcript=transcript))  # type: ignore[arg-type]
            else:
                value = metric.compute(est, ref=ref) if metric.intrusive else metric.compute(est)
                scores[name] = float(value)  # type: ignore[arg-type]
        except SectlError:
            raise
        except Exception as exc:  # noqa: BLE001 - third-party metrics raise many types
            scores[name] = None
            failures[name] = f"{type(exc).__name__}: {exc}".strip()
    return scores, failures
