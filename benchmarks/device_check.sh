#!/usr/bin/env bash
# The GPU proof, run on a lent device machine (prepared by benchmarks/device_prepare.sh; under 8 minutes on
# one H200; DEVICE=cpu BATCH=2 STEPS=4 WARMUP=1 dry-runs it on a CPU). Writes $OUT/device.md (copy it to benchmarks/results/device.md) and $OUT/log:
#   1. the tests marked `cuda` (models CUDA vs CPU, soft-DTW CUDA kernel, encode on CUDA, no host sync in a
#      training step, a one-process torchrun NCCL run killed and resumed);
#   2. train steps/s fp32 vs bf16 for baseline, mal, ssl_softdtw, vae_jmas (small), and the data pipeline;
#   3. enhance RTF of the default model on the GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
LOG="$OUT/log"
# Only what this Python lacks (the device image has torch, numba, typer, rich, onnx..., not these).
if ! python3 -c "import soundfile, pydantic, pystoi" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/wheels/*.whl >>"$LOG" 2>&1
fi
if ! python3 -c "import pesq" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target /tmp/site .device/sdist/pesq-* >>"$LOG" 2>&1 \
    || echo "pesq did not build (see $LOG)" | tee -a "$LOG"
fi
export PYTHONPATH="$PWD:/tmp/site" PYTHONUNBUFFERED=1
export SECTL_TEST_DATA="$PWD/.device/data" SECTL_TEST_MODELS="$PWD/.device/models" SECTL_MODELS_DIR="$PWD/.device/models"
export SECTL_BENCH_CLEAN=speech
report="$OUT/device.md"
{
  echo "# sectl on a GPU"
  echo
  echo "Produced by \`bash benchmarks/device_check.sh\` on $(date -u +%Y-%m-%d) (commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))."
  echo
  echo '```'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
  echo '```'
  echo
  echo "## Tests marked cuda"
  echo '```'
  timeout 240 python3 -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider 2>&1 | tail -15
  echo '```'
  echo
  echo "## Training throughput (benchmarks/train_throughput.py)"
  echo '```'
  timeout 240 python3 benchmarks/train_throughput.py --device ${DEVICE:-cuda} --presets baseline mal ssl_softdtw vae_jmas \
      --precisions fp32 bf16 --size small --batch ${BATCH:-16} --seconds 2 --steps ${STEPS:-30} --warmup ${WARMUP:-10} --workers 0 2 4 8 2>>"$LOG"
  echo '```'
  echo
  echo "## Enhance on the GPU (default model, 10 s in memory, best of 5)"
  echo '```'
  timeout 60 python3 -c "import sys; sys.path.insert(0, 'benchmarks'); import enhance; print('RTF ${DEVICE:-cuda}', round(enhance.rtf_10s('default', '${DEVICE:-cuda}'), 5)); print('RTF cpu (1 thread)', round(enhance.rtf_10s('default', 'cpu'), 5))" 2>>"$LOG"
  echo '```'
} > "$report" 2>>"$LOG"
cat "$report"
