"""Where snapshots go and where a solver state's weights are found.

File names are Caffe's: ``<prefix>_iter_<N>.caffemodel`` and ``<prefix>_iter_<N>.solverstate``, N the
iteration after the update (the first periodic snapshot is ``_iter_<snapshot>``).  The prefix is the
solver's ``snapshot_prefix`` (relative to the solver file); as in BVLC Caffe, an unset prefix is the
solver file's path without its extension, and a prefix naming a folder (an existing directory, or
ending in ``/``) gets the solver file's name appended.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import WeightsError
from ..spec.schema import has

__all__ = ["snapshot_prefix", "snapshot_paths", "learned_net_path", "csv_log_path"]


def snapshot_prefix(spec) -> Path | None:
    """The snapshot prefix of a SolverSpec, or None (no prefix and no solver file to derive one from)."""
    stem = Path(spec.file).with_suffix("").name if spec.file else None
    if has(spec.param, "snapshot_prefix") and spec.param.snapshot_prefix:
        prefix = spec.snapshot_prefix
        if spec.param.snapshot_prefix.endswith(("/", "\\")) or prefix.is_dir():
            return prefix / stem if stem else None
        return prefix
    if spec.file:
        return Path(spec.file).resolve().with_suffix("")
    return None


def snapshot_paths(prefix: Path, iteration: int) -> tuple[Path, Path]:
    """(``.caffemodel``, ``.solverstate``) of the snapshot at ``iteration``."""
    base = f"{prefix}_iter_{iteration}"
    return Path(base + ".caffemodel"), Path(base + ".solverstate")


def csv_log_path(spec) -> Path | None:
    """The default CSV log: ``<prefix>_log.csv`` (prefix as for snapshots), or None."""
    prefix = snapshot_prefix(spec)
    return Path(f"{prefix}_log.csv") if prefix is not None else None


def learned_net_path(state_path: Path, learned_net: str) -> Path:
    """The .caffemodel a solver state names: relative to the state's folder (caffe_like writes the bare
    file name), else relative to the current directory (Caffe writes the path it was given), else the
    same file name beside the state (a snapshot folder that was moved)."""
    given = Path(learned_net)
    candidates = [given] if given.is_absolute() else [state_path.parent / given, given]
    candidates.append(state_path.parent / given.name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(dict.fromkeys(str(c) for c in candidates))
    raise WeightsError(f"the solver state's weights '{learned_net}' were not found (tried {tried})",
                       file=str(state_path),
                       fix="keep the .caffemodel written with the .solverstate beside it")
