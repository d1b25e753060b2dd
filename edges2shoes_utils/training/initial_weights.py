"""Training that starts from published weights (`--init`, `--init-generator`, `--init-discriminator`).

A new run may start G and/or D from anything the loaders read: a weights file, "kaggle" (the
original notebook's generator_9.pt / discriminator_9.pt), "pix2pix-official" or "huggan" (these two
publish generators only, so D starts fresh). Fine-tuning the official model on your own shoes, or
continuing the original model past its 10 epochs, starts here.

- **Architecture from the weights.** The networks are the loaded ones, with their layout (official,
  TF tutorial, PyTorch-GAN). `ngf`, `ndf`, `norm`, `levels` and `bn_eps` are set from them; a value
  that differs and was set on purpose (not the default; on the command line, any flag given) is
  refused with a ConfigError.
- **Fresh optimisers**, a fresh GradScaler, and the run's own seed for data order and dropout.
- **Records.** config.json keeps the sources as given; last.pt keeps each network's full config, so
  a resumed run rebuilds the same networks from it (`checkpointing.networks_for_resume`). A resumed
  run cannot switch to other weights (`config.changes_on_resume` refuses).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Collection

from torch import nn

from ..weights.fetch import GENERATOR_ONLY_SOURCES
from ..weights.load import LoadedWeights, read_weights
from ..nets import DiscriminatorConfig, GeneratorConfig
from ..util.errors import ConfigError, Edges2ShoesError
from .config import TrainConfig
from .distributed import DistInfo, broadcast_object

ADOPTED_FIELDS = ("ngf", "ndf", "norm", "levels", "bn_eps")  # TrainConfig fields the weights decide


@dataclass
class InitialWeights:
    """The networks a run starts from (None: built fresh from the config), and what to say about them."""

    generator: nn.Module | None = None
    discriminator: nn.Module | None = None
    lines: list[str] = field(default_factory=list)


def init_sources(config: TrainConfig) -> tuple[str | None, str | None]:
    """(G's source, D's source): `--init` for both, except D for generator-only sources; the
    specific flags win."""
    shared_d = config.init if config.init not in GENERATOR_ONLY_SOURCES else None
    return config.init_generator or config.init, config.init_discriminator or shared_d


def _read(source: str, role: str) -> LoadedWeights:
    loaded = read_weights(source, role)
    config = loaded.config
    wanted = 3 if role == "generator" else 6
    if config.in_channels != wanted or (role == "generator" and config.out_channels != 3):
        raise ConfigError(f"{source}: this {role} takes {config.in_channels} input channels; training feeds it "
                          f"{'RGB edge maps' if role == 'generator' else 'an RGB (edges, photo) pair'} ({wanted})")
    return loaded


def batch_norm_eps(model: nn.Module) -> float | None:
    """The epsilon of a network's batch norms when it is not PyTorch's default (one value or None)."""
    values = {m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    return next(iter(values)) if len(values) == 1 and values != {1e-5} else None


def load_initial(
    config: TrainConfig,
) -> tuple[InitialWeights, GeneratorConfig | None, DiscriminatorConfig | None, float | None]:
    """Read the networks `config` starts from: (weights, G's config, D's config, batch-norm eps)."""
    g_source, d_source = init_sources(config)
    start = InitialWeights()
    eps: set[float] = set()
    for role, source in (("generator", g_source), ("discriminator", d_source)):
        if source is None:
            start.lines.append(f"{role}: fresh weights (seed {config.seed})")
            continue
        loaded = _read(source, role)
        setattr(start, role, loaded.model)
        found = batch_norm_eps(loaded.model)
        eps |= {found} if found is not None else set()
        notes = f"; {'; '.join(loaded.notes)}" if loaded.notes else ""
        where = "" if str(loaded.path) == str(source) else f"{loaded.path}; "
        start.lines.append(f"{role}: from {source} ({where}{loaded.layout}, {loaded.parameters:,} parameters{notes})")
    if len(eps) > 1:
        raise ConfigError(f"the generator and discriminator weights use different batch-norm epsilons {sorted(eps)}; "
                          "a run has one --bn-eps")
    g_config = start.generator.config if start.generator is not None else None
    d_config = start.discriminator.config if start.discriminator is not None else None
    return start, g_config, d_config, next(iter(eps), None)


def adopt_architecture(config: TrainConfig, g_config: GeneratorConfig | None, d_config: DiscriminatorConfig | None,
                       eps: float | None, explicit: Collection[str] = ()) -> TrainConfig:
    """`config` with the architecture fields the weights decide. A value that differs from the
    weights' is refused if it was set on purpose: it is not the default, or it is in `explicit`."""
    found: dict[str, tuple[object, str]] = {}  # field -> (value, which weights say so)
    if d_config is not None:
        found.update(ndf=(d_config.ndf, "discriminator"), norm=(d_config.norm, "discriminator"))
    if g_config is not None:
        found.update(ngf=(g_config.ngf, "generator"), norm=(g_config.norm, "generator"), levels=(g_config.levels, "generator"))
    if eps is not None:
        found["bn_eps"] = (eps, "initial")
    defaults = TrainConfig()
    changes, conflicts = {}, []
    for name, (value, role) in found.items():
        current = config.resolved_levels() if name == "levels" and config.levels is None else getattr(config, name)
        if current == value:
            continue
        if name in explicit or getattr(config, name) != getattr(defaults, name):
            conflicts.append(f"--{name.replace('_', '-')} {current} (the {role} weights have {value})")
        changes[name] = value
    if conflicts:
        raise ConfigError(f"{'; '.join(conflicts)}: with --init the architecture comes from the weights; "
                          "drop these flags or give the weights' values")
    config = dataclasses.replace(config, **changes)
    levels = config.resolved_levels()
    if config.image_size % 2**levels:
        raise ConfigError(f"the generator weights have {levels} levels: --image-size must be a multiple of "
                          f"{2**levels}, got {config.image_size}")
    return config


