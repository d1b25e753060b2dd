#!/usr/bin/env bash
# The CPU figures of the fast path in one command, for a CPU the project's own machine lacks (an AMX
# Xeon, an AVX2-only laptop): from this checkout, with the checkout on PYTHONPATH and nothing
# installed (the machine's python3 must have torch). Each step is bounded in time, one failing does
# not stop the others, and its log says why:
#
#   tiers   `bench infer --tiers --repeats 10`: plain and fast on every oneDNN tier this CPU reaches
#   peers   `bench infer --peers --repeats 10`: onnxruntime, OpenVINO and torch.compile where installed
#   sketch  `bench sketch --runs 20`: clean-up and end to end against plain, the bundled sketches
#   layers  tools/layer_rates.py, no cap, auto precision: each layer's time against its floor
#
# It writes OUT_DIR/{tiers,peers,sketch}.json, OUT_DIR/layers.md, each step's log, and
# OUT_DIR/benchmarks.md: docs/benchmarks.md with the generated sections of the three JSON files
# updated (copy it over the checkout's after reading it).
#
# Usage: tools/cpu_check.sh [OUT_DIR]
#   OUT_DIR       where the results go (default runs/cpu-check)
#   PYTHON        the interpreter (default python3)
#   STEP_SECONDS  the limit of each step (default 240)
#   QUICK=1       a dry run on a tiny generator (ngf 8, 64x64) with the fewest repeats
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
out="${1:-runs/cpu-check}"
mkdir -p "$out"
PYTHON="${PYTHON:-python3}"
STEP_SECONDS="${STEP_SECONDS:-240}"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"

size=(); sketch_size=(); repeats=10; runs=20
if [ "${QUICK:-0}" = 1 ]; then
  size=(--ngf 8 --levels 6); sketch_size=(--photo-size 400x300); repeats=2; runs=2
fi

"$PYTHON" - <<'EOF'
import os, torch
from edges2shoes_utils.bench.tiers import cpu_flags
flags = cpu_flags() or set()
amx = sorted(f for f in flags if f.startswith("amx"))
print(f"cpu_check: torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads, "
      f"AMX: {', '.join(amx) or 'none'}, AVX512-BF16: {'avx512_bf16' in flags}")
EOF

failed=0
step() {  # step NAME COMMAND...: run it bounded in time, its output to OUT_DIR/NAME.log
  local name="$1"; shift
  echo "cpu_check: $name ..."
  timeout "$STEP_SECONDS" "$@" >"$out/$name.log" 2>&1
  local status=$?
  [ "$status" -eq 0 ] || failed=1
  echo "cpu_check: $name exit code $status ($out/$name.log)"
}

bench=("$PYTHON" -m edges2shoes_utils bench)
step tiers "${bench[@]}" infer --tiers --repeats "$repeats" "${size[@]}" --json "$out/tiers.json"
step peers "${bench[@]}" infer --peers --repeats "$repeats" "${size[@]}" --json "$out/peers.json"
step sketch "${bench[@]}" sketch --runs "$runs" "${size[@]}" "${sketch_size[@]}" --json "$out/sketch.json"
step layers "$PYTHON" tools/layer_rates.py --precision auto --calls "$repeats" "${size[@]}" --markdown "$out/layers.md"

cp docs/benchmarks.md "$out/benchmarks.md"
figures=()
for name in tiers peers sketch; do
  [ -f "$out/$name.json" ] && figures+=("$out/$name.json")
done
if [ "${#figures[@]}" -gt 0 ]; then
  step doc "$PYTHON" tools/benchmarks_doc.py --doc "$out/benchmarks.md" "${figures[@]}"
fi
echo "cpu_check: results in $out (exit code $failed)"
exit "$failed"
