"""HDF5 files for ``HDF5Data`` (needs the optional ``h5py`` package).

As Caffe's ``HDF5DataLayer``: ``source`` is a text file listing one .h5 path per line (relative paths
resolve against the list file's folder, then as ``source`` does).  Each top reads the dataset named like
the top; all of a file's datasets must have the same number of rows (axis 0), and the top shape is the
dataset's shape with axis 0 replaced by ``batch_size``.  One file is loaded into memory at a time.
Values are converted to the net's float type (integers too).

Order: files in list order and rows in file order, wrapping around; a batch may straddle two files.
With ``shuffle``, the file order is shuffled at start and after every pass over the files, and a file's
row order is shuffled every time a file is (re)started — Caffe's ``Next()``.  The permutations are drawn
from generators seeded with (seed, counter), so the state is four integers (:meth:`Hdf5Reader.state`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from .loader import STATE_FORMAT

__all__ = ["require_h5py", "read_file_list", "Hdf5Reader"]


def require_h5py():
    try:
        import h5py
    except ImportError:
        raise DataError("HDF5Data needs the 'h5py' package, which is not installed", fix="pip install h5py") from None
    return h5py


def read_file_list(list_path: Path, roots: Sequence[Path]) -> list[Path]:
    """The .h5 files named in an HDF5Data source list, resolved."""
    try:
        lines = [line.strip() for line in Path(list_path).read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read the HDF5 file list: {err}", file=str(list_path)) from None
    files = []
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        path = Path(line).expanduser()
        options = [path] if path.is_absolute() else [Path(list_path).parent / path, *(r / path for r in roots)]
        found = next((p for p in options if p.is_file()), None)
        if found is None:
            listing = "".join(f"\n    {p}" for p in options)
            raise DataError(f"HDF5 file '{line}' not found; looked for:{listing}", file=str(list_path), line=number)
        files.append(found)
    if not files:
        raise DataError("the HDF5 file list is empty", file=str(list_path))
    return files


class Hdf5Reader:
    """Batches of the datasets ``tops`` from a list of HDF5 files (see the module docstring)."""

    def __init__(self, files: Sequence[Path], tops: Sequence[str], batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, dtype=np.float32) -> None:
        self.h5py = require_h5py()
        self.files = [Path(f) for f in files]
        self.tops = list(tops)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.dtype = np.dtype(dtype)
        self.file_loop = self.file_pos = self.row_epoch = self.row = 0
        self._loaded: tuple[int, list[np.ndarray]] | None = None
        self._rows_cache: tuple[tuple[int, int], np.ndarray] | None = None
        first = self.files[self._file_order(0)[0]]
        self.shapes = self._peek(first)

    def _peek(self, path: Path) -> list[tuple[int, ...]]:
        shapes = []
        try:
            with self.h5py.File(path, "r") as f:
                for top in self.tops:
                    if top not in f:
                        raise DataError(f"the file has no dataset '{top}' (datasets: {', '.join(sorted(f))})",
                                        file=str(path), fix="name each top like a dataset of the files")
                    shapes.append(tuple(int(d) for d in f[top].shape))
        except OSError as err:
            raise DataError(f"cannot read HDF5 file: {err}", file=str(path)) from None
        rows = {s[0] if s else 0 for s in shapes}
        if any(len(s) == 0 for s in shapes) or len(rows) != 1 or 0 in rows:
            raise DataError(f"the datasets {self.tops} must all have the same, non-zero number of rows; shapes "
                            f"{[list(s) for s in shapes]}", file=str(path))
        return shapes

    def top_shapes(self) -> list[tuple[int, ...]]:
        return [(self.batch_size, *s[1:]) for s in self.shapes]

    def _file_order(self, loop: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.files))
        return np.random.Generator(np.random.PCG64([self.seed, 0, loop])).permutation(len(self.files))

    def _row_order(self, epoch: int, rows: int) -> np.ndarray:
        key = (epoch, rows)
        if self._rows_cache is None or self._rows_cache[0] != key:
            order = (np.random.Generator(np.random.PCG64([self.seed, 1, epoch])).permutation(rows)
                     if self.shuffle else np.arange(rows))
            self._rows_cache = (key, order)
        return self._rows_cache[1]

    def _current(self) -> list[np.ndarray]:
        index = int(self._file_order(self.file_loop)[self.file_pos])
        if self._loaded is None or self._loaded[0] != index:
            path = self.files[index]
            shapes = self._peek(path)
            if [s[1:] for s in shapes] != [s[1:] for s in self.shapes]:
                raise DataError(f"the datasets' shapes {[list(s) for s in shapes]} differ from the first file's "
                                f"{[list(s) for s in self.shapes]} beyond axis 0", file=str(path))
            try:
                with self.h5py.File(path, "r") as f:
                    arrays = [np.asarray(f[top][()], dtype=self.dtype) for top in self.tops]
            except OSError as err:
                raise DataError(f"cannot read HDF5 file: {err}", file=str(path)) from None
            self._loaded = (index, arrays)
        return self._loaded[1]

    def state(self) -> dict:
        return {"format": STATE_FORMAT, "file_loop": self.file_loop, "file_pos": self.file_pos,
                "row_epoch": self.row_epoch, "row": self.row, "order_seed": self.seed}

    def set_state(self, state: dict) -> None:
        try:
            self.file_loop, self.file_pos, self.row_epoch, self.row = (
                int(state[k]) for k in ("file_loop", "file_pos", "row_epoch", "row"))
        except (KeyError, TypeError, ValueError):
            raise DataError("not an HDF5Data state (expected file_loop, file_pos, row_epoch, row)") from None
        if state.get("order_seed") is not None:
            self.seed = int(state["order_seed"])
            self._rows_cache = None

    def next_batch(self) -> list[np.ndarray]:
        out = [np.empty((self.batch_size, *s[1:]), dtype=self.dtype) for s in self.shapes]
        filled = 0
        while filled < self.batch_size:
            arrays = self._current()
            rows = arrays[0].shape[0]
            take = min(self.batch_size - filled, rows - self.row)
            picked = self._row_order(self.row_epoch, rows)[self.row:self.row + take]
            for target, array in zip(out, arrays):
                target[filled:filled + take] = array[picked]
            filled += take
            self.row += take
            if self.row == rows:  # Caffe's Next(): next file (reshuffling at the end of a pass), new row order
                self.row = 0
                self.row_epoch += 1
                if len(self.files) > 1:
                    self.file_pos += 1
                    if self.file_pos == len(self.files):
                        self.file_pos = 0
                        self.file_loop += 1
        return out
