"""Pretrained weights: fetch them, read any known layout into our networks, convert and inspect.

Training pix2pix (Isola et al. 2017, arXiv 1611.07004) takes hours on a GPU, so most users start
from weights. Two public sets exist for edges2shoes:

- `kaggle`: the original edges2shoes project's `generator_{epoch}.pt` files, in the Kaggle dataset
  `rudenkoilya/edges2shoes-weights` (fetched with kagglehub);
- `pix2pix-official`: the official pix2pix PyTorch model zoo's edges2shoes generator (fetched over
  HTTP, its sha256 recorded on the first download and checked on every later fetch).

`load_generator(source)` reads our exports, epoch files and training checkpoints, the official
implementation's state dicts, and TF-tutorial U-Nets (a state dict with any names, or a whole
notebook module pickled with `torch.save(model)`) without ever running code from the file
(`safe_unpickle`); the layout mapping lives in `foreign_layouts`. `load_discriminator` reads ours,
the official PatchGAN and the TF tutorial's (a state dict with any names, or a pickled module).

Cache folder: `$EDGES2SHOES_WEIGHTS` if set; otherwise `weights/` of the repository checkout this
package runs from, or, for an installed package, `~/.cache/edges2shoes/weights`
(`$XDG_CACHE_HOME` respected). Kaggle files stay in kagglehub's own cache; only the dataset
version we pinned is recorded in ours.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.client
import json
import os
import pickle
import re
import sys
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from . import formats as checkpoints
from ..util.atomic import atomic_open, atomic_write_text
from ..util.errors import ConfigError, WeightsError
from .foreign_layouts import (
    Converted,
    build,
    fit_state,
    infer_our_discriminator_config,
    infer_our_generator_config,
    is_official_discriminator,
    is_official_generator,
    is_our_discriminator,
    is_our_generator,
    layers_from_module,
    layers_from_state_dict,
    official_discriminator,
    official_generator,
    strip_wrappers,
    skeleton,
    tf_discriminator,
    tf_generator,
)
from ..nets.models import DiscriminatorConfig, GeneratorConfig, PatchGANDiscriminator, UNetGenerator, count_parameters
from .safe_unpickle import is_module_like, load_restricted

SOURCES = ("kaggle", "pix2pix-official")
CACHE_ENV = "EDGES2SHOES_WEIGHTS"

KAGGLE_DATASET = "rudenkoilya/edges2shoes-weights"
KAGGLE_URL = "https://www.kaggle.com/datasets/rudenkoilya/edges2shoes-weights"
KAGGLE_VERSION_ENV = "EDGES2SHOES_KAGGLE_VERSION"
# The dataset version to pin. Not known here (it could not be looked up offline): the first
# successful download records the version kagglehub returned, and later fetches pin that one, so
# a cached copy keeps working offline (an unversioned handle asks the Kaggle API every time).
KAGGLE_VERSION: int | None = None

OFFICIAL_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/edges2shoes.pth"
OFFICIAL_URL_ENV = "EDGES2SHOES_PIX2PIX_URL"  # a mirror, if the Berkeley server is unreachable
OFFICIAL_FILE = "pix2pix-official/edges2shoes_net_G.pth"
# sha256 of the official file: unknown until a first download (none was possible offline); the
# first download records it beside the file and every later fetch checks it.
OFFICIAL_SHA256: str | None = None

Downloader = Callable[..., str]  # kagglehub.dataset_download(handle, path=None) -> local path


# --------------------------------------------------------------------------------------------------
# Where weights are cached.


def default_cache_dir() -> Path:
    """`$EDGES2SHOES_WEIGHTS`, else the checkout's `weights/`, else the user cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "edges2shoes_utils").is_dir():
        return checkout / "weights"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edges2shoes" / "weights"


# --------------------------------------------------------------------------------------------------
# Fetching.


def fetch_weights(
    source: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    downloader: Downloader | None = None,
    epoch: int = 9,
    url: str | None = None,
    progress: bool = True,
) -> Path:
    """The local path of `source`'s generator weights, downloading them into the cache if needed.

    `source` is "kaggle" (`generator_{epoch}.pt` of the original project; `downloader` replaces
    kagglehub.dataset_download), "pix2pix-official" (`url` or `$EDGES2SHOES_PIX2PIX_URL` replaces
    the Berkeley URL), or a path to a weights file, returned as is. Raises WeightsError saying
    what to do when the weights cannot be fetched.
    """
    return _fetch(source, "generator", cache_dir=cache_dir, downloader=downloader, epoch=epoch, url=url, progress=progress)


