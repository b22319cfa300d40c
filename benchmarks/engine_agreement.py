"""How closely onnxruntime's cached graph reproduces PyTorch, per model, on the real vctk files: SI-SDR of
the onnxruntime output against the PyTorch one (float), and the largest difference in 16-bit PCM steps
(LSB) once both are written as 16-bit WAV, as `sectl enhance` writes them.

Run: python benchmarks/engine_agreement.py [--models default nsnet2]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SECTL_TEST_DATA", REPO.parent / "shared" / "data"))
os.environ.setdefault("SECTL_MODELS_DIR", str(REPO.parent / "shared" / "models"))


def pcm16(x: torch.Tensor, rate: int) -> np.ndarray:
    """The 16-bit samples `sectl enhance` would write for ``x`` (through the same writer)."""
    import tempfile

    import soundfile as sf

    from sectl.audio import write_audio

    with tempfile.TemporaryDirectory() as tmp:
        write_audio(Path(tmp) / "x.wav", x, rate, subtype="PCM_16")
        return sf.read(Path(tmp) / "x.wav", dtype="int16")[0].astype(np.int32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["default", "nsnet2"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    from sectl.audio import read_audio
    from sectl.engines import inference_model, load_enhancer
    from sectl.enhance import enhance_tensor
    from sectl.metrics.intrusive import si_sdr

    files = sorted((DATA / "vctk" / "noisy").glob("*.wav"))
    print(f"{'model':10} {'file':14} {'SI-SDR dB':>10} {'max LSB':>8}")
    for name in args.models:
        model = load_enhancer(name)
        graph = inference_model(model, "onnxruntime")
        for path in files:
            audio = read_audio(path)
            reference = enhance_tensor(model, audio.samples, audio.sample_rate)[0]
            fast = enhance_tensor(graph, audio.samples, audio.sample_rate)[0]
            agreement = si_sdr(fast.numpy().astype(np.float64), ref=reference.numpy().astype(np.float64))
            lsb = int(np.abs(pcm16(fast, audio.sample_rate) - pcm16(reference, audio.sample_rate)).max())
            print(f"{name:10} {path.name:14} {agreement:10.1f} {lsb:8d}")


if __name__ == "__main__":
    main()
