#!/usr/bin/env bash
# Run HERE, in the environment sectl is installed in (not on the device machine), before
# benchmarks/device_check.sh. The device machine reaches no network; its image has PyTorch 2.11, numpy,
# scipy, numba, onnx, onnxruntime, typer, rich, pyyaml, matplotlib, cython, but not the rest of sectl's
# dependencies. This puts into .device/ (ignored by git, carried by the device tool, ~40 MiB):
#   .device/wheels  every dependency the image lacks, for its Python 3.12, at the versions installed here
#                   (pydantic pins pydantic-core exactly): soundfile+cffi+pycparser, pystoi, pydantic and its
#                   parts, auraloss (the VAE's reconstruction loss), nnAudio (the VAE's CQT discriminator)
#   .device/sdist   pesq, which publishes only a source archive (built there: it has a C compiler and Cython)
#   .device/data    the small shared test audio (speech, noise, rir, vctk), not the 82 MiB speech_ivr
#   .device/models  DeepFilterNet3's official files (the MAL fine-tune and the enhance timing)
# Then:  device run --carry .device --command "bash benchmarks/device_check.sh"
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
PYTHON=${PYTHON:-python}
MISSING=(soundfile cffi pycparser pystoi pydantic pydantic-core annotated-types typing-inspection auraloss nnAudio)
mkdir -p .git/info
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf .device && mkdir -p .device/wheels .device/sdist .device/data .device/models
pinned=()
for name in "${MISSING[@]}"; do
  pinned+=("$name==$("$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")")
done
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_31_x86_64)
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    --platform any -d .device/wheels "${pinned[@]}"
"$PYTHON" -m pip install -q wheel  # pip prepares an sdist's metadata to download it
"$PYTHON" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d .device/sdist \
    "pesq==$("$PYTHON" -c "import importlib.metadata as m; print(m.version('pesq'))")"
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d .device/sdist pytest-runner  # pesq's setup_requires
cp -r "$SHARED/data/speech" "$SHARED/data/noise" "$SHARED/data/rir" "$SHARED/data/vctk" .device/data/
cp -r "$SHARED/models/deepfilternet3" .device/models/
ls .device/wheels .device/sdist
du -sh .device
