#!/usr/bin/env bash
# DeepFilterNet's post-filter (sectl enhance --post-filter) against none, on the 6 real vctk noisy/clean
# pairs: PESQ-WB, SI-SDR and DNSMOS (needs the DNSMOS models: SECTL_DNSMOS_DIR, or ../shared/models/dnsmos).
# Run: bash benchmarks/post_filter.sh [DATA_DIR]     (prints sectl eval's comparison table)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$(realpath "${1:-$HERE/../../shared/data}")
export SECTL_DNSMOS_DIR=${SECTL_DNSMOS_DIR:-$HERE/../../shared/models/dnsmos}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
sectl enhance "$DATA/vctk/noisy" -o "$OUT/none" --json > /dev/null
sectl enhance "$DATA/vctk/noisy" -o "$OUT/post_filter" --post-filter --json > /dev/null
cd "$OUT"
sectl eval --ref "$DATA/vctk/clean" --est none --est post_filter --metrics pesq_wb,si_sdr,dnsmos_sig,dnsmos_bak,dnsmos_ovrl
