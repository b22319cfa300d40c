#!/usr/bin/env bash
# Fine-tune GTCRN's DNS3 checkpoint (`gtcrn-dns3`, which has not seen the vctk pairs) on a CPU with the
# Model-as-Loss preset (`mal`: a frozen snapshot of GTCRN's own encoder is the loss) and with the
# soft-DTW SSL preset (`ssl_softdtw`: soft-DTW divergence between teacher features of the output and of
# a speed-perturbed clean reference), then score the published model and each run's last checkpoint on
# the 6 vctk pairs (PESQ-WB, ESTOI, SI-SDR, DNSMOS OVRL). The two runs train at once, one CPU thread
# and one process each (`data.workers=0`); rerunning the script resumes unfinished runs and reuses
# finished ones (benchmarks/finetune_pretrained.py).
#
# Control (CONTROL=1, the default): GTCRN has batch norms, and training updates their running statistics
# whatever the loss; a run of the `mal` preset at lr 1e-12 (weights unchanged, batch-norm statistics
# re-estimated on the training mixtures) for 100 steps shows what that alone does. Its table prints the
# row as `mal`; the README calls it "batch-norm statistics only".
#
# Teacher of `ssl_softdtw`: the preset's is HuBERT Base (layer 12). Its weights are a download; this
# offline machine has none, so the teacher defaults to DeepFilterNet3's encoder embedding (layer 7,
# 10 ms frames), a frozen pretrained speech encoder that is found offline, but not HuBERT's phonetic
# representation. Where HuBERT's weights exist:
#   TEACHER="ssl.model=hubert_base ssl.layer=12 ssl.checkpoint=/path/to/hubert_base.pt"
#
#   SHARED=../shared/data OUT=runs/finetune_gtcrn STEPS=800 bash examples/finetune_gtcrn.sh
set -euo pipefail
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/finetune_gtcrn}
STEPS=${STEPS:-800}
TEACHER=${TEACHER:-ssl.model=deepfilternet3 ssl.layer=7}
export SECTL_MODELS_DIR=${SECTL_MODELS_DIR:-$(dirname "$SHARED")/models}
export SECTL_DNSMOS_DIR=${SECTL_DNSMOS_DIR:-$SECTL_MODELS_DIR/dnsmos}
export OMP_NUM_THREADS=1
HERE=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}
read -r -a PRESETS <<< "${PRESETS:-mal ssl_softdtw}"  # PRESETS="mal ssl_softdtw finetune" adds the conventional losses

mkdir -p "$OUT"
# shellcheck disable=SC2086  # TEACHER is a list of key=value overrides
common=(--shared "$SHARED" --out "$OUT" --steps "$STEPS" --threads 1 --models gtcrn-dns3 --set data.workers=0 $TEACHER)
pids=()
for preset in "${PRESETS[@]}"; do
  "$PYTHON" "$HERE/benchmarks/finetune_pretrained.py" "${common[@]}" --presets "$preset" --train-only \
    > "$OUT/train-$preset.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
# Every run is finished: this invocation only scores (the published model and each last checkpoint).
"$PYTHON" "$HERE/benchmarks/finetune_pretrained.py" "${common[@]}" --presets "${PRESETS[@]}" | tee "$OUT/table.md"
if [ "${CONTROL:-1}" = 1 ]; then
  mkdir -p "$OUT/bn_only"
  "$PYTHON" "$HERE/benchmarks/finetune_pretrained.py" --shared "$SHARED" --out "$OUT/bn_only" --steps 100 --threads 1 \
    --models gtcrn-dns3 --presets mal --set data.workers=0 train.lr=1e-12 | tee "$OUT/bn_only/table.md"
fi
# Per-file wins-losses against the published model and 95 % intervals (6 files: wide).
systems=(--est "published=$OUT/enhanced/gtcrn-dns3")
if [ "${CONTROL:-1}" = 1 ]; then systems+=(--est "bn_only=$OUT/bn_only/enhanced/gtcrn-dns3-mal"); fi
for preset in "${PRESETS[@]}"; do systems+=(--est "$preset=$OUT/enhanced/gtcrn-dns3-$preset"); done
COLUMNS=${COLUMNS:-160} "$PYTHON" -m sectl eval --ref "$SHARED/vctk/clean" "${systems[@]}" \
  -m pesq_wb,estoi,si_sdr,dnsmos_ovrl | tee "$OUT/scores_vs_published.txt"
