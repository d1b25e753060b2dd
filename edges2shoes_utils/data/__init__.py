"""The data stage: edges2shoes A|B pairs on disk, read with the paper's jitter and loaded in batches
that skip bad files; finding the data (a path, $EDGES2SHOES_DATA, a Kaggle input, a download); and
a synthetic mini set in the same layout for offline runs.

`pairs` (the dataset: decoding and jitter), `loader` (batches and bad-file handling), `files` (image
listing, the dataset-root test), `discovery` (dataset roots and the pinned Kaggle download),
`official` (the Berkeley tarball: resumable download, safe unpacking via `archive`), `synthetic`
(the procedural set and its command), `command_line` (`edges2shoes data fetch`).
"""

from .discovery import (
    ENV_VAR,
    IMAGE_SUFFIXES,
    KAGGLE_HANDLE,
    find_dataset_root,
    is_dataset_root,
    list_images,
    numeric_key,
    resolve_dataset_root,
)
from .official import DATASET_URL_ENV, OFFICIAL_DATASET_URL, default_dataset_dir, fetch_official_dataset
from .loader import PairBatch, PairLoader, collate_pairs, default_num_workers, make_dataloader
from .pairs import LOAD_SIZE_RATIO, MAX_PAIR_PIXELS, PairsDataset, jitter_load_size, load_pair_image, to_rgb
from .synthetic import MARKER, make_synthetic

__all__ = [
    "PairsDataset",
    "PairBatch",
    "PairLoader",
    "make_dataloader",
    "collate_pairs",
    "default_num_workers",
    "resolve_dataset_root",
    "fetch_official_dataset",
    "default_dataset_dir",
    "OFFICIAL_DATASET_URL",
    "DATASET_URL_ENV",
    "find_dataset_root",
    "is_dataset_root",
    "list_images",
    "numeric_key",
    "load_pair_image",
    "to_rgb",
    "jitter_load_size",
    "LOAD_SIZE_RATIO",
    "MAX_PAIR_PIXELS",
    "IMAGE_SUFFIXES",
    "KAGGLE_HANDLE",
    "ENV_VAR",
    "make_synthetic",
    "MARKER",
]
