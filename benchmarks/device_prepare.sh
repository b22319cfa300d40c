#!/usr/bin/env bash
# Run HERE (not on the device machine) before benchmarks/device_check.sh: the device machine reaches no
# network and lacks a few of sectl's dependencies, so this puts into .device/ (ignored by git, carried by
# the device tool, ~40 MiB):
#   .device/wheels  the missing wheels for the device's Python 3.12 (soundfile, pystoi, pydantic), .device/sdist pesq
#   .device/data    the small shared test audio (speech, noise, rir, vctk), not the 82 MiB speech_ivr
#   .device/models  DeepFilterNet3's official files (the offline SSL-loss teacher in the throughput table)
# Then:  device run --carry .device --command "bash benchmarks/device_check.sh"
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf .device && mkdir -p .device/wheels .device/data .device/models
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_31_x86_64)
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    --platform any -d .device/wheels soundfile pystoi pydantic pydantic-core annotated-types typing-inspection cffi pycparser
# pesq publishes only a source archive: the device builds it (it has a C compiler, numpy and Cython).
mkdir -p .device/sdist
python -m pip install -q wheel  # pip prepares an sdist's metadata to download it
python -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d .device/sdist pesq
cp -r "$SHARED/data/speech" "$SHARED/data/noise" "$SHARED/data/rir" "$SHARED/data/vctk" .device/data/
cp -r "$SHARED/models/deepfilternet3" .device/models/
du -sh .device
