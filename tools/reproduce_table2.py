#!/usr/bin/env python3
"""Reproduce the paper's Table 2 (MNIST-2D quick experiment) on full MNIST, with Fig. 1-style curves and 2-D scatters.

Trains the six MNIST-2D variants (prototxt/paper/mnist2d/<variant>.yaml + _solver.yaml: softmax, rn_softmax,
lsoftmax, rn_lsoftmax, center, rn_center) x N seeds, evaluating every --eval-every iterations on the whole test set
(10,000 images): accuracy, the average L2 norm of the test features (blob ``feature``) and the test softmax loss.
A run that diverges (NaN/inf loss) is kept as a result: its iteration is recorded and reported.

Writes (each between its own markers, so hand-written text around it in docs/results.md is kept):
  docs/results.md           the "Table 2" section: mean +- std over seeds beside the paper's numbers, the command,
                            the git commit, the machine (CPU model, cores, torch version) and the wall time
  docs/figures/table2_norm.png, table2_loss.png, table2_accuracy.png
                            test feature norm / test loss / test accuracy vs iteration, for each base loss with
                            and without feature incay (the paper's Fig. 1a-c, here on MNIST-2D; mean over seeds,
                            shaded min..max)
  docs/figures/table2_scatter.png
                            2-D test features coloured by class, one panel per variant (first seed)
  runs/table2/              per-run JSON (curves) and .npz (final test features); ignored by git

``--explore`` instead runs the exploratory settings listed in EXPLORE (input scaling, activation after the
feature, epsilon, loss normalization, learning rate, warm start) and writes the "What we tried" table.

Data: full MNIST under --data-root (or $CAFFE_LIKE_DATA), which must hold mnist/{train,t10k}-*-idx*-ubyte[.gz],
e.g. ``--data-root ../shared/data``.

Parallelism: --jobs processes (default 2), one thread each (OMP_NUM_THREADS=1).  An up-front time estimate
comes from timing a few iterations of each variant first.

Example:
    python tools/reproduce_table2.py --data-root ../shared/data
    python tools/reproduce_table2.py --data-root ../shared/data --seeds 1 --iters 2000 --no-write   # a quick look
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "prototxt" / "paper"
VARIANTS = ("softmax", "rn_softmax", "lsoftmax", "rn_lsoftmax", "center", "rn_center")
TITLES = {"softmax": "Softmax", "rn_softmax": "RN + Softmax", "lsoftmax": "L-Softmax",
          "rn_lsoftmax": "RN + L-Softmax", "center": "Center Loss", "rn_center": "RN + Center Loss"}
#: the paper's Table 2: (test accuracy %, average test feature L2-norm)
PAPER_TABLE2 = {"softmax": (88.62, 316.65), "rn_softmax": (89.44, 488.86), "lsoftmax": (89.91, 329.92),
                "rn_lsoftmax": (92.06, 552.54), "center": (89.01, 192.15), "rn_center": (91.32, 273.78)}
REFERENCE_ITERS = 10000  # the paper's MNIST-2D length: stepvalues are scaled by iters / this

#: exploratory settings (--explore): (tag, variant, overrides, what it tests).  Overrides: see apply_overrides.
EXPLORE: list[tuple[str, str, dict, str]] = [
    # --- the plain setting of the issue (LeNet-2D, x/256, no activation on the feature) and the paper's lr
    ("A1", "softmax", {"input": "scale256", "feature_act": "none"}, "plain: x/256, no feature activation"),
    ("A2", "softmax", {"input": "scale256", "feature_act": "none", "lr": 0.1}, "plain, the paper's lr 0.1"),
    ("A3", "rn_softmax", {"input": "scale256", "feature_act": "none", "lambda": 1.0, "epsilon": 1e-5},
     "plain + RN, lambda 1, eps 1e-5"),
    ("A4", "rn_softmax", {"input": "scale256", "feature_act": "none", "lambda": 0.1, "epsilon": 1e-5},
     "plain + RN, lambda 0.1, eps 1e-5"),
    ("A5", "rn_softmax", {"input": "scale256", "feature_act": "none", "lambda": 0.01, "epsilon": 1e-5},
     "plain + RN, lambda 0.01, eps 1e-5"),
    # --- the committed setting's base: (x-127.5)/128 and PReLU on the feature (Center-loss 2-D example)
    ("B1", "softmax", {}, "(x-127.5)/128 + PReLU feature"),
    ("B2", "softmax", {"lr": 0.1}, "(x-127.5)/128 + PReLU, lr 0.1"),
    ("B3", "rn_softmax", {"lambda": 1.0, "epsilon": 1e-5}, "(x-127.5)/128 + PReLU + RN, lambda 1, eps 1e-5"),
    ("B4", "rn_softmax", {"lambda": 0.1, "epsilon": 1e-5}, "... + RN, lambda 0.1, eps 1e-5"),
    ("B5", "rn_softmax", {"lambda": 1.0, "epsilon": 1.0}, "... + RN, lambda 1, eps 1"),
    ("B6", "rn_softmax", {"lambda": 0.1, "epsilon": 1.0}, "... + RN, lambda 0.1, eps 1"),
    ("B7", "rn_softmax", {"lambda": 1.0, "epsilon": 1e-2}, "... + RN, lambda 1, eps 0.01"),
    ("B8", "rn_softmax", {"lambda": 1.0, "epsilon": 1.0, "normalization": "NONE"},
     "... + RN, lambda 1, eps 1, NONE (sum over the batch)"),
    ("B9", "rn_softmax", {"lambda": 0.1, "epsilon": 1.0, "normalization": "NONE"}, "... + RN, lambda 0.1, eps 1, NONE"),
    ("B10", "rn_softmax", {"lambda": 1.0, "epsilon": 1e-5, "normalization": "VALID"}, "... + RN, lambda 1, eps 1e-5, VALID"),
    ("B11", "rn_softmax", {"lambda": 1.0, "epsilon": 1e-5, "warm_start": 1000},
     "... + RN, lambda 1, eps 1e-5, after 1000 softmax iterations (warm start)"),
    ("B12", "rn_softmax", {"lambda": 1.0, "epsilon": 1e-5, "normalization": "NONE", "warm_start": 1000},
     "... + RN, lambda 1, eps 1e-5, NONE, warm start 1000"),
    # --- input scaling and the activation, one at a time
    ("B13", "rn_softmax", {"lambda": 1.0, "epsilon": 1e-2, "normalization": "NONE"}, "... + RN, lambda 1, eps 0.01, NONE"),
    ("B14", "rn_softmax", {"lambda": 0.01, "epsilon": 1e-5, "normalization": "NONE"}, "... + RN, lambda 0.01, eps 1e-5, NONE"),
    ("B15", "softmax", {"lr": 0.03}, "(x-127.5)/128 + PReLU, lr 0.03"),
    ("A6", "softmax", {"input": "scale256", "feature_act": "none", "lr": 0.03}, "plain, lr 0.03"),
    ("C1", "softmax", {"input": "scale256"}, "x/256 + PReLU feature"),
    ("C2", "softmax", {"feature_act": "none"}, "(x-127.5)/128, no feature activation"),
    ("C3", "softmax", {"input": "mean", "lr": 0.001}, "x-127.5 (raw, L-Softmax MNIST example), lr 0.001"),
    ("C4", "softmax", {"input": "mean"}, "x-127.5 (raw), lr 0.01"),
    ("C5", "rn_softmax", {"input": "mean", "lr": 0.001, "lambda": 1.0, "epsilon": 1e-5}, "raw, lr 0.001 + RN lambda 1, eps 1e-5"),
    ("C6", "rn_softmax", {"input": "scale256", "feature_act": "none", "lambda": 1.0, "epsilon": 1.0},
     "plain (x/256, no act) + RN lambda 1, eps 1"),
    ("C7", "rn_softmax", {"input": "scale256", "feature_act": "none", "lambda": 1.0, "epsilon": 1.0, "normalization": "NONE"},
     "plain + RN lambda 1, eps 1, NONE"),
]


# --------------------------------------------------------------------------------------------------------------
# configurations
# --------------------------------------------------------------------------------------------------------------

def load_configs(variant: str, net: str = "mnist2d") -> tuple[dict, dict]:
    """(net dict, solver dict) of a committed paper config (YAML comments dropped)."""
    folder = PAPER / net
    with open(folder / f"{variant}.yaml") as f:
        net_param = yaml.safe_load(f)
    with open(folder / f"{variant}_solver.yaml") as f:
        solver_param = yaml.safe_load(f)
    return net_param, solver_param


INPUTS = {
    "pm1": {"mean_value": [127.5], "scale": 0.0078125},   # (x - 127.5) / 128: the committed MNIST-2D setting
    "scale256": {"scale": 0.00390625},                   # x / 256: Caffe's LeNet example
    "mean": {"mean_value": [127.5]},                     # x - 127.5: the L-Softmax MNIST example
    "raw": {},                                           # 0..255
}


def apply_overrides(net_param: dict, solver_param: dict, o: dict) -> None:
    """Change a (net, solver) pair in place.  Keys: input (INPUTS), feature_act (none|PReLU|ReLU), lr, batch,
    lambda, epsilon, normalization (of every ReciprocalNormLoss layer), iters (stepvalues scaled), drop_rn."""
    layers = net_param["layer"]
    if "input" in o:
        for layer in layers:
            if layer["type"] == "Data":
                layer["transform_param"] = dict(INPUTS[o["input"]])
    if "feature_act" in o:
        act = o["feature_act"]
        if act == "none":
            net_param["layer"] = layers = [la for la in layers if la["name"] != "feature_prelu"]
        else:
            for layer in layers:
                if layer["name"] == "feature_prelu":
                    layer["type"] = act
    if "batch" in o:
        for layer in layers:
            if layer["type"] == "Data" and layer.get("include", {}).get("phase") == "TRAIN":
                layer["data_param"]["batch_size"] = int(o["batch"])
    for layer in layers:
        if layer["type"] != "ReciprocalNormLoss":
            continue
        if "lambda" in o:
            layer["loss_weight"] = float(o["lambda"])
        if "epsilon" in o:
            layer.setdefault("reciprocal_norm_loss_param", {})["epsilon"] = float(o["epsilon"])
        if "normalization" in o:
            layer.setdefault("loss_param", {})["normalization"] = o["normalization"]
    if o.get("drop_rn"):
        net_param["layer"] = [la for la in net_param["layer"]
                              if la["type"] != "ReciprocalNormLoss" and la["name"] != "plain_score"]
    if "lr" in o:
        solver_param["base_lr"] = float(o["lr"])
    if "iters" in o:
        iters = int(o["iters"])
        scale = iters / REFERENCE_ITERS
        solver_param["stepvalue"] = [max(1, int(round(s * scale))) for s in solver_param.get("stepvalue", [])]
        solver_param["max_iter"] = iters


def rn_settings(net_param: dict) -> dict | None:
    """λ, ε, normalization of the (first) ReciprocalNormLoss layer, or None."""
    for layer in net_param["layer"]:
        if layer["type"] == "ReciprocalNormLoss":
            return {"lambda": float(layer.get("loss_weight", 1.0)),
                    "epsilon": float(layer.get("reciprocal_norm_loss_param", {}).get("epsilon", 1e-5)),
                    "normalization": layer.get("loss_param", {}).get("normalization", "BATCH_SIZE")}
    return None


# --------------------------------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------------------------------

def evaluate(net, batches: int = 100, keep: bool = False) -> dict:
    """Accuracy, mean feature L2 norm and mean softmax loss over ``batches`` TEST batches (the whole test set
    for 100 x 100); with ``keep``, the features and labels too."""
    import torch

    correct = total = 0
    norms, losses, feats, labels = [], [], [], []
    with torch.no_grad():
        for _ in range(batches):
            net()
            f = net.blobs["feature"].reshape(net.blobs["feature"].shape[0], -1).double()
            score = net.blobs["score"].reshape(f.shape[0], -1)
            label = net.blobs["label"].reshape(-1).long()
            correct += int((score.argmax(1) == label).sum())
            total += f.shape[0]
            norms.append(f.norm(dim=1).cpu())
            losses.append(float(net.blobs["loss"]))
            if keep:
                feats.append(f.float().cpu().numpy())
                labels.append(label.cpu().numpy())
    norm = torch.cat(norms)
    out = {"accuracy": correct / total, "norm": float(norm.mean()) if torch.isfinite(norm).all() else float("nan"),
           "loss": float(np.mean(losses))}
    if keep:
        out["features"] = np.concatenate(feats)
        out["labels"] = np.concatenate(labels)
    return out


def _make_solver(net_param, solver_param, *, device, data_root, seed, prefix, snapshot=None):
    from caffe_like.solver import Solver

    sp = dict(solver_param)
    sp.pop("net", None)
    sp["net_param"] = net_param
    sp["random_seed"] = int(seed)
    sp["test_interval"] = int(sp["max_iter"]) + 1  # tests are done here (evaluate), not by the solver
    sp["test_initialization"] = False
    sp["display"] = 0
    sp["snapshot"] = 0
    sp["snapshot_after_train"] = False
    sp["snapshot_prefix"] = str(prefix)
    return Solver(sp, device=device, data_root=data_root, snapshot=snapshot, quiet=True, log=False, progress=False)


def run_one(job: dict, progress=None) -> dict:
    """Train one configuration; returns its record (curves, final numbers, divergence)."""
    import torch

    from caffe_like.errors import SolverError
    from caffe_like.solver.malloc import tune_malloc

    tune_malloc()  # as caffe-like train does: no page faults per iteration (docs/benchmarks.md)
    torch.set_num_threads(int(job.get("threads", 1)))
    started = time.perf_counter()
    net_param, solver_param = load_configs(job["variant"], job.get("net", "mnist2d"))
    overrides = dict(job.get("overrides", {}))
    apply_overrides(net_param, solver_param, overrides)
    iters = int(solver_param["max_iter"])
    every = int(job.get("eval_every", 500))
    out_dir = Path(job["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / job["id"]
    record = {"id": job["id"], "variant": job["variant"], "seed": job["seed"], "overrides": overrides,
              "rn": rn_settings(net_param), "base_lr": solver_param["base_lr"], "iters": iters,
              "curve": [], "diverged_at": None, "error": None}
    warm = int(overrides.get("warm_start", 0))
    step_chunk = 100

    def advance(solver, until):
        while solver.iter < until:
            n = min(step_chunk, until - solver.iter, every - solver.iter % every)
            solver.step(n)
            if progress is not None:
                progress.put((job["id"], n))
            if solver.iter % every == 0 or solver.iter == iters:
                point = evaluate(solver.test_nets[0])
                record["curve"].append({"iter": solver.iter, **point})

    solver = None
    try:
        if warm:
            plain = copy.deepcopy(net_param)
            apply_overrides(plain, {}, {"drop_rn": True})
            solver = _make_solver(plain, solver_param, device=job["device"], data_root=job["data_root"],
                                  seed=job["seed"], prefix=prefix)
            advance(solver, warm)
            state = solver.snapshot()
            solver = _make_solver(net_param, solver_param, device=job["device"], data_root=job["data_root"],
                                  seed=job["seed"], prefix=prefix, snapshot=state)
        else:
            solver = _make_solver(net_param, solver_param, device=job["device"], data_root=job["data_root"],
                                  seed=job["seed"], prefix=prefix)
        advance(solver, iters)
        final = evaluate(solver.test_nets[0], keep=True)
        np.savez_compressed(out_dir / f"{job['id']}_features.npz", features=final.pop("features"),
                            labels=final.pop("labels"))
        record["final"] = final
    except SolverError as err:
        match = re.search(r"at iteration (\d+)", str(err))
        record["diverged_at"] = int(match.group(1)) if match else (solver.iter if solver else None)
        record["error"] = str(err).splitlines()[0]
        if progress is not None and solver is not None:
            progress.put((job["id"], iters - solver.iter))
    record["seconds"] = time.perf_counter() - started
    record["machine"] = machine()
    with open(out_dir / f"{job['id']}.json", "w") as f:
        json.dump(record, f)
    return record


# --------------------------------------------------------------------------------------------------------------
# running many, with an estimate and a progress bar
# --------------------------------------------------------------------------------------------------------------

def time_per_iteration(variant: str, overrides: dict, *, device, data_root, iters: int = 30) -> tuple[float, float]:
    """(seconds per training iteration, seconds per full test evaluation), measured on a short run."""
    import torch

    torch.set_num_threads(1)
    net_param, solver_param = load_configs(variant)
    apply_overrides(net_param, solver_param, {k: v for k, v in overrides.items() if k != "warm_start"})
    solver = _make_solver(net_param, solver_param, device=device, data_root=data_root, seed=1,
                          prefix=REPO / "runs" / "timing" / variant)
    from caffe_like.errors import SolverError

    t = time.perf_counter()
    try:  # a setting that diverges still gives a timing (of the iterations it ran)
        solver.step(5)
        t = time.perf_counter()
        solver.step(iters)
    except SolverError:
        pass
    per_iter = (time.perf_counter() - t) / max(1, solver.iter - 5)
    t = time.perf_counter()
    evaluate(solver.test_nets[0], batches=20)
    per_eval = (time.perf_counter() - t) * 5
    return per_iter, per_eval


def run_all(jobs: list[dict], workers: int, *, estimate: bool, device, data_root) -> list[dict]:
    from tqdm import tqdm

    if estimate:
        kinds = {}
        for job in jobs:
            key = (job["variant"], json.dumps({k: v for k, v in job.get("overrides", {}).items()
                                               if k in ("batch", "warm_start")}, sort_keys=True))
            kinds.setdefault(key, job)
        timings = {}
        for key, job in kinds.items():
            timings[key] = time_per_iteration(job["variant"], job.get("overrides", {}), device=device,
                                              data_root=data_root)
        total = 0.0
        for job in jobs:
            key = (job["variant"], json.dumps({k: v for k, v in job.get("overrides", {}).items()
                                               if k in ("batch", "warm_start")}, sort_keys=True))
            per_iter, per_eval = timings[key]
            n = job["iters"]
            total += n * per_iter + (n / job["eval_every"] + 1) * per_eval
        parallel = max(1, min(workers, len(jobs)))
        # measured alone; two processes on a 2-core machine each run ~15% slower (memory bandwidth)
        slowdown = 1.15 if parallel > 1 else 1.0
        wall = total / parallel * slowdown
        print(f"Estimate: {len(jobs)} runs, {sum(j['iters'] for j in jobs):,} iterations; "
              + ", ".join(f"{k[0]} {1000 * v[0]:.1f} ms/iter" for k, v in timings.items())
              + f"; with {parallel} parallel job(s): about {wall / 60:.0f} min", flush=True)

    import multiprocessing as mp
    import signal

    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    queue = manager.Queue()
    results = []

    def stop(signum, frame):  # SIGTERM: end the workers too (spawned processes outlive their parent otherwise)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        _drive(pool, jobs, queue, results, tqdm)
    except KeyboardInterrupt:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    order = {job["id"]: i for i, job in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r["id"]])


def _drive(pool, jobs, queue, results, tqdm) -> None:
    with tqdm(total=sum(j["iters"] for j in jobs), unit="it", desc="training", smoothing=0.05) as bar:
        futures = [pool.submit(run_one, job, queue) for job in jobs]
        pending = set(futures)
        while pending:
            while not queue.empty():
                _, n = queue.get()
                bar.update(n)
            done = {f for f in pending if f.done()}
            for f in done:
                record = f.result()
                results.append(record)
                status = (f"diverged at {record['diverged_at']}" if record["diverged_at"] is not None
                          else f"acc {100 * record['final']['accuracy']:.2f}% norm {record['final']['norm']:.2f}")
                bar.write(f"{record['id']}: {status} ({record['seconds']:.0f} s)")
            pending -= done
            time.sleep(0.5)
        while not queue.empty():
            _, n = queue.get()
            bar.update(n)


# --------------------------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------------------------

def machine() -> str:
    import torch

    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = ""
    if torch.cuda.is_available():
        gpu = f", GPU {torch.cuda.get_device_name(0)}"
    return f"{model}, {cores} cores{gpu}; Python {platform.python_version()}, torch {torch.__version__}, {platform.system()}"


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "caffe_like", "tools", "prototxt"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return sha + (" (with uncommitted changes in caffe_like/, tools/ or prototxt/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def replace_section(path: Path, name: str, body: str, title: str) -> None:
    """Replace the text between <!-- name:begin --> and <!-- name:end --> in ``path`` (append if absent)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Results\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + f"\n\n## {title}\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def rn_label(rn: dict | None) -> str:
    if rn is None:
        return "—"
    return f"λ={rn['lambda']:g}, ε={rn['epsilon']:g}, {rn['normalization']}"


