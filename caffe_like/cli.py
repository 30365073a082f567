"""The ``caffe-like`` command: Caffe's tool (train, test, time) plus what Caffe lacked.

Each subcommand lives in its own module under :mod:`caffe_like.commands` with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``.  Errors the user can fix are printed as one clear
message without a traceback (``--debug`` shows it) and give exit status 2 (bad input) or 1 (other
failures); success is 0.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import CaffeLikeError

#: subcommand modules, in the order ``--help`` lists them
COMMANDS = (
    "convert",
    "summary",
    "train",
    "test",
    "gradcheck",
    "time",
    "data",
    "export",
    "infer",
    "plot",
    "check",
    "draw",
    "quickstart",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caffe-like",
        description="Caffe's nets, solvers and semantics on PyTorch.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first, to register its layers (repeatable)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"caffe_like.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        from .layers.registry import load_entry_points, load_plugin

        load_entry_points()  # layers of installed packages (the caffe_like.layers entry points)
        for module in args.plugin:
            load_plugin(module)
        return int(args.run(args) or 0)
    except CaffeLikeError as err:
        if args.debug:
            raise
        print(f"caffe-like {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"caffe-like {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # an internal error: say so, and how to see it
        if args.debug:
            raise
        print(f"caffe-like {args.command}: internal error: {type(err).__name__}: {err}\n"
              "  (run with --debug for the traceback, and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
