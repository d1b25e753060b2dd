"""The two networks as training holds them: built from the config with their optimisers and loss
scaler, then wrapped (DDP, torch.compile) into the parts one step needs.

The initial weights are a function of the seed alone: every RNG is seeded just before the networks
are built, so every DDP rank starts from the same weights and a run repeats exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..nets import PatchGANDiscriminator, UNetGenerator
from ..util.errors import ConfigError
from ..util.seeds import seed_everything
from .config import TrainConfig
from .device import Precision, make_adam
from .distributed import DistInfo, wrap_ddp
from .initial_weights import InitialWeights
from .step import StepParts


@dataclass
class Networks:
    """The bare networks (what checkpoints hold and hooks see), their optimisers and the scaler."""

    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler: torch.amp.GradScaler

    @property
    def optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        return self.opt_g, self.opt_d

    def weights_finite(self) -> bool:
        """Whether every weight of both networks is finite (one pass, one host sync)."""
        params = [*self.generator.parameters(), *self.discriminator.parameters()]
        norms = torch._foreach_norm([p.detach() for p in params])
        return bool(torch.isfinite(torch.stack(norms)).all())


def build_networks(
    config: TrainConfig, info: DistInfo, device: torch.device, precision: Precision, channels_last: bool,
    start: InitialWeights | None = None,
) -> Networks:
    """Seed every RNG with `config.seed`, then build G and D (SyncBatchNorm with `--sync-bn` under
    DDP), move them to `device` and give each an Adam optimiser. `start` (`initial_weights`): the
    networks to use instead of fresh ones, e.g. published weights."""
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
        scaler=precision.make_scaler(),
    )


def step_parts(networks: Networks, config: TrainConfig, info: DistInfo, device: torch.device, precision: Precision) -> StepParts:
    """What `train_step` runs: the networks under DDP when there are several processes, compiled
    with `--compile`; G's loss goes through the bare D so G's backward never syncs D's gradients."""
    generator, discriminator = networks.generator, networks.discriminator
    for_g = discriminator
    if info.enabled:
        generator, discriminator = wrap_ddp(generator, device), wrap_ddp(discriminator, device)
    if config.compile:
        generator, discriminator, for_g = (torch.compile(m) for m in (generator, discriminator, for_g))
    return StepParts(
        generator=generator, discriminator=discriminator, discriminator_for_g=for_g,
        opt_g=networks.opt_g, opt_d=networks.opt_d, scaler=networks.scaler, precision=precision,
        lambda_l1=config.lambda_l1, gan_mode=config.gan_mode,
        d_loss_halve=config.d_loss_halve, g_params=list(networks.generator.parameters()),
    )


__all__ = ["Networks", "build_networks", "step_parts"]
