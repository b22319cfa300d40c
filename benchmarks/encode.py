"""Speech-VAE encode/decode speed and memory: peak resident memory stays flat as files grow.

Each duration runs in a fresh process: encode a file of noise-like speech level to latents, then decode
the latents, with a randomly initialised VAE of ``--size`` (same cost as trained weights).

Run: python benchmarks/encode.py [--size small] [--minutes 1 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

CHILD = """
import json, resource, sys, time, torch
torch.set_num_threads(int(sys.argv[4]))
from sectl import codec
from sectl.models import build_codec
torch.manual_seed(0)
vae = build_codec("speech_vae", sys.argv[1]).eval()
start = time.perf_counter()
codec.encode_file(vae, sys.argv[2], sys.argv[3], "benchmark")
encoded = time.perf_counter()
codec.decode_file(vae, sys.argv[3], sys.argv[3] + ".wav", "benchmark")
print(json.dumps({"encode_s": encoded - start, "decode_s": time.perf_counter() - encoded,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"VAE {args.size}, {args.threads} thread(s), CPU")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            wav = Path(tmp) / f"{minutes}.wav"
            sf.write(wav, (0.05 * np.random.default_rng(0).standard_normal(int(minutes * 60 * 16000))).astype(np.float32), 16000)
            out = subprocess.run([sys.executable, "-c", CHILD, args.size, str(wav), str(wav) + ".npz", str(args.threads)],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
            r = json.loads(out.strip().splitlines()[-1])
            seconds = minutes * 60
            print(f"  {minutes:4.1f} min: encode RTF {r['encode_s'] / seconds:.4f}, decode RTF {r['decode_s'] / seconds:.4f}, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
