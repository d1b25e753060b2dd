"""Publishing a generator trained with this kit: on the Hugging Face Hub through the network's
`push_to_hub` (huggingface_hub's PyTorchModelHubMixin), or as a Kaggle Model (`kagglehub.model_upload`).

`publish(run_or_file, target)` finds the weights (a run folder's newest `generator_N.pt`, else
`last.pt`), the run's `config.json` and the newest evaluation report under the folder that scored
that file (`--report` names one), and writes what `save_pretrained` writes: model.safetensors,
config.json (the architecture, plus the run config and the scores) and README.md, the card its
template renders with `model_card.card_fields`. Reports are read as plain JSON (`metrics.json`), so
publishing does not depend on the evaluation code. What is published loads back with
`UNetGenerator.from_pretrained`, or by name: `--weights hub:USER/NAME` or `kaggle-model:HANDLE`.

Credentials are checked before anything is written, so a missing login is one clear message rather
than a network error.
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
from ..nets.hub import HUB_CONFIG, HUB_WEIGHTS, INSTALL
from ..util import kaggle
from ..util.errors import ConfigError, WeightsError
from ..util.version import __version__
from .fetch import HUB_SCHEME, KAGGLE_MODEL_SCHEME
from .load import read_weights
from .model_card import CardFacts, ReportScores, card_fields, public_source

CARD_FILE = "README.md"
RUN_CONFIG = "config.json"  # written by training into every run folder
REPORT_FILE = "metrics.json"  # written by evaluation into every report folder
EPOCH_FILE = re.compile(r"generator_(\d+)\.pt$")
PATH_FIELDS = ("data", "out", "resume", "init", "init_generator", "init_discriminator")  # may hold local paths
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
HANDLES = {"hub": (re.compile(f"{NAME}/{NAME}"), "USER/NAME"),
           "kaggle-model": (re.compile(f"{NAME}/{NAME}/{NAME}/{NAME}"), "OWNER/MODEL/pyTorch/VARIATION")}
KAGGLE_LICENSES = {"mit": "MIT", "apache-2.0": "Apache 2.0"}  # Hub license ids Kaggle names otherwise


@dataclass(frozen=True)
class Target:
    """Where to publish: `kind` "hub" (a Hugging Face model repository) or "kaggle-model" (a Kaggle
    Model variation, OWNER/MODEL/FRAMEWORK/VARIATION)."""

    kind: str
    repo_id: str

    def __post_init__(self) -> None:
        if self.kind not in HANDLES:
            raise ConfigError(f"publish to 'hub' or 'kaggle-model', not {self.kind!r}")
        pattern, example = HANDLES[self.kind]
        if not pattern.fullmatch(self.repo_id) or ".." in self.repo_id:
            raise ConfigError(f"{self.repo_id!r} is not a repository name: give {example} (letters, digits, '-', '_', '.')")

    @property
    def weights_name(self) -> str:
        """The name `load_generator` reads it back by."""
        return (HUB_SCHEME if self.kind == "hub" else KAGGLE_MODEL_SCHEME) + self.repo_id

    @property
    def where(self) -> str:
        return "the Hugging Face Hub" if self.kind == "hub" else "Kaggle Models"

    @property
    def url(self) -> str:
        if self.kind == "hub":
            return f"https://huggingface.co/{self.repo_id}"
        return kaggle.page(self.repo_id, "model")


@dataclass
class StagedFolder:
    """The folder that is (or would be) uploaded, and what went into it."""

    folder: Path
    target: Target
    generator_source: Path  # the weights file the published weights were read from
    card: str
    facts: CardFacts
    notes: list[str]
    model: Any  # the UNetGenerator
    config: dict[str, Any]  # config.json
    card_fields: dict[str, str]  # the card template's fields

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
    """Refuse a folder holding anything but a previous publish (all of it would be uploaded to
    Kaggle), and clear the previous card, which save_pretrained would otherwise keep."""
    ours = {HUB_WEIGHTS, HUB_CONFIG, CARD_FILE}
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    stray = sorted(p.name for p in out.iterdir() if p.name not in ours) if out.is_dir() else []
    if stray:
        raise ConfigError(f"{out}: the folder to upload already holds other files ({', '.join(stray[:5])}); "
                          "give an empty or new folder")
    (out / CARD_FILE).unlink(missing_ok=True)


def stage(run_or_file: str | os.PathLike, target: Target, out: str | os.PathLike, *,
          report: str | os.PathLike | None = None, license: str = "mit") -> StagedFolder:
    """Write the folder to upload into `out` with the generator's `save_pretrained`."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", license):
        raise ConfigError(f"{license!r} is not a license id such as mit, apache-2.0, cc-by-4.0 or other")
    generator_path, run_dir, epoch = find_generator(run_or_file)
    loaded = read_weights(generator_path)
    training = read_run_config(run_dir)
    scores = find_scores(generator_path, run_dir, report)
    folder = Path(out).expanduser()
    _prepare_folder(folder)
    evaluation = None
    if scores is not None:
        evaluation = {k: v for k, v in dataclasses.asdict(scores).items() if k != "path"}
        evaluation["report"] = f"{scores.path.parent.name}/{scores.path.name}"
        evaluation["data_root"] = public_source(scores.data_root)
    model_config = dataclasses.asdict(loaded.config)
    config = {**model_config, "edges2shoes_version": __version__, "parameters": count_parameters(loaded.model),
              "source_file": generator_path.name, "epoch": epoch, "training": public_run_config(training),
              "evaluation": evaluation}  # from_pretrained reads the architecture's fields, the rest is a record
    facts = CardFacts(
        repo_id=target.repo_id, weights_name=target.weights_name, where=target.where, license=license,
        generator_config=model_config, parameters=config["parameters"], source_file=generator_path.name,
        epoch=epoch, training=training, scores=scores, version=__version__,
    )
    fields = card_fields(facts)
    loaded.model.save_pretrained(folder, config=config, model_card_kwargs=fields)
    notes = list(loaded.notes)
    if scores is None:
        notes.append(f"no evaluation report of {generator_path.name} found" + (f" under {run_dir}" if run_dir else "")
                     + f": the card has no scores (score it with `edges2shoes evaluate --weights {generator_path} "
                     "--out REPORT`, then publish with --report REPORT)")
    card = (folder / CARD_FILE).read_text(encoding="utf-8")
    return StagedFolder(folder, target, generator_path, card, facts, notes, loaded.model, config, fields)


