"""The fast path on every x86 CPU tier: no weight is re-ordered on a call after the first.

Each tier runs in its own process (oneDNN reads its ISA cap once), with ONEDNN_VERBOSE=1, so every
oneDNN primitive a call executes is printed. The paper-size generator runs in both test-time modes,
in fp32 and, where the tier has native bf16, in bf16. After two warm-up calls, a steady-state call must
execute no `reorder` of a tensor shaped like one of the network's weights: such a reorder means the
weight was packed into a layout other than the one the convolution then wants, and pays the packing
again on every call.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from edges2shoes_utils.bench.tiers import TIERS, unreachable_reason

PROBE = r"""
import ctypes, json, sys
import torch
from edges2shoes_utils.bench.infer import calibrated_random_generator, sketch_like_input
from edges2shoes_utils.inference import fastpath
from edges2shoes_utils.inference.layers import PackedConv
from edges2shoes_utils.nets import GeneratorConfig
from edges2shoes_utils.training.device import cpu_has_native_bf16

libc = ctypes.CDLL(None)
def say(text):  # oneDNN prints with C stdio: flush both so markers and primitives stay in order
    libc.fflush(None); print(text, flush=True); libc.fflush(None)

generator = calibrated_random_generator(GeneratorConfig())
x = sketch_like_input(256)
precisions = ["fp32"] + (["bf16"] if cpu_has_native_bf16() else [])
for precision in precisions:
    for mode in ("eval", "train"):
        runner = fastpath.build_runner(generator, mode=mode, precision=precision)
        weights = set()
        for layer in runner.modules():
            if isinstance(layer, PackedConv) and layer.packed:
                dims = list(layer.weight.shape)
                weights.add("x".join(map(str, dims)))
                weights.add("x".join(map(str, [dims[1], dims[0], *dims[2:]])))
        for _ in range(2):
            runner.run(x, seeds=[0])
        say("PROBE-BEGIN " + json.dumps({"mode": mode, "precision": runner.precision,
                                          "weights": sorted(weights)}))
        for _ in range(2):
            runner.run(x, seeds=[0])
        say("PROBE-END")
"""

_REORDER = re.compile(r"^onednn_verbose,.*primitive,exec,cpu,reorder,.*,(\d+(?:x\d+)*),[\d.]+$")


def steady_state_reorders(output: str) -> list[tuple[dict, str]]:
    """(the run, the verbose line) for each reorder of a weight-shaped tensor between the markers."""
    found: list[tuple[dict, str]] = []
    run: dict | None = None
    for line in output.splitlines():
        if line.startswith("PROBE-BEGIN "):
            run = json.loads(line[len("PROBE-BEGIN "):])
        elif line.startswith("PROBE-END"):
            run = None
        elif run is not None:
            match = _REORDER.match(line.strip())
            if match and match.group(1) in run["weights"]:
                found.append((run, line.strip()))
    return found


def test_the_reorder_finder_sees_a_weight_reorder():
    """The parser itself: a weight reorder between the markers is found; others are not."""
    run = {"mode": "eval", "precision": "fp32", "weights": ["512x512x4x4"]}
    weight = ("onednn_verbose,v1,primitive,exec,cpu,reorder,simple:any,undef,src:f32:p:blocked:Acdb24a::f0 "
              "dst:f32::blocked:Acdb32a::f0,attr-scratchpad:user,,512x512x4x4,110.2")
    activation = weight.replace("512x512x4x4", "1x3x256x256")
    output = "\n".join([weight, "PROBE-BEGIN " + json.dumps(run), activation, weight, "PROBE-END", weight])
    assert steady_state_reorders(output) == [(run, weight)]


@pytest.mark.slow
@pytest.mark.parametrize("tier", TIERS, ids=lambda tier: tier.name)
def test_no_weight_reorder_after_the_first_call(tier):
    reason = unreachable_reason(tier)
    if reason is not None:
        pytest.skip(f"tier {tier.name} cannot be reached here: {reason}")
    env = tier.environment()
    env["ONEDNN_VERBOSE"] = "1"
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads(line[len("PROBE-BEGIN "):]) for line in done.stdout.splitlines()
            if line.startswith("PROBE-BEGIN ")]
    assert len(runs) >= 2 and all(run["weights"] for run in runs), done.stdout[-2000:]
    executed = [line for line in done.stdout.splitlines() if ",primitive,exec," in line]
    assert executed, "ONEDNN_VERBOSE printed no primitive: the probe cannot see reorders"
    reorders = steady_state_reorders(done.stdout)
    assert not reorders, "\n".join(f"{run['mode']} {run['precision']}: {line}"
                                   for run, line in reorders[:10])
