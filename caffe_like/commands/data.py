"""``caffe-like data mnist|cifar10|cifar100 --root DIR``: download, verify (published MD5s) and unpack.

Layout under DIR (what the data layers' ``source`` names):

  mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz   source: mnist/train, backend: IDX
  cifar-10-batches-py/data_batch_1..5, test_batch         source: cifar-10-batches-py/train, backend: CIFAR
  cifar-100-python/train, test, meta                      source: cifar-100-python/train, backend: CIFAR

Then run nets with ``--data-root DIR`` or ``CAFFE_LIKE_DATA=DIR``.  Files already present and verified
are not downloaded again.  ``--url-base`` fetches from a mirror or a local folder instead of the official
address (the checksums are checked all the same).
"""

from __future__ import annotations

import argparse
import os


def add_parser(subparsers) -> None:
    from ..data.datasets import DATASETS

    p = subparsers.add_parser("data", help="download and verify a dataset (MNIST, CIFAR-10, CIFAR-100)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=sorted(DATASETS), help="which dataset")
    p.add_argument("--root", default=None, metavar="DIR",
                   help="folder to put it in (default: $CAFFE_LIKE_DATA, else ./data)")
    p.add_argument("--url-base", default=None, metavar="URL",
                   help="download from URL/<file name> instead (http(s)://, file://, or a local folder)")
    p.add_argument("--keep-archive", action="store_true", help="keep the CIFAR .tar.gz after unpacking")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="network timeout in seconds (60)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..data.datasets import DATASETS, fetch
    from ..data.source import ENV_DATA_ROOT

    root = args.root or os.environ.get(ENV_DATA_ROOT, "").split(os.pathsep)[0] or "data"
    target = fetch(args.dataset, root, url_base=args.url_base, keep_archive=args.keep_archive,
                   log=lambda line: print(line, flush=True), timeout=args.timeout)
    print(f"{args.dataset} is ready in {target}")
    print(f"  use it with: {DATASETS[args.dataset].usage}, and --data-root {root} (or {ENV_DATA_ROOT}={root})")
    return 0
