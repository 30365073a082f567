#!/usr/bin/env python3
"""Make ``mnist-mini``, the quick start's embedded data set, from the official MNIST IDX files.

mnist-mini = the first 10,000 training and the first 2,000 test images (and labels) of MNIST, in the original
order, as gzip-compressed IDX files with the official names (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), plus a README.md with the licence (CC BY-SA 3.0), the
attribution and the checksums.  The output is deterministic (gzip level 9, no file name, mtime 0): re-running gives
identical bytes.

    python tools/make_mnist_mini.py                       # from ../shared/data/mnist into caffe_like/quickstart/mnist-mini
    python tools/make_mnist_mini.py --src DIR --out DIR
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import struct
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SRC = REPO.parent / "shared" / "data" / "mnist"
DEFAULT_OUT = REPO / "caffe_like" / "quickstart" / "mnist-mini"
COUNTS = {"train": 10_000, "t10k": 2_000}


def read_idx_bytes(path: Path) -> tuple[bytes, tuple[int, ...], bytes]:
    """(header without dims, dims, payload) of an IDX file (.gz or raw)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[:2] != b"\0\0":
        raise SystemExit(f"{path}: not an IDX file")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}i", data[4:4 + 4 * ndim])
    return data[:4], dims, data[4 + 4 * ndim:]


def head_idx(path: Path, count: int) -> bytes:
    """The first ``count`` records of an IDX file, as an uncompressed IDX file."""
    magic, dims, payload = read_idx_bytes(path)
    if dims[0] < count:
        raise SystemExit(f"{path}: has {dims[0]} records, fewer than {count}")
    record = 1
    for d in dims[1:]:
        record *= d
    return magic + struct.pack(f">{len(dims)}i", count, *dims[1:]) + payload[:count * record]


def gzip_deterministic(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buffer, mtime=0) as handle:
        handle.write(data)
    return buffer.getvalue()


def find(src: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (src / name).exists():
            return src / name
    raise SystemExit(f"{src}: {stem}[.gz] not found (give --src, the folder of the official MNIST IDX files)")


README = """# mnist-mini

The first {train:,} training images and the first {test:,} test images (with their labels) of the MNIST database
of handwritten digits, in the original order, as gzip-compressed IDX files with the official file names.  It is
the data set of `caffe-like quickstart` (a few seconds per epoch on a laptop CPU), not a benchmark.

**Source and licence.** The MNIST database of handwritten digits, by Yann LeCun, Corinna Cortes and Christopher
J. C. Burges (http://yann.lecun.com/exdb/mnist/), is licensed under the Creative Commons Attribution-Share Alike
3.0 licence (CC BY-SA 3.0, https://creativecommons.org/licenses/by-sa/3.0/).  mnist-mini is a subset of it
(changes: only the first records kept; the IDX headers' record counts changed to match; gzip recompressed) and is
distributed under the same licence, CC BY-SA 3.0.

Made by `tools/make_mnist_mini.py` from the official files (whose uncompressed md5s are the widely published ones;
see ../shared/data/mnist/README.md in this project's workspace).  Re-running it gives identical bytes (gzip level
9, no file name, mtime 0).

| file | records | bytes | sha256 (of the .gz) | sha256 (uncompressed) |
| --- | --- | --- | --- | --- |
{rows}

Format: IDX (big-endian): images `0x00000803`, N, 28, 28, then N*28*28 uint8 pixels (0 = background,
255 = ink); labels `0x00000801`, N, then N uint8 labels 0-9.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help=f"official MNIST IDX folder (default {DEFAULT_SRC})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for prefix, count in COUNTS.items():
        for kind in ("images-idx3", "labels-idx1"):
            stem = f"{prefix}-{kind}-ubyte"
            raw = head_idx(find(args.src, stem), count)
            packed = gzip_deterministic(raw)
            target = args.out / f"{stem}.gz"
            target.write_bytes(packed)
            rows.append(f"| {stem}.gz | {count:,} | {len(packed):,} | {hashlib.sha256(packed).hexdigest()} | "
                        f"{hashlib.sha256(raw).hexdigest()} |")
            print(f"wrote {target} ({len(packed):,} bytes)")
    (args.out / "README.md").write_text(README.format(train=COUNTS["train"], test=COUNTS["t10k"], rows="\n".join(rows)))
    print(f"wrote {args.out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
