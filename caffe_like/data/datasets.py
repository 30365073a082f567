"""Download, verify and unpack the standard datasets: MNIST, CIFAR-10, CIFAR-100.

Files come from their official addresses (MNIST also from PyTorch's public mirror when the original site
refuses) or from ``url_base`` (any ``http(s)://`` or ``file://`` URL, or a local folder), and are checked
against the published MD5 checksums before anything is kept:

* MNIST (``ROOT/mnist/``): the four ``*-ubyte.gz`` files, kept compressed (the IDX reader reads .gz).
  A file is accepted when its MD5 is the official .gz checksum, or when the MD5 of its decompressed
  bytes is the official checksum of the uncompressed IDX file (a mirror that recompressed the files).
* CIFAR-10 (``ROOT/cifar-10-batches-py/``) and CIFAR-100 (``ROOT/cifar-100-python/``): the python-version
  archives, checked, unpacked safely (no absolute paths, no ``..``, no links: ``tarfile``'s ``data``
  filter), then every unpacked batch is checked against its own published MD5.  The archive is deleted
  afterwards unless ``keep_archive``.

What is already there and verifies is not downloaded again.  Every failure is a
:class:`~caffe_like.errors.DataError` naming the URL or file and the expected and actual checksums.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

__all__ = ["FileSpec", "DatasetSpec", "DATASETS", "fetch", "md5_of", "file_url"]


@dataclass(frozen=True)
class FileSpec:
    """A file to download: its name, the accepted MD5s, and for .gz files the MD5 of the decompressed
    payload (an accepted alternative)."""

    name: str
    md5: tuple[str, ...]
    payload_md5: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """How to fetch one dataset (see the module docstring).

    ``folder`` is where the files land under the root (for archives: the folder they unpack to);
    ``members`` maps unpacked files (relative to the root) to their MD5.
    """

    name: str
    folder: str
    urls: tuple[str, ...]
    files: tuple[FileSpec, ...]
    archive: bool = False
    members: dict[str, str] = field(default_factory=dict)
    usage: str = ""


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        folder="mnist",
        urls=("http://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        files=(
            FileSpec("train-images-idx3-ubyte.gz", ("f68b3c2dcbeaaa9fbdd348bbdeb94873",),
                     "6bbc9ace898e44ae57da46a324031adb"),
            FileSpec("train-labels-idx1-ubyte.gz", ("d53e105ee54ea40749a09fcbcd1e9432",),
                     "a25bea736e30d166cdddb491f175f624"),
            FileSpec("t10k-images-idx3-ubyte.gz", ("9fb629c4189551a2d022fa330f9573f3",),
                     "2646ac647ad5339dbf082846283269ea"),
            FileSpec("t10k-labels-idx1-ubyte.gz", ("ec29112dd5afa0611ce80d1b7f02629c",),
                     "27ae3e4e09519cfbb04c329615203637"),
        ),
        usage="data_param { source: 'mnist/train' (or 'mnist/t10k') backend: IDX }",
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        folder="cifar-10-batches-py",
        urls=("https://www.cs.toronto.edu/~kriz/",),
        files=(FileSpec("cifar-10-python.tar.gz", ("c58f30108f718f92721af3b95e74349a",)),),
        archive=True,
        members={
            "cifar-10-batches-py/data_batch_1": "c99cafc152244af753f735de768cd75f",
            "cifar-10-batches-py/data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
            "cifar-10-batches-py/data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
            "cifar-10-batches-py/data_batch_4": "634d18415352ddfa80567beed471001a",
            "cifar-10-batches-py/data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
            "cifar-10-batches-py/test_batch": "40351d587109b95175f43aff81a1287e",
            "cifar-10-batches-py/batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
        },
        usage="data_param { source: 'cifar-10-batches-py/train' (or .../test) backend: CIFAR }",
    ),
    "cifar100": DatasetSpec(
        name="cifar100",
        folder="cifar-100-python",
        urls=("https://www.cs.toronto.edu/~kriz/",),
        files=(FileSpec("cifar-100-python.tar.gz", ("eb9058c3a382ffc7106e4002c42a8d85",)),),
        archive=True,
        members={
            "cifar-100-python/train": "16019d7e3df5f24257cddd939b257f8d",
            "cifar-100-python/test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
            "cifar-100-python/meta": "7973b15100ade9c7d40fb424638fde48",
        },
        usage="data_param { source: 'cifar-100-python/train' (or .../test) backend: CIFAR cifar_label: fine }",
    ),
}

_CHUNK = 1 << 20


def md5_of(path: Path, *, gunzip: bool = False) -> str:
    """MD5 of a file (of its decompressed bytes with ``gunzip``)."""
    digest = hashlib.md5(usedforsecurity=False)
    opener = gzip.open if gunzip else open
    with opener(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_url(path: str | Path) -> str:
    """A ``file://`` URL for a local folder (with a trailing slash, to be used as a URL base)."""
    return Path(path).resolve().as_uri().rstrip("/") + "/"


