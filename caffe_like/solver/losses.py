"""The training loss: non-finite detection and Caffe's ``average_loss`` smoothing.

Each iteration's loss (the mean of its ``iter_size`` pass losses, a device tensor) is queued without
synchronising the device; :meth:`LossTracker.flush` reads the queue in one transfer, raises
:class:`NonFiniteLoss` at the first NaN or ±inf, and moves the values into the smoothing window.  The
displayed loss is the mean of the last ``average_loss`` iteration losses (Caffe's ``smoothed_loss_``).

caffe_like keeps the window across ``step()`` calls and in snapshots, so a resumed run displays what
the uninterrupted run displays (Caffe clears it at the start of every ``Step``).
"""

from __future__ import annotations

import math
from collections import deque

import torch

__all__ = ["LossTracker", "NonFiniteLoss"]


class NonFiniteLoss(Exception):
    """The loss of iteration ``iteration`` is ``value`` (NaN or ±inf)."""

    def __init__(self, iteration: int, value: float) -> None:
        super().__init__(f"loss = {value} at iteration {iteration}")
        self.iteration = iteration
        self.value = value


class LossTracker:
    def __init__(self, average_loss: int) -> None:
        self.window: deque[float] = deque(maxlen=max(1, int(average_loss)))
        self._pending: list[tuple[int, torch.Tensor]] = []

    def add(self, iteration: int, loss: torch.Tensor) -> None:
        self._pending.append((iteration, loss.detach()))

    def flush(self) -> None:
        """Check the queued losses and add them to the window; NonFiniteLoss at the first bad one."""
        if not self._pending:
            return
        iterations = [it for it, _ in self._pending]
        if len(self._pending) == 1:
            values = [self._pending[0][1].item()]
        else:
            values = torch.stack([loss.reshape(()) for _, loss in self._pending]).tolist()
        self._pending.clear()
        for iteration, value in zip(iterations, values):
            if not math.isfinite(value):
                raise NonFiniteLoss(iteration, value)
            self.window.append(value)

    @property
    def smoothed(self) -> float:
        """Mean of the last ``average_loss`` losses (after :meth:`flush`)."""
        return sum(self.window) / len(self.window) if self.window else math.nan

    def add_value(self, value: float) -> None:
        """Add a loss known on the host (the final display forward of ``solve()``)."""
        self.window.append(float(value))
