#!/usr/bin/env bash
# The GPU proof, run as it is on a lent device machine, on that machine's own PyTorch (nothing is
# installed over it: the wheels from benchmarks/device_prepare.sh go to /tmp/site). Every section has a
# timeout and they add up to 555 s, so the whole check ends within 10 minutes of wall time, start-up
# included. Writes $OUT/device.md (copy it to benchmarks/results/device.md) and $OUT/log:
#   1. the tests marked `cuda` (models CUDA vs CPU, soft-DTW's CUDA kernel, streaming, CUDA's sync detector
#      around steps, a one-process torchrun NCCL run killed and resumed);
#   2. the training matrix on the GPU: every shipped preset in bf16 under torchrun (one process, NCCL), trained,
#      stopped, resumed (bit-exact), with the step guard and CUDA's sync detector set to error inside steps;
#   3. a MAL fine-tune of the pretrained DeepFilterNet3 in bf16 under torchrun (one process, NCCL);
#   4. steps/s per preset family in fp32 and bf16, and the data pipeline's examples/s per worker count;
#   5. enhance on the GPU: RTF of the default model on 10 s, files per second on a folder one file at a
#      time and 32 files per batch (and that both write the same outputs);
#   6. Ctrl-C of a training run in one process and under torchrun: the step reached saved, resumed bit for bit.
# Dry run on a CPU: DEVICE=cpu bash benchmarks/device_check.sh (sections that need CUDA report so).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
LOG="$OUT/log"
: > "$LOG"
WORK=$(mktemp -d)
started=$(date +%s)
elapsed() { echo "$(( $(date +%s) - started )) s"; }

