"""Publishing a generator trained with this kit on the Hugging Face Hub or Kaggle.

`publish(run_or_file, target)` stages one folder, then uploads it:

    generator.safetensors  our generator export (config in its metadata)
    config.json            the generator config, the run's training config, the scores
    README.md              the model card (`model_card`)

From a run folder it takes the newest `generator_N.pt` (else `last.pt`), the run's `config.json`,
and the newest evaluation report under the folder that scored that file (`--report` names one).
Reports are read as plain JSON (`metrics.json`), so publishing does not depend on the evaluation
code. What is published loads back by name: `load_generator("hub:USER/NAME")` or
`"kaggle:USER/SLUG"` (`fetch`).

huggingface_hub and kagglehub are imported only to upload; credentials are checked before anything
is sent, so a missing login is one clear message rather than a network error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..nets import count_parameters
from ..util.atomic import atomic_write_text
from ..util.errors import ConfigError, WeightsError
from ..util.version import __version__
from . import exports
from .fetch import HUB_SCHEME, KAGGLE_SCHEME, PUBLISHED_FILE
from .load import read_generator
from .model_card import CardFacts, ReportScores, public_source, render_card

PUBLISHED_FORMAT = "edges2shoes/published-generator/v1"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
RUN_CONFIG = "config.json"  # written by training into every run folder
REPORT_FILE = "metrics.json"  # written by evaluation into every report folder
EPOCH_FILE = re.compile(r"generator_(\d+)\.pt$")
PATH_FIELDS = ("data", "out", "resume", "init", "init_generator", "init_discriminator")  # may hold local paths
REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Target:
    """Where to publish: `kind` "hub" (a Hugging Face model repository) or "kaggle" (a dataset)."""

    kind: str
    repo_id: str  # USER/NAME

    def __post_init__(self) -> None:
        if self.kind not in ("hub", "kaggle"):
            raise ConfigError(f"publish to 'hub' or 'kaggle', not {self.kind!r}")
        if not REPO_ID.fullmatch(self.repo_id) or ".." in self.repo_id:
            example = "USER/NAME" if self.kind == "hub" else "USER/SLUG"
            raise ConfigError(f"{self.repo_id!r} is not a repository name: give {example} (letters, digits, '-', '_', '.')")

    @property
    def weights_name(self) -> str:
        """The name `load_generator` reads it back by."""
        return (HUB_SCHEME if self.kind == "hub" else KAGGLE_SCHEME) + self.repo_id

    @property
    def where(self) -> str:
        return "the Hugging Face Hub" if self.kind == "hub" else "Kaggle"

    @property
    def url(self) -> str:
        if self.kind == "hub":
            return f"https://huggingface.co/{self.repo_id}"
        return f"https://www.kaggle.com/datasets/{self.repo_id}"


@dataclass
class StagedFolder:
    """The folder that is (or would be) uploaded, and what went into it."""

    folder: Path
    target: Target
    generator_source: Path  # the weights file the export was made from
    card: str
    facts: CardFacts
    notes: list[str]

    def listing(self) -> str:
        """One line per file with its size, for the terminal."""
        files = sorted(p for p in self.folder.rglob("*") if p.is_file())
        return "\n".join(f"{p.stat().st_size:>12,}  {p.relative_to(self.folder)}" for p in files)


# --------------------------------------------------------------------------------------------------
# What to publish: the weights file, its run's config, its scores.


def find_generator(run_or_file: str | os.PathLike) -> tuple[Path, Path | None, int | None]:
    """(weights file, run folder or None, epoch or None). A run folder gives its newest
    `generator_N.pt`, else its `last.pt`; a file's folder counts as its run when it holds config.json."""
    path = Path(run_or_file).expanduser()
    if path.is_dir():
        epochs = sorted((int(m.group(1)), p) for p in path.glob("generator_*.pt") if (m := EPOCH_FILE.search(p.name)))
        if epochs:
            return epochs[-1][1], path, epochs[-1][0]
        if (path / "last.pt").is_file():
            return path / "last.pt", path, None
        raise WeightsError(f"{path}: no generator_N.pt or last.pt in this folder; pass a run folder or a weights file")
    if not path.is_file():
        raise WeightsError(f"{path}: no such run folder or weights file")
    match = EPOCH_FILE.search(path.name)
    run_dir = path.parent if (path.parent / RUN_CONFIG).is_file() else None
    return path, run_dir, int(match.group(1)) if match else None


def read_run_config(run_dir: Path | None) -> dict[str, Any] | None:
    """The run's config.json as plain data (None when there is none)."""
    if run_dir is None or not (run_dir / RUN_CONFIG).is_file():
        return None
    path = run_dir / RUN_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: not a readable run config ({error})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: not a run config (a JSON object was expected)")
    return config


