#!/usr/bin/env bash
# The GPU measurement of issue 13 in one command: `edges2shoes bench gpu` from this checkout, with the
# checkout on PYTHONPATH and nothing installed (the machine's python3 already has torch). It runs the
# `gpu` tests, the paper-size training step (batch 4/16/64; fp16, bf16, TF32; eager and compiled),
# inference at batch 1 and 64, the loader with 1-8 workers and a torchrun launch over every GPU, all
# within a 7.5-minute budget, and writes bench-gpu.json and bench-gpu.md (atomically, after each section).
#
# Usage: tools/gpu_check.sh [OUT_DIR] [more `bench gpu` flags]
#   OUT_DIR   where the results go (default runs/bench-gpu)
#   PYTHON    the interpreter (default python3)
# Examples:
#   tools/gpu_check.sh "$OUT"                          # on a lent GPU machine: the results come back from $OUT
#   tools/gpu_check.sh /tmp/dry --device cpu --quick   # the CPU dry run of this very script
# Give it about 9 minutes (the budget is 7.5; start-up and writing come on top).
#
# The gpu tests need pytest; where it is missing they are recorded as "not run". To bring it without
# installing anything there: `pip install --target runs/pytest-vendor pytest` on a machine with the same
# Python minor version, and carry runs/pytest-vendor along; this script puts it last on PYTHONPATH.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
out="${1:-runs/bench-gpu}"
shift $(( $# > 0 ? 1 : 0 ))
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PYTHON" -c "import pytest" 2>/dev/null && [ -d "$repo/runs/pytest-vendor" ]; then
  export PYTHONPATH="$PYTHONPATH:$repo/runs/pytest-vendor"
fi
"$PYTHON" - <<'EOF'
import torch
names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, GPUs: {', '.join(names) or 'none'}")
EOF
"$PYTHON" -m edges2shoes_utils bench gpu --device cuda --out "$out" "$@"
status=$?
echo "gpu_check: results in $out/bench-gpu.json and $out/bench-gpu.md (exit code $status)"
exit "$status"
