"""``caffe-like export --model NET --weights W -o OUT.onnx``: the deploy net as one validated ONNX file.

The deploy net is derived from NET (TEST phase; data, loss and accuracy layers removed, an Input named
like the data top, L-Softmax as its plain inner product, CenterLoss/ReciprocalNormLoss dropped), or
taken from --deploy.  The batch axis is dynamic; outputs are named after their Caffe blobs, --output adds
intermediate blobs (e.g. the feature).  The model is checked by onnx (full check), carries the
preprocessing and labels in its metadata, and is verified against PyTorch with onnxruntime (CPU).
"""

from __future__ import annotations

import argparse


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape like 1,28,28") from None
    if len(dims) not in (3, 4) or min(dims) <= 0:
        raise argparse.ArgumentTypeError(f"'{text}': give C,H,W or N,C,H,W with positive sizes")
    return dims


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="export the deploy net to ONNX (validated)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="NET", help="the net (.prototxt/.yaml), train/test or deploy")
    p.add_argument("--weights", metavar="W", help="a .caffemodel (without it the fillers' values are exported)")
    p.add_argument("-o", "--out", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--output", action="append", default=[], metavar="BLOB",
                   help="also export this blob (repeatable), e.g. the feature ip1")
    p.add_argument("--deploy", metavar="DEPLOY", help="a deploy net to use instead of deriving one (NET still "
                                                      "gives the preprocessing)")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line, stored in the metadata")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18; 17 with --exporter torchscript)")
    p.add_argument("--input-shape", type=_shape, default=None, metavar="C,H,W",
                   help="the data input's shape when the data layer cannot tell it")
    p.add_argument("--channel-order", choices=("BGR", "RGB", "gray"), default=None,
                   help="override the channel order recorded for image inputs")
    p.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo",
                   help="torch.onnx exporter (default dynamo, the torch.export-based one; see docs/formats.md)")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime-vs-PyTorch verification")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..export.onnx_export import export_onnx

    result = export_onnx(args.model, args.out, weights=args.weights, outputs=args.output, opset=args.opset,
                         input_shape=args.input_shape, labels_file=args.labels, deploy=args.deploy,
                         exporter=args.exporter, channel_order=args.channel_order, verify=not args.no_verify)
    for line in result.deploy.changes:
        print(f"  {line}")
    if result.skipped_weights:
        print(f"  weights of layers not in the deploy net ignored: {', '.join(result.skipped_weights)}")
    inputs = ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in result.inputs.items())
    print(f"inputs: {inputs}")
    print(f"outputs: {', '.join(result.outputs)}" + (f" (prediction: {result.prediction})" if result.prediction else ""))
    verified = "" if result.verify_max_abs is None else \
        f", verified with onnxruntime (max abs error {result.verify_max_abs:.3g})"
    print(f"wrote {result.path} ({result.size_bytes:,} bytes, opset {result.opset}, {result.exporter} exporter, "
          f"{result.seconds:.1f} s){verified}")
    return 0
