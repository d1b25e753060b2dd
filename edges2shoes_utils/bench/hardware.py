"""GPU peaks from NVIDIA's datasheets: what `bench train`'s T4 prediction and `bench gpu`'s share of
peak are set against, kept in one table."""

from __future__ import annotations

import re

# Dense tensor-core peaks from NVIDIA's datasheets, TFLOP/s (SXM parts; PCIe/NVL ones are lower).
# "fp32" is the TF32 peak, since CUDA runs fp32 on TF32 tensor cores (training.device); a T4 has no
# TF32, so its fp32 figure is its plain fp32 peak (training there runs fp32 or fp16).
DATASHEET_TFLOPS: dict[str, dict[str, float]] = {
    "T4": {"fp16": 65.0, "fp32": 8.1},
    "L4": {"fp16": 121.0, "bf16": 121.0, "fp32": 60.0},
    "A100": {"fp16": 312.0, "bf16": 312.0, "fp32": 156.0},
    "H100": {"fp16": 989.0, "bf16": 989.0, "fp32": 494.0},
    "H200": {"fp16": 989.0, "bf16": 989.0, "fp32": 494.0},
}


def datasheet_peak(gpu_name: str | None, precision: str) -> float | None:
    """The datasheet peak for `precision` on the GPU named (e.g. "NVIDIA H200", "Tesla T4"), if listed."""
    for model, peaks in DATASHEET_TFLOPS.items():
        if gpu_name and re.search(rf"\b{model}\b", gpu_name.upper()):
            return peaks.get(precision)
    return None


__all__ = ["DATASHEET_TFLOPS", "datasheet_peak"]
