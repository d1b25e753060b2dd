"""The two networks as training holds them: G and D with their optimisers, the loss scaler and the
number format they train in (`Networks`), built from the config and wrapped for DDP and compile.

One `Networks` is what `train_step` trains, what last.pt saves and restores (`checkpointing`) and
what `before_step` hooks see. The initial weights are a function of the seed alone: every RNG is
seeded just before the networks are built, so every DDP rank starts from the same weights and a run
repeats exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from ..nets import PatchGANDiscriminator, UNetGenerator
from ..util.errors import ConfigError
from ..util.seeds import seed_everything
from .config import TrainConfig
from .device import Precision, make_adam, resolve_precision
from .distributed import DistInfo, wrap_ddp
from .initial_weights import InitialWeights


@dataclass
class Networks:
    """G and D (bare: what checkpoints hold and hooks see), their Adam optimisers, the GradScaler and
    the precision the step runs in (default plain fp32, with a scaler that does nothing).

    The step may run them wrapped (`wrap_for_step`: DDP, torch.compile); the wrappers share the
    bare networks' parameters, so the optimisers and checkpoints never see a difference."""

    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    precision: Precision | None = None
    scaler: torch.amp.GradScaler | None = None
    # How `train_step` calls them (None: the bare networks). D as G's loss sees it is never under DDP,
    # so G's backward never waits for D's gradient sync.
    step_generator: nn.Module | None = field(default=None, repr=False)
    step_discriminator: nn.Module | None = field(default=None, repr=False)
    discriminator_for_g: nn.Module | None = field(default=None, repr=False)
    # G's backward asks for these gradients only (`inputs=`), so none is spent on D's weights.
    g_params: list[nn.Parameter] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.precision is None:
            self.precision = Precision.named("fp32", next(self.generator.parameters()).device.type)
        if self.scaler is None:
            self.scaler = self.precision.make_scaler()
        if self.step_generator is None:
            self.step_generator = self.generator
        if self.step_discriminator is None:
            self.step_discriminator = self.discriminator
        if self.discriminator_for_g is None:
            self.discriminator_for_g = self.discriminator
        self.g_params = [p for p in self.generator.parameters() if p.requires_grad]

    @property
    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        return self.opt_g, self.opt_d

    def weights_finite(self) -> bool:
        """Whether every weight of both networks is finite (one pass, one host sync)."""
        params = [*self.generator.parameters(), *self.discriminator.parameters()]
        norms = torch._foreach_norm([p.detach() for p in params])
        return bool(torch.isfinite(torch.stack(norms)).all())


def build_networks(
    config: TrainConfig, device: torch.device, precision: Precision | None = None, *,
    info: DistInfo | None = None, channels_last: bool = False, start: InitialWeights | None = None,
) -> Networks:
    """Seed every RNG with `config.seed`, then build G and D (SyncBatchNorm with `--sync-bn` under
    DDP), move them to `device` and give each an Adam optimiser. `precision`: default the config's
    (`--precision`) on `device`. `start` (`initial_weights`): the networks to use instead
    of fresh ones, e.g. published weights."""
    info = info or DistInfo()
    precision = precision or resolve_precision(config.precision, device)
    seed_everything(config.seed)
    start = start or InitialWeights()
    generator: nn.Module = start.generator if start.generator is not None else UNetGenerator(config.generator_config())
    discriminator: nn.Module = (start.discriminator if start.discriminator is not None
                                  else PatchGANDiscriminator(config.discriminator_config()))
    for module in (*generator.modules(), *discriminator.modules()):
        if config.bn_eps is not None and isinstance(module, nn.BatchNorm2d):
            module.eps = config.bn_eps
    generator.train()
    discriminator.train()
    if info.enabled and config.sync_bn:
        if device.type != "cuda":
            raise ConfigError("--sync-bn needs GPUs (PyTorch's SyncBatchNorm has no CPU version); drop it on CPU")
        generator = nn.SyncBatchNorm.convert_sync_batchnorm(generator)
        discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(discriminator)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    generator.to(device, memory_format=memory_format)
    discriminator.to(device, memory_format=memory_format)
    return Networks(
        generator=generator,
        discriminator=discriminator,
        opt_g=make_adam(generator.parameters(), config.lr, tuple(config.betas), device),
        opt_d=make_adam(discriminator.parameters(), config.lr, tuple(config.betas), device),
        precision=precision,
    )


def wrap_for_step(networks: Networks, info: DistInfo, device: torch.device, backend: str | None = None) -> Networks:
    """`networks` as `train_step` should run them: under DDP when there are several processes, and
    torch.compile'd with `backend` (None: not compiled); G's loss goes through the bare (or
    compiled bare) D."""
    generator, discriminator = networks.generator, networks.discriminator
    for_g = discriminator
    if info.enabled:
        generator, discriminator = wrap_ddp(generator, device), wrap_ddp(discriminator, device)
    if backend:
        generator, discriminator, for_g = (torch.compile(m, backend=backend)
                                           for m in (generator, discriminator, for_g))
    return dataclasses.replace(
        networks, step_generator=generator, step_discriminator=discriminator, discriminator_for_g=for_g
    )


__all__ = ["Networks", "build_networks", "wrap_for_step"]
