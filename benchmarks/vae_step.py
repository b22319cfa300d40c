"""Speech-VAE training step time: vanilla vs TAS vs JMAS (the distillation overhead the paper does not give).

One full step each (discriminator update, generator update with every loss, EMA). The teacher has the
named architecture with random weights (same cost as the real ones, which need a download).

Run: python benchmarks/vae_step.py [--size small] [--teacher wavlm_large] [--batch 4] [--seconds 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
import torchaudio

import sectl.models.ssl as ssl
from sectl.train.config import resolve_config
from sectl.train.vae_task import VAETask


def random_teacher(name: str):
    """``build_ssl_model`` with the real architecture and random weights (no download)."""
    factory = ssl._FACTORIES[name][0] if name != "tiny" else ssl.tiny_wavlm
    return lambda *args, **kwargs: factory().eval().requires_grad_(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small")
    parser.add_argument("--teacher", default="wavlm_large", choices=ssl.SSL_MODELS)
    parser.add_argument("--layer", type=int, default=23)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ssl.build_ssl_model = random_teacher(args.teacher)
    batch = 0.1 * torch.randn(args.batch, int(args.seconds * 16000), generator=torch.Generator().manual_seed(0))
    print(f"VAE {args.size}, teacher {args.teacher} (random weights) layer {args.layer}, "
          f"batch {args.batch} x {args.seconds} s, {args.threads} threads, CPU")  # fmt: skip
    base = None
    for preset in ["vae_vanilla", "vae_tas", "vae_jmas", "vae_jmas_fixed", "vae_jmas_utterance"]:
        config = resolve_config(preset, [f"model.size={args.size}", f"ssl.model={args.teacher}", f"ssl.layer={args.layer}",
                                         "data.clean=.", f"train.batch_size={args.batch}"])  # fmt: skip
        task = VAETask(config, torch.device("cpu"))
        task.sampler.batch = lambda step, size: batch
        task.step(0)
        start = time.perf_counter()
        for step in range(1, args.repeats + 1):
            task.step(step)
        ms = 1000 * (time.perf_counter() - start) / args.repeats
        base = base or ms
        print(f"  {preset:20s} {ms:9.1f} ms/step   {ms / base:5.2f}x vanilla")


if __name__ == "__main__":
    main()
