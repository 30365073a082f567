"""Caffe LMDB databases of ``Datum`` records (what ``convert_imageset`` / ``convert_mnist_data`` write).

Records are read in key order (LMDB keeps keys sorted) and wrap around at the end, as Caffe's
``DataLayer`` does.  A record is a serialized ``Datum``: raw (``data`` bytes C×H×W, or ``float_data``)
or encoded (``encoded: true``, PNG/JPEG bytes in ``data``), decoded with Pillow into OpenCV's channel
order (BGR for color) — :func:`caffe_like.weights.decode_datum`.  ``force_color`` / ``force_gray``
(``transform_param``, or the legacy ``data_param.force_encoded_color``) force 3 or 1 channels.

The ``lmdb`` package is an optional dependency: without it, opening an LMDB is a DataError that says
``pip install lmdb``.  LevelDB (Caffe's default backend) is not read: convert it to LMDB.

The build-time peek opens the database and decodes its first record only.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import DataError
from .source import RecordSource

__all__ = ["require_lmdb", "locate", "LmdbSource", "write_lmdb"]


def require_lmdb():
    """The ``lmdb`` module, or a DataError saying how to install it."""
    try:
        import lmdb
    except ImportError:
        raise DataError("reading LMDB databases needs the 'lmdb' package, which is not installed",
                        fix="pip install lmdb") from None
    return lmdb


def locate(candidate: Path, tried: list[Path]) -> Path | None:
    """An LMDB environment: a folder holding data.mdb (or a data.mdb file given directly)."""
    tried.append(candidate)
    if candidate.is_dir() and (candidate / "data.mdb").is_file():
        return candidate
    if candidate.is_file() and candidate.name == "data.mdb":
        return candidate.parent
    return None


# py-lmdb opens an environment once per process: sources on the same database share it (refcounted)
_ENVS: dict[str, list] = {}
_ENVS_LOCK = threading.Lock()


def _acquire_env(lmdb, path: Path):
    key = str(path.resolve())
    with _ENVS_LOCK:
        entry = _ENVS.get(key)
        if entry is None:
            try:
                env = lmdb.open(key, readonly=True, lock=False, readahead=False, subdir=True, max_readers=64)
            except lmdb.Error as err:
                raise DataError(f"cannot open LMDB: {err}", file=str(path)) from None
            entry = _ENVS[key] = [env, 0]
        entry[1] += 1
        return entry[0]


def _release_env(path: Path) -> None:
    key = str(path.resolve())
    with _ENVS_LOCK:
        entry = _ENVS.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                entry[0].close()
                del _ENVS[key]


def _decode(value: bytes, color: bool | None, key: bytes, path: Path):
    from ..weights import decode_datum

    try:
        array, label, _encoded = decode_datum(value, color=color)
    except DataError as err:
        raise DataError(f"record {key!r}: {err.message}", file=str(path)) from None
    if array.ndim != 3:
        raise DataError(f"record {key!r} holds an encoded image that cannot be decoded (is Pillow installed?)",
                        file=str(path), fix="pip install pillow")
    return array, label


class LmdbSource(RecordSource):
    """Datum records of an LMDB, in key order (sequential reads; see the module docstring)."""

    sequential = True

    def __init__(self, path: Path, *, color: bool | None = None) -> None:
        self.lmdb = require_lmdb()
        self.path = Path(path)
        self.color = color
        self.description = f"LMDB {self.path}"
        self._env = None
        self._local = threading.local()
        env = self._open()
        self._count = int(env.stat()["entries"])
        if self._count == 0:
            raise DataError("the LMDB holds no records", file=str(self.path))
        with env.begin(buffers=False) as txn:
            cursor = txn.cursor()
            cursor.first()
            key, value = cursor.item()
        first, _label = _decode(value, color, key, self.path)
        self._shape = tuple(int(d) for d in first.shape)

    def _open(self):
        if self._env is None:
            self._env = _acquire_env(self.lmdb, self.path)
            weakref.finalize(self, _release_env, self.path)
        return self._env

    def sample_shape(self) -> tuple[int, int, int]:
        return self._shape  # type: ignore[return-value]

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(lmdb=None, _env=None, _local=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lmdb = require_lmdb()
        self._local = threading.local()

    def __len__(self) -> int:
        return self._count

    def _cursor(self):
        """This thread's read transaction and cursor, with the index the cursor stands at."""
        state = getattr(self._local, "state", None)
        if state is None:
            txn = self._open().begin(buffers=False)
            cursor = txn.cursor()
            cursor.first()
            state = self._local.state = [txn, cursor, 0]
        return state

    def _seek(self, state, index: int) -> None:
        _txn, cursor, at = state
        if index == at:
            return
        if index < at:
            cursor.first()
            at = 0
        while at < index:
            cursor.next()
            at += 1
        state[2] = at

    def read(self, indices):
        state = self._cursor()
        images, labels = [], []
        for index in np.asarray(indices, dtype=np.int64):
            self._seek(state, int(index))
            cursor = state[1]
            key, value = cursor.item()
            image, label = _decode(value, self.color, key, self.path)
            images.append(image)
            labels.append(label)
            if not cursor.next():  # wrap around, as Caffe's DataLayer::Next
                cursor.first()
                state[2] = 0
            else:
                state[2] += 1
        first = images[0].shape
        stacked = np.stack(images) if all(im.shape == first for im in images) else images
        return stacked, np.asarray(labels, dtype=np.int64)

    def close(self) -> None:
        """Drop this thread's transaction (the shared environment closes when its last source goes)."""
        state = getattr(self._local, "state", None)
        if state is not None:
            state[0].abort()
            self._local.state = None
        self._local = threading.local()


def write_lmdb(path: str | Path, records: Iterable[bytes], *, map_size: int = 1 << 30) -> int:
    """Write serialized Datums into a new LMDB with Caffe's keys ``%08d``; returns the count.

    Datums come from :func:`caffe_like.weights.encode_datum` (raw) or ``encode_datum_image`` (encoded).
    """
    lmdb = require_lmdb()
    env = lmdb.open(str(path), map_size=map_size, subdir=True)
    count = 0
    try:
        with env.begin(write=True) as txn:
            for record in records:
                txn.put(f"{count:08d}".encode(), record)
                count += 1
    finally:
        env.close()
    return count
