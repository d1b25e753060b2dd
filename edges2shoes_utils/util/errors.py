"""Errors a user can act on.

Every failure caused by input (a bad file, a missing dataset, weights in an unknown layout) is
raised as a subclass of `Edges2ShoesError` with a message that names the file and the problem.
The CLI prints such messages without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class Edges2ShoesError(Exception):
    """Base class for errors caused by input the user can fix."""


class ConfigError(Edges2ShoesError, ValueError):
    """An option or model setting that cannot work (for example an image size the U-Net cannot take)."""


class DataError(Edges2ShoesError):
    """A dataset folder or image file that cannot be used."""


class CheckpointError(Edges2ShoesError):
    """A checkpoint or weights file that is missing, corrupt, unsafe or in an unknown layout."""


class WeightsError(CheckpointError):
    """Weights that cannot be fetched or read."""


class SketchError(Edges2ShoesError):
    """A sketch image that cannot be turned into an edge map (unreadable, blank, ...)."""


@dataclass(frozen=True)
class Skipped:
    """Something left out on purpose, and why: a training file the loader could not read, or a
    metric that could not be computed. It is reported (logs, the evaluation report), never raised,
    so one bad input costs one sample or one column instead of the whole run."""

    what: str  # the file or the metric
    reason: str

    def __str__(self) -> str:
        return f"{self.what}: {self.reason}"
