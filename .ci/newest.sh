#!/usr/bin/env bash
# The NEWEST supported torch/torchaudio pair (CI's .ci/run tests the lowest, 2.9.1): in a fresh virtual
# environment under /tmp, install torch 2.11 + torchaudio 2.11 first (the GPU machine's torch is 2.11), then
# the project as README.md says, and
#   1. check that `pip install -e .`, and then `pip install -e ".[test]"`, into an environment that already
#      has the pair keep it: `pip freeze` lines of torch and torchaudio before and after must be equal;
#   2. run the test suite, stopping at the first failure (skipped with --no-tests).
# Usage: .ci/newest.sh [--no-tests] [extra pytest arguments]
# TORCH_SPEC / TORCHAUDIO_SPEC override the pair (default torch==2.11.* torchaudio==2.11.0: torchaudio 2.11.1,
# which requires torch>=2.11, is built for torch 2.13+ and fails to import beside torch 2.11.0; pyproject.toml says more).
# PyPI has no CPU-only torch 2.11 for Linux, so this downloads the CUDA build and its nvidia-* wheels (several
# GB in the venv): the venv is deleted on every exit, failure and Ctrl-C included.
set -euo pipefail
cd "$(dirname "$0")/.."

tests=1
if [[ "${1:-}" == "--no-tests" ]]; then tests=0; shift; fi
torch_spec="${TORCH_SPEC:-torch==2.11.*}"
torchaudio_spec="${TORCHAUDIO_SPEC:-torchaudio==2.11.0}"

work="$(mktemp -d /tmp/sectl-newest.XXXXXX)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The pair is the one named above, not one a caller's PIP_CONSTRAINT holds (CI exports the lowest pair).
unset PIP_CONSTRAINT
pairs() { pip freeze | grep -iE '^(torch|torchaudio)([=@ ]|$)' || true; }
same_pair() {  # same_pair BEFORE AFTER WHAT
  if [[ "$1" != "$2" ]]; then
    printf 'FAIL: %s changed torch/torchaudio:\n  before: %s\n  after:  %s\n' "$3" "${1//$'\n'/ }" "${2//$'\n'/ }" >&2
    exit 1
  fi
  echo "ok: $3 kept ${2//$'\n'/ }"
}

start=$SECONDS
python3 -m venv "$work/venv"
source "$work/venv/bin/activate"
pip install "$torch_spec" "$torchaudio_spec"
before="$(pairs)"
echo "installed first: ${before//$'\n'/ }"
python -c "import torch, torchaudio"  # a pair that cannot load stops here, before the project is installed

pip install -e .
after_plain="$(pairs)"
same_pair "$before" "$after_plain" 'pip install -e .'

pip install -e ".[test]"
after_test="$(pairs)"
same_pair "$before" "$after_test" 'pip install -e ".[test]"'

python -c "import torch, torchaudio; print('torch', torch.__version__, 'torchaudio', torchaudio.__version__)"
echo "install: $((SECONDS - start)) s"

if (( tests )); then
  start=$SECONDS
  status=0
  python -m pytest -q -x "$@" || status=$?
  echo "tests: $((SECONDS - start)) s, pytest exit $status"
  exit "$status"
fi