def _fetch(
    source: str | os.PathLike,
    role: str,
    *,
    cache_dir: str | os.PathLike | None,
    downloader: Downloader | None,
    epoch: int,
    url: str | None,
    progress: bool,
) -> Path:
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if source == "kaggle":
        return _fetch_kaggle(cache, f"{role}_{epoch}.pt", downloader)
    if source == "pix2pix-official":
        if role != "generator":
            raise WeightsError("the official pix2pix model zoo publishes generators only, no discriminator")
        return _fetch_official(cache, url or os.environ.get(OFFICIAL_URL_ENV) or OFFICIAL_URL, progress)
    path = Path(source).expanduser()
    if not path.is_file():
        hint = " (a folder: pass one of its weights files)" if path.is_dir() else ""
        raise WeightsError(f"{path}: no such weights file{hint}; a source is a file path, " + " or ".join(repr(s) for s in SOURCES))
    return path


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_sidecar(sidecar: Path) -> str | None:
    if not sidecar.is_file():
        return None
    words = sidecar.read_text(encoding="utf-8").split()
    if not words or not re.fullmatch(r"[0-9a-f]{64}", words[0]):
        raise WeightsError(f"{sidecar}: not a sha256 record; delete it to record the file's hash again")
    return words[0]


def _fetch_official(cache: Path, url: str, progress: bool) -> Path:
    target = cache / OFFICIAL_FILE
    sidecar = target.with_name(target.name + ".sha256")
    recorded = _read_sidecar(sidecar) or OFFICIAL_SHA256
    if target.is_file():
        actual = sha256_of(target)
        if recorded and actual != recorded:
            raise WeightsError(
                f"{target}: its sha256 {actual} differs from {recorded} recorded at its first download "
                f"({sidecar}): the file changed since. Delete {target} to download it again."
            )
        if not recorded:
            atomic_write_text(sidecar, f"{actual}  {target.name}\n")
        return target
    actual = download_file(url, target, expected_sha256=recorded, progress=progress)
    if not recorded:
        atomic_write_text(sidecar, f"{actual}  {target.name}\n")
    return target


def download_file(
    url: str,
    target: str | os.PathLike,
    *,
    expected_sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> str:
    """Stream `url` into `target` with a progress bar and return the file's sha256.

    The bytes go to a temporary file beside `target`, renamed over it only when the transfer is
    complete (and matches `expected_sha256`, if given): an interrupted or wrong download never
    leaves a file at `target`.
    """
    from tqdm.auto import tqdm

    target = Path(target)
    digest = hashlib.sha256()
    advice = (
        f"Check the internet connection and try again, or download {url} with a browser on a machine "
        f"that has access and save it as {target} (or set ${OFFICIAL_URL_ENV} to a mirror)."
    )
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "edges2shoes"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = response.length
            received = 0
            with atomic_open(target, "wb") as handle, tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name,
                disable=not progress, file=sys.stderr,
            ) as bar:
                while True:
                    block = response.read(1 << 20)
                    if not block:
                        break
                    handle.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
                if total is not None and received < total:  # closed early without an error
                    raise WeightsError(f"{url}: the transfer stopped after {received} of {total} bytes; nothing was saved. {advice}")
                actual = digest.hexdigest()
                if expected_sha256 and actual != expected_sha256:
                    raise WeightsError(
                        f"{url}: the downloaded file's sha256 is {actual}, but {expected_sha256} was recorded at the "
                        f"first download; nothing was saved. The file on the server changed or was tampered with; if "
                        f"you trust it, delete {target.name}.sha256 in {target.parent} and fetch again."
                    )
    except urllib.error.HTTPError as error:
        raise WeightsError(f"{url}: the server answered {error.code} {error.reason}. {advice}") from None
    except urllib.error.URLError as error:
        raise WeightsError(f"{url}: could not connect ({error.reason}). {advice}") from None
    except (http.client.HTTPException, OSError) as error:
        raise WeightsError(f"{url}: the download failed ({type(error).__name__}: {error}); nothing was saved. {advice}") from None
    return actual


