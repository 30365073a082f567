#!/usr/bin/env python3
"""The paper's Table 4 (accuracy by the feature-incay weight λ), here on MNIST-2D: λ ∈ {0, 0.01, 0.1, 1}.

Trains RN+Softmax and RN+L-Softmax (prototxt/paper/mnist2d/rn_softmax.yaml, rn_lsoftmax.yaml and their solvers)
with the ReciprocalNormLoss weight set to each λ (λ = 0 keeps the layer but gives it no weight: plain Softmax /
L-Softmax), the layer's ε and normalization as committed, × N seeds (default 3), on full MNIST.

Why MNIST-2D and not the paper's CIFAR10 net or the full MNIST net: on this project's 2-core CPU machine the full
MNIST net (10 convolutions of 64 channels, BatchNorm; 30,000 iterations) takes about 1 s per iteration, ~8 h per
run; MNIST-2D takes ~40 ms per iteration (batch 128), so the default 24 runs take about 80 minutes with 2 jobs.
With CIFAR-10 data and a GPU, the same loop runs the CIFAR10 configs (--net cifar10, --device cuda).

Writes the "Table 4 (λ sweep)" section of docs/results.md (mean ± std over seeds beside the paper's CIFAR10
numbers, with the command, commit and machine) and docs/figures/lambda_<metric>.png (test feature norm, loss and
accuracy vs iteration, one curve per λ), keeping the rest of the file.

Example:
    python tools/lambda_sweep.py --data-root ../shared/data
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import reproduce_table2 as rt  # noqa: E402

LAMBDAS = (0.0, 0.01, 0.1, 1.0)
VARIANTS = ("rn_softmax", "rn_lsoftmax")
#: the paper's Table 4 (CIFAR10 accuracy %), by λ
PAPER_TABLE4 = {"rn_softmax": {0.0: 91.55, 1.0: 91.68, 0.1: 92.04, 0.01: 91.96},
                "rn_lsoftmax": {0.0: 92.45, 1.0: 92.36, 0.1: 92.38, 0.01: 92.68}}


def sweep_markdown(results, *, command, seconds, commit, host, figures, net, wall_note=None) -> str:
    first = results[0]
    rn = first["rn"] or {}
    lines = [
        f"Command: `{command}`  ",
        f"Commit: {commit}  ",
        f"Machine: {host}  ",
        f"Wall time: {rt.wall_text(seconds, wall_note)}  ",
        f"Net: {net}; seeds {sorted({r['seed'] for r in results})}; {first['iters']:,} iterations; "
        f"ε = {rn.get('epsilon', float('nan')):g}, normalization {rn.get('normalization', '?')} in every row; "
        "λ = 0 is the plain base loss (the RN layer's weight is 0).  The paper's numbers are CIFAR10 accuracies.",
        "",
        "| method | λ | paper (CIFAR10) acc. % | acc. % (mean ± std) | avg test L2-norm (mean ± std) | diverged |",
        "|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        for lam in LAMBDAS:
            runs = [r for r in results if r["variant"] == variant and abs(r["rn"]["lambda"] - lam) < 1e-12]
            if not runs:
                continue
            ok = [r for r in runs if r["diverged_at"] is None]
            if ok:
                am, asd = rt._mean_std([100 * r["final"]["accuracy"] for r in ok])
                nm, nsd = rt._mean_std([r["final"]["norm"] for r in ok])
                acc, norm = f"{am:.2f} ± {asd:.2f}", f"{nm:.2f} ± {nsd:.2f}"
            else:
                acc = norm = "—"
            div = [f"seed {r['seed']} at iter {r['diverged_at']}" + (f" ({r['where']})" if r.get("where") else "")
                   for r in runs if r["diverged_at"] is not None]
            lines.append(f"| {rt.TITLES[variant]} | {lam:g} | {PAPER_TABLE4[variant][lam]:.2f} | {acc} | {norm} | "
                         f"{', '.join(div) or f'0 of {len(runs)}'} |")
    lines += ["", f"![λ sweep: norm]({figures}/lambda_norm.png)", f"![λ sweep: loss]({figures}/lambda_loss.png)",
              f"![λ sweep: accuracy]({figures}/lambda_accuracy.png)"]
    return "\n".join(lines)


def plot_sweep(results, figures: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures.mkdir(parents=True, exist_ok=True)
    colours = {0.0: "tab:blue", 0.01: "tab:green", 0.1: "tab:orange", 1.0: "tab:red"}
    for key, label in (("norm", "average test feature L2-norm"), ("loss", "test softmax loss"),
                       ("accuracy", "test accuracy")):
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=key != "norm")
        for ax, variant in zip(axes, VARIANTS):
            for lam in LAMBDAS:
                runs = [r for r in results if r["variant"] == variant and abs(r["rn"]["lambda"] - lam) < 1e-12
                        and r["curve"]]
                if not runs:
                    continue
                iters = sorted({p["iter"] for r in runs for p in r["curve"]})
                table = np.full((len(runs), len(iters)), np.nan)
                for i, r in enumerate(runs):
                    for p in r["curve"]:
                        table[i, iters.index(p["iter"])] = p[key]
                with np.errstate(all="ignore"):
                    ax.plot(iters, np.nanmean(table, axis=0), color=colours[lam], label=f"λ = {lam:g}")
                if len(runs) > 1:
                    ax.fill_between(iters, np.nanmin(table, axis=0), np.nanmax(table, axis=0), color=colours[lam],
                                    alpha=0.15)
            ax.set_title(rt.TITLES[variant])
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[0].set_ylabel(label)
        fig.suptitle(f"λ sweep: {label} vs iteration (mean over seeds, min..max shaded)")
        fig.tight_layout()
        fig.savefig(figures / f"lambda_{key}.png", dpi=90)
        plt.close(fig)


def main(argv=None) -> int:
    parser = rt.build_parser(__doc__)
    parser.add_argument("--net", default="mnist2d", choices=("mnist2d", "mnist", "cifar10", "cifar100"),
                        help="which paper net (default mnist2d; the reporting assumes a 'feature' blob and 10,000 "
                             "test images)")
    parser.add_argument("--lambdas", nargs="+", type=float, default=list(LAMBDAS), help="λ values (default 0 0.01 0.1 1)")
    parser.set_defaults(variants=list(VARIANTS))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(rt.REPO))
    runs_dir = args.runs_dir or rt.REPO / "runs" / "lambda_sweep"
    command = "python tools/lambda_sweep.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if not args.report_only and args.data_root is None:
        parser.error("give --data-root (a folder holding the data set) or set CAFFE_LIKE_DATA")
    data_root = str(Path(args.data_root).resolve()) if args.data_root else None
    variants = [v for v in args.variants if v in VARIANTS] or list(VARIANTS)
    jobs = []
    for variant in variants:
        for lam in args.lambdas:
            for seed in range(1, args.seeds + 1):
                o = {**rt.parse_sets(args.set), "lambda": lam}
                if args.iters != rt.REFERENCE_ITERS:
                    o["iters"] = args.iters
                jobs.append({"device": args.device, "data_root": data_root, "eval_every": args.eval_every,
                             "out_dir": str(runs_dir), "id": f"{variant}_lambda{lam:g}_seed{seed}", "net": args.net,
                             "variant": variant, "seed": seed, "overrides": o, "iters": args.iters})
    results, seconds, wall_note, command, commit, host = rt.run_or_load(jobs, args, runs_dir=runs_dir, command=command,
                                                                        data_root=data_root, parser=parser)
    figures_rel = os.path.relpath(args.figures, args.results.parent)
    body = sweep_markdown(results, command=command, seconds=seconds, commit=commit, host=host, figures=figures_rel,
                          net=args.net, wall_note=wall_note)
    print(body)
    if not args.no_write:
        rt.replace_section(args.results, "lambda", body, "Table 4: the λ sweep")
        plot_sweep(results, args.figures)
    print(f"done in {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
