"""Speech-quality metrics: intrusive (PESQ, STOI/ESTOI, SI-SDR, LSD, MCD) and non-intrusive (DNSMOS).

``evaluate`` scores files or folders; ``score_signals`` scores arrays already in memory.
"""

from sectl.metrics.evaluate import EvalReport, FileResult, evaluate, score_files
from sectl.metrics.registry import DEFAULT_METRICS, METRICS, Metric, parse_metric_names, score_signals

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "EvalReport",
    "FileResult",
    "Metric",
    "evaluate",
    "parse_metric_names",
    "score_files",
    "score_signals",
]
