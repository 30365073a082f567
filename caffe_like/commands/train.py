"""``caffe-like train --solver S``: train or fine-tune a net, as ``caffe train``.

``--weights a.caffemodel[,b.caffemodel]`` fine-tunes: the weights are copied into the train and test nets
by layer name, and training starts at iteration 0 (it replaces the solver's own ``weights`` field).
``--snapshot X.solverstate`` resumes a run where it stopped (iteration, history, random generators, data
positions), continuing the same trajectory.  The two cannot be combined.

Signals (Caffe's defaults): SIGINT (Ctrl-C) ``stop``s training after the current iteration, writing a
snapshot first (``snapshot_after_train``); SIGHUP writes a ``snapshot`` and goes on.  A second Ctrl-C
while stopping interrupts at once.

Output: Caffe's log lines on standard output (a progress bar on standard error when it is a terminal) and
the CSV log ``<snapshot_prefix>_log.csv`` (``--log`` elsewhere).  Exit status: 0 when training ends
(also when stopped by a signal), 1 when it fails (a NaN loss), 2 for bad input.
"""

from __future__ import annotations

import argparse

from ..solver.signals import EFFECTS


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train or fine-tune a net (caffe train)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--solver", required=True, help="the solver (.prototxt or .yaml)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--weights", help="fine-tune from these .caffemodel files (comma-separated)")
    start.add_argument("--snapshot", help="resume from this .solverstate")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available and solver_mode is GPU)")
    p.add_argument("--max-iter", type=int, help="override the solver's max_iter")
    p.add_argument("--data-root", help="folder where data layers look for relative sources "
                                       "(after the net's folder; default $CAFFE_LIKE_DATA)")
    p.add_argument("--log", help="the CSV log file (default: <snapshot_prefix>_log.csv)")
    p.add_argument("--sigint-effect", choices=EFFECTS, default="stop",
                   help="what SIGINT (Ctrl-C) does: stop (default; snapshots on the way out), snapshot or none")
    p.add_argument("--sighup-effect", choices=EFFECTS, default="snapshot",
                   help="what SIGHUP does: snapshot (default), stop or none")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, plain lines only")
    speed = p.add_argument_group("speed options (docs/benchmarks.md; none changes results beyond rounding)")
    speed.add_argument("--channels-last", action="store_true",
                       help="keep 4-D blobs in channels_last (NHWC) memory order: faster convolution and "
                            "pooling on CPUs")
    speed.add_argument("--compile", action="store_true",
                       help="run the train net through torch.compile (the first iteration compiles, tens of "
                            "seconds on a CPU; needs a C++ compiler there)")
    speed.add_argument("--amp", nargs="?", const="float16", choices=("float16", "bfloat16"),
                       help="automatic mixed precision on CUDA: float16 (the default, with loss scaling) or "
                            "bfloat16")
    speed.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                       help="tuned (the default): raise glibc malloc's mmap/trim thresholds so that CPU iterations "
                            "stop page-faulting (Linux; freed memory then stays with the process); default: "
                            "leave the C library's settings alone")
    p.set_defaults(run=run)


def run(args) -> int:
    import torch

    from ..solver import Solver
    from ..solver.signals import SignalActions
    from ..spec.solver import SolverSpec

    if args.malloc == "tuned":
        from ..solver.malloc import tune_malloc

        tune_malloc()
    spec = SolverSpec.load(args.solver)
    if spec.param.random_seed < 0:
        torch.seed()  # Caffe: a negative random_seed means a seed from the clock
    solver = Solver(spec, device=args.device, weights=args.weights, snapshot=args.snapshot,
                    data_root=args.data_root, max_iter=args.max_iter, log=args.log,
                    progress=False if args.no_progress else None, channels_last=args.channels_last,
                    compile=args.compile, amp=args.amp)
    solver.report.line(f"Using device {solver.device}")
    with SignalActions(args.sigint_effect, args.sighup_effect) as actions:
        solver.action_request = actions
        solver.solve()
    return 0
