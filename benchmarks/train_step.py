"""Training step time: baseline vs each Model-as-Loss variant vs the WavLM feature loss.

The MAL paper never quantified MAL's overhead; this prints it. WavLM-Base is randomly initialised
(same architecture and cost as the real weights, which need a download).

Run: python benchmarks/train_step.py [--size small] [--batch 8] [--seconds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from sectl.losses.feature import SSLFeatureLoss
from sectl.models import build_enhancer
from sectl.train.config import resolve_config
from sectl.train.losses import LossSet, build_losses


def wavlm_base_random() -> SSLFeatureLoss:
    """The feature loss with torchaudio's WavLM-Base architecture, random weights (no download)."""
    import torchaudio

    loss = SSLFeatureLoss("tiny", layer=1)
    loss.teacher.model = torchaudio.models.wavlm_base().eval().requires_grad_(False)
    loss.teacher.layer = 6
    return loss


def step_time(losses: LossSet, model, noisy, clean, repeats: int) -> float:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        total, _ = losses(model(noisy), clean)
        opt.zero_grad()
        total.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


PRESETS = ["baseline", "mal", "mal_frozen_fe", "mal_dynamic", "wavlm_loss"]


def measure(size: str = "small", batch: int = 8, seconds: float = 2.0, repeats: int = 5) -> dict[str, tuple[float, list[str]]]:
    """Milliseconds per step and the loss terms, per preset."""
    g = torch.Generator().manual_seed(0)
    clean = 0.1 * torch.randn(batch, int(seconds * 16000), generator=g)
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=g)
    results = {}
    for preset in ["baseline", *PRESETS]:  # the first pass warms up thread pools and allocator; measured again
        torch.manual_seed(0)
        model = build_enhancer(size=size)
        config = resolve_config(preset, [f"model.size={size}"])
        if preset == "wavlm_loss":
            config["loss"]["ssl"] = 0.0
            losses = build_losses(config, model)
            losses.terms["ssl"] = wavlm_base_random()
            losses.weights["ssl"] = 1.0
        else:
            losses = build_losses(config, model, snapshot=build_enhancer(size=size))
        results[preset] = (1000 * step_time(losses, model, noisy, clean, repeats), list(losses.terms))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"model {args.size}, batch {args.batch} x {args.seconds} s, {args.threads} threads, CPU")
    results = measure(args.size, args.batch, args.seconds, args.repeats)
    base_ms = results["baseline"][0]
    for preset, (ms, terms) in results.items():
        print(f"  {preset:14s} {ms:8.1f} ms/step   {ms / base_ms:5.2f}x baseline   terms: {', '.join(terms)}")


if __name__ == "__main__":
    main()
