"""``caffe-like convert IN OUT``: prototxt <-> YAML, for nets and solvers, by file extension.

Legacy V1/V0 prototxts are upgraded on the way (as Caffe's upgrade_net_proto_text does); the output
loads back to an equal definition.  Whether the input is a solver or a net is read from its fields
(``base_lr``/``lr_policy``/``net``... make a solver), or forced with ``--kind``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

_SOLVER_KEYS = {"base_lr", "lr_policy", "net", "net_param", "train_net", "train_net_param", "max_iter",
                "solver_type", "type", "test_iter", "snapshot_prefix"}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("convert", help="convert a net or solver between prototxt and YAML",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="a .prototxt or .yaml/.yml net or solver")
    p.add_argument("output", help="the file to write; its extension picks the format")
    p.add_argument("--kind", choices=("auto", "net", "solver"), default="auto",
                   help="what the input is (default: detect from its fields)")
    p.set_defaults(run=run)


def detect_kind(path: str) -> str:
    """'solver' when the top-level keys are solver fields, else 'net'."""
    from ..spec.source import read_tree

    tree, _, _ = read_tree(path)
    keys = set(tree.keys())
    return "solver" if keys & _SOLVER_KEYS and not keys & {"layer", "layers"} else "net"


def run(args) -> int:
    from ..spec.net import NetSpec
    from ..spec.solver import SolverSpec

    kind = detect_kind(args.input) if args.kind == "auto" else args.kind
    if kind == "solver":
        spec = SolverSpec.load(args.input, validate=False)
    else:
        spec = NetSpec.load(args.input, check_types=False)
    spec.save(args.output)
    for note in spec.notes:
        print(f"upgraded: {note}")
    print(f"wrote {kind} {Path(args.output)}")
    return 0
