#!/usr/bin/env bash
# Position-invariant fine-tuning through a frozen teacher (arXiv 2601.21084) at CPU scale, on
# ../shared/data: fine-tune the pretrained NSNet2 for $STEPS steps with SSL-MSE, SSL-MSE-PAD,
# SSL-softDTW (0.1 grid) and SSL-softDTW (0.05 grid), next to the conventional-loss fine-tune, then
#   1. the positional-exploitation diagnostic of the teacher on one recording;
#   2. score every system on the 6 vctk pairs (PESQ-WB, ESTOI, SI-SDR, DNSMOS OVRL, and WER when a
#      recogniser and transcripts are available: ASR_MODEL=wav2vec2.pt, clean/x.txt).
# The paper's teacher is HuBERT; this offline machine cannot download it, so the teacher defaults to
# DeepFilterNet3's encoder embedding (layer 7, 10 ms frames), the only pretrained speech encoder here.
# With the weights: TEACHER="--set ssl.model=hubert_base --set ssl.layer=12 --set ssl.checkpoint=hubert.pt".
#   SHARED=../shared/data OUT=runs/position_paper STEPS=100 bash examples/position_invariant_paper.sh
set -euo pipefail
SHARED=${SHARED:-../shared/data}
OUT=${OUT:-runs/position_paper}
STEPS=${STEPS:-100}
TEACHER=${TEACHER:---set ssl.model=deepfilternet3 --set ssl.layer=7}
export SECTL_MODELS_DIR=${SECTL_MODELS_DIR:-$(dirname "$SHARED")/models}
export SECTL_DNSMOS_DIR=${SECTL_DNSMOS_DIR:-$SECTL_MODELS_DIR/dnsmos}
export COLUMNS=${COLUMNS:-160}
VCTK=$SHARED/vctk
PRESETS=(finetune ssl_mse ssl_mse_pad ssl_softdtw ssl_softdtw_fine)

mkdir -p "$OUT"
# shellcheck disable=SC2086  # TEACHER is a list of options
sectl align --diagnose-position "$SHARED/speech/arctic_aew_a0001.wav" --features model --model deepfilternet3 \
  --plot "$OUT/position.png" --overwrite | tee "$OUT/position.txt"

for preset in "${PRESETS[@]}"; do
  run=$OUT/$preset
  if [ -f "$run/checkpoints/last.pt" ]; then
    sectl train --output "$run" --resume --quiet
  else
    # shellcheck disable=SC2086
    sectl train --preset "$preset" --output "$run" --quiet $TEACHER \
      --set init_from=nsnet2 --set "train.steps=$STEPS" --set train.threads=2 \
      --set train.batch_size=4 --set data.segment_s=1.0 \
      --set "data.clean=[$SHARED/speech_ivr, $SHARED/speech]" --set "data.noise=$SHARED/noise" --set "data.rir=$SHARED/rir" \
      --set "validation.noisy=$VCTK/noisy" --set "validation.clean=$VCTK/clean"
  fi
  # The last checkpoint: best.pt is chosen on these very vctk files (validation), so it would flatter the scores.
  sectl enhance "$VCTK/noisy" --output "$OUT/enhanced/$preset" --model "$run/checkpoints/last.pt" --overwrite
done
sectl enhance "$VCTK/noisy" --output "$OUT/enhanced/nsnet2" --model nsnet2 --overwrite

metrics=pesq_wb,estoi,si_sdr,dnsmos_ovrl
asr=()
if [ -n "${ASR_MODEL:-}" ]; then metrics=$metrics,wer; asr=(--asr-model "$ASR_MODEL"); fi
systems=(--est "$VCTK/noisy" --est "$OUT/enhanced/nsnet2")
for preset in "${PRESETS[@]}"; do systems+=(--est "$OUT/enhanced/$preset"); done
sectl eval --ref "$VCTK/clean" "${systems[@]}" -m "$metrics" "${asr[@]}" \
  --csv "$OUT/scores.csv" --plot "$OUT/scores.png" --overwrite | tee "$OUT/scores.txt"
