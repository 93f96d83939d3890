#!/usr/bin/env bash
# install_torch.sh PYTHON: install torch ($TORCH_SPEC, default torch==2.13.0) into PYTHON's environment, first,
# so that everything that depends on torch finds it. Which build (the Makefile's install step):
#   - TORCH_INDEX set: from that index, e.g. https://download.pytorch.org/whl/cu126 (CUDA 12.6) or .../whl/cpu
#   - an NVIDIA GPU here (`nvidia-smi -L` lists one): pip's usual choice (PyPI's Linux wheels are CUDA builds)
#   - no GPU: pip's usual choice when it is a CPU build (a wheel already on disk, macOS, ...); when that choice
#     would pull CUDA libraries (nvidia-* packages, gigabytes), the CPU build from PyTorch's CPU index instead.
# TORCH_DRY_RUN=1 prints the pip command it would run (after a real `pip install --dry-run` of the choice).
set -euo pipefail
PY=${1:?usage: install_torch.sh PYTHON}
SPEC=${TORCH_SPEC:-torch==2.13.0}
CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

run() {
  if [ -n "${TORCH_DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi
}

if [ -n "${TORCH_INDEX:-}" ]; then
  echo "torch: $SPEC from $TORCH_INDEX"
  run "$PY" -m pip install -q "$SPEC" --extra-index-url "$TORCH_INDEX"
elif nvidia-smi -L >/dev/null 2>&1; then
  echo "torch: an NVIDIA GPU is present: $SPEC with pip's default build"
  run "$PY" -m pip install -q "$SPEC"
else
  report=$(mktemp)
  trap 'rm -f "$report"' EXIT
  # what pip would take by default, without downloading it (wheel metadata only); --ignore-installed: the
  # same answer whether or not torch is installed already
  "$PY" -m pip install -q --dry-run --ignore-installed --report "$report" "$SPEC" >/dev/null
  cuda=$("$PY" -c 'import json, sys; r = json.load(open(sys.argv[1]))
print(" ".join(i["metadata"]["name"] for i in r.get("install", []) if i["metadata"]["name"].lower().startswith("nvidia-")))' "$report")
  if [ -z "$cuda" ]; then
    echo "torch: no GPU; pip's choice for $SPEC is a CPU build"
    run "$PY" -m pip install -q "$SPEC"
  else
    echo "torch: no GPU; pip's default $SPEC would pull CUDA libraries (${cuda%% *} ...): the CPU build from $CPU_INDEX"
    run "$PY" -m pip install -q "$SPEC" --extra-index-url "$CPU_INDEX"
  fi
fi
