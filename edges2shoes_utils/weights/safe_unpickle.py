"""Read pickled PyTorch files without running any of their code.

`torch.save(model)` in a notebook pickles the whole `nn.Module`, naming the notebook's own classes
(`__main__.Generator`, `__main__.Downsample`, ...). `torch.load(weights_only=True)` refuses such a
file, and a plain `torch.load` would import and run whatever the pickle names: a pickle can ask
for `os.system` as easily as for a tensor. This module reads those files with a restricted
unpickler that resolves a name only if it is

- a tensor, parameter or storage rebuild (mapped onto our own small functions, not torch's);
- a `torch.nn` layer class that torch has already imported (its `__setstate__` only stores
  attributes), a torch dtype, `torch.Size` or `torch.device`;
- a standard container (`collections.OrderedDict`, `set`, `frozenset`);
- a class from a notebook module (`__main__` by default): it becomes an inert placeholder that
  only holds the attributes it is given.

Every other name is refused with a `WeightsError` before anything is called. Both torch.save
formats are read: the zip format (PyTorch >= 1.6: `<archive>/data.pkl` plus one raw file per
storage, linked through pickle persistent ids) and the legacy stream (a magic number, three small
pickles, the object pickle, the storage keys, then the raw storages).
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

import torch
from torch import nn

from ..util.errors import WeightsError
from .integrity import is_torch_zip, reason

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a pre-1.6 torch.save stream
NOTEBOOK_MODULES = ("__main__",)

# Storage class name (as pickled by torch.save) -> element dtype.
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}

_CONTAINERS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
}


# --------------------------------------------------------------------------------------------------
# What a resolved name can become.


class NotebookObject:
    """Inert stand-in for an instance of a class defined in a notebook.

    It has no behaviour: it records constructor arguments and pickled attributes, nothing else.
    `pickled_name` says which class it replaces (e.g. `__main__.Generator`)."""

    pickled_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "NotebookObject":
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_init_args"] = (args, kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            for part in state:
                if isinstance(part, dict):
                    self.__dict__.update(part)
        elif isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<placeholder for {self.pickled_name}>"


_placeholders: dict[str, type] = {}


def placeholder_class(module: str, qualname: str) -> type:
    """A NotebookObject subclass standing in for `module.qualname` (one per name)."""
    full = f"{module}.{qualname}"
    if full not in _placeholders:
        short = qualname.rsplit(".", 1)[-1]
        _placeholders[full] = type(short, (NotebookObject,), {"pickled_name": full, "__module__": __name__})
    return _placeholders[full]


class _StorageKind:
    """What `torch.FloatStorage` & co. resolve to: only the element dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _Storage:
    """A storage as a flat tensor plus the element offset of a legacy storage view."""

    def __init__(self, data: torch.Tensor, offset: int = 0) -> None:
        self.data, self.offset = data, offset


def _rebuild_tensor(storage: _Storage, offset: int, size: Iterable[int], stride: Iterable[int], *_: Any) -> torch.Tensor:
    if not isinstance(storage, _Storage):
        raise WeightsError("a tensor in the file does not point at a storage")
    return torch.as_strided(storage.data, tuple(size), tuple(stride), storage.offset + int(offset))


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool = True, *_: Any) -> nn.Parameter:
    if not isinstance(data, torch.Tensor):
        raise WeightsError("a parameter in the file does not hold a tensor")
    return nn.Parameter(data, requires_grad=bool(requires_grad))


_REBUILDERS: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


