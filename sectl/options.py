"""Option values several commands share, checked without importing torch, so that a typo answers at
once (a fraction of a second, not the seconds torch takes to import). The library functions that use
these values call the same checks, so Python callers get the same errors."""

from __future__ import annotations

import os
import re

from sectl.errors import ConfigError, UsageError

ENGINES = ("auto", "torch", "onnxruntime")
"""What runs an enhancer: see :func:`sectl.engines.inference_model`."""

DEVICE_NAME = re.compile(r"auto|cpu|meta|mps|(cuda|xpu)(:\d+)?")  # meta: shapes only, for tests


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise UsageError(f"--engine: expected one of {', '.join(ENGINES)}, got {engine!r}")


def check_device_name(name: str, what: str = "--device") -> None:
    """The spelling of a device (whether it exists is :func:`sectl.device.resolve_device`'s question)."""
    if not DEVICE_NAME.fullmatch(name):
        raise ConfigError(f"{what}: unknown device {name!r}; use auto, cpu, cuda or cuda:N")


def check_chunk_s(chunk_s: float) -> None:
    if not (0 < chunk_s < 86400):  # also refuses inf and nan
        raise UsageError(f"--chunk: expected a length in seconds (0 < s < 86400), got {chunk_s}")


FEATURE_KINDS = ("mfcc", "ssl", "model")
"""Feature spaces ``sectl align`` aligns in (:func:`sectl.align.feature_extractor`)."""


EXPORT_FORMATS = {".onnx": "ONNX graph", ".pt": "inference checkpoint"}
"""What ``sectl export -o NAME.<suffix>`` writes (:func:`sectl.models.io.export.export_model`)."""


def check_export_target(out: str, stream: bool = False) -> str:
    """The suffix of an export target, once it names a format (and ``--stream``, kept for old scripts,
    applies to it)."""
    suffix = os.path.splitext(str(out))[1]
    if suffix not in EXPORT_FORMATS:
        choices = " or ".join(f"NAME{s} ({what})" for s, what in EXPORT_FORMATS.items())
        raise UsageError(f"{out}: choose the format by the name: {choices}")
    if stream and suffix != ".onnx":
        raise UsageError("--stream applies to ONNX exports (-o NAME.onnx)")
    return suffix


MIN_STREAM_RATE, MAX_STREAM_RATE = 1000, 768_000
"""Sample rates live streams take (``enhance --stream``): any real source, and resampling stays bounded."""


def check_raw_rate(rate: int | None) -> None:
    """``--raw RATE``: a rate a stream takes (a WAV header's rate is checked when it is read)."""
    if rate is not None and not MIN_STREAM_RATE <= rate <= MAX_STREAM_RATE:
        raise UsageError(f"--raw {rate}: streams take {MIN_STREAM_RATE} to {MAX_STREAM_RATE} Hz")


def parse_systems(specs: list[str | os.PathLike]) -> list[tuple[str, str]]:
    """``(name, path)`` of each ``--est``: ``NAME=path`` names a system (``--est DF3=out_df3/``); a bare path
    is named after its folder or file, or its whole path where two names repeat. A path that exists as
    written is taken whole, even with an ``=`` in it; a repeated name is refused (one table row each)."""
    named = [_split_system(str(spec)) for spec in specs]
    bare = [os.path.basename(os.path.normpath(p)) or p for _, p in named]
    unnamed = [b for (n, _), b in zip(named, bare) if n is None]
    names = [n if n is not None else (os.path.normpath(p) if unnamed.count(b) > 1 else b) for (n, p), b in zip(named, bare)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"--est: system name {repeated[0]!r} given twice; name the systems, e.g. --est A=folder/")
    return [(n, p) for n, (_, p) in zip(names, named)]


def system_path(spec: str | os.PathLike) -> str:
    """The path of one ``--est [NAME=]PATH``."""
    return _split_system(str(spec))[1]


def _split_system(spec: str) -> tuple[str | None, str]:
    name, sep, path = spec.partition("=")
    if not sep or os.path.exists(spec) or not name or not path:
        return None, spec
    return name, path


AUDIO_FORMATS = ("wav", "flac", "opus")
"""What ``sectl report --audio-format`` writes: what every current browser plays (opus for small pages)."""


def check_audio_format(fmt: str) -> None:
    if fmt not in AUDIO_FORMATS:
        raise UsageError(f"--audio-format: expected one of {', '.join(AUDIO_FORMATS)}, got {fmt!r}")


SELECT_ORDERS = ("random", "worst", "best", "spread")
"""How ``sectl report --select N`` picks utterances (:func:`sectl.report.data.select`)."""


def parse_select_by(spec: str) -> tuple[str, str | None]:
    """``random`` or ``worst|best|spread:METRIC`` -> ``(order, metric)``."""
    order, _, metric = spec.partition(":")
    if order not in SELECT_ORDERS or (order == "random") != (not metric):
        raise UsageError(f"--select-by: expected random, or worst, best or spread followed by :METRIC (e.g. worst:pesq_wb), got {spec!r}")
    return order, metric or None
