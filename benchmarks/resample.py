"""Resampling cost per rate pair: torchaudio's kernels (what sectl used for every pair before) against
``sectl.audio.resample`` now (the same kernels for the usual pairs, tap by tap for odd ones), and soxr
(``pip install soxr``; measured when importable, not a dependency).

Each row runs in a fresh process: peak memory above the baseline after imports (resident set, MB), the
offline time per second of audio (10 s of noise, one thread, best of 3), the streaming time per second fed
in 10 ms blocks, and the streaming delay (ms at the input rate; soxr: the samples it has not yet returned).

Run: python benchmarks/resample.py [--pairs 7999:16000,44100:48000,48000:16000] [--soxr-path DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time

SECONDS = 10.0
BLOCK_S = 0.01


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _streamed(feed, flush, x, block: int) -> None:
    for i in range(0, x.shape[-1], block):
        feed(x[..., i : i + block])
    flush()


def _measure(method: str, orig: int, new: int, soxr_path: str | None, queue) -> None:
    import torch

    torch.set_num_threads(1)
    x = 0.1 * torch.randn(1, int(SECONDS * orig))
    block = int(BLOCK_S * orig)
    if method == "soxr":
        if soxr_path:
            sys.path.append(soxr_path)
        import numpy as np
        import soxr

        base = _rss_mb()
        data = x[0].numpy().astype(np.float32)
        offline = _best(lambda: soxr.resample(data, orig, new))
        stream = soxr.ResampleStream(orig, new, 1, dtype="float32")
        out = sum(len(stream.resample_chunk(data[i : i + block])) for i in range(0, len(data), block))
        delay = (len(data) * new / orig - out) * 1000 / new
        streamed = _best(lambda: [soxr.ResampleStream(orig, new, 1, dtype="float32").resample_chunk(data[i : i + block])
                                  for i in range(0, len(data), block)], 1)  # fmt: skip
    else:
        from sectl.streaming.resample import Kernels, StreamingResampler

        if method == "torchaudio":  # every pair through its kernels, as before
            import torchaudio

            base = _rss_mb()
            transform = torchaudio.transforms.Resample(orig, new)
            resampler = StreamingResampler(orig, new)
            resampler.plan = Kernels(orig, new)
            offline = _best(lambda: transform(x))
        else:
            from sectl.audio import resample

            base = _rss_mb()
            resampler = StreamingResampler(orig, new)
            offline = _best(lambda: resample(x, orig, new))
        delay = resampler.latency * 1000 / orig
        streamed = _best(lambda: _streamed(resampler.feed, resampler.flush, x, block), 1)
    queue.put({"method": method, "pair": f"{orig}->{new}", "memory_mb": round(_rss_mb() - base, 1),
               "offline_ms_per_s": round(1000 * offline / SECONDS, 3), "stream_ms_per_s": round(1000 * streamed / SECONDS, 3),
               "delay_ms": round(delay, 2)})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="7999:16000,44100:48000,48000:16000")
    parser.add_argument("--soxr-path", help="a folder holding soxr (pip install --target DIR soxr)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    rows = []
    for pair in args.pairs.split(","):
        orig, new = (int(r) for r in pair.split(":"))
        for method in ("torchaudio", "sectl", "soxr"):
            queue = context.Queue()
            process = context.Process(target=_measure, args=(method, orig, new, args.soxr_path, queue))
            process.start()
            process.join()
            if process.exitcode == 0:
                rows.append(queue.get())
            else:
                rows.append({"method": method, "pair": f"{orig}->{new}", "error": f"exit {process.exitcode}"})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'pair':>13} {'method':>10} {'memory MB':>10} {'offline ms/s':>13} {'stream ms/s':>12} {'delay ms':>9}")
    for row in rows:
        if "error" in row:
            print(f"{row['pair']:>13} {row['method']:>10} {row['error']}")
            continue
        print(f"{row['pair']:>13} {row['method']:>10} {row['memory_mb']:>10} {row['offline_ms_per_s']:>13} "
              f"{row['stream_ms_per_s']:>12} {row['delay_ms']:>9}")  # fmt: skip


if __name__ == "__main__":
    main()