if ! python3 -c "import soundfile, pydantic, pystoi, auraloss, nnAudio" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/wheels/*.whl >>"$LOG" 2>&1
fi
export PYTHONPATH="$PWD:/tmp/site" PYTHONUNBUFFERED=1
if ! python3 -c "import pesq" 2>/dev/null; then
  # pesq's setup.py asks for pytest-runner at build time: pip finds it among the carried files, not online
  PIP_NO_INDEX=1 PIP_FIND_LINKS="$PWD/.device/sdist" timeout 90 python3 -m pip install -q --no-deps --no-build-isolation \
      --no-cache-dir --target /tmp/site .device/sdist/pesq-* >>"$LOG" 2>&1 \
    || echo "pesq did not build (see log): PESQ metrics unavailable" | tee -a "$LOG"
fi
export SECTL_TEST_DATA="$PWD/.device/data" SECTL_TEST_MODELS="$PWD/.device/models" SECTL_MODELS_DIR="$PWD/.device/models"
export SECTL_BENCH_CLEAN=speech XDG_CACHE_HOME="$WORK/cache"
TORCHRUN=(python3 -m torch.distributed.run --standalone --nproc_per_node 1)
DATA="$PWD/.device/data"

matrix_summary() {  # cells-0.json -> "17 of 17 presets passed" and each failure's first lines
  python3 - "$1" <<'EOF'
import json, sys
try:
    cells = json.load(open(sys.argv[1]))
except OSError:
    print("no result (the run did not finish: see the log)"); sys.exit()
failed = {k: v for k, v in cells.items() if v}
print(f"{len(cells) - len(failed)} of {len(cells)} presets passed")
for preset, problems in failed.items():
    print(f"FAILED {preset}:", " | ".join(p.splitlines()[0] if p else "" for p in problems[:4])[:600])
EOF
}

report="$OUT/device.md"
{
  echo "# sectl on a GPU"
  echo
  echo "Produced by \`bash benchmarks/device_check.sh\` on $(date -u +%Y-%m-%d) (commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')), on the machine's own PyTorch."
  echo
  echo '```'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -2
  python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'nccl', torch.cuda.nccl.version() if torch.cuda.is_available() else '-')"
  echo '```'
  echo
  echo "## 1. Tests marked cuda ($(elapsed))"
  echo '```'
  timeout 90 python3 -m pytest -q -rf --tb=short -m cuda tests/test_cuda.py -p no:cacheprovider 2>&1 | tee -a "$LOG" | tail -8
  echo '```'
  echo
  echo "## 2. Training matrix on the GPU: every preset, bf16, torchrun + NCCL, step guard + CUDA sync detector ($(elapsed))"
  echo '```'
  SECTL_MATRIX_DEVICE=$DEVICE timeout 150 "${TORCHRUN[@]}" tests/train/matrix.py bf16 "$WORK/matrix" >>"$LOG" 2>&1
  echo "exit $?"
  matrix_summary "$WORK/matrix/cells-0.json"
  cp "$WORK/matrix/cells-0.json" "$OUT/matrix-cells.json" 2>/dev/null
  echo '```'
  echo
  echo "## 3. MAL fine-tune of the pretrained DeepFilterNet3, bf16, torchrun + NCCL ($(elapsed))"
  echo '```'
  timeout 75 "${TORCHRUN[@]}" -m sectl train --preset mal -o "$WORK/mal" -q --set init_from=deepfilternet3 \
      --set train.precision=bf16 --set train.device=$DEVICE --set train.steps=40 --set train.batch_size=8 \
      --set train.log_every=10 --set train.checkpoint_every=20 --set data.segment_s=2.0 --set data.workers=4 \
      --set data.clean="$DATA/speech" --set data.noise="$DATA/noise" --set data.rir="$DATA/rir" \
      --set validation.noisy="$DATA/vctk/noisy" --set validation.clean="$DATA/vctk/clean" --set validation.every=40 \
      --set validation.metric=si_sdr --set "validation.metrics=[si_sdr, estoi]" >>"$LOG" 2>&1
  echo "exit $?"
  python3 - "$WORK/mal/metrics.jsonl" <<'EOF'
import json, sys
try:
    records = [json.loads(line) for line in open(sys.argv[1])]
except OSError:
    print("no metrics.jsonl"); sys.exit()
for r in records:
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
EOF
  echo '```'
  echo
  echo "## 4. Training throughput and the data pipeline (benchmarks/train_throughput.py, small models, batch 16) ($(elapsed))"
  echo '```'
  timeout 90 python3 benchmarks/train_throughput.py --device "$DEVICE" --presets baseline mal ssl_softdtw vae_jmas \
      --precisions fp32 bf16 --size small --batch 16 --seconds 2 --steps 12 --warmup 4 --workers 0 4 8 2>>"$LOG"
  echo "exit $?"
  echo '```'
  echo
  echo "## 5. Enhance on the GPU (default model) ($(elapsed))"
  echo '```'
  mkdir -p "$WORK/folder"
  for i in $(seq 1 5); do for f in "$DATA"/vctk/noisy/*.wav; do cp "$f" "$WORK/folder/$i-$(basename "$f")"; done; done
  timeout 50 python3 - "$DEVICE" "$WORK" <<'EOF' 2>>"$LOG"
import subprocess, sys, time
from pathlib import Path
import numpy as np, soundfile as sf
sys.path.insert(0, "benchmarks")
import enhance
device, work = sys.argv[1], sys.argv[2]
print(f"RTF {device}, 10 s in memory, best of 5: {enhance.rtf_10s('default', device):.5f}")
files = sorted(Path(work, "folder").glob("*.wav"))
for batch in ("1", "32"):  # one file at a time, then the GPU default: 32 files' channels per batch
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sectl", "enhance", f"{work}/folder", "-o", f"{work}/batch{batch}",
                           "--device", device, "--batch", batch], stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    print(f"sectl enhance --batch {batch} on a folder of {len(files)} files (2-7 s each), start-up included: "
          f"exit {done.returncode}, {seconds:.1f} s, {len(files) / seconds:.1f} files/s")
worst = max(np.abs(sf.read(Path(work, "batch1", f.name))[0] - sf.read(Path(work, "batch32", f.name))[0]).max() for f in files)
print(f"--batch 32 vs --batch 1, largest difference in any output: {worst * 32768:.1f} LSB")
EOF
  echo '```'
  echo
  echo "## 6. Ctrl-C of a GPU training run: the step reached is saved and resumes bit for bit (benchmarks/stop_check.py) ($(elapsed))"
  echo '```'
  timeout 100 python3 benchmarks/stop_check.py "$DEVICE" "$WORK/stop" 2>>"$LOG"
  echo "exit $?"
  echo '```'
  echo
  echo "Total wall time of the check: $(elapsed)."
} > "$report" 2>>"$LOG"
rm -rf "$WORK"
cat "$report"
