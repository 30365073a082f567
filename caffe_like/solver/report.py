"""What training prints and records: Caffe's log lines, a tqdm bar on terminals, and a CSV log.

Lines are Caffe's (``solver.cpp``, ``sgd_solver.cpp``), numbers printed like C++ streams (6 significant
digits)::

    Iteration 100 (52.3 iter/s, 1.91s/100 iters), loss = 0.231
        Train net output #0: loss = 0.231 (* 1 = 0.231 loss)
    Iteration 100, lr = 0.00992565
    Iteration 500, Testing net (#0)
        Test net output #0: accuracy = 0.9712
        Test net output #1: loss = 0.0932 (* 1 = 0.0932 loss)

They go to standard output; with a progress bar (standard error is a terminal) they are written above it.

The CSV log (``iteration,seconds,net,kind,name,value``, one row per value, with a header) records every
displayed and tested value:

* ``iteration``: the solver's iteration (updates applied) when the value was computed;
* ``seconds``: wall-clock seconds since the solver was created;
* ``net``: ``train``, or ``test0``, ``test1``, ... for the test nets in Caffe's order;
* ``kind``: ``loss`` (train: the smoothed loss of the display line; test: the mean net loss when
  ``test_compute_loss``), ``lr`` (the learning rate), ``output`` (a net output blob) or ``loss_output``
  (an output blob with a non-zero loss weight; the value is the blob's, not times the weight);
* ``name``: the blob name (``blob[k]`` for element k of a blob with several elements), or ``loss``/``lr``;
* ``value``: the number, with full float precision.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

__all__ = ["Report", "CSV_COLUMNS", "fmt"]

CSV_COLUMNS = ("iteration", "seconds", "net", "kind", "name", "value")


def fmt(value: float) -> str:
    """A number as a C++ ostream prints it by default (``%g`` with 6 significant digits)."""
    return f"{value:.6g}"


class Report:
    """Prints training lines (over a tqdm bar on a terminal) and appends rows to the CSV log.

    Args:
        csv_path: the CSV log file, or None for no CSV.
        progress: show a tqdm bar; None = when standard error is a terminal.
        quiet: print nothing (the CSV is still written).
    """

    def __init__(self, csv_path: Path | None, *, progress: bool | None = None, quiet: bool = False) -> None:
        self.csv_path = csv_path
        self.progress = progress
        self.quiet = quiet
        self.started = time.perf_counter()
        self._bar = None
        self._csv_fresh = True
        self._resume_iteration: int | None = None

    # -- lines and bar -------------------------------------------------------------------------------

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stdout)
        else:
            print(text, file=sys.stdout, flush=True)

    def open_bar(self, start: int, stop: int) -> None:
        """A progress bar over iterations ``start``..``stop`` (when enabled)."""
        enabled = self.progress if self.progress is not None else sys.stderr.isatty()
        if enabled and not self.quiet and stop > start:
            from tqdm import tqdm

            self._bar = tqdm(total=stop, initial=start, unit="it", file=sys.stderr, dynamic_ncols=True,
                             leave=True)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # -- what training reports -----------------------------------------------------------------------

    def train(self, iteration: int, smoothed_loss: float, per_s: float, lapse: float, display: int,
              outputs: list[tuple[str, list[float], float]]) -> None:
        """The display block: the smoothed loss, then every element of every train-net output."""
        self.line(f"Iteration {iteration} ({fmt(per_s)} iter/s, {fmt(lapse)}s/{display} iters), "
                  f"loss = {fmt(smoothed_loss)}")
        rows = [(iteration, "train", "loss", "loss", smoothed_loss)]
        rows += self._outputs(iteration, "train", "Train", outputs)
        self._write(rows)
        if self._bar is not None:
            self._bar.set_postfix(loss=fmt(smoothed_loss), refresh=False)

    def final_loss(self, iteration: int, smoothed_loss: float) -> None:
        """The display line of ``solve()``'s extra forward after the last update."""
        self.line(f"Iteration {iteration}, loss = {fmt(smoothed_loss)}")
        self._write([(iteration, "train", "loss", "loss", smoothed_loss)])

    def learning_rate(self, iteration: int, rate: float) -> None:
        self.line(f"Iteration {iteration}, lr = {fmt(rate)}")
        self._write([(iteration, "train", "lr", "lr", rate)])

    def test(self, iteration: int, index: int, outputs: list[tuple[str, list[float], float]],
             loss: float | None) -> None:
        """A test pass's means (``loss``: the mean net loss when test_compute_loss, else None)."""
        rows = []
        if loss is not None:
            self.line(f"Test loss: {fmt(loss)}")
            rows.append((iteration, f"test{index}", "loss", "loss", loss))
        rows += self._outputs(iteration, f"test{index}", "Test", outputs)
        self._write(rows)

    def _outputs(self, iteration, net, label, outputs):
        rows = []
        number = 0
        for name, values, weight in outputs:
            kind = "loss_output" if weight else "output"
            for k, value in enumerate(values):
                suffix = f" (* {fmt(weight)} = {fmt(weight * value)} loss)" if weight else ""
                self.line(f"    {label} net output #{number}: {name} = {fmt(value)}{suffix}")
                number += 1
                rows.append((iteration, net, kind, f"{name}[{k}]" if len(values) > 1 else name, value))
        return rows

    # -- CSV -----------------------------------------------------------------------------------------

    def resume_at(self, iteration: int) -> None:
        """Continue an existing CSV log: rows of iterations >= ``iteration`` are dropped (they are redone)."""
        self._resume_iteration = iteration

    def _write(self, rows) -> None:
        if self.csv_path is None or not rows:
            return
        seconds = f"{time.perf_counter() - self.started:.3f}"
        if self._csv_fresh:
            self._start_csv()
        with open(self.csv_path, "a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            for iteration, net, kind, name, value in rows:
                writer.writerow((iteration, seconds, net, kind, name, repr(float(value))))

    def _start_csv(self) -> None:
        """Write the header (a new log), or keep the earlier rows of a resumed run."""
        self._csv_fresh = False
        kept = []
        if self._resume_iteration is not None and self.csv_path.exists():
            with open(self.csv_path, newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header is not None and tuple(header) == CSV_COLUMNS:
                    kept = [row for row in reader if row and row[0].isdigit() and int(row[0]) < self._resume_iteration]
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.csv_path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(kept)
