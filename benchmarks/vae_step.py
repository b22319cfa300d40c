"""Speech-VAE training step time: vanilla vs TAS vs JMAS (the distillation overhead the paper does not give).

One full step each (a discriminator update and a generator update with every loss, and the EMA: the
presets alternate the two, so two of their steps cost about one of these). The teacher has the named
architecture with random weights (same cost as the real ones, which need a download). ``--spectral``
picks the second discriminator group: ``cqt`` (the release's, the presets' default) or ``stft``.

Run: python benchmarks/vae_step.py [--size small] [--teacher wavlm_large] [--batch 4] [--seconds 1] [--threads 2]
     [--spectral cqt|stft]
"""

from __future__ import annotations

import argparse
import time

import torch

import sectl.models.teachers.ssl as ssl
from sectl.train.config import resolve_config
from sectl.train.vae_task import VAETask


def random_teacher(name: str):
    """``build_ssl_model`` with the real architecture and random weights (no download)."""
    factory = ssl._FACTORIES[name][0] if name != "tiny" else ssl.tiny_wavlm
    return lambda *args, **kwargs: factory().eval().requires_grad_(False)


PRESETS = ["vae_vanilla", "vae_tas", "vae_jmas", "vae_jmas_fixed", "vae_jmas_utterance"]


def measure(size: str = "small", teacher: str = "wavlm_large", layer: int = 23, batch: int = 4, seconds: float = 1.0,
            repeats: int = 3, spectral: str = "cqt") -> dict[str, float]:  # fmt: skip
    """Milliseconds per full VAE step, per preset."""
    ssl.build_ssl_model = random_teacher(teacher)
    audio = 0.1 * torch.randn(batch, int(seconds * 16000), generator=torch.Generator().manual_seed(0))
    results = {}
    for preset in PRESETS:
        config = resolve_config(preset, [f"model.size={size}", f"ssl.model={teacher}", f"ssl.layer={layer}",
                                         "data.clean=.", f"train.batch_size={batch}", "vae.alternate=false",
                                         f"vae.spectral_discriminator={spectral}"])  # fmt: skip
        task = VAETask(config, torch.device("cpu"))
        task.step(0, audio)
        start = time.perf_counter()
        for step in range(1, repeats + 1):
            task.step(step, audio)
        float(task.step(repeats + 1, audio).record["loss"])  # steps are asynchronous on a GPU: wait for them
        results[preset] = 1000 * (time.perf_counter() - start) / (repeats + 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small")
    parser.add_argument("--teacher", default="wavlm_large", choices=ssl.SSL_MODELS)
    parser.add_argument("--layer", type=int, default=23)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spectral", default="cqt", choices=["cqt", "stft"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"VAE {args.size}, teacher {args.teacher} (random weights) layer {args.layer}, "
          f"batch {args.batch} x {args.seconds} s, {args.threads} threads, CPU, {args.spectral} discriminators")  # fmt: skip
    results = measure(args.size, args.teacher, args.layer, args.batch, args.seconds, args.repeats, args.spectral)
    for preset, ms in results.items():
        print(f"  {preset:20s} {ms:9.1f} ms/step   {ms / results['vae_vanilla']:5.2f}x vanilla")


if __name__ == "__main__":
    main()
