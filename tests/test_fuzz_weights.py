"""Damaged weights files are refused, every time (issue 13).

Each reader (`load_generator`, `load_discriminator`, and `load_checkpoint`, the training loop's own)
gets random bytes, zero-byte files, and real files of each kind we read (a training run's last.pt,
its generator_0.pt, an official pix2pix state dict, our safetensors export) cut at 40 offsets and
with single bits flipped in the header and in the tensor data; then well-formed files holding
tensors of the wrong shape, dtype or value. Each case must either load into a network whose output
is finite, or raise our own CheckpointError in one line naming the file; any other exception is a
bug.

Bit flips in tensor data: every file kind here carries a checksum (a zip CRC-32 per record in .pt
files, a sha256 of the tensor data in our exports), so a flip anywhere in a .pt archive's records or
in an export's data must be REFUSED: a flipped exponent bit turns 0.02 into 1e36, which is finite
but ruins every picture, and no value check can tell a corrupted weight from a real one. Only a file
without a checksum (a safetensors state dict from elsewhere, a legacy-format .pth such as the
official model zoo's) may load after a flip; the reader then refuses NaN and infinite values, and the
generator's output must be finite.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import struct
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from safetensors.torch import save_file

from edges2shoes_utils.apps import cli
from edges2shoes_utils.weights.exports import export_generator
from edges2shoes_utils.weights.formats import load_checkpoint
from edges2shoes_utils.weights.load import load_discriminator, load_generator
from edges2shoes_utils.weights.safe_unpickle import LEGACY_MAGIC
from edges2shoes_utils.data.synthetic import make_synthetic
from edges2shoes_utils.nets import PatchGANDiscriminator, UNetGenerator
from edges2shoes_utils.training import TrainConfig, train
from edges2shoes_utils.util.errors import CheckpointError
from fuzzing import Fuzz, flipped, random_blobs, spread_positions, truncation_offsets
from test_weights import OfficialUnet, randomise

SIDE = 64
pytestmark = [pytest.mark.timeout(120),  # a hang fails the test instead of stalling the suite
              pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def originals(one_thread, tmp_path_factory) -> dict[str, Path]:
    """One real file of each kind: a one-step training run's last.pt and generator_0.pt, the official
    layout (ngf 8, 6 levels) in torch's zip format and in the legacy format the official model zoo's
    files use (no checksums), our export, and a safetensors state dict without a checksum."""
    root = tmp_path_factory.mktemp("weights")
    data = make_synthetic(root / "shoes", n=2, size=SIDE, seed=0, n_val=1)
    train(TrainConfig(data=str(data), out=str(root / "run"), epochs=1, batch_size=2, image_size=SIDE, ngf=8, ndf=8,
                      levels=6, num_workers=0, progress=False, sample_count=1))
    generator = load_generator(root / "run" / "generator_0.pt")
    official = randomise(OfficialUnet(num_downs=6, ngf=8), seed=4)
    torch.save(official.state_dict(), root / "official.pth")
    torch.save(official.state_dict(), root / "official-legacy.pth", _use_new_zipfile_serialization=False)
    export_generator(generator, root / "export.safetensors")
    save_file(generator.state_dict(), str(root / "foreign.safetensors"))
    return {
        "last.pt": root / "run" / "last.pt",
        "generator_0.pt": root / "run" / "generator_0.pt",
        "discriminator_0.pt": root / "run" / "discriminator_0.pt",
        "official.pth": root / "official.pth",
        "official-legacy.pth": root / "official-legacy.pth",
        "export.safetensors": root / "export.safetensors",
        "foreign.safetensors": root / "foreign.safetensors",
    }


# --------------------------------------------------------------------------------------------------
# What a successful read must give.


def works(generator: UNetGenerator) -> None:
    """A generator whose output is finite, in eval mode and in train mode (the official default)."""
    assert isinstance(generator, UNetGenerator)
    side = max(SIDE, generator.config.multiple)
    x = torch.rand(1, generator.config.in_channels, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        for train_mode in (False, True):
            y = generator.train(train_mode)(x)
            assert y.shape == (1, generator.config.out_channels, side, side)
            assert torch.isfinite(y).all(), f"non-finite output in {'train' if train_mode else 'eval'} mode"


def judges(discriminator: PatchGANDiscriminator) -> None:
    assert isinstance(discriminator, PatchGANDiscriminator)
    half = discriminator.config.in_channels // 2
    x = torch.rand(1, half, SIDE, SIDE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert torch.isfinite(discriminator.eval()(x, x)).all()


def same_as(original: dict) -> Callable[[dict], None]:
    """load_checkpoint hands back containers as stored: a damaged file that loads must hold exactly
    what the undamaged one held (anything else slipped past the checksums)."""
    def check(state: dict) -> None:
        _assert_same(state, original, "state")
    return check


def _assert_same(a: Any, b: Any, where: str) -> None:
    if isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"{where} differs"
    elif isinstance(b, dict):
        assert isinstance(a, dict) and list(a) == list(b), f"{where}: keys differ"
        for key in b:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(b, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), f"{where} differs"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def readers_for(name: str, originals: dict[str, Path]) -> list[tuple[str, Callable[..., Any], Callable[[Any], None]]]:
    """(reader name, reader, check of its result) for a file of kind `name`."""
    chosen = [("load_generator", load_generator, works)] if name != "discriminator_0.pt" else []
    if name in ("last.pt", "discriminator_0.pt"):
        chosen.append(("load_discriminator", load_discriminator, judges))
    if name.endswith(".pt"):
        chosen.append(("load_checkpoint", load_checkpoint, same_as(load_checkpoint(originals[name]))))
    return chosen


def try_all(fuzz: Fuzz, path: Path, readers, case: str, must: str | None = None) -> None:
    for reader_name, reader, check in readers:
        fuzz.run(reader_name, case, lambda: reader(path), str(path), check, must)


# --------------------------------------------------------------------------------------------------
# Where the structure of each file is.


def zip_regions(data: bytes) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """(structural boundaries, header positions, tensor-data ranges) of a torch.save zip archive:
    boundaries around the pickle, the first and last tensor records, the central directory and its
    end record; header positions in the pickle, a local header, the central directory and the end
    record; tensor data in every `data/N` record."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        central = archive.start_dir
    spans, tensors, pickle_range = [], [], None
    for info in infos:
        name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
        start = info.header_offset + 30 + name_length + extra_length
        spans.append((info.header_offset, start, start + info.compress_size))
        if info.filename.endswith("data.pkl"):
            pickle_range = (start, start + info.compress_size)
        elif "/data/" in info.filename and info.compress_size:
            tensors.append((start, start + info.compress_size))
    assert pickle_range and tensors
    records = [span for span in spans if (span[1], span[2]) in (pickle_range, tensors[0], tensors[-1])]
    boundaries = [offset for span in records for offset in span] + [central, len(data) - 22]
    header = spread_positions(*pickle_range, 3, seed=1) + [infos[-1].header_offset + 14, central + 20, len(data) - 10]
    return boundaries, header, tensors


