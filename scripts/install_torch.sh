#!/usr/bin/env bash
# Install PyTorch into the environment of $1 (a python executable), choosing the build:
#   - a machine with an NVIDIA GPU gets the default (CUDA) wheel from PyPI;
#   - a machine without one gets a CPU build: a local wheel if pip already finds one
#     (find-links, a wheelhouse), else PyTorch's CPU index. An unpinned `pip install torch`
#     on Linux would pull several GB of CUDA libraries a CPU machine cannot use.
# TORCH_VERSION overrides the version; TORCH_INDEX_URL forces an index.
set -euo pipefail
py=${1:-python3}
version=${TORCH_VERSION:-2.13.0}

if "$py" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$version' else 1)" 2>/dev/null; then
  echo "torch $version already installed"
  exit 0
fi

if [ -n "${TORCH_INDEX_URL:-}" ]; then
  "$py" -m pip install --no-deps "torch==$version" --index-url "$TORCH_INDEX_URL"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "NVIDIA GPU found: installing the CUDA build of torch $version"
  "$py" -m pip install --no-deps "torch==$version"
else
  echo "no NVIDIA GPU: installing a CPU build of torch $version"
  "$py" -m pip install --no-deps --no-index "torch==$version" 2>/dev/null \
    || "$py" -m pip install --no-deps "torch==$version" --index-url https://download.pytorch.org/whl/cpu
fi
# Now torch's own requirements (from the normal index; torch itself is satisfied).
"$py" -m pip install "torch==$version"