def _fetch_kaggle(cache: Path, filename: str, downloader: Downloader | None) -> Path:
    pin_file = cache / "kaggle" / (KAGGLE_DATASET.replace("/", "__") + ".version")
    pinned = os.environ.get(KAGGLE_VERSION_ENV) or (pin_file.read_text().strip() if pin_file.is_file() else None)
    pinned = pinned or (str(KAGGLE_VERSION) if KAGGLE_VERSION else None)
    handle = f"{KAGGLE_DATASET}/versions/{pinned}" if pinned else KAGGLE_DATASET
    if downloader is None:
        try:
            import kagglehub
        except ImportError:
            raise WeightsError(f"fetching from Kaggle needs kagglehub: pip install 'kagglehub>=1.0,<2' "
                               f"(or download {KAGGLE_URL} by hand and pass the path to {filename})") from None
        downloader = kagglehub.dataset_download
    try:
        try:
            root = Path(downloader(handle, path=filename))
        except Exception:  # the file may sit in a sub-folder: fetch the whole dataset instead
            root = Path(downloader(handle))
    except Exception as error:  # kagglehub raises many types (HTTP, auth, missing version, ...)
        raise WeightsError(
            f"could not download {handle} from Kaggle ({type(error).__name__}: {str(error)[:300]}). "
            "Without internet, or on a first download, this needs network access; without Kaggle "
            "credentials, run `kagglehub.login()` or set KAGGLE_USERNAME and KAGGLE_KEY (or put "
            f"kaggle.json in ~/.kaggle/). Or download {filename} from {KAGGLE_URL} by hand and pass its path."
        ) from None
    if not pinned:
        match = re.search(r"versions[/\\](\d+)", str(root))
        if match:
            atomic_write_text(pin_file, match.group(1) + "\n")
    if root.is_file():
        return root
    found = sorted(root.rglob(filename)) or sorted(root.rglob(filename + "h"))  # .pt or .pth
    if not found:
        available = sorted(p.name for p in root.rglob("*.pt*"))
        raise WeightsError(f"{root}: the Kaggle dataset {handle} has no {filename} (it has: {', '.join(available[:20]) or 'no .pt files'})")
    return found[0]


# --------------------------------------------------------------------------------------------------
# Reading.


@dataclass
class LoadedWeights:
    """A network read from a file, and how it was read (what `weights info` prints)."""

    path: Path
    layout: str  # e.g. "official pix2pix U-Net", "TF-tutorial U-Net (pickled notebook module)", "edges2shoes"
    container: str  # e.g. "edges2shoes epoch file", "state dict", "pickled module"
    model: nn.Module
    notes: list[str] = field(default_factory=list)

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def parameters(self) -> int:
        return count_parameters(self.model)