# --------------------------------------------------------------------------------------------------
# The unpickler.


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` only hands out the names listed in the module doc."""

    def __init__(
        self,
        file: BinaryIO,
        *,
        source: str,
        storage: Callable[[tuple], Any] | None = None,
        notebook_modules: Iterable[str] = NOTEBOOK_MODULES,
    ) -> None:
        super().__init__(file)
        self.source = source
        self.storage = storage
        self.notebook_modules = tuple(notebook_modules)

    def find_class(self, module: str, name: str) -> Any:
        resolved = resolve_global(module, name, self.notebook_modules)
        if resolved is None:
            raise WeightsError(
                f"{self.source}: refused to load: the file asks for '{module}.{name}', which is not a "
                "tensor, a torch.nn layer, a standard container or a notebook class, so loading it "
                "could run code. If you trust this file, load it with its own code and save its "
                "state_dict() instead."
            )
        return resolved

    def persistent_load(self, pid: Any) -> Any:
        if self.storage is None or not isinstance(pid, tuple) or not pid:
            raise WeightsError(f"{self.source}: unexpected storage reference {pid!r} in the pickle")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module" and len(pid) > 1:  # legacy files record container classes with their source
            return pid[1]
        if kind != "storage" or len(pid) < 5 or not isinstance(pid[1], _StorageKind):
            raise WeightsError(f"{self.source}: unexpected storage reference {pid!r} in the pickle")
        return self.storage(pid)


def resolve_global(module: str, name: str, notebook_modules: Iterable[str] = NOTEBOOK_MODULES) -> Any | None:
    """What `module.name` may become while unpickling, or None if it is not allowed."""
    if (module, name) in _REBUILDERS:
        return _REBUILDERS[(module, name)]
    if (module, name) in _CONTAINERS:
        return _CONTAINERS[(module, name)]
    if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
        return _StorageKind(_STORAGE_DTYPES[name])
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    if module.startswith("torch.nn.modules.") and "." not in name:
        loaded = sys.modules.get(module)  # only modules torch has imported already: nothing new runs
        layer = getattr(loaded, name, None) if loaded is not None else None
        if isinstance(layer, type) and issubclass(layer, nn.Module):
            return layer
        return None
    if module in notebook_modules:
        return placeholder_class(module, name)
    return None


# --------------------------------------------------------------------------------------------------
# Reading files.


def load_restricted(path: str | Path, *, notebook_modules: Iterable[str] = NOTEBOOK_MODULES) -> Any:
    """Unpickle a torch.save file (zip or legacy format) or a plain pickle, refusing anything that
    could run code. Tensors come back on the CPU."""
    path = Path(path)
    try:
        if is_torch_zip(path):
            return _load_zip(path, tuple(notebook_modules))
        with open(path, "rb") as handle:
            return _load_stream(handle, str(path), tuple(notebook_modules))
    except WeightsError:
        raise
    except Exception as error:  # damaged bytes make a parser raise anything (OverflowError, struct.error, ...)
        raise WeightsError(f"{path}: not a readable PyTorch file ({reason(error)})") from None


def _load_zip(path: Path, notebook_modules: tuple[str, ...]) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise WeightsError(f"{path}: a zip file but not a torch.save archive (no single <archive>/data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        order = prefix + "byteorder"
        if order in names and archive.read(order).strip() not in (b"little", b""):
            raise WeightsError(f"{path}: saved on a big-endian machine, which this reader does not support")
        storages: dict[str, _Storage] = {}

        def storage(pid: tuple) -> _Storage:
            _, kind, key, _location, numel = pid[:5]
            key = key.decode("ascii") if isinstance(key, bytes) else str(key)
            if key not in storages:
                raw = bytearray(archive.read(f"{prefix}data/{key}"))
                data = torch.frombuffer(raw, dtype=kind.dtype) if raw else torch.empty(0, dtype=kind.dtype)
                if data.numel() < int(numel):
                    raise WeightsError(f"{path}: storage {key} is truncated")
                storages[key] = _Storage(data)
            return storages[key]

        with archive.open(pickles[0]) as handle:
            unpickler = RestrictedUnpickler(
                io.BytesIO(handle.read()), source=str(path), storage=storage, notebook_modules=notebook_modules
            )
            return unpickler.load()


def _load_stream(handle: BinaryIO, source: str, notebook_modules: tuple[str, ...]) -> Any:
    def small_pickle() -> Any:
        return RestrictedUnpickler(handle, source=source, notebook_modules=()).load()

    first = RestrictedUnpickler(handle, source=source, notebook_modules=notebook_modules).load()
    if not (type(first) is int and first == LEGACY_MAGIC):
        return first  # a plain pickle (no storages): that was the whole object
    small_pickle()  # protocol version
    sys_info = small_pickle()
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise WeightsError(f"{source}: saved on a big-endian machine, which this reader does not support")
    roots: dict[str, torch.Tensor] = {}

    def storage(pid: tuple) -> _Storage:
        _, kind, key, _location, numel = pid[:5]
        view = pid[5] if len(pid) > 5 else None
        if key not in roots:
            roots[key] = torch.empty(int(numel), dtype=kind.dtype)  # filled after the object pickle
        if view is not None:
            _view_key, offset, _size = view
            return _Storage(roots[key], int(offset))
        return _Storage(roots[key])

    result = RestrictedUnpickler(handle, source=source, storage=storage, notebook_modules=notebook_modules).load()
    keys = small_pickle()
    for key in keys:
        if key not in roots:
            raise WeightsError(f"{source}: the file lists storage {key!r} that no tensor uses")
        target = roots[key]
        (numel,) = struct.unpack("<q", handle.read(8))
        nbytes = numel * target.element_size()
        raw = bytearray(handle.read(nbytes))
        if numel != target.numel() or len(raw) != nbytes:
            raise WeightsError(f"{source}: storage {key} is truncated or has the wrong size")
        if nbytes:
            target.copy_(torch.frombuffer(raw, dtype=target.dtype))
    return result


# --------------------------------------------------------------------------------------------------
# Walking what came out.


def is_module_like(obj: Any) -> bool:
    """A real nn.Module or a placeholder that carries nn.Module state (`_modules`, `_parameters`)."""
    if isinstance(obj, nn.Module):
        return True
    return isinstance(obj, NotebookObject) and ("_modules" in obj.__dict__ or "_parameters" in obj.__dict__)


def own_tensors(obj: Any) -> dict[str, torch.Tensor]:
    """The parameters and buffers a module (or a placeholder standing for one) holds itself, by name."""
    found = {}
    for slot in ("_parameters", "_buffers"):
        for name, value in (vars(obj).get(slot) or {}).items():
            if isinstance(value, torch.Tensor):
                found[name] = value
    return found


def class_name(obj: Any) -> str:
    """`torch.nn.modules.conv.Conv2d`, or the notebook name a placeholder stands for."""
    if isinstance(obj, NotebookObject):
        return obj.pickled_name
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
