"""``caffe-like quickstart``: the main job on the embedded mnist-mini data, in about a minute on a CPU.

Trains the paper's MNIST-2D net with feature incay (RN + Softmax, prototxt/paper/mnist2d/rn_softmax.yaml) on
mnist-mini (the first 10,000 training images of MNIST, shipped with the package; CC BY-SA 3.0) with a short
solver, exports it to ONNX, and classifies mnist-mini's 2,000 test digits with onnxruntime, printing the test
accuracy and the average L2 norm of the 2-D features.  Everything it writes goes to --out (default
./quickstart_out): the .caffemodel, the training log (CSV) and the .onnx model.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("quickstart", help="train, export and run the paper's MNIST-2D net on embedded data",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="quickstart_out", help="folder for what it writes (default ./quickstart_out)")
    p.add_argument("--max-iter", type=int, default=None,
                   help="training iterations (default: the quick-start solver's 2000; steps scale with it)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the solver's, 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import SpecError
    from ..quickstart import run_quickstart

    if args.max_iter is not None and args.max_iter <= 0:
        raise SpecError("--max-iter must be positive")
    from ..solver.malloc import tune_malloc

    tune_malloc()  # as caffe-like train: no page faults per iteration (docs/benchmarks.md)
    run_quickstart(args.out, max_iter=args.max_iter, device=args.device, seed=args.seed,
                   progress=False if args.no_progress else None)
    return 0
