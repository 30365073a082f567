"""``caffe-like plot LOG.csv -o curves.png``: training curves from the CSV log that ``train`` writes.

Three panels against the iteration, like Caffe's ``tools/extra/plot_training_log.py``:

* loss: the train net's smoothed loss, and each test net's loss outputs (and mean net loss);
* accuracy: every test net output whose name contains "acc" (none: the panel says so);
* learning rate.

Needs matplotlib (the ``plot`` extra: ``pip install caffe-like[plot]``); it is drawn with the Agg backend,
so no display is needed.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("plot", help="training curves from a CSV log", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("log", help="the CSV log of a training run (<snapshot_prefix>_log.csv)")
    p.add_argument("-o", "--output", required=True, help="the image to write (.png, .pdf, .svg)")
    p.add_argument("--title", help="the figure title (default: the log's file name)")
    p.set_defaults(run=run)


def read_series(path: Path) -> dict[tuple[str, str, str], list[tuple[int, float]]]:
    """{(net, kind, name): [(iteration, value), ...]} from a CSV log; a DataError if it is not one."""
    from ..errors import DataError
    from ..solver.report import CSV_COLUMNS

    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(header) != CSV_COLUMNS:
                raise DataError(f"not a caffe_like training log: the header is {header}, expected "
                                f"{','.join(CSV_COLUMNS)}", file=str(path))
            series = defaultdict(list)
            for line, row in enumerate(reader, start=2):
                try:
                    series[(row[2], row[3], row[4])].append((int(row[0]), float(row[5])))
                except (IndexError, ValueError):
                    raise DataError(f"malformed row {row}", file=str(path), line=line) from None
    except OSError as err:
        raise DataError(f"cannot read the log: {err.strerror or err}", file=str(path)) from None
    return series


def run(args) -> int:
    from ..errors import CaffeLikeError

    try:
        import matplotlib
    except ImportError:
        raise CaffeLikeError("plot needs matplotlib, which is not installed",
                             fix="pip install matplotlib (or caffe-like[plot])") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(args.log)
    series = read_series(path)
    figure, (loss_ax, acc_ax, lr_ax) = plt.subplots(3, 1, figsize=(8, 10), sharex=True)
    for (net, kind, name), points in sorted(series.items()):
        iterations, values = zip(*points)
        if kind == "loss":
            label = "train loss (smoothed)" if net == "train" else f"{net} net loss"
        else:
            label = f"{net} {name}"
        if kind == "loss" or (kind == "loss_output" and net != "train"):
            loss_ax.plot(iterations, values, label=label, marker="." if net != "train" else None)
        elif kind == "output" and net != "train" and "acc" in name.lower():
            acc_ax.plot(iterations, values, label=label, marker=".")
        elif kind == "lr":
            lr_ax.plot(iterations, values, label="learning rate")
    for ax, ylabel in ((loss_ax, "loss"), (acc_ax, "accuracy"), (lr_ax, "learning rate")):
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, f"no {ylabel} in the log", ha="center", va="center", transform=ax.transAxes)
    lr_ax.set_xlabel("iteration")
    figure.suptitle(args.title or path.name)
    figure.tight_layout()
    try:
        figure.savefig(args.output, dpi=100)
    except (OSError, ValueError) as err:
        raise CaffeLikeError(f"cannot write the plot: {err}", file=args.output) from None
    finally:
        plt.close(figure)
    print(f"wrote {args.output}")
    return 0