def wall_text(seconds: float, note: str | None = None) -> str:
    return note if note else f"{seconds / 60:.1f} min"


def table2_markdown(results: list[dict], *, command: str, seconds: float, commit: str, host: str,
                    figures: str, wall_note: str | None = None) -> str:
    lines = [
        f"Command: `{command}`  ",
        f"Commit: {commit}  ",
        f"Machine: {host}  ",
        f"Wall time: {wall_text(seconds, wall_note)}  ",
        f"Seeds: {sorted({r['seed'] for r in results})}; {results[0]['iters']:,} iterations each; test set: all "
        "10,000 MNIST test images.",
        "",
        "| method | paper acc. % | paper avg L2-norm | acc. % (mean ± std) | avg test L2-norm (mean ± std) | "
        "feature incay (λ, ε, normalization) | base_lr | diverged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        runs = [r for r in results if r["variant"] == variant]
        if not runs:
            continue
        ok = [r for r in runs if r["diverged_at"] is None]
        p_acc, p_norm = PAPER_TABLE2[variant]
        if ok:
            acc_m, acc_s = _mean_std([100 * r["final"]["accuracy"] for r in ok])
            norm_m, norm_s = _mean_std([r["final"]["norm"] for r in ok])
            acc, norm = f"{acc_m:.2f} ± {acc_s:.2f}", f"{norm_m:.2f} ± {norm_s:.2f}"
        else:
            acc = norm = "—"
        diverged = [f"seed {r['seed']} at iter {r['diverged_at']}" for r in runs if r["diverged_at"] is not None]
        lines.append(f"| {TITLES[variant]} | {p_acc:.2f} | {p_norm:.2f} | {acc} | {norm} | {rn_label(runs[0]['rn'])} | "
                     f"{runs[0]['base_lr']:g} | {', '.join(diverged) or f'0 of {len(runs)}'} |")
    lines += ["", "Per seed (accuracy %, norm):", ""]
    for variant in VARIANTS:
        runs = [r for r in results if r["variant"] == variant]
        cells = [f"seed {r['seed']}: " + (f"{100 * r['final']['accuracy']:.2f}, {r['final']['norm']:.1f}"
                                          if r["diverged_at"] is None else f"diverged at {r['diverged_at']}")
                 + (f" ({r['where']})" if r.get("where") else "") for r in runs]
        if cells:
            lines.append(f"- {TITLES[variant]}: " + "; ".join(cells))
    lines += ["", f"![test feature norm]({figures}/table2_norm.png)", f"![test loss]({figures}/table2_loss.png)",
              f"![test accuracy]({figures}/table2_accuracy.png)", f"![2-D test features]({figures}/table2_scatter.png)"]
    return "\n".join(lines)


def explore_markdown(results: list[dict], *, command: str, commit: str, host: str) -> str:
    notes = {tag: what for tag, _, _, what in EXPLORE}
    lines = [
        f"Command: `{command}`  ",
        f"Commit: {commit}  ",
        f"Machine: {host}  ",
        f"One seed each, {results[0]['iters']:,} iterations (the committed MNIST-2D solver unless the setting says "
        "otherwise); numbers on the whole test set after the last iteration.",
        "",
        "| tag | variant | setting | λ, ε, normalization | base_lr | outcome | acc. % | avg test L2-norm |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        tag = r["id"].split("_")[0]
        if r["diverged_at"] is not None:
            last = r["curve"][-1] if r["curve"] else None
            outcome = f"**diverged (NaN) at iteration {r['diverged_at']}**"
            acc = f"({100 * last['accuracy']:.2f} at {last['iter']})" if last else "—"
            norm = f"({last['norm']:.2f} at {last['iter']})" if last else "—"
        else:
            outcome = "stable"
            acc, norm = f"{100 * r['final']['accuracy']:.2f}", f"{r['final']['norm']:.2f}"
        rn = rn_label(r["rn"]) if r["variant"].startswith("rn_") else "—"
        if r["overrides"].get("warm_start"):
            rn += f", from iter {r['overrides']['warm_start']}"
        lines.append(f"| {tag} | {TITLES[r['variant']]} | {notes.get(tag, '')} | {rn} | {r['base_lr']:g} | {outcome} | "
                     f"{acc} | {norm} |")
    return "\n".join(lines)


def plot_curves(results: list[dict], figures: Path, prefix: str = "table2") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures.mkdir(parents=True, exist_ok=True)
    metrics = [("norm", "average test feature L2-norm", "norm"), ("loss", "test softmax loss", "loss"),
               ("accuracy", "test accuracy", "accuracy")]
    bases = [("softmax", "Softmax"), ("lsoftmax", "L-Softmax"), ("center", "Center Loss")]
    for key, label, name in metrics:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=key != "norm")
        for ax, (base, title) in zip(axes, bases):
            for variant, colour, text in ((base, "tab:blue", title), (f"rn_{base}", "tab:red", f"RN + {title}")):
                runs = [r for r in results if r["variant"] == variant and r["curve"]]
                if not runs:
                    continue
                iters = sorted({p["iter"] for r in runs for p in r["curve"]})
                table = np.full((len(runs), len(iters)), np.nan)
                for i, r in enumerate(runs):
                    for p in r["curve"]:
                        table[i, iters.index(p["iter"])] = p[key]
                with np.errstate(all="ignore"):
                    mean = np.nanmean(table, axis=0)
                ax.plot(iters, mean, color=colour, label=f"{text} ({len(runs)} seeds)")
                if len(runs) > 1:
                    ax.fill_between(iters, np.nanmin(table, axis=0), np.nanmax(table, axis=0), color=colour, alpha=0.2)
            ax.set_title(title)
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[0].set_ylabel(label)
        fig.suptitle(f"MNIST-2D: {label} vs iteration (mean over seeds, min..max shaded)")
        fig.tight_layout()
        fig.savefig(figures / f"{prefix}_{name}.png", dpi=90)
        plt.close(fig)


def plot_scatter(results: list[dict], runs_dir: Path, figures: Path, prefix: str = "table2") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 8.5))
    for ax, variant in zip(axes.T.reshape(-1), VARIANTS):
        runs = [r for r in results if r["variant"] == variant and r["diverged_at"] is None]
        ax.set_title(TITLES[variant])
        if not runs:
            ax.text(0.5, 0.5, "diverged", ha="center", transform=ax.transAxes)
            continue
        r = min(runs, key=lambda x: x["seed"])
        data = np.load(runs_dir / f"{r['id']}_features.npz")
        f, y = data["features"], data["labels"]
        for c in range(10):
            sel = y == c
            ax.scatter(f[sel, 0], f[sel, 1], s=1, alpha=0.4, color=plt.cm.tab10(c), label=str(c), rasterized=True)
        ax.set_title(f"{TITLES[variant]} (seed {r['seed']}): acc {100 * r['final']['accuracy']:.1f}%, "
                     f"norm {r['final']['norm']:.0f}", fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    labelled = [ax for ax in axes.T.reshape(-1) if ax.get_legend_handles_labels()[1]]
    if labelled:
        labelled[0].legend(markerscale=8, fontsize=7, loc="best", ncol=2)
    fig.suptitle("MNIST-2D test features (all 10,000 test images), coloured by class")
    fig.tight_layout()
    fig.savefig(figures / f"{prefix}_scatter.png", dpi=80)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------------------

def parse_sets(items: list[str]) -> dict:
    """``["lambda=1", "normalization=NONE"]`` -> ``{"lambda": 1.0, "normalization": "NONE"}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set needs KEY=VALUE, got {item!r}")
        try:
            out[key] = int(value) if key in ("batch", "warm_start", "iters") else float(value)
        except ValueError:
            out[key] = value
    return out


def build_parser(description: str = __doc__) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=os.environ.get("CAFFE_LIKE_DATA"),
                   help="folder holding mnist/ (default $CAFFE_LIKE_DATA)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant (random_seed 1..N; default 3)")
    p.add_argument("--iters", type=int, default=REFERENCE_ITERS,
                   help="iterations per run (default 10000, the paper's; stepvalues scale with it)")
    p.add_argument("--eval-every", type=int, default=500, help="test-set evaluation interval (default 500)")
    p.add_argument("--jobs", type=int, default=2, help="parallel processes, one thread each (default 2)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, metavar="VARIANT",
                   help="which variants (default all six)")
    p.add_argument("--results", type=Path, default=REPO / "docs" / "results.md", help="the markdown file to update")
    p.add_argument("--figures", type=Path, default=REPO / "docs" / "figures", help="where the PNG figures go")
    p.add_argument("--runs-dir", type=Path, default=None, help="per-run outputs (default runs/table2 or runs/explore)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override the committed configs in every run (repeatable): lambda, epsilon, normalization, "
                        "lr, batch, input (pm1|scale256|mean|raw), feature_act (none|PReLU|ReLU), warm_start")
    p.add_argument("--no-estimate", action="store_true", help="skip the timing of a few iterations up front")
    p.add_argument("--no-write", action="store_true", help="do not touch docs/ (print the table only)")
    p.add_argument("--report-only", action="store_true",
                   help="rebuild the report and figures from the runs already in --runs-dir (no training)")
    return p


def run_or_load(jobs: list[dict], args, *, runs_dir: Path, command: str, data_root, parser):
    """Train ``jobs`` (recording the command, commit, machine and wall time in ``runs_dir/meta.json``), or with
    ``--report-only`` read their saved results and that record back.

    Returns ``(results, seconds, wall_note, command, commit, host)``.
    """
    started = time.perf_counter()
    if args.report_only:
        results = []
        for job in jobs:
            path = runs_dir / f"{job['id']}.json"
            if path.exists():
                results.append(json.loads(path.read_text()))
        if not results:
            parser.error(f"no runs found in {runs_dir}")
        meta_path = runs_dir / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return (results, meta.get("seconds", 0.0), meta.get("wall_note"), meta.get("command", command),
                meta.get("commit", "unknown"), meta.get("machine", "unknown"))
    runs_dir.mkdir(parents=True, exist_ok=True)
    results = run_all(jobs, args.jobs, estimate=not args.no_estimate, device=args.device, data_root=data_root)
    seconds = time.perf_counter() - started
    commit, host = git_commit(), machine()
    (runs_dir / "meta.json").write_text(json.dumps({"command": command, "commit": commit, "machine": host,
                                                    "seconds": seconds}))
    return results, seconds, None, command, commit, host


def main(argv=None) -> int:
    parser = build_parser()
    parser.add_argument("--explore", action="store_true",
                        help="run the exploratory settings (EXPLORE) instead, and write the 'What we tried' table")
    parser.add_argument("--only", nargs="+", default=None, help="with --explore: only these tags")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    runs_dir = args.runs_dir or REPO / "runs" / ("explore" if args.explore else "table2")
    command = "python tools/reproduce_table2.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if not args.report_only and args.data_root is None:
        parser.error("give --data-root (a folder holding mnist/) or set CAFFE_LIKE_DATA")
    data_root = str(Path(args.data_root).resolve()) if args.data_root else None

    common = {"device": args.device, "data_root": data_root, "eval_every": args.eval_every,
              "out_dir": str(runs_dir)}
    jobs = []
    if args.explore:
        for tag, variant, overrides, _ in EXPLORE:
            if args.only and tag not in args.only:
                continue
            o = dict(overrides)
            if args.iters != REFERENCE_ITERS:
                o["iters"] = args.iters
            jobs.append({**common, "id": f"{tag}_{variant}", "variant": variant, "seed": 1, "overrides": o,
                         "iters": args.iters})
    else:
        for variant in args.variants:
            for seed in range(1, args.seeds + 1):
                o = {"iters": args.iters} if args.iters != REFERENCE_ITERS else {}
                o.update(parse_sets(args.set))
                jobs.append({**common, "id": f"{variant}_seed{seed}", "variant": variant, "seed": seed,
                             "overrides": o, "iters": args.iters})

    results, seconds, wall_note, command, commit, host = run_or_load(jobs, args, runs_dir=runs_dir, command=command,
                                                                     data_root=data_root, parser=parser)
    figures_rel = os.path.relpath(args.figures, args.results.parent)
    if args.explore:
        body = explore_markdown(results, command=command, commit=commit, host=host)
        print(body)
        if not args.no_write:
            replace_section(args.results, "explore", body, "What we tried (exploratory runs)")
    else:
        body = table2_markdown(results, command=command, seconds=seconds, commit=commit, host=host,
                               figures=figures_rel, wall_note=wall_note)
        print(body)
        if not args.no_write:
            replace_section(args.results, "table2", body, "Table 2: MNIST-2D on full MNIST")
            plot_curves(results, args.figures)
            plot_scatter(results, runs_dir, args.figures)
    print(f"done in {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