def safetensors_regions(data: bytes) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    (length,) = struct.unpack("<Q", data[:8])
    header = [0, 3] + spread_positions(8, 8 + length, 4, seed=2)
    return [8, 8 + length], header, [(8 + length, len(data))]


def legacy_regions(data: bytes) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """The same for a legacy torch.save stream: five pickles (magic number, protocol, system info, the
    object, the storage keys; walked with pickletools, nothing is unpickled), then the raw storages."""
    stream, ends = io.BytesIO(data), []
    for _ in range(5):
        for _op in pickletools.genops(stream):
            pass
        ends.append(stream.tell())
    header = spread_positions(ends[2], ends[3], 4, seed=1) + [2, ends[3] + 5]
    return ends, header, [(ends[4], len(data))]


def data_positions(ranges: list[tuple[int, int]], count: int, seed: int) -> list[int]:
    """`count` positions spread over the tensor data, bigger records getting more."""
    flat = spread_positions(0, sum(stop - start for start, stop in ranges), count, seed)
    positions = []
    for offset in flat:
        for start, stop in ranges:
            if offset < stop - start:
                positions.append(start + offset)
                break
            offset -= stop - start
    return positions


KINDS = ["last.pt", "generator_0.pt", "official.pth", "official-legacy.pth", "export.safetensors", "foreign.safetensors"]
CHECKSUMMED = {"last.pt", "generator_0.pt", "official.pth", "export.safetensors"}


# --------------------------------------------------------------------------------------------------
# The fuzz cases.