def _bases(spec: DatasetSpec, url_base: str | None) -> list[str]:
    if url_base is None:
        return list(spec.urls)
    if "://" not in url_base:
        return [file_url(url_base)]
    return [url_base if url_base.endswith("/") else url_base + "/"]


def _verify(path: Path, spec: FileSpec) -> tuple[bool, str]:
    """(ok, how) for a downloaded file."""
    got = md5_of(path)
    if got in spec.md5:
        return True, f"md5 {got}"
    if spec.payload_md5 is not None:
        try:
            payload = md5_of(path, gunzip=True)
        except (OSError, EOFError):
            payload = None
        if payload == spec.payload_md5:
            return True, f"md5 of the uncompressed payload {payload}"
    expected = " or ".join(spec.md5) + (f" (or payload {spec.payload_md5})" if spec.payload_md5 else "")
    return False, f"md5 {got}, expected {expected}"


def _download(url: str, dest: Path, timeout: float) -> int:
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
        size = part.stat().st_size
        os.replace(part, dest)
        return size
    finally:
        part.unlink(missing_ok=True)


def _fetch_file(spec: FileSpec, folder: Path, bases: Sequence[str], log: Callable[[str], None],
                timeout: float) -> Path:
    dest = folder / spec.name
    if dest.is_file():
        ok, how = _verify(dest, spec)
        if ok:
            log(f"present   {dest} ({how})")
            return dest
        log(f"replacing {dest}: {how}")
    errors = []
    for base in bases:
        url = base + spec.name
        try:
            size = _download(url, dest, timeout)
        except (urllib.error.URLError, OSError, ValueError) as err:
            errors.append(f"{url}: {err}")
            continue
        ok, how = _verify(dest, spec)
        if not ok:
            dest.unlink(missing_ok=True)
            raise DataError(f"checksum mismatch for {url}: {how}; the file was deleted",
                            fix="retry, or fetch from another source with --url-base URL")
        log(f"fetched   {url} -> {dest} ({size:,} bytes, {how})")
        return dest
    raise DataError("could not download " + spec.name + ":" + "".join(f"\n    {e}" for e in errors),
                    fix="check the network, or pass --url-base URL (a mirror, or a local folder holding the file)")


def _members_ok(root: Path, members: dict[str, str]) -> bool:
    return all((root / name).is_file() and md5_of(root / name) == md5 for name, md5 in members.items())


def _unpack(archive: Path, root: Path, spec: DatasetSpec, log: Callable[[str], None]) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            names = tar.getnames()
            outside = [n for n in names if n.split("/", 1)[0] != spec.folder]
            if outside:
                raise DataError(f"the archive holds files outside '{spec.folder}/': {', '.join(outside[:5])}",
                                file=str(archive))
            tar.extractall(root, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise DataError(f"cannot unpack the archive: {err}", file=str(archive)) from None
    for name, md5 in spec.members.items():
        path = root / name
        if not path.is_file():
            raise DataError(f"the archive lacks {name}", file=str(archive))
        got = md5_of(path)
        if got != md5:
            raise DataError(f"checksum mismatch for unpacked {name}: md5 {got}, expected {md5}", file=str(archive))
    log(f"unpacked  {archive.name} -> {root / spec.folder} ({len(names)} entries, every batch's md5 verified)")


def fetch(name: str | DatasetSpec, root: str | Path, *, url_base: str | None = None, keep_archive: bool = False,
          log: Callable[[str], None] = print, timeout: float = 60.0) -> Path:
    """Download, verify and unpack dataset ``name`` ("mnist", "cifar10", "cifar100", or a DatasetSpec)
    under ``root``; returns the dataset's folder.  Progress lines go to ``log``."""
    if isinstance(name, DatasetSpec):
        spec = name
    else:
        spec = DATASETS.get(name)
        if spec is None:
            raise DataError(f"unknown dataset '{name}'", fix=f"choose one of: {', '.join(DATASETS)}")
    root = Path(root).expanduser()
    target = root / spec.folder
    bases = _bases(spec, url_base)
    if not spec.archive:
        target.mkdir(parents=True, exist_ok=True)
        for file in spec.files:
            _fetch_file(file, target, bases, log, timeout)
        return target
    root.mkdir(parents=True, exist_ok=True)
    if _members_ok(root, spec.members):
        log(f"present   {target} (every batch's md5 verified)")
        return target
    for file in spec.files:
        archive = _fetch_file(file, root, bases, log, timeout)
        _unpack(archive, root, spec, log)
        if not keep_archive:
            archive.unlink()
            log(f"removed   {archive}")
    return target
