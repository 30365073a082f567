"""``caffe-like check DIR|FILE... [--json]``: how portable is a Caffe project?

Scans the folders recursively (and the files named) for nets and solvers (protobuf text or caffe_like
YAML, told apart by their fields), .caffemodel weights, .binaryproto mean files and .solverstate files,
and reports per file: every layer (line, name, type) and whether caffe_like implements its type, unknown
``*_param`` blocks and fields (a fork's), fields caffe_like ignores (``engine``, ...), unsupported values
(LEVELDB), Python layers, whether each net builds in TRAIN and TEST, the solver's features, and for each
.caffemodel which layers' weights would load into which net of the scan (names and blob shapes).  Layers
registered with --plugin MODULE or by installed packages (the ``caffe_like.layers`` entry points) count as
implemented.  Nets with Python layers are built, which imports their modules (--no-build to avoid it).

Statuses: ok, ignored (no effect in caffe_like), partial (runs, with a difference), warning (not
verifiable here: data, a module or a net file not found), UNSUPPORTED, ERROR (unreadable file).

Exit status: 0 when everything is portable (nothing UNSUPPORTED or ERROR), 1 when something is not,
2 for bad arguments (a path that does not exist, nothing to check).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import SpecError

_MARK = {"ok": "ok", "ignored": "ignored", "partial": "partial", "warning": "warning",
         "unsupported": "UNSUPPORTED", "error": "ERROR"}


def _shape(text: str) -> tuple[int, ...]:
    from .export import _shape as parse

    return parse(text)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("check", help="portability report for a Caffe project folder",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="DIR|FILE", help="folders (scanned recursively) and files")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-build", action="store_true",
                   help="do not build the nets (no shapes, no weight matching, no Python layer import)")
    p.add_argument("--data-root", help="folder where data layers look for relative sources (for the shapes)")
    p.add_argument("--input-shape", type=_shape, default=None, metavar="C,H,W",
                   help="the data shape, when the data is not here (for weight matching)")
    p.add_argument("--problems", action="store_true", help="list only what is not ok (layers included)")
    p.set_defaults(run=run)


def format_report(report, *, problems_only: bool = False) -> str:
    lines: list[str] = []
    for item in report.files:
        verdict = "portable" if item.portable else "NOT PORTABLE"
        lines.append(f"{item.path}: {item.kind}{' ' + item.title if item.title else ''} -- {verdict}")
        rows = [r for r in item.layers if not problems_only or r["status"] != "ok" or r["note"]]
        if rows:
            width_name = max(len(r["name"]) for r in rows)
            width_type = max(len(r["type"]) for r in rows)
            for r in rows:
                line = f"{r['line']:>5}" if r["line"] else "     "
                note = f"  {r['note']}" if r["note"] else ""
                lines.append(f"  {line}  {r['name']:<{width_name}}  {r['type']:<{width_type}}  "
                             f"{_MARK[r['status']]}{note}")
        for finding in item.findings:
            if problems_only and finding.status == "ok":
                continue
            where = f"line {finding.line}: " if finding.line else ""
            who = f"'{finding.name}': " if finding.name else ""
            lines.append(f"  {_MARK[finding.status]:<11} {finding.what:<11} {where}{who}{finding.message}")
    summary = report.summary()
    kinds = ", ".join(f"{n} {k}" for k, n in summary["kinds"].items()) or "nothing"
    problems = "; ".join(f"{what} x{n}" for what, n in summary["problems"].items())
    lines.append("")
    lines.append(f"summary: {summary['files']} files ({kinds}); {summary['portable_files']} portable, "
                 f"{summary['not_portable_files']} not portable"
                 + (f" ({problems})" if problems else "")
                 + (f"; {summary['skipped_files']} other files skipped" if summary["skipped_files"] else "")
                 + (" -- everything is portable" if report.portable else ""))
    if summary["unsupported_layer_types"]:
        lines.append(f"layer types to port: {', '.join(summary['unsupported_layer_types'])} -- rewrite them with "
                     "supported layers, or add them: a caffe_like.register_layer class loaded with --plugin MODULE "
                     "(docs/porting.md, 'How to add a layer')")
    return "\n".join(lines)


def run(args) -> int:
    from ..porting import check_paths

    try:
        report = check_paths(args.paths, build=not args.no_build, input_shape=args.input_shape,
                             data_root=args.data_root)
    except FileNotFoundError as err:
        raise SpecError(f"no such file or folder: {err}", fix="give Caffe project folders or files") from None
    if not report.files:
        if args.json:
            print(json.dumps(report.to_dict()))
        raise SpecError("no Caffe nets, solvers, .caffemodel, .binaryproto or .solverstate files found in "
                        + ", ".join(args.paths), fix="name the folder of the Caffe project (it is scanned recursively)")
    if args.json:
        json.dump(report.to_dict(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_report(report, problems_only=args.problems))
    return 0 if report.portable else 1