def public_run_config(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The run config as published: local paths (data, run folder, resume, init weights) cut to
    their last component, which names them without telling the world the publisher's folders."""
    if config is None:
        return None
    return {k: public_source(v) if k in PATH_FIELDS else v for k, v in config.items()}


def _read_report(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: not a readable evaluation report ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        raise ConfigError(f"{path}: not an edges2shoes evaluation report (no 'results' list)")
    return document


def _scores_this_file(result: Any, generator: Path) -> bool:
    """Whether a report result scored `generator`: the same file, or the same name in a folder of
    the same name (reports keep the path as given, often relative to another working folder)."""
    source = result.get("source") if isinstance(result, dict) else None
    if not source:
        return False
    scored = Path(str(source)).expanduser()
    if scored.is_file() and scored.resolve() == generator.resolve():
        return True
    return scored.name == generator.name and scored.parent.name == generator.resolve().parent.name


def find_scores(generator: Path, run_dir: Path | None, report: str | os.PathLike | None) -> ReportScores | None:
    """The scores of `generator` from `report` (a report folder or its metrics.json; it must have
    scored this file), else from the newest report under `run_dir` that did."""
    if report is not None:
        path = Path(report).expanduser()
        path = path / REPORT_FILE if path.is_dir() else path
        if not path.is_file():
            raise ConfigError(f"{path}: no such evaluation report (give a report folder holding {REPORT_FILE})")
        document = _read_report(path)
        for result in document["results"]:
            if _scores_this_file(result, generator):
                return ReportScores.from_report(path, document, result)
        scored = ", ".join(str(r.get("source")) for r in document["results"] if isinstance(r, dict)) or "nothing"
        raise ConfigError(f"{path}: this report did not score {generator} (it scored {scored}); "
                          f"evaluate it with `edges2shoes evaluate --weights {generator} --out REPORT`")
    if run_dir is None:
        return None
    candidates = sorted(run_dir.rglob(REPORT_FILE), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        try:
            document = _read_report(path)
        except ConfigError:
            continue  # another tool's metrics.json, or a damaged one: not ours to judge here
        for result in document["results"]:
            if _scores_this_file(result, generator):
                return ReportScores.from_report(path, document, result)
    return None


# --------------------------------------------------------------------------------------------------
# The staged folder.


def _prepare_folder(out: Path) -> None:
    """Refuse a folder holding anything but a previous publish: it would all be uploaded."""
    ours = {PUBLISHED_FILE, CONFIG_FILE, CARD_FILE}
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    stray = sorted(p.name for p in out.iterdir() if p.name not in ours) if out.is_dir() else []
    if stray:
        raise ConfigError(f"{out}: the folder to upload already holds other files ({', '.join(stray[:5])}); "
                          "give an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)


def stage(run_or_file: str | os.PathLike, target: Target, out: str | os.PathLike, *,
          report: str | os.PathLike | None = None, license: str = "mit") -> StagedFolder:
    """Write the folder to upload into `out`: the export, config.json and the model card."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", license):
        raise ConfigError(f"{license!r} is not a license id such as mit, apache-2.0, cc-by-4.0 or other")
    generator_path, run_dir, epoch = find_generator(run_or_file)
    loaded = read_generator(generator_path)
    training = read_run_config(run_dir)
    scores = find_scores(generator_path, run_dir, report)
    folder = Path(out).expanduser()
    _prepare_folder(folder)

    model_config = dataclasses.asdict(loaded.config)
    exports.export_generator(loaded.model, folder / PUBLISHED_FILE, metadata={
        "published_as": target.weights_name, "source_file": generator_path.name, "epoch": epoch,
    })
    evaluation = None
    if scores is not None:
        evaluation = {k: v for k, v in dataclasses.asdict(scores).items() if k != "path"}
        evaluation["report"] = f"{scores.path.parent.name}/{scores.path.name}"
        evaluation["data_root"] = public_source(scores.data_root)
    document = {
        "format": PUBLISHED_FORMAT,
        "edges2shoes_version": __version__,
        "weights": PUBLISHED_FILE,
        "load_with": target.weights_name,
        "generator": model_config,
        "parameters": count_parameters(loaded.model),
        "source_file": generator_path.name,
        "epoch": epoch,
        "training": public_run_config(training),
        "evaluation": evaluation,
    }
    atomic_write_text(folder / CONFIG_FILE, json.dumps(document, indent=2) + "\n")  # all plain data already
    facts = CardFacts(
        repo_id=target.repo_id, weights_name=target.weights_name, where=target.where, license=license,
        generator_config=model_config, parameters=document["parameters"], source_file=generator_path.name,
        epoch=epoch, training=training, scores=scores, version=__version__,
        files={PUBLISHED_FILE: "the generator's weights (safetensors; its config in the metadata)",
               CONFIG_FILE: "the generator config (`generator`), the run config (`training`) and the scores (`evaluation`)",
               CARD_FILE: "this card"},
    )
    card = render_card(facts)
    atomic_write_text(folder / CARD_FILE, card)
    notes = list(loaded.notes)
    if scores is None:
        notes.append(f"no evaluation report of {generator_path.name} found" + (f" under {run_dir}" if run_dir else "")
                     + f": the card has no scores (score it with `edges2shoes evaluate --weights {generator_path} "
                     "--out REPORT`, then publish with --report REPORT)")
    return StagedFolder(folder, target, generator_path, card, facts, notes)


# --------------------------------------------------------------------------------------------------
# Uploads.


def _failure(target: Target, error: Exception, advice: str) -> WeightsError:
    reason = (str(error).strip().splitlines() or [""])[0][:300]
    return WeightsError(f"could not publish to {target.where} as {target.repo_id} ({type(error).__name__}: {reason}). {advice}")


def hub_client() -> Any:
    """huggingface_hub's HfApi, once a login is known to exist (checked locally, before any upload)."""
    try:
        import huggingface_hub  # lazy: optional dependency (the `publish` extra)
    except ImportError:
        raise WeightsError("publishing to the Hugging Face Hub needs huggingface_hub: pip install 'edges2shoes[publish]'") from None
    if not huggingface_hub.get_token():
        raise WeightsError("publishing to the Hugging Face Hub needs a login: run `hf auth login` or set HF_TOKEN "
                           "to a token with write access (https://huggingface.co/settings/tokens)")
    return huggingface_hub.HfApi()


def kaggle_client() -> Any:
    """The kagglehub module, once Kaggle credentials are known to exist (without them kagglehub
    would start uploading and fail on the network)."""
    try:
        import kagglehub  # lazy: optional dependency, imported only to talk to Kaggle
    except ImportError:
        raise WeightsError("publishing to Kaggle needs kagglehub: pip install 'kagglehub>=1.0,<2'") from None
    try:
        has_login = kagglehub.config.get_kaggle_credentials() is not None
    except AttributeError:  # a kagglehub without this helper: let the upload report it
        has_login = True
    except ValueError as error:  # an unreadable kaggle.json
        raise WeightsError(f"publishing to Kaggle: {error}") from None
    if not has_login:
        raise WeightsError("publishing to Kaggle needs a login: run `kagglehub.login()`, set KAGGLE_API_TOKEN "
                           "(or KAGGLE_USERNAME and KAGGLE_KEY), or put kaggle.json in ~/.kaggle/")
    return kagglehub


def upload_to_hub(folder: Path, target: Target, *, message: str, private: bool = False, api: Any = None) -> str:
    """Create the model repository if needed and upload `folder` as one commit; returns its URL."""
    api = api or hub_client()
    try:
        api.create_repo(target.repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=target.repo_id, folder_path=str(folder), repo_type="model", commit_message=message)
    except Exception as error:  # huggingface_hub raises HTTP, offline, auth and validation errors of many types
        raise _failure(target, error, "Check the network, that HF_HUB_OFFLINE is not set, and that the token "
                                      "may write to this repository.") from None
    return target.url


def upload_to_kaggle(folder: Path, target: Target, *, message: str, kagglehub: Any = None) -> str:
    """Upload `folder` as the Kaggle dataset USER/SLUG (created private; a new version if it exists);
    returns its URL."""
    kagglehub = kagglehub or kaggle_client()
    try:
        kagglehub.dataset_upload(target.repo_id, str(folder), version_notes=message)
    except Exception as error:  # kagglehub raises HTTP, auth and handle errors of many types
        raise _failure(target, error, "Check the network and that the Kaggle login may create this dataset.") from None
    return target.url


def publish(run_or_file: str | os.PathLike, target: Target, *, out: str | os.PathLike | None = None,
            report: str | os.PathLike | None = None, dry_run: bool = False, license: str = "mit",
            private: bool = False, message: str | None = None, log: Any = None) -> StagedFolder:
    """Stage the folder (into `out`, else a temporary one) and, unless `dry_run`, upload it.

    `dry_run` needs `out`: the folder is the result. The login is checked before anything is
    written. Prints what it does to `log` (default stdout)."""
    log = log or sys.stdout
    if dry_run and out is None:
        raise ConfigError("--dry-run writes the folder it would upload: give it --out DIR")
    client = None if dry_run else hub_client() if target.kind == "hub" else kaggle_client()
    with tempfile.TemporaryDirectory(prefix="edges2shoes-publish-") as scratch:
        staged = stage(run_or_file, target, out if out is not None else Path(scratch) / "upload", report=report, license=license)
        for note in staged.notes:
            print(f"note: {note}", file=log)
        if dry_run:
            return staged
        message = message or f"edges2shoes {__version__}: {staged.generator_source.name}"
        print(f"uploading {staged.folder} to {target.where} as {target.repo_id} ...", file=log)
        if target.kind == "hub":
            url = upload_to_hub(staged.folder, target, message=message, private=private, api=client)
        else:
            url = upload_to_kaggle(staged.folder, target, message=message, kagglehub=client)
            print("note: Kaggle creates new datasets private; make it public on its Settings page to share it", file=log)
        print(f"published: {url} (load it with --weights {target.weights_name})", file=log)
    return staged


__all__ = ["Target", "StagedFolder", "stage", "publish", "find_generator", "find_scores", "read_run_config",
           "hub_client", "kaggle_client", "upload_to_hub", "upload_to_kaggle", "CONFIG_FILE", "CARD_FILE"]