@pytest.mark.parametrize("name", KINDS)
def test_truncated_and_flipped_files_load_exactly_or_are_refused(name, originals, tmp_path):
    """Every cut is refused (a cut file is never complete); every flip in tensor data is refused
    where the format has a checksum; header flips either still load or are refused."""
    source = originals[name]
    data = source.read_bytes()
    readers = readers_for(name, originals)
    fuzz = Fuzz(expected=(CheckpointError,))
    target = tmp_path / source.name
    target.write_bytes(data)
    try_all(fuzz, target, readers, "the undamaged file", must="read")

    regions = safetensors_regions if name.endswith(".safetensors") else legacy_regions if "legacy" in name else zip_regions
    boundaries, header, tensors = regions(data)
    for offset in truncation_offsets(data, boundaries):
        target.write_bytes(data[:offset])
        try_all(fuzz, target, readers, f"{name} cut at {offset}/{len(data)}", must="refused")
    cases = [(flipped(data, header, seed=3), None),
             (flipped(data, data_positions(tensors, 6, seed=4), seed=5), "refused" if name in CHECKSUMMED else None)]
    for copies, must in cases:
        for case, damaged in copies.items():
            target.write_bytes(damaged)
            try_all(fuzz, target, readers, f"{name} {case}", must=must)
    fuzz.assert_clean()
    assert fuzz.outcomes["refused"] >= 40  # the cases really ran


WEIGHTS_PREFIXES = {
    "zip": b"PK\x03\x04",
    "pickle": b"\x80\x02",
    "legacy-torch": pickle.dumps(LEGACY_MAGIC, protocol=2),
    "safetensors": struct.pack("<Q", 64) + b'{"',
}


def test_random_bytes_and_empty_files_are_refused(tmp_path):
    blobs = {"empty": b"", **random_blobs(WEIGHTS_PREFIXES)}
    fuzz = Fuzz(expected=(CheckpointError,))
    for case, blob in blobs.items():
        for suffix, readers in ((".pt", [("load_generator", load_generator), ("load_discriminator", load_discriminator),
                                         ("load_checkpoint", load_checkpoint)]),
                                (".pth", [("load_generator", load_generator)]),
                                (".safetensors", [("load_generator", load_generator)])):
            path = tmp_path / f"{case}{suffix}"
            path.write_bytes(blob)
            for reader_name, reader in readers:
                fuzz.run(reader_name, path.name, lambda: reader(path), str(path), must="refused")
    fuzz.assert_clean()


# --------------------------------------------------------------------------------------------------
# Well-formed files holding the wrong tensors.


def _variants(state: dict[str, torch.Tensor], conv: str, norm: str) -> dict[str, tuple[dict, str | None]]:
    """(state dict, required outcome) per damage; float64/float16/bfloat16 are real weights in
    another precision and must load, the rest must be refused."""
    def with_(key, value):
        return {**state, key: value}

    floats = [k for k, v in state.items() if v.is_floating_point()]
    weight = state[conv]
    return {
        "wrong-shape": (with_(conv, torch.zeros(weight.shape[0], weight.shape[1], 3, 3)), "refused"),
        "transposed": (with_(conv, weight.transpose(0, 1).contiguous()), "refused"),
        "scalar": (with_(conv, torch.tensor(0.5)), "refused"),
        "empty-tensor": (with_(conv, torch.zeros(0)), "refused"),
        "int64-conv": (with_(conv, (weight * 100).round().long()), "refused"),
        "all-int32": ({k: (v * 100).round().int() if k in floats else v for k, v in state.items()}, "refused"),
        "bool-conv": (with_(conv, weight > 0), "refused"),
        "complex-conv": (with_(conv, weight.to(torch.complex64)), "refused"),
        "nan-conv": (with_(conv, weight.clone().index_put_((torch.tensor([0]),), torch.tensor(float("nan")))), "refused"),
        "inf-running-var": (with_(norm, torch.full_like(state[norm], float("inf"))), "refused"),
        "missing-tensor": ({k: v for k, v in state.items() if k != conv}, "refused"),
        "extra-tensor": (with_(conv.replace("weight", "extra"), torch.zeros(3)), "refused"),
        "float64": ({k: v.double() if k in floats else v for k, v in state.items()}, "read"),
        "float16": ({k: v.half() if k in floats else v for k, v in state.items()}, "read"),
        "bfloat16": ({k: v.bfloat16() if k in floats else v for k, v in state.items()}, "read"),
    }


