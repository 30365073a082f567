"""CIFAR-10 / CIFAR-100 "python version" batches, loaded through a restricted unpickler.

The official files are pickles (Python 2's cPickle) of a dict::

    CIFAR-10  data_batch_1..5, test_batch: {"data": uint8 (10000, 3072), "labels": [int],
                                            "batch_label": str, "filenames": [str]}
    CIFAR-100 train, test:                 {"data": uint8 (N, 3072), "fine_labels": [int],
                                            "coarse_labels": [int], "batch_label": str, "filenames": [str]}

Each row is a 32×32 image as three planes R, G, B.  Records keep that channel order (R, G, B), as
Caffe's own ``convert_cifar_data`` does when it copies the bytes into Datums.

**Never ``pickle.load`` these files unrestricted**: a pickle can call any importable function.
:class:`RestrictedUnpickler` admits only the globals such files contain — numpy's array reconstruction
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``; numpy 2's
``numpy._core`` spelling; ``numpy._core.numeric._frombuffer`` of protocol-5 pickles) and
``_codecs.encode`` with latin-1 (Python 3's protocol-2 bytes) — and refuses object dtypes; anything else
is a :class:`~caffe_like.errors.DataError`, raised before anything is called.

``source`` for ``backend: CIFAR`` (paths as ``caffe-like data cifar10|cifar100`` unpacks them):

* ``cifar-10-batches-py/train`` -> data_batch_1 .. data_batch_5 (50,000 records, in file order);
* ``cifar-10-batches-py/test`` -> test_batch (10,000);
* ``cifar-100-python/train`` and ``cifar-100-python/test`` (the files themselves);
* or any single batch file.

CIFAR-100 labels: ``data_param.cifar_label: fine`` (100 classes, default) or ``coarse`` (20).
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from .source import RecordSource

try:  # numpy >= 2 (numpy.core is a deprecated alias there)
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

__all__ = ["RestrictedUnpickler", "load_batch", "locate", "CifarSource", "IMAGE_SHAPE"]

IMAGE_SHAPE = (3, 32, 32)


def _safe_dtype(*args, **kwargs):
    dtype = np.dtype(*args, **kwargs)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"refusing a numpy dtype holding Python objects ({dtype})")
    return dtype


def _safe_reconstruct(subtype, shape, typecode):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to reconstruct {subtype!r} (only numpy.ndarray)")
    return _multiarray._reconstruct(np.ndarray, shape, typecode)


def _safe_frombuffer(buffer, dtype, shape, order):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("refusing an array of Python objects")
    return _numeric._frombuffer(buffer, dtype, shape, order)


def _latin1_encode(obj, encoding="utf-8", errors="strict"):
    if encoding not in ("latin1", "latin-1") or not isinstance(obj, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return obj.encode("latin-1", errors)


#: (module, name) -> what the unpickler gets; nothing else is importable from these files
_ALLOWED = {
    **{(mod, "_reconstruct"): _safe_reconstruct for mod in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(mod, "_frombuffer"): _safe_frombuffer for mod in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _safe_dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals CIFAR batches need (see the module docstring)."""

    def find_class(self, module: str, name: str):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"forbidden global '{module}.{name}' (a CIFAR batch holds only "
                                         "numpy arrays, lists, strings and numbers)")
        return found

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("forbidden persistent id")


def _text_keys(value):
    if isinstance(value, dict):
        return {(k.decode("latin-1") if isinstance(k, bytes) else k): v for k, v in value.items()}
    return value


