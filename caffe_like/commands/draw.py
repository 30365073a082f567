"""``caffe-like draw NET OUT.{png,svg,pdf}``: a diagram of the net, as Caffe's draw_net.py draws it.

Layers are boxes coloured by type (convolutions red, pooling orange, inner products purple, others blue)
with their kernel size, stride and pad; blobs are grey octagons; an in-place layer is a green box hanging on
its blob (--fold-inplace writes it into the blob instead); edges carry the batch size or the number of
outputs.  Fork layer types are drawn like any other (nothing is built).  OUT's extension picks the format;
.dot/.gv (or --dot FILE) writes the DOT source.  Rendering needs Graphviz's ``dot`` (PNG, SVG, PDF) or the
``graphviz-pure`` package (PNG, SVG); the environment variable CAFFE_LIKE_DOT names another program.
"""

from __future__ import annotations

import argparse
import warnings

from ..errors import SpecError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("draw", help="draw a net diagram with graphviz (as Caffe's draw_net.py)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("net", help="a .prototxt or .yaml net")
    p.add_argument("out", help="the image to write: .png, .svg or .pdf (.dot/.gv: the DOT source)")
    p.add_argument("--rankdir", choices=("LR", "TB", "BT", "RL"), default="LR",
                   help="direction of the graph layout (default LR, as draw_net.py)")
    p.add_argument("--phase", choices=("TRAIN", "TEST", "ALL"), default="ALL",
                   help="which phase's layers to draw (default ALL)")
    p.add_argument("--dot", metavar="FILE", help="also write the DOT source to FILE")
    p.add_argument("--display-lrm", action="store_true",
                   help="show the learning-rate multipliers of Convolution and InnerProduct layers")
    p.add_argument("--fold-inplace", action="store_true",
                   help="write in-place layers into their blob's node instead of drawing them as boxes")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..draw import FORMATS, draw_net_to_file

    suffix = args.out.rsplit(".", 1)[-1].lower() if "." in args.out else ""
    if suffix not in FORMATS:
        raise SpecError(f"cannot tell the format of '{args.out}'", fix="name the output .png, .svg, .pdf or .dot")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fork's unknown *_param blocks are fine for a drawing
        used = draw_net_to_file(args.net, args.out, rankdir=args.rankdir,
                                phase=None if args.phase == "ALL" else args.phase, display_lrm=args.display_lrm,
                                fold_inplace=args.fold_inplace, dot_file=args.dot)
    print(f"wrote {args.out} ({used})")
    return 0
