#!/usr/bin/env bash
# Proves the wheel works outside this checkout: builds the sdist and the wheel from it (as
# `python -m build` does), installs the wheel into a fresh virtual environment, and from a folder
# outside the repository runs `edges2shoes --version` and `edges2shoes generate` on a sketch bundled
# in the installed package, with tiny weights made on the spot. Nothing from the checkout is
# importable there, so a missing module, asset or entry point fails here, not on a user's machine.
#
# Usage: tools/check_wheel.sh        (.ci/run calls it after the tests pass)
# Settings from the environment:
#   PYTHON        interpreter the fresh environment is made from (default python3, as in the Makefile)
#   BUILD_PYTHON  interpreter with the `build` package (default .venv/bin/python, from `make setup`)
#   TORCH_SPEC    torch and torchvision to install first (default: the Makefile's pin)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
BUILD_PYTHON="${BUILD_PYTHON:-$repo/.venv/bin/python}"
TORCH_SPEC="${TORCH_SPEC:-$(make -s --no-print-directory -C "$repo" print-torch-spec)}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"
unset PYTHONPATH  # the checkout must not leak into the fresh environment

step() { echo "check_wheel: $1 (${SECONDS}s so far)"; }

step "building the sdist and the wheel"
"$BUILD_PYTHON" -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 || {
  cat "$work/build.log" >&2
  echo "check_wheel: the build failed (is \`build\` installed? \`make setup\` installs it)" >&2
  exit 1
}
wheels=("$work"/dist/edges2shoes-*.whl)
wheel="${wheels[0]}"
echo "check_wheel: built $(basename "$wheel")"

step "making a fresh virtual environment"
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
step "installing $TORCH_SPEC"
# shellcheck disable=SC2086  # TORCH_SPEC is a list of requirements
"$venv/bin/python" -m pip install --quiet $TORCH_SPEC
step "installing the wheel"
"$venv/bin/python" -m pip install --quiet "$wheel"

outside="$work/outside"
mkdir "$outside"
cd "$outside"
export PATH="$venv/bin:$PATH"

step "running the installed package from $outside"
edges2shoes --version
# The package and its sample sketch must come from the fresh environment, not from the checkout.
sketch="$(python - "$venv" <<'EOF'
import sys
from pathlib import Path

import edges2shoes_utils
from edges2shoes_utils import sample_sketches

venv = Path(sys.argv[1]).resolve()
sketch = sample_sketches()[0]
for path in (Path(edges2shoes_utils.__file__), sketch):
    if venv not in path.resolve().parents:
        sys.exit(f"check_wheel: {path} is not inside the fresh environment {venv}")
print(sketch)
EOF
)"
echo "check_wheel: bundled sketch $sketch"

# Tiny weights: an 8-filter U-Net with 6 levels runs at 64x64.
python - <<'EOF'
import torch

from edges2shoes_utils import UNetGenerator, export_generator

torch.manual_seed(0)
export_generator(UNetGenerator(ngf=8, levels=6), "tiny.safetensors")
EOF

edges2shoes generate "$sketch" --weights tiny.safetensors --out out --device cpu
shoe="out/$(basename "${sketch%.*}")_shoe.png"
python - "$shoe" <<'EOF'
import sys

from PIL import Image

with Image.open(sys.argv[1]) as image:
    if image.size != (64, 64):
        sys.exit(f"check_wheel: {sys.argv[1]} is {image.size}, expected (64, 64)")
print(f"check_wheel: wrote {sys.argv[1]} ({image.size[0]}x{image.size[1]})")
EOF
step "passed"