def prepare_initial_weights(config: TrainConfig, info: DistInfo) -> tuple[TrainConfig, InitialWeights | None]:
    """For a new run with `--init*`: the networks it starts from and `config` with their architecture.
    Rank 0 reads (and downloads) first; the other ranks then read the cached files. A resumed run
    (its weights come from last.pt) and a run without `--init*` pass through unchanged."""
    if config.resume is not None or init_sources(config) == (None, None):
        return config, None
    loaded = None
    problem = None
    if info.is_main:
        try:
            loaded = load_initial(config)
        except Edges2ShoesError as error:
            problem = str(error)
            if not info.enabled:
                raise
    problem = broadcast_object(problem, info)
    if problem:
        raise ConfigError(problem)
    if loaded is None:
        loaded = load_initial(config)
    start, g_config, d_config, eps = loaded
    config = adopt_architecture(config, g_config, d_config, eps)
    config.validate()
    if info.is_main:
        print("starting from published weights (fresh optimisers):\n  " + "\n  ".join(start.lines), flush=True)
    return config, start


def check_explicit_architecture(config: TrainConfig, explicit: Collection[str]) -> None:
    """The command line's check: architecture flags given together with `--init*` must match the
    weights, even where they equal the defaults (which `prepare_initial_weights` cannot tell apart)."""
    explicit = [name for name in explicit if name in ADOPTED_FIELDS]
    if explicit and config.resume is None and init_sources(config) != (None, None):
        _, g_config, d_config, eps = load_initial(config)
        adopt_architecture(config, g_config, d_config, eps, explicit)


__all__ = [
    "InitialWeights",
    "init_sources",
    "load_initial",
    "adopt_architecture",
    "prepare_initial_weights",
    "check_explicit_architecture",
    "ADOPTED_FIELDS",
]
