"""``caffe-like infer MODEL.onnx INPUT...``: onnxruntime inference with top-k, JSON and a PyTorch check.

INPUT: .npy/.npz arrays (float: the net's input as is; uint8: raw pixels, preprocessed), IDX files
(.gz or raw, e.g. MNIST's t10k-images-idx3-ubyte.gz) or images (PNG/JPEG, preprocessed from the model's
metadata: channel order, resize, mean, crop, scale).  Providers: CUDA then CPU, whichever the installed
onnxruntime offers; the one the session got is printed.  --check NET --weights W runs the PyTorch net on
the same inputs and reports the max abs and relative error, and whether the predictions agree (exit 1
if they do not, or an output is not within --rtol/--atol).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("infer", help="run an ONNX model with onnxruntime (top-k, JSON, parity check)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL.onnx", help="a model written by 'caffe-like export'")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=".npy/.npz, IDX or image files")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="classes to print per input (default 5)")
    p.add_argument("--json", metavar="OUT", help="write the results (and the check) as JSON to OUT ('-': stdout)")
    p.add_argument("--check", metavar="NET", help="compare with the PyTorch net NET (needs --weights)")
    p.add_argument("--weights", metavar="W", help="the .caffemodel for --check")
    p.add_argument("--rtol", type=float, default=1e-4, help="--check: an output passes if max abs error <= atol + rtol * max |torch value| "
                        "(default rtol 1e-4)")
    p.add_argument("--atol", type=float, default=1e-5, help="--check: see --rtol (default atol 1e-5)")
    p.add_argument("--batch-size", type=int, default=256, metavar="B", help="items per run (default 256)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print one line per input")
    p.add_argument("--verbose", action="store_true", help="show onnxruntime's own log lines")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..errors import DataError
    from ..export.infer import OnnxModel, check_parity, top_k
    from ..export.inputs import load_inputs

    if args.check and not args.weights:
        raise DataError("--check needs --weights W (the .caffemodel the model was exported from)")
    if args.batch_size <= 0 or args.top_k <= 0:
        raise DataError("--batch-size and --top-k must be positive")
    model = OnnxModel(args.model, verbose=args.verbose)
    names: list[str] = []
    feeds: dict[str, list] = {name: [] for name in model.input_shapes}
    for path in args.inputs:
        batch = load_inputs(path, model.input_shapes, model.info.preprocessing)
        model.check_feeds(batch.arrays, path)
        names += batch.names
        for name in feeds:
            feeds[name].append(batch.arrays[name])
    arrays = {name: np.concatenate(parts) for name, parts in feeds.items()}
    started = time.perf_counter()
    outputs = model.run(arrays, batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    prediction = model.prediction
    indices, values = top_k(outputs[prediction], args.top_k)
    labels = model.info.labels
    results = []
    for item, (idx, val) in enumerate(zip(indices, values)):
        entries = [{"class": int(i), "score": float(v), **({"label": labels[i]} if labels and i < len(labels) else {})}
                   for i, v in zip(idx, val)]
        results.append({"input": names[item], "top_k": entries})
        if not args.quiet:
            text = "  ".join(f"{e.get('label', e['class'])} ({e['score']:.4g})" for e in entries)
            print(f"{names[item]}: {text}", file=sys.stderr if args.json == "-" else sys.stdout)
    print(f"{len(names)} input(s), output '{prediction}', provider {model.provider}, {seconds:.3f} s",
          file=sys.stderr if args.json == "-" else sys.stdout)
    report = None
    if args.check:
        report = check_parity(model, args.check, args.weights, arrays, onnx_out=outputs, batch_size=args.batch_size,
                              rtol=args.rtol, atol=args.atol)
        stream = sys.stderr if args.json == "-" else sys.stdout
        for out in report.outputs:
            print(f"check {out.name}: max abs error {out.max_abs:.3g}, max rel error {out.max_rel:.3g} "
                  f"(of max |value| {out.scale:.3g}){'' if out.allclose else ' -- NOT within tolerance'}", file=stream)
        agree = ("predictions agree on all " f"{report.items} inputs" if report.disagreements == 0 else
                 f"predictions DISAGREE on {report.disagreements} of {report.items} inputs (first: "
                 f"{names[report.first_disagreement]})")
        print(f"check: {agree}; {'OK' if report.ok else 'FAILED'}", file=stream)
    if args.json:
        document = {"model": str(args.model), "provider": model.provider, "providers": model.providers,
                    "prediction_output": prediction, "results": results}
        if report is not None:
            document["check"] = report.as_dict()
        text = json.dumps(document, indent=1)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
    return 0 if report is None or report.ok else 1
