#!/usr/bin/env bash
# Model as Loss (Phaye, Cernak & Harper, Interspeech 2025) at CPU scale, on ../shared/data:
# fine-tune the pretrained NSNet2 (stage 1 = the published weights) for $STEPS steps with the
# conventional losses (`finetune`) and with each MAL variant, then
#   1. score every system on the 6 vctk pairs: PESQ-WB, ESTOI, LSD, MCD, DNSMOS OVRL (the paper's
#      NISQA needs weights this machine cannot download);
#   2. run the paper's self-consistency experiment: each model applied to its own output $ITER times,
#      every step averaged over the files.
#   SHARED=../shared/data OUT=runs/mal_paper STEPS=150 bash examples/mal_paper.sh
# A killed run continues where it stopped when the script is started again.
set -euo pipefail
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/mal_paper}
STEPS=${STEPS:-150}
ITER=${ITER:-3}
export SECTL_MODELS_DIR=${SECTL_MODELS_DIR:-$(dirname "$SHARED")/models}
export SECTL_DNSMOS_DIR=${SECTL_DNSMOS_DIR:-$SECTL_MODELS_DIR/dnsmos}
VCTK=$SHARED/vctk
export COLUMNS=${COLUMNS:-160}  # wide tables in the .txt copies
PRESETS=(finetune mal mal_bottleneck mal_frozen_fe mal_dynamic)

for preset in "${PRESETS[@]}"; do
  run=$OUT/$preset
  if [ -f "$run/checkpoints/last.pt" ]; then
    sectl train --output "$run" --resume --quiet
  else
    extra=()
    [ "$preset" = mal_frozen_fe ] && extra=(--set mal.frozen_levels=1)  # NSNet2 has 2 learned encoder levels
    sectl train --preset "$preset" --output "$run" --quiet \
      --set init_from=nsnet2 --set "train.steps=$STEPS" --set train.threads=2 \
      --set "data.clean=[$SHARED/speech_ivr, $SHARED/speech]" --set "data.noise=$SHARED/noise" --set "data.rir=$SHARED/rir" \
      --set "validation.noisy=$VCTK/noisy" --set "validation.clean=$VCTK/clean" "${extra[@]}"
  fi
  # The last checkpoint: best.pt is chosen on these very vctk files (validation), so it would flatter the scores.
  sectl enhance "$VCTK/noisy" --output "$OUT/enhanced/$preset" --model "$run/checkpoints/last.pt" --overwrite
done
sectl enhance "$VCTK/noisy" --output "$OUT/enhanced/nsnet2" --model nsnet2 --overwrite

systems=(--est "$VCTK/noisy" --est "$OUT/enhanced/nsnet2")
for preset in "${PRESETS[@]}"; do systems+=(--est "$OUT/enhanced/$preset"); done
sectl eval --ref "$VCTK/clean" "${systems[@]}" -m pesq_wb,estoi,lsd,mcd,dnsmos_ovrl \
  --csv "$OUT/scores.csv" --plot "$OUT/scores.png" --overwrite | tee "$OUT/scores.txt"

models=(--model nsnet2)
for preset in "${PRESETS[@]}"; do models+=(--model "$OUT/$preset/checkpoints/last.pt"); done
sectl iterate "$VCTK/noisy" --ref "$VCTK/clean" --n "$ITER" "${models[@]}" \
  --plot "$OUT/iterate.png" --overwrite | tee "$OUT/iterate.txt"
