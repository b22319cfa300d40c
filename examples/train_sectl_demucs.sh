#!/usr/bin/env bash
# Reproduce the bundled Demucs model (sectl/weights/sectl_demucs.pt, `--model sectl-demucs`) on a CPU machine.
#   SHARED=../shared/data CORPUS=data/synth bash examples/train_sectl_demucs.sh
# SHARED: the real speech/noise/rir/vctk folders; CORPUS: where the espeak-ng corpus is synthesised.
set -euo pipefail
SHARED=${SHARED:-../shared/data}
CORPUS=${CORPUS:-data/synth}
RUN=${RUN:-runs/sectl_demucs}
[ -d "$CORPUS/speech" ] || python examples/synthesize_corpus.py --out "$CORPUS" --utterances 2000 --babble 60 --seed 0
sectl train --preset sectl_demucs --out "$RUN" \
  --set "data.clean=[$CORPUS/speech, $SHARED/speech]" \
  --set "data.noise=[$CORPUS/noise, $SHARED/noise]" \
  --set "data.rir=$SHARED/rir" \
  --set "validation.noisy=$SHARED/vctk/noisy" \
  --set "validation.clean=$SHARED/vctk/clean" \
  "$@"
# Package the best checkpoint's weights (see sectl/weights/README.md for the format).
python -m sectl.models.io.export "$RUN" sectl/weights/sectl_demucs.pt
