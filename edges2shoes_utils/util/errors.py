"""Errors a user can act on.

Every failure caused by input (a bad file, a missing dataset, weights in an unknown layout) is
raised as a subclass of `Edges2ShoesError` with a message that names the file and the problem.
The CLI prints such messages without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


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
