"""Speech-quality metrics: intrusive (PESQ, STOI/ESTOI, SI-SDR, LSD, MCD, mel distance) and non-intrusive (DNSMOS).

``evaluate`` scores files or folders; ``score_signals`` scores arrays already in memory. The names
below load their modules on first use (PEP 562), so importing this package, as every CLI command does
at start-up, does not pull in torch, pesq and pystoi.
"""

from __future__ import annotations

from sectl.lazy import lazy_attributes

DEFAULT_METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "lsd", "mcd")
"""What ``sectl eval`` reports without ``--metrics``."""

_LAZY = {
    "EvalReport": "sectl.metrics.evaluation",
    "FileResult": "sectl.metrics.evaluation",
    "evaluate": "sectl.metrics.evaluation",
    "merge_reports": "sectl.metrics.evaluation",
    "score_files": "sectl.metrics.evaluation",
    "METRICS": "sectl.metrics.registry",
    "Metric": "sectl.metrics.registry",
    "parse_metric_names": "sectl.metrics.registry",
    "prepare_metrics": "sectl.metrics.registry",
    "score_signals": "sectl.metrics.registry",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = ["DEFAULT_METRICS", *_LAZY]
