"""MNIST's IDX files (gzip-compressed or raw), read with NumPy.

Format: two zero bytes, a type code (0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64), the number of dims, then one big-endian int32 per dim, then the values, big-endian,
row-major.  MNIST images are ``ubyte`` N×28×28 (magic 0x00000803), labels ``ubyte`` N (0x00000801).

:func:`read_header` reads only the header (a few bytes, also through gzip): the build-time peek.
:func:`load` maps a raw file into memory (``np.memmap``, nothing is read until used) or decompresses a
.gz once into one ``bytes`` object viewed with ``np.frombuffer`` (no copy).

``source`` for ``backend: IDX`` names a pair of files:

* ``DIR/PREFIX`` (``mnist/train``, ``mnist/t10k``; ``test`` is an alias of ``t10k``) -> the files
  ``DIR/PREFIX-images-idx3-ubyte[.gz]`` and ``DIR/PREFIX-labels-idx1-ubyte[.gz]`` (``-images.idx3-ubyte``
  with a dot is accepted too);
* or the images file itself; the labels file is the one named with ``labels``/``idx1`` in place of
  ``images``/``idx3``.

Images of 3 dims (N, H, W) give 1-channel records; 4 dims are read as (N, C, H, W).
"""

from __future__ import annotations

import gzip
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .source import RecordSource

__all__ = ["IdxHeader", "read_header", "load", "locate", "IdxSource"]

_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class IdxHeader:
    """An IDX header: value dtype (big-endian as stored), dims, byte offset of the values, compression."""

    dtype: np.dtype
    dims: tuple[int, ...]
    offset: int
    gzipped: bool

    @property
    def count(self) -> int:
        return int(np.prod(self.dims, dtype=np.int64))


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _open(path: Path, gzipped: bool):
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_header(path: str | Path) -> IdxHeader:
    """The header of an IDX file (.gz or raw), reading only its first bytes."""
    path = Path(path)
    try:
        gzipped = _is_gzip(path)
        with _open(path, gzipped) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _TYPES:
                raise DataError(f"not an IDX file (magic bytes {head.hex() or 'missing'})", file=str(path),
                                fix="give an MNIST-style IDX file (.gz or uncompressed)")
            ndim = head[3]
            raw = f.read(4 * ndim)
    except OSError as err:  # includes gzip.BadGzipFile
        raise DataError(f"cannot read IDX file: {err}", file=str(path)) from None
    if ndim == 0 or len(raw) < 4 * ndim:
        raise DataError(f"truncated IDX header ({ndim} dims announced)", file=str(path))
    dims = struct.unpack(f">{ndim}i", raw)
    if any(d < 0 for d in dims):
        raise DataError(f"IDX header has a negative dim: {list(dims)}", file=str(path))
    return IdxHeader(_TYPES[head[2]], tuple(dims), 4 + 4 * ndim, gzipped)


def load(path: str | Path, header: IdxHeader | None = None) -> np.ndarray:
    """The whole array of an IDX file, shaped by its header, in native byte order.

    Raw ``ubyte`` files are memory-mapped (read lazily); .gz files are decompressed once.  Other value
    types are converted to native order (a copy).
    """
    path = Path(path)
    header = header or read_header(path)
    expected = header.count * header.dtype.itemsize
    try:
        if header.gzipped:
            with gzip.open(path, "rb") as f:
                payload = f.read()
            if len(payload) < header.offset + expected:
                raise DataError(f"IDX file is truncated: {len(payload) - header.offset} value bytes for "
                                f"{expected} announced by its header {list(header.dims)}", file=str(path))
            array = np.frombuffer(payload, dtype=header.dtype, count=header.count, offset=header.offset)
        else:
            size = path.stat().st_size
            if size < header.offset + expected:
                raise DataError(f"IDX file is truncated: {size - header.offset} value bytes for {expected} "
                                f"announced by its header {list(header.dims)}", file=str(path))
            array = np.memmap(path, dtype=header.dtype, mode="r", offset=header.offset, shape=(header.count,))
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read IDX file: {err}", file=str(path)) from None
    array = array.reshape(header.dims)
    if not header.dtype.isnative and header.dtype.itemsize > 1:
        array = array.astype(header.dtype.newbyteorder("="))
    return array


_SUFFIXES = ("", ".gz")


def _candidates(folder: Path, prefix: str, kind: str) -> list[Path]:
    rank = "idx3" if kind == "images" else "idx1"
    names = [f"{prefix}-{kind}-{rank}-ubyte", f"{prefix}-{kind}.{rank}-ubyte"]
    return [folder / (name + suffix) for name in names for suffix in _SUFFIXES]


def _labels_for(images: Path) -> list[Path]:
    name = images.name
    if "images" not in name:
        return []
    swapped = name.replace("images", "labels").replace("idx3", "idx1")
    base = re.sub(r"\.gz$", "", swapped)
    return [images.with_name(base + suffix) for suffix in _SUFFIXES]


def locate(candidate: Path, tried: list[Path]) -> tuple[Path, Path | None] | None:
    """(images file, labels file or None) named by ``candidate`` (see the module docstring)."""
    if candidate.is_file():
        tried.append(candidate)
        labels = next((p for p in _labels_for(candidate) if p.is_file()), None)
        return candidate, labels
    prefixes = [candidate.name] + (["t10k"] if candidate.name == "test" else [])
    for prefix in prefixes:
        images = _candidates(candidate.parent, prefix, "images")
        tried.extend(images[:2])
        found = next((p for p in images if p.is_file()), None)
        if found is not None:
            labels = next((p for p in _candidates(candidate.parent, prefix, "labels") if p.is_file()), None)
            return found, labels
    return None


class IdxSource(RecordSource):
    """Records from an IDX images file and (optionally) its labels file."""

    def __init__(self, images: Path, labels: Path | None) -> None:
        self.images_path = Path(images)
        self.labels_path = Path(labels) if labels is not None else None
        self.header = read_header(self.images_path)
        if len(self.header.dims) not in (3, 4):
            raise DataError(f"IDX images must have 3 dims (N, H, W) or 4 (N, C, H, W), this file has "
                            f"{list(self.header.dims)}", file=str(self.images_path))
        self.has_labels = self.labels_path is not None
        if self.labels_path is not None:
            self.label_header = read_header(self.labels_path)
            if len(self.label_header.dims) != 1 or self.label_header.dims[0] != self.header.dims[0]:
                raise DataError(f"the labels file holds {list(self.label_header.dims)} values for "
                                f"{self.header.dims[0]} images in {self.images_path.name}",
                                file=str(self.labels_path))
        self.description = f"IDX {self.images_path}"
        self._images: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    def sample_shape(self) -> tuple[int, int, int]:
        dims = self.header.dims
        return (1, dims[1], dims[2]) if len(dims) == 3 else (dims[1], dims[2], dims[3])

    def __len__(self) -> int:
        return self.header.dims[0]

    def _ensure(self) -> None:
        if self._images is None:
            images = load(self.images_path, self.header)
            self._images = images.reshape((images.shape[0], *self.sample_shape()))
            if self.labels_path is not None:
                self._labels = np.asarray(load(self.labels_path, self.label_header))

    def read(self, indices):
        self._ensure()
        images = self._images[indices]
        if images.dtype.kind == "f" and images.dtype != np.float32:
            images = images.astype(np.float32)
        elif images.dtype.kind in "iu" and images.dtype != np.uint8:
            images = images.astype(np.float32)
        labels = self._labels[indices].astype(np.int64) if self._labels is not None else None
        return images, labels

    def close(self) -> None:
        self._images = None
        self._labels = None
