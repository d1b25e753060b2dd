"""Evaluation: how good is a generator, on a val set, in a stated test-time mode.

    metrics        L1, PSNR, SSIM; FID and LPIPS when their backbones are available
    modes          running a generator in "eval" or "train" test-time mode, seeded per image
    results        per-image scores, kept pictures, EvalResult; the published figures
    sources        run folders -> per-epoch weights files; short labels
    scoring        evaluate (one generator), evaluate_many (several, sharing FID statistics)
    report         the report folder: metrics.json, CSVs, pictures, index.html
    command_line   `edges2shoes evaluate`
"""

from __future__ import annotations

from .metrics import FidScorer, LpipsScorer, make_fid, make_lpips, pixel_metrics
from .modes import MODES, Mode, forward_in_mode, generator_mode, image_seed, run_generator
from .report import ReportFiles, comparison_table_html, summary_text, write_report
from .results import REAL_VAL_SIZE, REFERENCE_FID, EvalResult, ImageScore, Sample, is_real_val_set
from .scoring import evaluate, evaluate_many, summarize
from .sources import epoch_of, expand_sources, source_labels

__all__ = [
    "evaluate",
    "evaluate_many",
    "summarize",
    "EvalResult",
    "ImageScore",
    "Sample",
    "REFERENCE_FID",
    "REAL_VAL_SIZE",
    "is_real_val_set",
    "write_report",
    "summary_text",
    "comparison_table_html",
    "ReportFiles",
    "MODES",
    "Mode",
    "image_seed",
    "generator_mode",
    "run_generator",
    "forward_in_mode",
    "epoch_of",
    "expand_sources",
    "source_labels",
    "FidScorer",
    "LpipsScorer",
    "make_fid",
    "make_lpips",
    "pixel_metrics",
]