def _write(kind: str, state: dict, config: dict, path: Path) -> None:
    """`state` in a container of `kind`."""
    if kind == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"config": json.dumps(config)})
    elif kind == "epoch file":
        torch.save({"format": "edges2shoes/generator-epoch/v1", "epoch": 0, "config": config, "state_dict": state}, path)
    else:
        torch.save(state, path)


def test_wrong_tensors_are_refused_and_other_precisions_load(originals, tmp_path):
    fuzz = Fuzz(expected=(CheckpointError,))
    epoch = torch.load(originals["generator_0.pt"], weights_only=True)
    ours, config = epoch["state_dict"], epoch["config"]
    official = torch.load(originals["official.pth"], weights_only=True)
    discriminator = torch.load(originals["discriminator_0.pt"], weights_only=True)
    groups = [
        ("epoch file", ours, "encoder.2.conv.weight", "encoder.2.norm.running_var", [load_generator, load_checkpoint]),
        ("state dict", ours, "encoder.2.conv.weight", "encoder.2.norm.running_var", [load_generator]),
        ("safetensors", ours, "encoder.2.conv.weight", "encoder.2.norm.running_var", [load_generator]),
        ("official", official, "model.model.1.model.1.weight", "model.model.1.model.2.running_var", [load_generator]),
        ("discriminator", discriminator["state_dict"], "model.conv1.weight", "model.norm1.running_var", [load_discriminator]),
    ]
    checks = {load_generator: works, load_discriminator: judges}
    for kind, state, conv, norm, readers in groups:
        for case, (damaged, must) in _variants(state, conv, norm).items():
            if kind == "safetensors" and case == "complex-conv":
                continue  # safetensors cannot store complex tensors
            path = tmp_path / f"{kind.replace(' ', '-')}-{case}.{'safetensors' if kind == 'safetensors' else 'pt'}"
            _write(kind, damaged, config, path)
            for reader in readers:
                if reader is load_checkpoint:  # a container reader: it checks values, not shapes
                    must_here = "refused" if case in ("nan-conv", "inf-running-var") else None
                    fuzz.run("load_checkpoint", f"{kind} {case}", lambda: reader(path), str(path), must=must_here)
                else:
                    fuzz.run(reader.__name__, f"{kind} {case}", lambda: reader(path), str(path), checks[reader], must)
    fuzz.assert_clean()


@pytest.mark.parametrize("config", [
    {"ngf": -8}, {"ngf": "8"}, {"levels": 0}, {"levels": 40}, {"norm": "sideways"}, {"layout": None},
    {"in_channels": 0}, {"leaky_slope": "steep"},
])
def test_epoch_file_with_an_unusable_config_is_refused(config, originals, tmp_path):
    epoch = torch.load(originals["generator_0.pt"], weights_only=True)
    fuzz = Fuzz(expected=(CheckpointError,))
    for kind in ("epoch file", "safetensors"):
        path = tmp_path / f"bad-config.{'safetensors' if kind == 'safetensors' else 'pt'}"
        _write(kind, epoch["state_dict"], {**epoch["config"], **config}, path)
        fuzz.run("load_generator", f"{kind} {config}", lambda: load_generator(path), str(path), works, must="refused")
    fuzz.assert_clean()


# --------------------------------------------------------------------------------------------------
# The command line: exit code 2 and one line naming the file.


def _commands(weights: Path, tmp_path: Path, data: Path, sketch: Path) -> dict[str, list[str]]:
    return {
        "weights info": ["weights", "info", str(weights)],
        "generate": ["generate", str(sketch), "--weights", str(weights), "--out", str(tmp_path / "out")],
        "evaluate": ["evaluate", "--data", str(data), "--weights", str(weights), "--out", str(tmp_path / "report"),
                     "--image-size", str(SIDE), "--no-fid", "--no-lpips"],
    }


@pytest.mark.parametrize("damage", ["zero-byte", "truncated"])
@pytest.mark.parametrize("command", ["weights info", "generate", "evaluate"])
def test_cli_refuses_a_damaged_weights_file_in_one_line(command, damage, originals, tmp_path, capsys):
    data = originals["last.pt"].parents[1] / "shoes"
    sketch = data / "val" / sorted(p.name for p in (data / "val").iterdir())[0]
    weights = tmp_path / "bad.pt"
    full = originals["generator_0.pt"].read_bytes()
    weights.write_bytes(b"" if damage == "zero-byte" else full[: len(full) // 2])
    status = cli.main(_commands(weights, tmp_path, data, sketch)[command])
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and str(weights) in err and "Traceback" not in err, err
