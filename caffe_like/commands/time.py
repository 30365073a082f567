"""``caffe-like time --model NET``: average per-layer forward and backward time, as Caffe's ``time``.

Phase TRAIN unless ``--phase`` says otherwise (as Caffe); net inputs are random data (zeros for
labels).  One warm-up pass, then ``--iterations`` (default 50) timed ones.
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("time", help="per-layer forward/backward time of a net",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a .prototxt or .yaml net")
    p.add_argument("--iterations", type=int, default=50, help="timed iterations (default 50)")
    p.add_argument("--phase", choices=("TRAIN", "TEST"), default="TRAIN", help="default TRAIN, as Caffe")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--data-root", default=None, help="folder that data sources are relative to")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    import torch

    from ..errors import SpecError
    from ..net import Net
    from ..timing import time_net

    if args.iterations < 1:
        raise SpecError("--iterations must be >= 1")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    options = {"data_root": args.data_root} if args.data_root else {}
    net = Net(args.model, phase=args.phase, options=options).to(device)
    report = time_net(net, args.iterations)
    print(json.dumps(report.to_dict()) if args.json else report.format())
    return 0
