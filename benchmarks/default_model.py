"""The README's table of models, from one command.

Enhances ../shared/data/vctk/noisy with each model, scores noisy and enhanced against the clean
references (PESQ-WB, ESTOI, SI-SDR, DNSMOS OVRL when its models are found), and measures the
single-thread real-time factor on a 10 s 16 kHz input, resampling to the model's rate and back included.

Run: SECTL_MODELS_DIR=../shared/models python benchmarks/default_model.py --dnsmos \
         --models default deepfilternet3 nsnet2 gtcrn gtcrn-dns3 sectl-demucs
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from sectl.enhance import enhance_paths, enhance_tensor
from sectl.metrics import evaluate
from sectl.models import count_parameters
from sectl.engines import load_enhancer

METRICS = ["pesq_wb", "estoi", "si_sdr"]


def real_time_factor(model, seconds: float = 10.0, repeats: int = 5) -> float:
    torch.set_num_threads(1)
    x = 0.1 * torch.randn(1, int(seconds * 16000), generator=torch.Generator().manual_seed(0))
    enhance_tensor(model, x, 16000)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        enhance_tensor(model, x, 16000)
        best = min(best, time.perf_counter() - start)
    return best / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vctk", type=Path, default=Path("../shared/data/vctk"))
    parser.add_argument("--models", nargs="+", default=["default"], help="model names, run folders or checkpoints")
    parser.add_argument("--dnsmos", action="store_true", help="also DNSMOS OVRL (needs its models)")
    args = parser.parse_args()
    metrics = METRICS + (["dnsmos_ovrl"] if args.dnsmos else [])
    print("| | " + " | ".join(metrics) + " | parameters | RTF (1 CPU thread, 10 s at 16 kHz) |")
    print("|---" * (len(metrics) + 3) + "|")
    noisy = evaluate(args.vctk / "noisy", ref=args.vctk / "clean", metrics=metrics).mean
    print(f"| noisy input | {cells(noisy, metrics)} | - | - |")
    for name in args.models:
        model = load_enhancer(name)
        with tempfile.TemporaryDirectory() as out:
            enhance_paths([args.vctk / "noisy"], out, model=model)
            scores = evaluate(out, ref=args.vctk / "clean", metrics=metrics).mean
        rtf = real_time_factor(model)
        print(f"| {name} | {cells(scores, metrics)} | {size(count_parameters(model))} | {rtf:.4f} |")


def size(parameters: int) -> str:
    """``2.13 M``, or ``23.7 K`` for the small models (GTCRN)."""
    return f"{parameters / 1e6:.2f} M" if parameters >= 100_000 else f"{parameters / 1e3:.1f} K"


def cells(scores: dict, metrics: list[str]) -> str:
    return " | ".join(f"{scores[m]:.3f}" if m != "si_sdr" else f"{scores[m]:.2f} dB" for m in metrics)


if __name__ == "__main__":
    main()
