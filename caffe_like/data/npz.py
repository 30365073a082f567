"""NumPy ``.npz`` archives: an array ``data`` (N, C, H, W) (or (N, H, W): 1 channel) and ``label`` (N,).

``data`` may be uint8 (pixels, as Caffe's Datum ``data``) or floating (as Datum ``float_data``);
``label`` holds integers (floats with integral values are accepted).  ``source`` is the archive's path,
with or without the ``.npz`` suffix.  The build-time peek reads the ``.npy`` header of ``data`` only;
the arrays are loaded at first use, never with pickle (``allow_pickle=False``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .source import RecordSource

__all__ = ["locate", "peek_array", "NpzSource", "save_npz"]


def locate(candidate: Path, tried: list[Path]) -> Path | None:
    options = [candidate] if candidate.suffix == ".npz" else [candidate, candidate.with_name(candidate.name + ".npz")]
    for path in options:
        tried.append(path)
        if path.is_file():
            return path
    return None


def peek_array(path: Path, name: str) -> tuple[tuple[int, ...], np.dtype] | None:
    """(shape, dtype) of array ``name`` in an .npz, from its .npy header; None if it is absent."""
    try:
        with zipfile.ZipFile(path) as archive:
            member = f"{name}.npy"
            if member not in archive.namelist():
                return None
            with archive.open(member) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except (OSError, zipfile.BadZipFile, ValueError) as err:
        raise DataError(f"not a readable .npz archive: {err}", file=str(path)) from None
    return tuple(int(d) for d in shape), np.dtype(dtype)


def save_npz(path: str | Path, data: np.ndarray, label: np.ndarray | None = None, *, compress: bool = False) -> None:
    """Write a dataset archive this reader accepts (``data`` N×C×H×W, ``label`` N)."""
    arrays = {"data": np.asarray(data)}
    if label is not None:
        arrays["label"] = np.asarray(label)
    (np.savez_compressed if compress else np.savez)(path, **arrays)


class NpzSource(RecordSource):
    """Records from an .npz archive (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.description = f"NPZ {self.path}"
        peek = peek_array(self.path, "data")
        if peek is None:
            raise DataError("the archive has no array 'data' (N×C×H×W)", file=str(self.path),
                            fix="save it with numpy.savez(path, data=images, label=labels)")
        self.shape, dtype = peek
        if len(self.shape) not in (3, 4):
            raise DataError(f"'data' must be N×C×H×W (or N×H×W), got shape {list(self.shape)}", file=str(self.path))
        if dtype.kind not in "uif" or dtype.hasobject:
            raise DataError(f"'data' must hold numbers, got dtype {dtype}", file=str(self.path))
        label = peek_array(self.path, "label")
        self.has_labels = label is not None
        if label is not None and label[0] != (self.shape[0],):
            raise DataError(f"'label' must have shape [{self.shape[0]}], got {list(label[0])}", file=str(self.path))
        self._images: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    def sample_shape(self) -> tuple[int, int, int]:
        return (1, *self.shape[1:]) if len(self.shape) == 3 else tuple(self.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.shape[0]

    def _ensure(self) -> None:
        if self._images is not None:
            return
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                images = archive["data"]
                labels = archive["label"] if self.has_labels else None
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise DataError(f"cannot load the archive: {err}", file=str(self.path)) from None
        images = images.reshape(images.shape[0], *self.sample_shape())
        if images.dtype != np.uint8:
            images = images.astype(np.float32)
        self._images = images
        if labels is not None:
            if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
                raise DataError("'label' holds non-integer values", file=str(self.path))
            self._labels = labels.astype(np.int64)

    def read(self, indices):
        self._ensure()
        labels = self._labels[indices] if self._labels is not None else None
        return self._images[indices], labels

    def close(self) -> None:
        self._images = None
        self._labels = None