def read_object(path: Path) -> Any:
    """Unpickle a .pt/.pth file without running code from it: `torch.load(weights_only=True)` for
    plain tensors and containers, the restricted unpickler for pickled notebook modules."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # needs more than tensors and containers: a pickled module, or something unsafe
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as error:
        if "weights_only" not in str(error):
            raise WeightsError(f"{path}: not a readable PyTorch file ({str(error).splitlines()[0][:200]})") from None
    return load_restricted(path)


def _state_from_safetensors(path: Path) -> tuple[Any, dict | None, str]:
    from safetensors.torch import load_file

    metadata = checkpoints.read_export_metadata(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as error:
        raise WeightsError(f"{path}: not a readable safetensors file ({error})") from None
    config = json.loads(metadata["config"]) if "config" in metadata else None
    return tensors, config, "edges2shoes export" if config else "safetensors state dict"


_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net", "network")
_ROLE_KEYS = {
    "generator": ("generator", "netG", "G", "gen", "generator_state_dict", "state_dict_G", "model_G"),
    "discriminator": ("discriminator", "netD", "D", "disc", "discriminator_state_dict", "state_dict_D", "model_D"),
}


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def find_network(obj: Any, role: str, path: Path) -> tuple[Any, dict | None, str]:
    """(state dict or pickled module, saved config or None, container name) for `role` in `obj`."""
    if isinstance(obj, Mapping):
        fmt = obj.get("format")
        if fmt == checkpoints.TRAINING_FORMAT and role in obj:
            return obj[role], obj.get(f"{role}_config") or None, "edges2shoes training checkpoint"
        epoch_formats = {checkpoints.GENERATOR_EPOCH_FORMAT: "generator", checkpoints.DISCRIMINATOR_EPOCH_FORMAT: "discriminator"}
        if fmt in epoch_formats:
            if epoch_formats[fmt] != role:
                raise WeightsError(f"{path}: holds a {epoch_formats[fmt]}, not a {role} (pass the matching {role}_N.pt)")
            return obj["state_dict"], obj.get("config") or None, "edges2shoes epoch file"
        if _is_state_dict(obj):
            return obj, None, "state dict"
        other = "discriminator" if role == "generator" else "generator"
        for key in _ROLE_KEYS[role] + _WRAPPER_KEYS:
            if key in obj:
                inner, config, container = find_network(obj[key], role, path)
                saved = obj.get(f"{role}_config") or obj.get("config")
                return inner, config or (saved if isinstance(saved, Mapping) else None), f"{container} in a dict ['{key}']"
        if any(key in obj for key in _ROLE_KEYS[other]):
            raise WeightsError(f"{path}: holds a {other} but no {role}")
        keys = ", ".join(repr(k) for k in list(obj)[:12])
        raise WeightsError(f"{path}: a dict with keys {keys}, none of which holds {role} weights")
    if is_module_like(obj):
        return obj, None, "pickled module"
    raise WeightsError(f"{path}: holds a {type(obj).__name__}, not {role} weights")


def _module_state(root: Any) -> dict[str, torch.Tensor]:
    """The state-dict view of a pickled module tree (real layers inside placeholders)."""
    state: dict[str, torch.Tensor] = {}

    def visit(obj: Any, prefix: str) -> None:
        for slot in ("_parameters", "_buffers"):
            for name, value in (vars(obj).get(slot) or {}).items():
                if isinstance(value, torch.Tensor):
                    state[prefix + name] = value
        for name, child in (vars(obj).get("_modules") or {}).items():
            if child is not None:
                visit(child, f"{prefix}{name}.")

    visit(root, "")
    return state


def _known_fields(config: Mapping[str, Any], cls: type, notes: list[str]) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - names)
    if unknown:
        notes.append(f"ignored unknown config fields {unknown}")
    return {k: v for k, v in config.items() if k in names}


def _convert_generator(payload: Any, saved_config: Mapping | None, path: Path, options: dict) -> Converted:
    source = str(path)
    if is_module_like(payload):
        flat = _module_state(payload)
        if is_official_generator(strip_wrappers(flat)[0]):
            state, notes = strip_wrappers(flat)
            converted = official_generator(state, source, dropout=options["dropout"], norm=options["norm"])
            converted.notes[:0] = notes
            return converted
        return tf_generator(layers_from_module(payload, source), source, from_module=True,
                            leaky_slope=options["leaky_slope"], dropout=options["dropout"], skip_first=options["skip_first"])
    state, notes = strip_wrappers(payload)
    if is_our_generator(state):
        if saved_config:
            config = GeneratorConfig(**_known_fields(saved_config, GeneratorConfig, notes))
        else:
            config = infer_our_generator_config(state, source)
            notes.append("no config in the file: settings inferred from the tensor shapes")
        overrides = {k: v for k, v in options.items() if v is not None and k != "skip_first"}
        try:
            config = dataclasses.replace(config, **overrides)
            target = skeleton(UNetGenerator, config)
        except (TypeError, ConfigError) as error:
            raise WeightsError(f"{source}: its generator config is not usable ({error})") from None
        mapped = {k: (k, v) for k, v in state.items()}
        return Converted(config, fit_state(target, mapped, source, "edges2shoes U-Net"), f"edges2shoes ({config.layout} layout)", notes)
    if is_official_generator(state):
        converted = official_generator(state, source, dropout=options["dropout"], norm=options["norm"])
    else:
        converted = tf_generator(layers_from_state_dict(state, source), source, from_module=False,
                                 leaky_slope=options["leaky_slope"], dropout=options["dropout"], skip_first=options["skip_first"])
    converted.notes[:0] = notes
    return converted


def read_generator(
    source: str | os.PathLike,
    *,
    leaky_slope: float | None = None,
    dropout: bool | None = None,
    norm: str | None = None,
    skip_first: bool = False,
    cache_dir: str | os.PathLike | None = None,
    downloader: Downloader | None = None,
    epoch: int = 9,
) -> LoadedWeights:
    """`load_generator`, also saying which layout was found and what was assumed."""
    path = _fetch(source, "generator", cache_dir=cache_dir, downloader=downloader, epoch=epoch, url=None, progress=True)
    if path.suffix == ".safetensors":
        payload, saved_config, container = _state_from_safetensors(path)
    else:
        payload, saved_config, container = find_network(read_object(path), "generator", path)
    options = {"leaky_slope": leaky_slope, "dropout": dropout, "norm": norm, "skip_first": skip_first}
    converted = _convert_generator(payload, saved_config, path, options)
    generator = build(UNetGenerator, converted.config, converted.state_dict)
    if converted.bn_eps is not None:
        for module in generator.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eps = converted.bn_eps
    return LoadedWeights(path, converted.layout_name, container, generator.eval(), converted.notes)


def load_generator(
    path_or_source: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    leaky_slope: float | None = None,
    dropout: bool | None = None,
    norm: str | None = None,
    skip_first: bool = False,
    cache_dir: str | os.PathLike | None = None,
    downloader: Downloader | None = None,
    epoch: int = 9,
) -> UNetGenerator:
    """A ready UNetGenerator (eval mode, on `device`) from any known weights file or source.

    Reads our exports, epoch files and training checkpoints; the official pix2pix state dict
    (also without num_batches_tracked, with a `module.` prefix, or wrapped in {"state_dict": ...} /
    {"model": ...}); TF-tutorial U-Nets as a state dict or a pickled notebook module. Never runs
    code from the file. Layout options, for what a plain state dict cannot say: `leaky_slope`
    (TF layout; default 0.3, the Keras default), `dropout` (default on), `norm` (official layout
    without norm tensors; default "instance"), `skip_first` (TF layout: the notebook concatenated
    [skip, upsampled] rather than the tutorial's [upsampled, skip]). Values found in the file win
    unless given here.
    """
    loaded = read_generator(path_or_source, leaky_slope=leaky_slope, dropout=dropout, norm=norm, skip_first=skip_first,
                            cache_dir=cache_dir, downloader=downloader, epoch=epoch)
    return loaded.model.to(device)


def read_discriminator(
    source: str | os.PathLike,
    *,
    leaky_slope: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    downloader: Downloader | None = None,
    epoch: int = 9,
) -> LoadedWeights:
    """`load_discriminator`, also saying which layout was found and what was assumed."""
    path = _fetch(source, "discriminator", cache_dir=cache_dir, downloader=downloader, epoch=epoch, url=None, progress=True)
    payload, saved_config, container = find_network(read_object(path), "discriminator", path)
    module = payload if is_module_like(payload) else None
    state, notes = strip_wrappers(_module_state(payload) if module is not None else payload)
    if is_our_discriminator(state):
        if saved_config:
            config = DiscriminatorConfig(**_known_fields(saved_config, DiscriminatorConfig, notes))
        else:
            config = infer_our_discriminator_config(state, str(path))
            notes.append("no config in the file: settings inferred from the tensor shapes")
        if leaky_slope is not None:
            config = dataclasses.replace(config, leaky_slope=leaky_slope)
        target = skeleton(PatchGANDiscriminator, config)
        converted = Converted(config, fit_state(target, {k: (k, v) for k, v in state.items()}, str(path), "edges2shoes PatchGAN"), "edges2shoes PatchGAN", notes)
    elif is_official_discriminator(state) and _first_conv_has_bias(state):
        converted = official_discriminator(state, str(path))
        converted.notes[:0] = notes
    else:
        layers = layers_from_module(module, str(path), "PatchGAN") if module is not None else layers_from_state_dict(state, str(path))
        converted = tf_discriminator(layers, str(path), from_module=module is not None, leaky_slope=leaky_slope)
        converted.notes[:0] = notes
    discriminator = build(PatchGANDiscriminator, converted.config, converted.state_dict)
    if converted.bn_eps is not None:
        for layer in discriminator.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.eps = converted.bn_eps
    return LoadedWeights(path, converted.layout_name, container, discriminator.eval(), converted.notes)


def _first_conv_has_bias(state: Mapping[str, torch.Tensor]) -> bool:
    """The official PatchGAN's first conv has a bias; a TF-tutorial port in one `nn.Sequential`
    (same `model.N` keys) has none, and goes to the TF mapping instead."""
    first = min(int(key.split(".")[1]) for key in state)
    return f"model.{first}.bias" in state


def load_discriminator(
    path_or_source: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    leaky_slope: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    downloader: Downloader | None = None,
    epoch: int = 9,
) -> PatchGANDiscriminator:
    """A PatchGANDiscriminator (eval mode, on `device`) from our files, the official implementation's
    state dict, or the TF tutorial's discriminator (a state dict with any names or a pickled notebook
    module). `leaky_slope`: for TF-tutorial state dicts, which cannot carry it (default 0.3, the Keras
    default); a pickled module's own slope is used unless this is given."""
    return read_discriminator(path_or_source, leaky_slope=leaky_slope, cache_dir=cache_dir, downloader=downloader,
                              epoch=epoch).model.to(device)


