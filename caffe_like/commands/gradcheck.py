"""``caffe-like gradcheck [--layer TYPE ...] [--dtype float64|float32]``: the loss layers' trust chain.

For every loss layer (SoftmaxWithLoss, EuclideanLoss, HingeLoss, SigmoidCrossEntropyLoss,
MultinomialLogisticLoss, LargeMarginInnerProduct, CenterLoss, ReciprocalNormLoss) and Accuracy (forward only),
a few fixed cases are checked: the NumPy reference's backward against finite differences, the torch layer's
forward and backward against the reference, and torch.autograd.gradcheck (float64; Caffe's own checker
settings in float32).  Prints a table (layer, case, check, max relative error, threshold, verdict) and exits 1
if any check fails.  The relative error is Caffe's |a - b| / max(|a|, |b|, 1).
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    from ..gradcheck_suite import LAYER_TYPES

    p = subparsers.add_parser("gradcheck", help="check the loss layers against their references and finite differences",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layer", action="append", default=None, metavar="TYPE",
                   help=f"check only this layer type (repeatable); one of: {', '.join(LAYER_TYPES)}")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="dtype of the torch layers (default float64; the reference always runs in float64)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import SpecError
    from ..gradcheck_suite import LAYER_TYPES, format_table, run_suite

    types = args.layer or list(LAYER_TYPES)
    unknown = [t for t in types if t not in LAYER_TYPES]
    if unknown:
        raise SpecError(f"no gradient-check cases for layer type(s): {', '.join(unknown)}",
                        fix=f"choose among: {', '.join(LAYER_TYPES)}")
    rows = run_suite(types, args.dtype)
    print(format_table(rows))
    return 0 if rows and all(r.passed for r in rows) else 1
