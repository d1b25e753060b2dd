"""The Hugging Face Hub's conventions for our networks: `from_pretrained`, `save_pretrained` and
`push_to_hub` of huggingface_hub's `PyTorchModelHubMixin`, with the config dataclass as config.json,
the weights as model.safetensors and a model card from `CARD_TEMPLATE`.

huggingface_hub is an optional extra, so the networks do not inherit the mixin. `HubMixin` gives
them thin methods that build, on first use, a subclass that does inherit it (`hub_class`) and hand
the work to the library. `from_pretrained` returns our plain class, in eval mode as the mixin does,
and refuses weights that do not fit (the mixin's own default would load them partially). It also
reads what version 0.2 of this kit published: a config.json whose `generator` entry holds the
config and whose `weights` entry names the safetensors file.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load_file

from ..util.errors import WeightsError

INSTALL = "pip install 'edges2shoes[publish]'"
HUB_CONFIG = "config.json"  # the names save_pretrained writes
HUB_WEIGHTS = "model.safetensors"
TAGS = ("pix2pix", "edges2shoes", "image-to-image", "gan", "sketch-to-image")
PAPER_URL = "https://arxiv.org/abs/1611.07004"

# The card's Markdown; {{ card_data }} is the YAML header the library writes (license, library_name,
# tags). `publish` fills network, training, scores and usage; a bare save_pretrained leaves them out.
CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ summary }} pix2pix (Isola et al. 2017, *Image-to-Image Translation with Conditional Adversarial
Networks*, [arXiv 1611.07004]({{ paper_url }})){% if made_with %}, {{ made_with }}{% endif %}.
{% for heading, section in (("Network", network), ("Training", training), ("Scores", scores)) %}{% if section %}
## {{ heading }}

{{ section }}
{% endif %}{% endfor %}
## Use it

```python
from edges2shoes_utils.nets import {{ class_name }}
{% if kaggle_model %}import kagglehub

model = {{ class_name }}.from_pretrained(kagglehub.model_download("{{ kaggle_model }}"))  # eval mode
{% else %}
model = {{ class_name }}.from_pretrained("{{ repo_id }}")  # eval mode; config.json holds the architecture
{% endif %}```
{% if usage %}
{{ usage }}
{% endif %}"""


