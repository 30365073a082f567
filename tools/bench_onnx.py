"""Benchmark ONNX export and onnxruntime (CPU) vs PyTorch eager inference on LeNet and MNIST-2D.

For each net (random weights from the nets' fillers) and each exporter:
  * export time (the first export in the process includes the exporter's start-up: "cold"; the next
    one "warm"), file count and size, max abs error of onnxruntime vs PyTorch (batch 1 and 7), or why
    the exporter failed;
and, with the default (dynamo) model, inference at each batch size: PyTorch eager (``torch.no_grad``)
and onnxruntime run alternately (interleaved, after a warm-up), ``--repeats`` pairs; reported are the
medians of each and the median of the paired ratios torch/ort (> 1: onnxruntime is faster).
onnxruntime's threads are told not to spin between runs (``session.intra_op.allow_spinning`` 0): with
spinning on, they keep the cores busy during PyTorch's turn and PyTorch's batch-1 time balloons.

Example (the numbers in docs/formats.md and docs/benchmarks.md):
    python tools/bench_onnx.py --threads 2 --repeats 400 --json bench_onnx.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _nets() -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "export"))
    from onnx_nets import lenet, mnist2d

    def as_deploy(spec: dict) -> dict:
        layers = [layer for layer in spec["layer"] if layer["type"] not in ("Data", "Accuracy", "SoftmaxWithLoss")]
        head = {"name": "data", "type": "Input", "top": "data", "input_param": {"shape": {"dim": [1, 1, 28, 28]}}}
        return {"name": spec["name"], "layer": [head, *layers]}

    return {"lenet": as_deploy(lenet()), "mnist2d": as_deploy(mnist2d())}


def _export(spec, path, exporter):
    from caffe_like.export import export_onnx

    try:
        started = time.perf_counter()
        result = export_onnx(spec, path, exporter=exporter)
        return time.perf_counter() - started, result, None
    except Exception as err:  # report, do not stop
        return None, None, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"


def _parity(session, net, shape) -> float:
    import torch

    worst = 0.0
    rng = np.random.default_rng(0)
    for batch in (1, 7):
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        with torch.no_grad():
            want = net(data=torch.from_numpy(x))
        got = session.run(None, {"data": x})
        for name, value in zip([o.name for o in session.get_outputs()], got):
            worst = max(worst, float(np.abs(value - want[name].numpy()).max()))
    return worst


def _inference(session, net, batch, repeats) -> dict:
    import torch

    x = np.random.default_rng(1).standard_normal((batch, 1, 28, 28)).astype(np.float32)
    xt = torch.from_numpy(x)
    feed = {"data": x}
    with torch.no_grad():
        for _ in range(3):
            net(data=xt)
            session.run(None, feed)
        t_torch, t_ort, ratios = [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            net(data=xt)
            mid = time.perf_counter()
            session.run(None, feed)
            end = time.perf_counter()
            t_torch.append(mid - start)
            t_ort.append(end - mid)
            ratios.append((mid - start) / (end - mid))
    return {"batch": batch, "torch_ms": 1e3 * statistics.median(t_torch), "ort_ms": 1e3 * statistics.median(t_ort),
            "ratio_torch_over_ort": statistics.median(ratios), "repeats": repeats}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", nargs="+", default=["lenet", "mnist2d"], choices=["lenet", "mnist2d"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 256])
    parser.add_argument("--repeats", type=int, default=200, help="timed pairs at batch 1 (fewer for big batches)")
    parser.add_argument("--threads", type=int, default=None, help="threads for both (default: all cores)")
    parser.add_argument("--exporters", nargs="+", default=["dynamo", "torchscript"], choices=["dynamo", "torchscript"])
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import torch

    import caffe_like

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {threads} threads",
               "torch": torch.__version__, "onnxruntime": ort.__version__, "exports": [], "inference": []}
    print(f"# {results['machine']}; torch {torch.__version__}, onnxruntime {ort.__version__}")
    nets = _nets()
    with tempfile.TemporaryDirectory() as tmp:
        for exporter in args.exporters:
            for name in args.nets:
                for attempt in ("cold", "warm"):
                    path = Path(tmp) / f"{name}_{exporter}_{attempt}.onnx"
                    seconds, result, error = _export(nets[name], path, exporter)
                    row = {"net": name, "exporter": exporter, "run": attempt, "seconds": seconds, "error": error}
                    if result is not None:
                        files = sorted(p.name for p in Path(tmp).iterdir() if p.name.startswith(path.stem))
                        row.update(opset=result.opset, files=len(files), bytes=path.stat().st_size,
                                   max_abs_err=result.verify_max_abs)
                        if exporter == "dynamo" and attempt == "warm":
                            options = ort.SessionOptions()
                            options.intra_op_num_threads = threads
                            # no busy-waiting between runs: spinning threads would steal the cores from
                            # PyTorch's turn in the interleaved timing
                            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                            ref = caffe_like.Net(nets[name], phase="TEST", seed=0)
                            export_path = Path(tmp) / f"{name}_bench.onnx"
                            caffe_like.export_onnx(ref, export_path)
                            bench = ort.InferenceSession(str(export_path), options, providers=["CPUExecutionProvider"])
                            row["max_abs_err"] = _parity(bench, ref, (1, 28, 28))
                            for batch in args.batches:
                                repeats = max(20, args.repeats // max(1, batch // 16))
                                results["inference"].append({"net": name, **_inference(bench, ref, batch, repeats)})
                    results["exports"].append(row)
                    status = (f"{row['seconds']:.2f} s, {row.get('files')} file(s), {row.get('bytes', 0):,} bytes, "
                              f"opset {row.get('opset')}, max abs err {row.get('max_abs_err')}") if not error else \
                        f"FAILED: {error}"
                    print(f"export {name:8s} {exporter:11s} {attempt}: {status}")
    for t in results["inference"]:
        print(f"infer  {t['net']:8s} batch {t['batch']:4d}: torch {t['torch_ms']:.3f} ms, onnxruntime {t['ort_ms']:.3f} ms, "
              f"median paired ratio torch/ort {t['ratio_torch_over_ort']:.2f}x ({t['repeats']} pairs)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
