"""What the model card of a published generator says beyond what huggingface_hub writes: how it was
trained, how it scored and under which protocol, and how to use it with this kit.

The card is the template of the networks' Hub methods (`nets.hub.CARD_TEMPLATE`), rendered by the
mixin with the YAML header it writes (license, library_name, tags); `card_fields` gives the template
its fields. Everything comes from plain data the caller gathers (`publish`): the generator config,
the run's `config.json`, and one result of an evaluation report's `metrics.json`, read as JSON so
this stage does not depend on the evaluation code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..data.synthetic import MARKER as SYNTHETIC_MARKER
from ..util.tables import Table
from .fetch import KAGGLE_MODEL_SCHEME, PUBLISHED_SCHEMES, SOURCES

# The kit's repository, named in the card's install line (the notebooks use the same placeholder).
KIT_REPOSITORY = "https://github.com/OWNER/edges2shoes"

# metrics.json summary key -> (title, format, lower is better)
SCORES: tuple[tuple[str, str, str, bool], ...] = (
    ("l1", "L1", "{:.4f}", True),
    ("psnr", "PSNR (dB)", "{:.2f}", False),
    ("ssim", "SSIM", "{:.4f}", False),
    ("lpips", "LPIPS", "{:.4f}", True),
    ("fid", "FID", "{:.2f}", True),
)


@dataclass
class ReportScores:
    """One generator's scores from an evaluation report, with the protocol they were measured under."""

    path: Path  # the report's metrics.json
    summary: dict[str, float | None]  # l1, psnr, ssim, lpips, fid (None = not computed)
    name: str  # the label the report gave the generator
    split: str
    n_images: int
    data_root: str | None
    mode: str  # test-time mode: "eval" or "train"
    seed: int
    image_size: int | None
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why it was not computed
    created: str | None = None
    version: str | None = None
    reference_fid: dict[str, float] | None = None  # published FIDs, when the report covers the real val set

    @classmethod
    def from_report(cls, path: Path, document: Mapping[str, Any], result: Mapping[str, Any]) -> "ReportScores":
        """The fields of `result` (one entry of `document["results"]`) and the report's protocol."""
        data = document.get("data") or {}
        return cls(
            path=path,
            summary=dict(result.get("summary") or {}),
            name=str(result.get("name")),
            split=str(data.get("split", "val")),
            n_images=int(result.get("n_images") or data.get("n_images") or 0),
            data_root=data.get("root"),
            mode=str(result.get("mode") or document.get("mode")),
            seed=int(result.get("seed", document.get("seed", 0))),
            image_size=result.get("image_size"),
            skipped={**(document.get("metrics_skipped") or {}), **(result.get("skipped_metrics") or {})},
            created=document.get("created"),
            version=document.get("edges2shoes_version"),
            reference_fid=document.get("reference_fid") if document.get("real_val_set") else None,
        )


@dataclass
class CardFacts:
    """What the card says; `publish` fills it from the files it publishes."""

    repo_id: str  # USER/NAME on the Hub or OWNER/MODEL/FRAMEWORK/VARIATION on Kaggle Models
    weights_name: str  # how this kit loads it back: "hub:USER/NAME" or "kaggle-model:OWNER/MODEL/..."
    where: str  # "the Hugging Face Hub" or "Kaggle Models"
    license: str
    generator_config: dict[str, Any]
    parameters: int
    source_file: str  # the file the weights were read from, e.g. "generator_9.pt"
    epoch: int | None  # the epoch file's number (epochs count from 0), when known
    training: dict[str, Any] | None  # the run's config.json
    scores: ReportScores | None
    version: str  # this kit's version


def card_fields(facts: CardFacts) -> dict[str, str]:
    """The template's fields (`model_card_kwargs` of save_pretrained / push_to_hub)."""
    kaggle = facts.weights_name.startswith(KAGGLE_MODEL_SCHEME)
    return {
        "title": f"{facts.repo_id}: pix2pix edges2shoes generator",
        "made_with": f"trained with the edges2shoes kit {facts.version}",
        "repo_id": facts.repo_id,
        "kaggle_model": facts.repo_id if kaggle else "",
        "license": facts.license,
        "network": _network_section(facts),
        "training": _training_section(facts),
        "scores": _scores_section(facts.scores),
        "usage": _usage_section(facts),
    }


def _table(rows: list[tuple[str, str]]) -> str:
    return Table(["setting", "value"], rows, align="<<").markdown()


def _network_section(facts: CardFacts) -> str:
    g = facts.generator_config
    rows = [
        ("architecture", f"U-Net ({g.get('layout')} layout), {g.get('levels')} down-sampling levels"),
        ("width (ngf)", str(g.get("ngf"))),
        ("normalisation", str(g.get("norm"))),
        ("dropout", "0.5 in the inner decoder blocks" if g.get("dropout") else "none"),
        ("parameters", f"{facts.parameters:,}"),
        ("image sides", f"multiples of {2 ** int(g.get('levels', 0))}"),
        ("weights read from", f"`{facts.source_file}`" + (f" (epoch {facts.epoch}, counted from 0)" if facts.epoch is not None else "")),
    ]
    return _table(rows)