class HubMixin:
    """`from_pretrained` / `save_pretrained` / `push_to_hub` as `PyTorchModelHubMixin` has them (same
    arguments), for a network class with a `config` dataclass; huggingface_hub is imported on first use."""

    @classmethod
    def from_pretrained(cls, name_or_folder: str | os.PathLike, **kwargs: Any) -> Any:
        """The network saved in a folder by `save_pretrained`, or in a Hub model repository (through
        huggingface_hub's cache; `revision`, `cache_dir`, `token`, `local_files_only`, ... as the mixin
        takes them), in eval mode. Settings given as keywords replace config.json's (`dropout=False`)."""
        model = hub_class(cls).from_pretrained(name_or_folder, **kwargs)
        vars(model).pop("_hub_mixin_config", None)  # the mixin's copy; ours is `model.config`
        return model

    def save_pretrained(self, folder: str | os.PathLike, **kwargs: Any) -> Any:
        """Write model.safetensors, config.json and README.md (the card) into `folder`."""
        return hub_view(self).save_pretrained(folder, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> Any:
        """Create the Hub repository if needed and upload what `save_pretrained` writes, in one commit."""
        kwargs["model_card_kwargs"] = {"repo_id": repo_id, **(kwargs.get("model_card_kwargs") or {})}
        return hub_view(self).push_to_hub(repo_id, **kwargs)


def weights_named(config: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """(the network's settings, the weights file) a config.json describes: save_pretrained's, or the
    `generator` and `weights` entries of what version 0.2 published."""
    if isinstance(config.get("generator"), Mapping) and isinstance(config.get("weights"), str):
        return config["generator"], Path(config["weights"]).name
    return config, HUB_WEIGHTS


def read_hub_config(path: str | os.PathLike) -> dict[str, Any]:
    """A config.json as a dict (WeightsError naming the file when it is not one)."""
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise WeightsError(f"{path}: not a readable config.json ({error})") from None
    if not isinstance(config, dict):
        raise WeightsError(f"{path}: not a network config (a JSON object was expected)")
    return config


def saved_weights(folder: str | os.PathLike) -> Path | None:
    """The weights file of a folder `save_pretrained` (or 0.2's publish) wrote; None for any other
    folder, such as a training run's, whose config.json names no file that is there."""
    config_path = Path(folder) / HUB_CONFIG
    try:
        weights = Path(folder) / weights_named(read_hub_config(config_path))[1]
    except WeightsError:
        return None
    return weights if weights.is_file() else None


def hub_view(model: Any) -> Any:
    """`model` as an instance of its `hub_class`, sharing its tensors (nothing is copied)."""
    hub = hub_class(type(model))
    with torch.device("meta"):
        view = hub(model.config)
    view.load_state_dict(model.state_dict(), assign=True)
    return view


def _load_weights(network: type, settings: dict[str, Any], path: Path, device: str, strict: bool) -> Any:
    """A `network` of `settings` holding the tensors of the safetensors file `path`."""
    try:
        state = load_file(str(path), device=str(device))
    except Exception as error:  # safetensors raises its own types for damaged headers
        raise WeightsError(f"{path}: not a readable safetensors file ({str(error).splitlines()[0][:200]})") from None
    with torch.device("meta") if strict else torch.device("cpu"):  # strict: every tensor comes from the file
        model = network(network.config_class(**settings))
    try:
        model.load_state_dict(state, strict=strict, assign=strict)
    except RuntimeError as error:  # missing, unexpected or misshapen tensors, listed over several lines
        problem = " ".join(str(error).split())[:300]
        raise WeightsError(f"{path}: does not fit the {network.__name__} its config.json describes ({problem})") from None
    return model.eval()


@functools.cache
def hub_class(network: type) -> type:
    """`network` with `PyTorchModelHubMixin` mixed in (built once per class)."""
    try:
        from huggingface_hub import PyTorchModelHubMixin, hf_hub_download  # lazy: the optional `publish` extra
    except ImportError:
        raise WeightsError(f"{network.__name__}.from_pretrained / save_pretrained / push_to_hub need huggingface_hub: {INSTALL}") from None
    config_class = network.config_class
    names = {field.name for field in dataclasses.fields(config_class)}

    class Hub(PyTorchModelHubMixin, network, library_name="edges2shoes", tags=list(TAGS), paper_url=PAPER_URL,
              pipeline_tag=network.hub_pipeline_tag, model_card_template=CARD_TEMPLATE):
        def __init__(self, config: Any = None) -> None:  # no annotation: the mixin passes config.json as a dict
            network.__init__(self, config_class(**config) if isinstance(config, Mapping) else config)

        @classmethod
        def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir: Any, force_download: bool,
                             local_files_only: bool, token: Any, config: Mapping | None = None,
                             map_location: str = "cpu", strict: bool = True, **settings: Any) -> Any:
            for older_argument in ("proxies", "resume_download"):  # passed by older huggingface_hub versions
                settings.pop(older_argument, None)
            if not isinstance(config, Mapping):
                raise WeightsError(f"{model_id}: no config.json to say which {network.__name__} it holds "
                                   f"(save_pretrained writes one beside model.safetensors)")
            config, filename = weights_named(config)
            unknown = sorted(set(settings) - names)
            if unknown:
                raise TypeError(f"{network.__name__}.from_pretrained() got unknown settings {unknown}")
            settings = {**{k: v for k, v in config.items() if k in names}, **settings}
            if os.path.isdir(model_id):
                path = Path(model_id) / filename
                if not path.is_file():
                    raise WeightsError(f"{model_id}: no {filename} in this folder (save_pretrained writes one)")
            else:
                path = Path(hf_hub_download(repo_id=model_id, filename=filename, revision=revision, cache_dir=cache_dir,
                                            force_download=force_download, token=token, local_files_only=local_files_only))
            return _load_weights(network, settings, path, map_location, strict)

        def generate_model_card(self, *args: Any, license: str | None = None, **kwargs: Any) -> Any:
            defaults = {"title": f"{network.__name__}: {network.hub_summary[0]}", "summary": network.hub_summary[1],
                        "class_name": network.__name__, "repo_id": "USER/NAME"}
            card = super().generate_model_card(*args, **{**defaults, **kwargs})
            if license:
                card.data.license = license
            return card

    Hub.__name__ = Hub.__qualname__ = network.__name__
    return Hub


__all__ = ["HubMixin", "hub_class", "hub_view", "weights_named", "read_hub_config", "saved_weights", "CARD_TEMPLATE",
           "TAGS", "HUB_CONFIG", "HUB_WEIGHTS"]
