"""What every dataset reader provides, and how a ``source`` path is found.

A :class:`RecordSource` is an indexed set of records (image C×H×W + integer label).  It can tell the
shape of its first record cheaply (a header or one record: :meth:`RecordSource.sample_shape`, used at
build time), and reads records by index (:meth:`RecordSource.read`, used by the batch loader, usually in
the prefetch thread).  Sequential sources (LMDB) are read in key order only: the loader asks for
consecutive indices (modulo the record count).

``source`` paths resolve, in this order, against:

1. the net file's folder (``BuildContext.base_dir``);
2. ``options["data_root"]`` (the CLI's ``--data-root``);
3. every folder in the environment variable ``CAFFE_LIKE_DATA`` (``os.pathsep``-separated);
4. the current directory (where Caffe itself resolves them).

An absolute path is used as it is.  A dataset found nowhere is a :class:`~caffe_like.errors.DataError`
that lists every path looked for and the ``caffe-like data ...`` command that fetches it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import DataError

__all__ = ["RecordSource", "search_roots", "resolve", "fetch_hint", "missing_error", "ENV_DATA_ROOT"]

#: environment variable naming extra data folders
ENV_DATA_ROOT = "CAFFE_LIKE_DATA"

T = TypeVar("T")


class RecordSource:
    """An indexed set of (image, label) records (see the module docstring).

    Subclasses set :attr:`description` (for messages), :attr:`has_labels`, and implement
    :meth:`sample_shape`, :meth:`__len__` and :meth:`read`.
    """

    #: True when records can only be read in order (the loader then asks for consecutive indices)
    sequential: bool = False
    #: whether :meth:`read` returns labels
    has_labels: bool = True
    #: what and where the source is, for messages ("MNIST IDX /data/mnist/train-images-idx3-ubyte.gz")
    description: str = ""

    def sample_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the first record, read cheaply (a header, or one record)."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, indices: np.ndarray) -> tuple[np.ndarray | list[np.ndarray], np.ndarray | None]:
        """Records at ``indices`` (each in [0, len)): images as one (B, C, H, W) array when they share a
        shape (uint8 or float32), else a list of (C, H, W) arrays; labels as int64 (B,) or None."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files (the source may be read again afterwards: it reopens them)."""

    def __deepcopy__(self, memo):
        return self  # a reader is shared, not copied (copying a net must not reload its dataset)


def search_roots(base_dir=None, options: dict | None = None) -> list[Path]:
    """The folders a relative ``source`` is looked for in, in order (see the module docstring)."""
    options = options or {}
    roots: list[Path] = []
    if base_dir:
        roots.append(Path(base_dir))
    if options.get("data_root"):
        roots.append(Path(options["data_root"]).expanduser())
    env = os.environ.get(ENV_DATA_ROOT, "")
    roots.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    roots.append(Path.cwd())
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def resolve(source: str, roots: Sequence[Path],
            probe: Callable[[Path, list[Path]], T | None]) -> tuple[T | None, list[Path]]:
    """Try ``probe(candidate, tried)`` on ``source`` under each root; the first non-None result wins.

    ``probe`` appends to ``tried`` every concrete path it looked at (for the error message).  An
    absolute ``source`` is probed once, as it is.  Returns (result or None, the paths tried).
    """
    path = Path(source).expanduser()
    candidates = [path] if path.is_absolute() else [root / path for root in roots]
    tried: list[Path] = []
    for candidate in candidates:
        found = probe(candidate, tried)
        if found is not None:
            return found, tried
    return None, tried


def fetch_hint(source: str, backend: str | None = None) -> str | None:
    """The ``caffe-like data`` command that fetches a dataset named like ``source``, if one does."""
    low = source.lower()
    if backend == "IDX" or "mnist" in low:
        name = "mnist"
    elif backend == "CIFAR" or "cifar" in low:
        name = "cifar100" if "100" in low else "cifar10"
    else:
        return None
    return f"caffe-like data {name} --root DIR"


def missing_error(what: str, source: str, tried: Sequence[Path], *, backend: str | None = None,
                  layout: str | None = None) -> DataError:
    """The DataError for a dataset found nowhere: every path looked for, and how to get it."""
    shown = list(dict.fromkeys(str(p) for p in tried))
    listing = "".join(f"\n    {p}" for p in shown[:12])
    if len(shown) > 12:
        listing += f"\n    ... and {len(shown) - 12} more"
    message = f"{what} '{source}' not found; looked for:{listing}"
    if layout:
        message += f"\n  expected: {layout}"
    hint = fetch_hint(source, backend)
    roots = "pass --data-root DIR (or set CAFFE_LIKE_DATA=DIR), or give a path relative to the net file"
    fix = f"fetch it with `{hint}`, then {roots}" if hint else roots
    return DataError(message, fix=fix)