# --------------------------------------------------------------------------------------------------
# Converting.


def export_onnx(generator: UNetGenerator, path: str | os.PathLike, *, image_size: int = 256) -> Path:
    """Write the generator (eval mode: running batch-norm statistics, no dropout) as ONNX, with a
    dynamic batch size; the image side is fixed at `image_size`. Written atomically."""
    path = Path(path)
    generator.check_size(image_size, image_size)
    was_training = generator.training
    device = next(generator.parameters()).device
    generator.eval().cpu()
    example = torch.zeros(1, generator.config.in_channels, image_size, image_size)
    try:
        with atomic_open(path, "wb") as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
            torch.onnx.export(
                generator, (example,), handle, dynamo=False, opset_version=17,
                input_names=["edges"], output_names=["photo"],
                dynamic_axes={"edges": {0: "batch"}, "photo": {0: "batch"}},
            )
    except ModuleNotFoundError as error:
        raise WeightsError(f"{path}: ONNX export needs the onnx package (pip install onnx onnxruntime): {error}") from None
    finally:
        generator.train(was_training).to(device)
    return path


def check_onnx(generator: UNetGenerator, path: str | os.PathLike, *, image_size: int = 256, batch: int = 2, seed: int = 0) -> float:
    """Max absolute difference between onnxruntime's and PyTorch's outputs on random inputs."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = torch.randn(batch, generator.config.in_channels, image_size, image_size,
                         generator=torch.Generator().manual_seed(seed))
    was_training = generator.training
    with torch.no_grad():
        expected = generator.eval()(inputs.to(next(generator.parameters()).device)).cpu()
    generator.train(was_training)
    got = torch.from_numpy(session.run(None, {"edges": inputs.numpy()})[0])
    return float((got - expected).abs().max())


# --------------------------------------------------------------------------------------------------
# Command line.


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(run=lambda args: (parser.print_help(), 1)[1])
    actions = parser.add_subparsers(dest="weights_action", metavar="ACTION")

    fetch = actions.add_parser("fetch", help="download weights into the cache and print their path",
                               description="Download weights (kaggle, pix2pix-official) into the cache and print their path.")
    fetch.add_argument("source", help="'kaggle', 'pix2pix-official' or a file path")
    _add_fetch_options(fetch)
    fetch.add_argument("--url", help=f"download the official file from this mirror (also ${OFFICIAL_URL_ENV})")
    fetch.set_defaults(run=_run_fetch)

    convert = actions.add_parser("convert", help="write any known weights as our safetensors export and/or ONNX",
                                 description="Read weights in any known layout; write our safetensors export and/or an ONNX generator.")
    convert.add_argument("source", help="'kaggle', 'pix2pix-official' or a weights file")
    convert.add_argument("--out", type=Path, help="our export: a .safetensors file with the config in its metadata")
    convert.add_argument("--onnx", type=Path, help="an ONNX generator (eval mode, dynamic batch)")
    convert.add_argument("--image-size", type=int, default=256, help="the ONNX model's image side (default 256)")
    _add_fetch_options(convert)
    _add_layout_options(convert)
    convert.set_defaults(run=_run_convert)

    info = actions.add_parser("info", help="print the layout, parameter count and config found in weights",
                              description="Print the layout, parameter count and config found in a weights file.")
    info.add_argument("source", help="a weights file, 'kaggle' or 'pix2pix-official'")
    info.add_argument("--discriminator", action="store_true", help="read a discriminator instead of a generator")
    _add_fetch_options(info)
    _add_layout_options(info)
    info.set_defaults(run=_run_info)


def _add_fetch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", type=Path, help=f"cache folder (default ${CACHE_ENV}, else weights/ of the checkout)")
    parser.add_argument("--epoch", type=int, default=9, help="which generator_N.pt of the Kaggle set (default 9, the last)")


def _add_layout_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--leaky-slope", type=float, help="TF-layout state dicts: LeakyReLU slope (default 0.3; also for --discriminator)")
    parser.add_argument("--no-dropout", dest="dropout", action="store_const", const=False, default=None,
                        help="build the generator without dropout (state dicts cannot say)")
    parser.add_argument("--norm", choices=["batch", "instance", "none"], help="official layout without norm tensors")
    parser.add_argument("--skip-first", action="store_true",
                        help="TF layout: the notebook concatenated [skip, upsampled] (the tutorial: [upsampled, skip])")


def _run_fetch(args: argparse.Namespace) -> int:
    print(fetch_weights(args.source, cache_dir=args.cache_dir, epoch=args.epoch, url=args.url))
    return 0


def _layout_kwargs(args: argparse.Namespace) -> dict:
    return {"leaky_slope": args.leaky_slope, "dropout": args.dropout, "norm": args.norm, "skip_first": args.skip_first,
            "cache_dir": args.cache_dir, "epoch": args.epoch}


def _run_convert(args: argparse.Namespace) -> int:
    if args.out is None and args.onnx is None:
        raise ConfigError("say what to write: --out G.safetensors and/or --onnx G.onnx")
    loaded = read_generator(args.source, **_layout_kwargs(args))
    _print_notes(loaded)
    if args.out is not None:
        if any(isinstance(m, nn.BatchNorm2d) and m.eps != 1e-5 for m in loaded.model.modules()):
            print("warning: the export cannot carry the file's batch-norm epsilon; it will load with 1e-5", file=sys.stderr)
        checkpoints.export_generator(loaded.model, args.out, metadata={"converted_from": str(loaded.path), "source_layout": loaded.layout})
        print(f"wrote {args.out} ({loaded.layout}, {loaded.parameters:,} parameters)")
    if args.onnx is not None:
        export_onnx(loaded.model, args.onnx, image_size=args.image_size)
        try:
            difference = check_onnx(loaded.model, args.onnx, image_size=args.image_size)
        except ImportError:
            print(f"wrote {args.onnx} (install onnxruntime to check it)")
            return 0
        if difference > 1e-4:
            raise WeightsError(f"{args.onnx}: onnxruntime's output differs from PyTorch's by {difference:.2e}")
        print(f"wrote {args.onnx}: onnxruntime's output differs from PyTorch's by at most {difference:.2e}")
    return 0


def _print_notes(loaded: LoadedWeights) -> None:
    for note in loaded.notes:
        print(f"note: {note}", file=sys.stderr)


def _run_info(args: argparse.Namespace) -> int:
    if args.discriminator:
        loaded = read_discriminator(args.source, leaky_slope=args.leaky_slope, cache_dir=args.cache_dir, epoch=args.epoch)
    else:
        loaded = read_generator(args.source, **_layout_kwargs(args))
    print(f"file:       {loaded.path}")
    print(f"sha256:     {sha256_of(loaded.path)}")
    print(f"container:  {loaded.container}")
    print(f"layout:     {loaded.layout}")
    print(f"parameters: {loaded.parameters:,}")
    print(f"config:     {json.dumps(dataclasses.asdict(loaded.config))}")
    for note in loaded.notes:
        print(f"note:       {note}")
    return 0


__all__ = [
    "SOURCES",
    "default_cache_dir",
    "fetch_weights",
    "download_file",
    "sha256_of",
    "read_object",
    "find_network",
    "LoadedWeights",
    "read_generator",
    "load_generator",
    "read_discriminator",
    "load_discriminator",
    "export_onnx",
    "check_onnx",
    "configure_cli",
]