# --------------------------------------------------------------------------------------------------
# Uploads.


def _failure(target: Target, error: Exception, advice: str) -> WeightsError:
    reason = (str(error).strip().splitlines() or [""])[0][:300]
    return WeightsError(f"could not publish to {target.where} as {target.repo_id} ({type(error).__name__}: {reason}). {advice}")


def check_login(target: Target) -> None:
    """Refuse, before anything is written, to publish without a login (checked locally)."""
    if target.kind == "kaggle-model":
        kaggle.require_login("publishing to Kaggle Models", WeightsError)
        return
    try:
        import huggingface_hub  # lazy: the optional `publish` extra
    except ImportError:
        raise WeightsError(f"publishing to the Hugging Face Hub needs huggingface_hub: {INSTALL}") from None
    if not huggingface_hub.get_token():
        raise WeightsError("publishing to the Hugging Face Hub needs a login: run `hf auth login` or set HF_TOKEN "
                           "to a token with write access (https://huggingface.co/settings/tokens)")


def upload(staged: StagedFolder, *, message: str, private: bool = False) -> str:
    """The Hub: the generator's push_to_hub (creates the repository if needed, one commit). Kaggle:
    the staged folder as a new version of the model variation (created private if new). Returns its URL."""
    target = staged.target
    try:
        if target.kind == "hub":
            staged.model.push_to_hub(target.repo_id, config=staged.config, private=private, commit_message=message,
                                     model_card_kwargs=staged.card_fields)
        else:
            kaggle.kagglehub_module("publishing to Kaggle Models", WeightsError).model_upload(
                target.repo_id, str(staged.folder), license_name=KAGGLE_LICENSES.get(staged.facts.license),
                version_notes=message)
    except WeightsError:
        raise
    except Exception as error:  # huggingface_hub and kagglehub raise HTTP, offline, auth and validation errors of many types
        advice = ("Check the network, that HF_HUB_OFFLINE is not set, and that the token may write to this repository."
                  if target.kind == "hub" else "Check the network and that the Kaggle login may create this model.")
        raise _failure(target, error, advice) from None
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
    if not dry_run:
        check_login(target)
    with tempfile.TemporaryDirectory(prefix="edges2shoes-publish-") as scratch:
        staged = stage(run_or_file, target, out if out is not None else Path(scratch) / "upload", report=report, license=license)
        for note in staged.notes:
            print(f"note: {note}", file=log)
        if dry_run:
            return staged
        print(f"uploading {staged.folder} to {target.where} as {target.repo_id} ...", file=log)
        url = upload(staged, message=message or f"edges2shoes {__version__}: {staged.generator_source.name}", private=private)
        if target.kind == "kaggle-model":
            if license not in KAGGLE_LICENSES:
                print(f"note: Kaggle names licenses its own way: set {license!r} on the model's page", file=log)
            print("note: Kaggle creates new models private; make it public on its Settings page to share it", file=log)
        print(f"published: {url} (load it with --weights {target.weights_name})", file=log)
    return staged


__all__ = ["Target", "StagedFolder", "stage", "publish", "upload", "check_login", "find_generator", "find_scores",
           "read_run_config", "CARD_FILE"]
