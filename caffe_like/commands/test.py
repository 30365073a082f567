"""``caffe-like test --model NET --weights W``: score a trained net, as ``caffe test``.

Builds the net in the TEST phase, copies the weights, runs ``--iterations`` forward passes (default 50,
as Caffe) reading its data layers, and prints the mean net loss and the mean of every element of every
output blob over the passes, as Caffe does::

    Loss: 0.0286
    accuracy = 0.9911
    loss = 0.0286 (* 1 = 0.0286 loss)

Outputs are listed in Caffe's order (alphabetical by blob name).  ``--per-batch`` also prints each pass's
values (``Batch i, name = value``) first, as Caffe logs them.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("test", help="score a trained net (caffe test)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the net (.prototxt or .yaml), built in the TEST phase")
    p.add_argument("--weights", required=True, help="the .caffemodel (comma-separated files load in order)")
    p.add_argument("--iterations", type=int, default=50, help="forward passes to average (default 50)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--data-root", help="folder where data layers look for relative sources")
    p.add_argument("--per-batch", action="store_true", help="also print every pass's outputs")
    p.set_defaults(run=run)


def run(args) -> int:
    import torch

    from ..errors import SpecError
    from ..net import Net
    from ..solver.report import fmt
    from ..solver.solver import resolve_device

    if args.iterations < 1:
        raise SpecError(f"--iterations must be at least 1, got {args.iterations}")
    device = resolve_device(args.device)
    options = {"data_root": args.data_root} if args.data_root else {}
    net = Net(args.model, phase="TEST", options=options)
    if net.input_names:
        raise SpecError(f"the net reads its data from Input layers ({', '.join(net.input_names)}), which "
                        "'test' cannot feed", file=args.model,
                        fix="use a net with data layers (Data, ImageData, ...), or feed it from Python")
    for path in [w for w in args.weights.split(",") if w]:
        net.load_weights(path)
    if device.type != "cpu":
        net.to(device)
    weights = net.loss_weights
    sums: dict[str, torch.Tensor] = {}
    loss = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad():
        for i in range(args.iterations):
            outputs = net()
            loss += net.loss.double()
            for name, value in outputs.items():
                value = value.detach().double()
                sums[name] = sums[name] + value if name in sums else value
                if args.per_batch:
                    for score in value.reshape(-1).tolist():
                        print(f"Batch {i}, {name} = {fmt(score)}")
    print(f"Loss: {fmt(float(loss) / args.iterations)}")
    for name, total in sums.items():
        weight = weights.get(name, 0.0)
        for mean in (total / args.iterations).reshape(-1).tolist():
            suffix = f" (* {fmt(weight)} = {fmt(weight * mean)} loss)" if weight else ""
            print(f"{name} = {fmt(mean)}{suffix}")
    return 0