def public_source(value: Any) -> Any:
    """A weights source or folder as it may be published: named sources as they are, local paths
    cut to their last component (a full path says more about the publisher than about the run)."""
    if not isinstance(value, str) or not value or value in SOURCES or value.startswith(PUBLISHED_SCHEMES):
        return value
    return Path(value).name or value


def describe_data(data: Any) -> str:
    """What the run trained on, as far as its config says: the synthetic set is named as such."""
    if not data:
        return "edges2shoes, found automatically (Kaggle input or the kagglehub cache)"
    name = public_source(str(data))
    if (Path(str(data)) / SYNTHETIC_MARKER).is_file():
        return f"the kit's synthetic mini set (procedural shoes, not real photos), folder `{name}`"
    return f"folder `{name}` (the edges2shoes A|B layout)"


def _training_section(facts: CardFacts) -> str:
    config = facts.training
    if not config:
        return "No run config was found beside the weights, so how they were trained is not recorded here."
    epochs = config.get("epochs")
    trained = f"{facts.epoch + 1} of {epochs}" if facts.epoch is not None and epochs else str(epochs)
    rows = [
        ("epochs trained", trained),
        ("batch size", f"{config.get('batch_size')} per process"),
        ("image size", f"{config.get('image_size')} x {config.get('image_size')}"),
        ("lambda_L1", str(config.get("lambda_l1"))),
        ("adversarial loss", f"{config.get('gan_mode')}" + (", D loss halved" if config.get("d_loss_halve") else "")),
        ("optimiser", f"Adam, lr {config.get('lr')}, betas {tuple(config.get('betas') or ())}"),
        ("direction", str(config.get("direction"))),
        ("data", describe_data(config.get("data"))),
        ("seed", str(config.get("seed"))),
    ]
    if config.get("max_steps"):
        rows.insert(1, ("step limit", str(config["max_steps"])))
    for key in sorted(k for k in config if k.startswith("init") and config[k] not in (None, "", 0, False)):
        rows.append((f"started from ({key})", f"`{_plain(public_source(config[key]))}`"))
    return _table(rows) + "\n\nThe full run config is `training` in `config.json`."


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _scores_section(scores: ReportScores | None) -> str:
    if scores is None:
        return "No evaluation report was published with these weights."
    cells = []
    for key, _, fmt, _ in SCORES:
        value = scores.summary.get(key)
        cells.append("-" if value is None else fmt.format(value))
    lines = [
        Table([title for _, title, _, _ in SCORES], [cells]).markdown(),
        "",
        f"Protocol: the `{scores.split}` split, {scores.n_images} images"
        + (f" of `{public_source(scores.data_root)}`" if scores.data_root else "")
        + (f" at {scores.image_size} x {scores.image_size}" if scores.image_size else "")
        + f"; test-time mode `{scores.mode}`"
        + (" (batch statistics and dropout on, as the official test script runs)" if scores.mode == "train"
           else " (running statistics, no dropout)")
        + f", seed {scores.seed}. L1 on the [-1, 1] scale of the training loss; PSNR and SSIM on 8-bit images; "
        "lower is better for L1, LPIPS and FID.",
    ]
    for metric, reason in scores.skipped.items():
        lines.append(f"\n{metric.upper()} not computed: {reason}")
    if scores.reference_fid:
        published = "; ".join(f"{name}: {value}" for name, value in scores.reference_fid.items())
        lines.append(f"\nPublished FIDs on the same 200 val images: {published}.")
    stamp = ", ".join(x for x in (scores.created, f"edges2shoes {scores.version}" if scores.version else None) if x)
    lines.append(f"\nFrom the evaluation report `{scores.path.parent.name}/{scores.path.name}` ({stamp}), weights `{scores.name}`.")
    return "\n".join(lines)


def _usage_section(facts: CardFacts) -> str:
    name = facts.weights_name
    return f"""With the edges2shoes kit ([{KIT_REPOSITORY}]({KIT_REPOSITORY}); `pip install "edges2shoes[publish] @ git+{KIT_REPOSITORY}"`),
which fetches the weights from {facts.where} and caches them:

```bash
edges2shoes generate sketch.png --weights {name} --out results/
edges2shoes evaluate --data edges2shoes --weights {name} --out reports/{facts.repo_id.split("/")[1]}
edges2shoes weights convert {name} --to official --out checkpoints/edges2shoes_pix2pix  # for the official pix2pix code's test.py
```

```python
from edges2shoes_utils import Sketch2Shoe

# sketch clean-up + generator; generate() returns PIL images
model = Sketch2Shoe.from_weights("{name}", seed=0)
shoes = model.generate(["sketch.png"])
```"""


__all__ = ["CardFacts", "ReportScores", "card_fields", "describe_data", "public_source", "KIT_REPOSITORY"]
