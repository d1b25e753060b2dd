"""Our weights as checkpoint files of the official PyTorch pix2pix (junyanz/pytorch-CycleGAN-and-pix2pix).

Its `test.py` loads `checkpoints/NAME/latest_net_G.pth` (and training resumes from `latest_net_D.pth`)
as plain state dicts under its own key names, into networks its command-line options build. So the
export is the two state dicts, renamed by `official_layout`, and the options to pass. A network no
option can build is refused before anything is written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..util.errors import ConfigError
from .formats import save_checkpoint
from .load import LoadedWeights, LoadOptions, read_weights
from .official_layout import (
    official_discriminator_options,
    official_generator_options,
    to_official_discriminator,
    to_official_generator,
)

GENERATOR_FILE = "latest_net_G.pth"
DISCRIMINATOR_FILE = "latest_net_D.pth"
EPOCH_GENERATOR = re.compile(r"generator_(\d+)\.pt$")


@dataclass
class OfficialFiles:
    """What `export_official` wrote, and the official options that rebuild the networks."""

    generator: Path
    discriminator: Path | None
    options: list[str]
    notes: list[str] = field(default_factory=list)

    def test_command(self, name: str = "NAME") -> str:
        """The official `test.py` command line for these files copied to its checkpoints/NAME/."""
        generator_options = self.options[: self.options.index("--netD")] if "--netD" in self.options else self.options
        return (f"python test.py --dataroot ./datasets/edges2shoes --name {name} --model pix2pix --direction AtoB "
                + " ".join(generator_options))


def discriminator_source(generator: LoadedWeights) -> Path | None:
    """The file holding the discriminator trained with `generator`: a training checkpoint holds both;
    an epoch file `generator_N.pt` has `discriminator_N.pt` beside it. None for anything else."""
    if generator.container == "edges2shoes training checkpoint":
        return generator.path
    match = EPOCH_GENERATOR.search(generator.path.name)
    if generator.container == "edges2shoes epoch file" and match:
        beside = generator.path.with_name(f"discriminator_{match.group(1)}.pt")
        return beside if beside.is_file() else None
    return None


def export_official(source: str | os.PathLike, out: str | os.PathLike, options: LoadOptions | None = None) -> OfficialFiles:
    """Write `out/latest_net_G.pth` (and `latest_net_D.pth` when the source has a discriminator) in
    the official layout; WeightsError naming the file when the official code cannot build a network."""
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder (--to official writes {GENERATOR_FILE} into a folder)")
    generator = read_weights(source, "generator", options)
    command = official_generator_options(generator.config, str(generator.path))
    discriminator_path = discriminator_source(generator)
    discriminator = read_weights(discriminator_path, "discriminator", options) if discriminator_path else None
    if discriminator is not None:
        command += official_discriminator_options(discriminator.config, str(discriminator.path))
    states = [to_official_generator(generator.model, str(generator.path))]
    if discriminator is not None:
        states.append(to_official_discriminator(discriminator.model, str(discriminator.path)))
    written = [save_checkpoint(folder / name, state) for name, state in zip((GENERATOR_FILE, DISCRIMINATOR_FILE), states)]
    notes = list(generator.notes) + (discriminator.notes if discriminator else [])
    if discriminator is None:
        notes.append(f"{generator.path.name} holds no discriminator (a run's last.pt or generator_N.pt beside "
                     "discriminator_N.pt does): wrote the generator only")
    return OfficialFiles(written[0], written[1] if len(written) > 1 else None, command, notes)


__all__ = ["OfficialFiles", "export_official", "discriminator_source", "GENERATOR_FILE", "DISCRIMINATOR_FILE"]
