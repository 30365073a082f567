"""``caffe-like summary NET``: layers, top shapes and parameter counts, without running the net.

A data layer's top shapes come from its source, as in Caffe: it opens the source and reads one record
(``--data-root DIR`` is where relative ``source`` paths are looked for, after the net's folder, as for
``train``, ``test`` and ``time``).  Nets whose inputs are ``Input`` layers read nothing.

Parameter counts are the elements of every blob a layer stores, as Caffe stores them (BatchNorm's
three statistics blobs included).  ``--json`` prints one JSON object (DESIGN §8).
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("summary", help="layers, top shapes and parameter counts of a net",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("net", help="a .prototxt or .yaml net")
    p.add_argument("--phase", choices=("TRAIN", "TEST"), default=None,
                   help="which phase's layers to build (default: the net's state, TEST unless it says)")
    p.add_argument("--level", type=int, default=None, help="NetState level")
    p.add_argument("--stage", action="append", default=None, help="NetState stage (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--data-root", help="where data layers look for relative source paths (after the net's folder)")
    p.set_defaults(run=run)


def format_table(summary: dict) -> str:
    rows = [("layer", "type", "top shapes", "params")]
    for layer in summary["layers"]:
        shapes = ", ".join(f"{top} {'x'.join(map(str, shape)) or 'scalar'}"
                           for top, shape in layer["top_shapes"].items())
        rows.append((layer["name"], layer["type"], shapes, f"{layer['params']:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"net '{summary['name']}', phase {summary['phase']}"]
    for row in rows:
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:>12}")
    lines.append(f"total parameters: {summary['total_params']:,}")
    outputs = ", ".join(f"{name} {'x'.join(map(str, s)) or 'scalar'}" for name, s in summary["outputs"].items())
    lines.append(f"outputs: {outputs}")
    return "\n".join(lines)


def run(args) -> int:
    from ..net import Net

    options = {"peek_only": True}
    if args.data_root:
        options["data_root"] = args.data_root
    net = Net(args.net, phase=args.phase, level=args.level, stages=args.stage, options=options)
    summary = net.summary()
    print(json.dumps(summary) if args.json else format_table(summary))
    return 0