def load_batch(path: str | Path) -> dict:
    """One CIFAR python batch as a dict with str keys, through :class:`RestrictedUnpickler`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read CIFAR batch: {err}", file=str(path)) from None
    try:
        batch = RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as err:
        raise DataError(f"not a CIFAR python batch, refused: {err}", file=str(path),
                        fix="use the official CIFAR python batches (`caffe-like data cifar10|cifar100`)") from None
    except Exception as err:  # malformed pickles raise many kinds
        raise DataError(f"not a CIFAR python batch ({type(err).__name__}: {err})", file=str(path)) from None
    batch = _text_keys(batch)
    if not isinstance(batch, dict) or "data" not in batch:
        raise DataError("not a CIFAR python batch (no 'data' entry)", file=str(path))
    return batch


def _labels(batch: dict, key: str, n: int, path: Path) -> np.ndarray:
    values = batch.get(key)
    if values is None:
        raise DataError(f"the batch has no '{key}' entry (keys: {', '.join(sorted(batch))})", file=str(path))
    labels = np.asarray(values)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise DataError(f"'{key}' must hold {n} integers, got an array of shape {list(labels.shape)} "
                        f"({labels.dtype})", file=str(path))
    return labels.astype(np.int64)


def _images(batch: dict, path: Path) -> np.ndarray:
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise DataError("'data' must be a uint8 numpy array", file=str(path))
    n = data.shape[0] if data.ndim else 0
    if data.ndim == 2 and data.shape[1] == 3072:
        return data.reshape(n, *IMAGE_SHAPE)
    if data.shape[1:] == IMAGE_SHAPE:
        return data
    raise DataError(f"'data' must be N×3072 (N×3×32×32), got {list(data.shape)}", file=str(path))


def _batch_number(path: Path) -> int:
    match = re.search(r"(\d+)$", path.name)
    return int(match.group(1)) if match else 0


def locate(candidate: Path, tried: list[Path]) -> list[Path] | None:
    """The batch files named by ``candidate`` (see the module docstring)."""
    tried.append(candidate)
    if candidate.is_file():
        return [candidate]
    folder = candidate.parent
    if candidate.name == "train":
        tried.append(folder / "data_batch_1")
        batches = sorted(folder.glob("data_batch_*"), key=_batch_number)
        return batches or None
    if candidate.name == "test":
        tried.append(folder / "test_batch")
        return [folder / "test_batch"] if (folder / "test_batch").is_file() else None
    return None


class CifarSource(RecordSource):
    """Records from CIFAR python batches (concatenated in order), loaded at first use."""

    def __init__(self, files: list[Path], label_set: str = "fine") -> None:
        if label_set not in ("fine", "coarse"):
            raise DataError(f"cifar_label must be 'fine' or 'coarse', got '{label_set}'")
        self.files = [Path(f) for f in files]
        self.label_set = label_set
        self.description = "CIFAR " + ", ".join(str(f) for f in self.files)
        self._images: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        is_cifar10 = all(f.name.startswith(("data_batch", "test_batch")) for f in self.files)
        if is_cifar10 and label_set == "coarse":
            raise DataError("cifar_label: coarse needs CIFAR-100 (CIFAR-10 batches have one label set)",
                            file=str(self.files[0]), fix="remove cifar_label, or use the CIFAR-100 files")

    def sample_shape(self) -> tuple[int, int, int]:
        return IMAGE_SHAPE  # fixed by the format: nothing is read at build time

    def _ensure(self) -> None:
        if self._images is not None:
            return
        images, labels = [], []
        for path in self.files:
            batch = load_batch(path)
            data = _images(batch, path)
            if "labels" in batch:
                if self.label_set == "coarse":
                    raise DataError("cifar_label: coarse needs CIFAR-100, this is a CIFAR-10 batch",
                                    file=str(path))
                key = "labels"
            else:
                key = f"{self.label_set}_labels"
            labels.append(_labels(batch, key, data.shape[0], path))
            images.append(data)
        self._images = images[0] if len(images) == 1 else np.concatenate(images)
        self._labels = labels[0] if len(labels) == 1 else np.concatenate(labels)

    def __len__(self) -> int:
        self._ensure()
        return int(self._images.shape[0])

    def read(self, indices):
        self._ensure()
        return self._images[indices], self._labels[indices]

    def close(self) -> None:
        self._images = None
        self._labels = None
