#!/usr/bin/env bash
# The listening report of the bundled examples: enhance examples/noisy with sectl's default model, then
# write a page that plays noisy, enhanced and clean side by side with their scores (open OUT/report/index.html).
#   bash examples/report_examples.sh [OUT]        # OUT defaults to report-examples/
# SECTL overrides the command (e.g. SECTL="python -m sectl"). Run again: the enhanced files and the page are replaced.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-report-examples}"
read -r -a sectl <<< "${SECTL:-sectl}"
"${sectl[@]}" enhance "$here/noisy" -o "$out/enhanced" --overwrite
"${sectl[@]}" report --ref "$here/clean" --est "noisy=$here/noisy" --est "enhanced=$out/enhanced" \
  -m pesq_wb,stoi,si_sdr --title "sectl report: the bundled examples" -o "$out/report" --overwrite
echo "open $out/report/index.html"
